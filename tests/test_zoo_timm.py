"""timm models, two-head ones included, through the whole fine-tuning surgery (random weights).

The two-head models (distilled DeiT, LeViT, RepViT, CrossViT) and one model per family run by
default; ``FTLIB_ZOO=full`` adds more of each family. Nothing is downloaded:
``pretrained=False`` and ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from zoo_checks import check_fine_tunes

os.environ["HF_HUB_OFFLINE"] = "1"
timm = pytest.importorskip("timm")

SMALL_VIT = {"img_size": 32, "depth": 2, "embed_dim": 64, "num_heads": 4}
SMALL_SWIN = {"img_size": 32, "window_size": 2, "depths": (1, 1, 1, 1), "embed_dim": 32}
# (family, model name, image size, keyword arguments that make it small and quick)
MODELS = [
    ("deit", "deit_tiny_distilled_patch16_224", 32, {"img_size": 32}),
    ("levit", "levit_128s", 64, {"img_size": 64}),
    ("repvit", "repvit_m1", 32, {}),
    ("crossvit", "crossvit_tiny_240", 120, {"img_size": 120}),
    ("resnet", "resnet10t", 32, {}),
    ("efficientnet", "efficientnet_b0", 32, {}),
    ("convnext", "convnext_atto", 32, {}),
    ("vit", "vit_tiny_patch16_224", 32, {"img_size": 32, "depth": 4}),
    ("swin", "swin_tiny_patch4_window7_224", 32, SMALL_SWIN),
    ("mobilenetv3", "mobilenetv3_small_050", 32, {}),
    ("regnet", "regnetx_002", 32, {}),
    ("beit", "beit_base_patch16_224", 32, SMALL_VIT),
]
MORE = [
    ("deit", "deit_tiny_patch16_224", 32, {"img_size": 32}),
    ("pit", "pit_ti_distilled_224", 64, {"img_size": 64}),
    ("levit", "levit_conv_128s", 64, {"img_size": 64}),
    ("volo", "volo_d1_224", 64, {"img_size": 64}),
    ("resnet", "resnet18", 32, {}),
    ("resnet", "resnet50d", 32, {}),
    ("efficientnet", "tf_efficientnet_b0", 32, {}),
    ("convnext", "convnextv2_atto", 32, {}),
    ("vit", "vit_small_patch16_224", 32, {"img_size": 32, "depth": 2}),
    ("mobilenetv3", "mobilenetv3_large_100", 32, {}),
    ("regnet", "regnety_002", 32, {}),
    ("beit", "beitv2_base_patch16_224", 32, SMALL_VIT),
    ("efficientvit", "efficientvit_m0", 64, {"img_size": 64}),
    ("fastvit", "fastvit_t8", 64, {}),
    ("mobilevit", "mobilevit_xxs", 64, {}),
    ("tiny_vit", "tiny_vit_5m_224", 64, {}),
    ("ghostnet", "ghostnet_100", 32, {}),
    ("densenet", "densenet121", 32, {}),
    ("inception", "inception_v3", 75, {}),
]
SELECTED = MODELS + (MORE if os.environ.get("FTLIB_ZOO") == "full" else [])


def build(name: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return timm.create_model(name, pretrained=False, **kwargs)


@pytest.mark.parametrize(
    ("family", "name", "size", "kwargs"), SELECTED, ids=[f"{f}-{n}" for f, n, *_ in SELECTED]
)
def test_timm_model_fine_tunes_with_every_declared_head_swapped(family, name, size, kwargs):
    model = build(name, **kwargs)
    declared = model.pretrained_cfg["classifier"]
    swapped = check_fine_tunes(model, torch.randn(2, 3, size, size))
    assert swapped == ([declared] if isinstance(declared, str) else list(declared))
    assert model.num_classes == 3


def test_the_two_head_models_have_both_heads_swapped():
    names = {name: build(name, **kwargs) for _, name, _, kwargs in MODELS[:4]}
    heads = {name: model.pretrained_cfg["classifier"] for name, model in names.items()}
    assert all(len(declared) == 2 for declared in heads.values()), heads


def test_a_timm_model_without_a_classifier_says_how_to_get_one():
    from ftlib.surgery.heads import HeadNotFoundError, swap_head

    model = build("vit_tiny_patch16_224", img_size=32, depth=1, num_classes=0)
    with pytest.raises(HeadNotFoundError, match=r"num_classes=0.*reset_classifier\(N\)"):
        swap_head(model, 3)


def test_timm_layer_decay_groups_follow_its_group_matcher():
    from ftlib.training.optim import body_layers

    model = build("vit_tiny_patch16_224", img_size=32, depth=3)
    layers = body_layers(model)
    assert {name.split(".")[0] for name in layers[0]} == {"cls_token", "pos_embed", "patch_embed"}
    assert [{name.split(".")[1] for name in layer} for layer in layers[1:3]] == [{"0"}, {"1"}]
    assert "norm.weight" in layers[3] and all(
        "head" not in name for layer in layers for name in layer
    )
