"""fit, evaluate, predict and fine_tune on Hugging Face models: dict batches, ModelOutput logits.

The model is a tiny ViT built from a config with random weights; nothing is downloaded."""

from __future__ import annotations

import os

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from ftlib.seeding import seed_everything
from ftlib.surgery.heads import swap_head
from ftlib.training import evaluate, fit, predict
from ftlib.training.recipes import fine_tune

os.environ["HF_HUB_OFFLINE"] = "1"
transformers = pytest.importorskip("transformers")

FIT = {"device": "cpu", "progress": False, "topk": (1,)}


class Stripes(Dataset):
    """Images of horizontal, vertical or no stripes, as a Hugging Face dataset yields them."""

    def __init__(self, n: int = 48, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % 3
        rows = torch.arange(16).remainder(4).lt(2).float()
        patterns = [rows.view(16, 1).expand(16, 16), rows.view(1, 16).expand(16, 16)]
        patterns.append(torch.full((16, 16), 0.5))
        noise = 0.3 * torch.randn(n, 3, 16, 16, generator=generator)
        self.images = torch.stack([patterns[label] for label in self.labels]).unsqueeze(1) + noise

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.images[index], "labels": self.labels[index]}


def vit(num_labels: int = 3) -> torch.nn.Module:
    seed_everything(0)
    config = transformers.ViTConfig(
        image_size=16,
        patch_size=4,
        num_channels=3,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=num_labels,
    )
    return transformers.ViTForImageClassification(config)


def test_fit_learns_from_dict_batches_and_model_output_logits():
    model = vit()
    train = DataLoader(Stripes(), batch_size=16, shuffle=True, generator=seed_everything(1))
    history = fit(model, train, epochs=4, lr=3e-3, val_loader=DataLoader(Stripes(seed=1)), **FIT)
    assert history.last["val_top1"] > 0.9
    assert history.last["train_loss"] < 0.5 * history.column("train_loss")[0]


def test_evaluate_and_predict_read_the_logits_of_a_model_output():
    model, data = vit(), Stripes(n=12)
    loader = DataLoader(data, batch_size=5)
    logits = predict(model, loader, **{k: v for k, v in FIT.items() if k != "topk"})
    with torch.no_grad():
        model.eval()
        expected = model(pixel_values=data.images).logits
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    result = evaluate(model, loader, **FIT)
    loss = torch.nn.functional.cross_entropy(expected, data.labels).item()
    assert result["loss"] == pytest.approx(loss, rel=1e-5)


def test_fine_tune_runs_on_a_swapped_hugging_face_head():
    model = vit(num_labels=10)
    swap_head(model, num_classes=3)
    history = fine_tune(model, DataLoader(Stripes(), batch_size=16), epochs=1, **FIT)
    assert len(history) == 2 and model.classifier.out_features == 3


def test_a_dict_batch_without_labels_is_refused_with_its_keys():
    batches = [{"pixel_values": torch.zeros(2, 3, 16, 16), "target": torch.zeros(2).long()}]
    with pytest.raises(
        ValueError, match=r"'labels' \(or 'label'\), got the keys \['pixel_values', 'target'\]"
    ):
        fit(vit(), batches, epochs=1, **FIT)
