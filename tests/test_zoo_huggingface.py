"""Hugging Face image classifiers, DeiT with its teacher head included, through the whole
fine-tuning surgery. Models are built from small config objects with random weights; nothing is
downloaded (``HF_HUB_OFFLINE=1``)."""

from __future__ import annotations

import os

import pytest
import torch
from zoo_checks import NUM_CLASSES, check_fine_tunes

os.environ["HF_HUB_OFFLINE"] = "1"
transformers = pytest.importorskip("transformers")

SIZE = 32
VIT = {
    "hidden_size": 32,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "image_size": SIZE,
    "patch_size": 8,
    "num_labels": 5,
}
STAGES = {"hidden_sizes": [8, 16, 32, 64], "depths": [1, 1, 1, 1], "num_labels": 5}
# (name, config class, model class, config arguments, the heads the model has)
MODELS = [
    ("vit", "ViTConfig", "ViTForImageClassification", VIT, ["classifier"]),
    (
        "deit-with-teacher",
        "DeiTConfig",
        "DeiTForImageClassificationWithTeacher",
        VIT,
        ["cls_classifier", "distillation_classifier"],
    ),
    ("beit", "BeitConfig", "BeitForImageClassification", VIT, ["classifier"]),
    ("convnext", "ConvNextConfig", "ConvNextForImageClassification", STAGES, ["classifier"]),
    (
        "resnet",
        "ResNetConfig",
        "ResNetForImageClassification",
        {**STAGES, "embedding_size": 8},
        ["classifier.1"],
    ),
    (
        "swin",
        "SwinConfig",
        "SwinForImageClassification",
        {
            "image_size": SIZE,
            "patch_size": 4,
            "embed_dim": 8,
            "depths": [1, 1],
            "num_heads": [1, 2],
            "window_size": 4,
            "num_labels": 5,
        },
        ["classifier"],
    ),
]


def build(config: str, model: str, arguments: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    return getattr(transformers, model)(getattr(transformers, config)(**arguments))


@pytest.mark.parametrize(
    ("config", "model", "arguments", "heads"),
    [entry[1:] for entry in MODELS],
    ids=[entry[0] for entry in MODELS],
)
def test_huggingface_model_fine_tunes_with_its_task_heads_swapped(config, model, arguments, heads):
    network = build(config, model, arguments)
    assert check_fine_tunes(network, torch.randn(2, 3, SIZE, SIZE)) == heads
    assert network.config.num_labels == network.num_labels == NUM_CLASSES
    assert len(network.config.id2label) == NUM_CLASSES


def test_after_a_swap_the_models_own_loss_uses_the_new_classes():
    model = build("ViTConfig", "ViTForImageClassification", VIT)
    check_fine_tunes(model, torch.randn(2, 3, SIZE, SIZE))
    output = model(pixel_values=torch.randn(4, 3, SIZE, SIZE), labels=torch.tensor([0, 1, 2, 0]))
    expected = torch.nn.functional.cross_entropy(output.logits, torch.tensor([0, 1, 2, 0]))
    assert torch.allclose(output.loss, expected)


def test_a_backbone_without_a_task_head_says_which_model_class_to_use():
    from ftlib.surgery.heads import HeadNotFoundError, find_head

    backbone = build("ViTConfig", "ViTModel", VIT)
    with pytest.raises(HeadNotFoundError, match="ViTModel has no classification head.*from_config"):
        find_head(backbone)


def test_the_layers_of_a_huggingface_vit_are_its_embeddings_then_each_encoder_layer():
    from ftlib.training.optim import body_layers

    layers = body_layers(build("ViTConfig", "ViTForImageClassification", VIT))
    assert all(name.startswith("vit.embeddings.") for name in layers[0])
    assert len(layers) == 1 + VIT["num_hidden_layers"] + 1, "embeddings, blocks, final norm"
    assert all("classifier" not in name for layer in layers for name in layer)
