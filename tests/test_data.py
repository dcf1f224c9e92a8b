"""Specifications of ftlib.data: digits tasks, synthetic shapes and image folders (all offline)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from torch import nn
from torchvision import transforms
from torchvision.models import ResNet18_Weights

from ftlib.data import (
    ShapeTask,
    digits_tasks,
    image_folder,
    make_image_folder,
    make_shapes,
    render_shapes,
    subset_per_class,
)
from ftlib.models import load_pretrained

# ---------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def tasks():
    return digits_tasks()


def test_digits_tasks_hold_every_digit_once_with_target_relabelled(tasks):
    raw = load_digits()
    pixels = torch.from_numpy(raw.data / 16.0).float()
    for splits, offset in [
        ((tasks.source_train, tasks.source_test), 0),
        ((tasks.target_train, tasks.target_test), 5),
    ]:
        images = torch.cat([s.tensors[0] for s in splits])
        labels = torch.cat([s.tensors[1] for s in splits])
        assert images.shape[1:] == (1, 8, 8) and images.dtype == torch.float32
        assert images.min() >= 0.0 and images.max() <= 1.0
        assert set(labels.tolist()) == {0, 1, 2, 3, 4}
        assert len(images) == int(((raw.target >= offset) & (raw.target < offset + 5)).sum())
        # Oracle: every image is a scikit-learn digit whose label is ours plus the offset.
        match = torch.cdist(images.flatten(1), pixels).argmin(dim=1)
        assert torch.equal(torch.from_numpy(raw.target)[match], labels + offset)


def test_digits_split_is_stratified_and_repeatable(tasks):
    for train, test in [
        (tasks.source_train, tasks.source_test),
        (tasks.target_train, tasks.target_test),
    ]:
        train_counts = torch.bincount(train.tensors[1]).float()
        test_counts = torch.bincount(test.tensors[1]).float()
        share = test_counts / (train_counts + test_counts)
        assert torch.all((share - 0.25).abs() < 0.01)
    again, other = digits_tasks(), digits_tasks(seed=1)
    assert torch.equal(again.source_test.tensors[0], tasks.source_test.tensors[0])
    assert not torch.equal(other.source_test.tensors[0], tasks.source_test.tensors[0])


def test_digits_tasks_reject_a_test_fraction_outside_zero_one():
    with pytest.raises(ValueError, match="test_fraction=1.5"):
        digits_tasks(test_fraction=1.5)


def test_subset_per_class_takes_n_of_each_class_interleaved_and_seeded(tasks):
    subset = subset_per_class(tasks.target_train, 3, seed=0)
    labels = subset.tensors[1]
    assert torch.equal(torch.bincount(labels), torch.full((5,), 3))
    assert set(labels[:5].tolist()) == {0, 1, 2, 3, 4}  # every prefix stays balanced
    assert torch.equal(
        subset.tensors[0], subset_per_class(tasks.target_train, 3, seed=0).tensors[0]
    )
    assert not torch.equal(
        subset.tensors[0], subset_per_class(tasks.target_train, 3, seed=1).tensors[0]
    )


def test_subset_per_class_names_the_class_that_is_too_small(tasks):
    with pytest.raises(ValueError, match=r"class 0 has only \d+ examples"):
        subset_per_class(tasks.target_test, 1000)


# ---------------------------------------------------------------- synthetic shapes


def test_make_shapes_returns_balanced_colour_images_in_unit_range():
    images, labels = make_shapes(7, task="target", similarity=0.3, seed=2).tensors
    assert images.shape == (35, 3, 16, 16) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and torch.equal(torch.bincount(labels), torch.full((5,), 7))
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_make_shapes_is_deterministic_per_seed():
    first = make_shapes(5, seed=3).tensors[0]
    assert torch.equal(first, make_shapes(5, seed=3).tensors[0])
    assert not torch.equal(first, make_shapes(5, seed=4).tensors[0])


def test_source_and_target_tasks_use_different_shapes():
    source, target = ShapeTask.parse("source").classes, ShapeTask.parse("TARGET").classes
    assert len(source) == len(target) == 5 and not set(source) & set(target)


def _high_frequency_energy(images: torch.Tensor) -> float:
    return (images[..., 1:, :] - images[..., :-1, :]).abs().mean().item()


def test_lower_similarity_moves_low_level_statistics_away_from_the_source():
    styles = [
        make_shapes(40, task="target", similarity=s, seed=0).tensors[0] for s in (1.0, 0.5, 0.0)
    ]
    energy = [_high_frequency_energy(images) for images in styles]
    assert energy[0] < energy[1] < energy[2]  # stripes, noise and crisper edges
    # Hue turns: the mean colour of the images changes, not only their texture.
    means = [images.mean(dim=(0, 2, 3)) for images in styles]
    assert (means[0] - means[2]).abs().max() > 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"similarity": 1.5}, "similarity=1.5"),
        ({"task": "middle"}, "unknown ShapeTask 'middle'"),
        ({"size": 2}, "size=2"),
    ],
)
def test_make_shapes_rejects_bad_knobs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_shapes(2, **kwargs)


def test_render_shapes_lists_the_known_shapes_for_an_unknown_name():
    with pytest.raises(ValueError, match="hexagon.*disk"):
        render_shapes(["disk", "hexagon"], 2)


def _linear_probe_accuracy(model: nn.Module, similarity: float) -> float:
    train = make_shapes(10, task="target", similarity=similarity, seed=100)
    test = make_shapes(100, task="target", similarity=similarity, seed=200)
    with torch.no_grad():
        features = [model.features(d.tensors[0]) for d in (train, test)]
    mean, std = features[0].mean(0), features[0].std(0) + 1e-6
    x_train, x_test = ((f - mean) / std for f in features)
    torch.manual_seed(0)
    head = nn.Linear(x_train.shape[1], 5)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(200):
        loss = nn.functional.cross_entropy(head(x_train), train.tensors[1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (head(x_test).argmax(1) == test.tensors[1]).float().mean().item()


@pytest.fixture
def one_thread():
    # Tiny tensors gain nothing from a second thread, and on a busy CPU the two threads wait for
    # each other at every operation (measured: 16 s instead of 0.7 s for this probe).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_shapes_checkpoint_transfers_far_better_to_similar_than_to_different_target_data(
    one_thread,
):
    model = load_pretrained("shapes")
    similar, different = (_linear_probe_accuracy(model, s) for s in (1.0, 0.0))
    assert similar > 0.85
    assert similar - different > 0.3


# ---------------------------------------------------------------- image folders


def test_make_image_folder_writes_pngs_that_image_folder_reads_back(tmp_path):
    root = make_image_folder(
        tmp_path / "shapes", ("square", "disk"), n_per_class=3, size=20, seed=1
    )
    assert sorted(p.name for p in (root / "disk").iterdir()) == [
        f"disk_{i:03d}.png" for i in range(3)
    ]
    dataset = image_folder(root)
    assert dataset.classes == ["disk", "square"] and len(dataset) == 6
    image, label = dataset[0]
    assert image.shape == (3, 20, 20) and dataset.classes[label] == "disk"
    # Oracle: the PNG holds the generator's first disk, up to 8-bit rounding.
    rendered = render_shapes(("square", "disk"), 3, seed=1, size=20).tensors[0][1]
    assert (image - rendered).abs().max() <= 0.5 / 255 + 1e-6


def test_image_folder_ignores_hidden_folders_such_as_jupyter_checkpoints(tmp_path):
    root = make_image_folder(tmp_path, ("disk", "ring"), n_per_class=2, size=16)
    make_image_folder(root / ".ipynb_checkpoints", ("square",), n_per_class=1, size=16)
    dataset = image_folder(root)
    assert dataset.classes == ["disk", "ring"] and len(dataset) == 4


def test_image_folder_uses_a_transform_of_your_own(tmp_path):
    root = make_image_folder(tmp_path, ("disk",), n_per_class=1, size=32)
    resize = transforms.Compose([transforms.Resize(12), transforms.ToTensor()])
    image, _ = image_folder(root, transform=resize)[0]
    assert image.shape == (3, 12, 12)


def test_image_folder_applies_the_weights_own_transforms_for_evaluation(tmp_path):
    root = make_image_folder(tmp_path, ("disk",), n_per_class=1, size=32)
    weights = ResNet18_Weights.DEFAULT
    image, _ = image_folder(root, weights="ResNet18_Weights.DEFAULT", train=False)[0]
    expected = weights.transforms()(Image.open(root / "disk" / "disk_000.png").convert("RGB"))
    assert torch.equal(image, expected)


def test_image_folder_augments_training_images_at_the_weights_crop_size(tmp_path):
    root = make_image_folder(tmp_path, ("disk",), n_per_class=1, size=32)
    dataset = image_folder(root, weights=ResNet18_Weights.DEFAULT, train=True)
    torch.manual_seed(0)
    first, _ = dataset[0]
    second, _ = dataset[0]
    assert first.shape == (3, 224, 224)
    assert first.min() < 0  # normalised with the ImageNet mean and std
    assert not torch.equal(first, second)  # a new random crop each time


def test_image_folder_explains_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*one sub-folder per class"):
        image_folder(tmp_path / "nowhere")


def test_image_folder_explains_a_folder_without_classes_or_images(tmp_path):
    with pytest.raises(FileNotFoundError, match="no class sub-folders"):
        image_folder(tmp_path)
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "notes.txt").write_text("no image here")
    with pytest.raises(FileNotFoundError, match=r"\['cats'\].*hold no images"):
        image_folder(tmp_path)


def test_image_folder_rejects_unknown_weights_names(tmp_path):
    root = make_image_folder(tmp_path, ("disk",), n_per_class=1)
    with pytest.raises(ValueError, match="unknown weights 'ResNet18'"):
        image_folder(root, weights="ResNet18")


def test_make_image_folder_is_deterministic(tmp_path):
    a = make_image_folder(tmp_path / "a", ("ring",), n_per_class=2, seed=5)
    b = make_image_folder(tmp_path / "b", ("ring",), n_per_class=2, seed=5)
    for name in ("ring_000.png", "ring_001.png"):
        assert np.array_equal(
            np.asarray(Image.open(a / "ring" / name)), np.asarray(Image.open(b / "ring" / name))
        )
