"""torchvision classifiers, one per family, through the whole fine-tuning surgery with real
compute (random weights, small images). Every one of the 80 gets the surgery without compute in
``tests/test_heads.py``; ``FTLIB_ZOO=full`` adds the larger families here."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
import torchvision
from zoo_checks import check_fine_tunes

# (model name, smallest image size its forward pass accepts, builder arguments)
MODELS = [
    ("resnet18", 32, {}),
    ("squeezenet1_0", 64, {}),
    ("mobilenet_v3_small", 32, {}),
    ("efficientnet_b0", 32, {}),
    ("shufflenet_v2_x0_5", 32, {}),
    ("mnasnet0_5", 32, {}),
    ("regnet_x_400mf", 32, {}),
    ("googlenet", 32, {}),
    ("densenet121", 32, {}),
]
MORE = [
    ("resnext50_32x4d", 32, {}),
    ("alexnet", 63, {}),
    ("vgg11", 32, {}),
    ("mobilenet_v2", 32, {}),
    ("convnext_tiny", 32, {}),
    ("inception_v3", 299, {}),  # its auxiliary head, on in training, needs full-size images
    ("vit_b_16", 32, {"image_size": 32}),
    ("swin_t", 32, {}),
    ("maxvit_t", 224, {}),
]
SELECTED = MODELS + (MORE if os.environ.get("FTLIB_ZOO") == "full" else [])
AUX_HEADS = {"googlenet": ["fc", "aux1.fc2", "aux2.fc2"], "inception_v3": ["fc", "AuxLogits.fc"]}


@pytest.mark.parametrize(("name", "size", "kwargs"), SELECTED, ids=[m[0] for m in SELECTED])
def test_torchvision_model_fine_tunes(name, size, kwargs):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # GoogLeNet/Inception init_weights notice
        model = torchvision.models.get_model(name, weights=None, **kwargs)
    heads = check_fine_tunes(model, torch.randn(2, 3, size, size))
    assert heads == AUX_HEADS.get(name, heads[:1]), "one head, unless the model has auxiliary ones"
