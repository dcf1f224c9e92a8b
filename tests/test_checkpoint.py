"""save_checkpoint / load_checkpoint: exact round trips, and a clear way out of head mismatches."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ftlib.surgery.heads import HeadNotFoundError
from ftlib.training.checkpoint import (
    ArchitectureMismatchError,
    HeadMismatchError,
    checkpoint_extra,
    load_checkpoint,
    save_checkpoint,
)


class TinyNet(nn.Module):
    """A conv body with batch norm (buffers too) and a linear head called ``fc``."""

    def __init__(self, num_classes=4):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(self.body(x))


def trained_net(num_classes=4, seed=0):
    """A net whose weights and batch-norm statistics differ from a fresh one."""
    torch.manual_seed(seed)
    net = TinyNet(num_classes)
    net(torch.randn(8, 1, 6, 6))  # train-mode forward: updates running statistics
    return net


def test_round_trip_gives_bit_identical_state_and_extra(tmp_path):
    saved = trained_net()
    path = save_checkpoint(saved, tmp_path / "runs" / "net.pt", extra={"epoch": 3, "lr": 1e-3})
    loaded = TinyNet()
    extra = load_checkpoint(loaded, path)
    assert extra == {"epoch": 3, "lr": 1e-3}
    expected, actual = saved.state_dict(), loaded.state_dict()
    assert list(actual) == list(expected)
    for name in expected:
        assert torch.equal(actual[name], expected[name]), name


def test_checkpoint_extra_reads_the_metadata_without_a_model(tmp_path):
    path = save_checkpoint(trained_net(), tmp_path / "net.pt", extra={"classes": ["a", "b"]})
    assert checkpoint_extra(path) == {"classes": ["a", "b"]}


def test_head_mismatch_names_both_shapes_and_suggests_body_only(tmp_path):
    path = save_checkpoint(trained_net(num_classes=10), tmp_path / "ten.pt")
    with pytest.raises(HeadMismatchError) as caught:
        load_checkpoint(TinyNet(num_classes=5), path)
    message = str(caught.value)
    assert "fc.weight" in message
    assert "(10, 4)" in message and "(5, 4)" in message
    assert "body_only=True" in message
    assert isinstance(caught.value, ValueError)


def test_a_head_without_the_saved_bias_is_a_head_mismatch_too(tmp_path):
    path = save_checkpoint(trained_net(), tmp_path / "with_bias.pt")
    model = TinyNet()
    model.fc = nn.Linear(4, 4, bias=False)
    with pytest.raises(HeadMismatchError, match=r"fc\.bias is in the checkpoint .* body_only=True"):
        load_checkpoint(model, path)
    load_checkpoint(model, path, body_only=True)


def test_body_only_loads_the_body_and_leaves_the_head_untouched(tmp_path):
    source = trained_net(num_classes=10)
    path = save_checkpoint(source, tmp_path / "ten.pt")
    target = trained_net(num_classes=5, seed=1)
    head_before = {name: t.clone() for name, t in target.fc.state_dict().items()}
    load_checkpoint(target, path, body_only=True)
    for name, tensor in source.body.state_dict().items():
        assert torch.equal(target.body.state_dict()[name], tensor), name
    for name, tensor in head_before.items():
        assert torch.equal(target.fc.state_dict()[name], tensor), name


def test_body_only_with_an_explicit_head_name(tmp_path):
    path = save_checkpoint(trained_net(num_classes=10), tmp_path / "ten.pt")
    target = TinyNet(num_classes=3)
    load_checkpoint(target, path, body_only=True, head="fc")
    assert target.fc.out_features == 3


def test_body_only_with_an_unknown_head_name_lists_the_candidates(tmp_path):
    path = save_checkpoint(trained_net(num_classes=10), tmp_path / "ten.pt")
    with pytest.raises(HeadNotFoundError, match=r"head='fcx' is no module.*head='fc'"):
        load_checkpoint(TinyNet(num_classes=3), path, body_only=True, head="fcx")


@pytest.mark.parametrize("direction", ["into-a-dropout-head", "from-a-dropout-head"])
def test_body_only_accepts_a_head_written_as_dropout_then_linear(tmp_path, direction):
    plain, wrapped = trained_net(num_classes=10), trained_net(num_classes=5, seed=1)
    wrapped.fc = nn.Sequential(nn.Dropout(0.2), nn.Linear(4, 5))
    source, target = (plain, wrapped) if direction == "into-a-dropout-head" else (wrapped, plain)
    head_before = {name: t.clone() for name, t in target.fc.state_dict().items()}
    load_checkpoint(target, save_checkpoint(source, tmp_path / "c.pt"), body_only=True)
    for name, tensor in source.body.state_dict().items():
        assert torch.equal(target.body.state_dict()[name], tensor), name
    for name, tensor in head_before.items():
        assert torch.equal(target.fc.state_dict()[name], tensor), name
    with pytest.raises(HeadMismatchError, match="pass body_only=True"):
        load_checkpoint(target, tmp_path / "c.pt")


@pytest.mark.parametrize(
    ("value", "kind"),
    [(np.float64(0.5), "float64"), (np.zeros(3), "ndarray"), (Path("/data"), "PosixPath")],
)
def test_extra_that_could_not_be_loaded_back_is_refused_when_saving(tmp_path, value, kind):
    with pytest.raises(TypeError, match=rf"extra\['score'\] \({kind}\) could not be read back"):
        save_checkpoint(trained_net(), tmp_path / "c.pt", extra={"score": value})
    assert not (tmp_path / "c.pt").exists()


def test_a_folder_as_the_path_is_refused_and_leaves_no_partial_file(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder; give the checkpoint a file name"):
        save_checkpoint(trained_net(), tmp_path)
    assert sorted(tmp_path.parent.glob(tmp_path.name + "*")) == [tmp_path]


def test_a_lazy_layer_that_never_ran_is_refused_when_saving(tmp_path):
    with pytest.raises(ValueError, match="lazy layers .*: 1. Run one forward pass first"):
        save_checkpoint(nn.Sequential(nn.Flatten(), nn.LazyLinear(3)), tmp_path / "c.pt")


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file at"):
        load_checkpoint(TinyNet(), tmp_path / "nowhere.pt")


def test_a_file_that_is_not_a_checkpoint_raises_a_clear_error(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a checkpoint written by ftlib.save_checkpoint"):
        load_checkpoint(TinyNet(), text)


def test_a_bare_state_dict_is_refused_with_the_way_to_load_it(tmp_path):
    bare = tmp_path / "bare.pt"
    torch.save(TinyNet().state_dict(), bare)
    with pytest.raises(ValueError, match="model.load_state_dict"):
        load_checkpoint(TinyNet(), bare)


class OtherNet(nn.Module):
    """Another architecture with a head named like TinyNet's."""

    def __init__(self, num_classes=4):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Flatten())
        self.fc = nn.Linear(6 * 16, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


@pytest.mark.parametrize(
    ("damage", "cause"),
    [
        (lambda data: data[: len(data) // 2], r"is a damaged or truncated PyTorch file"),
        (lambda data: b"", r"is empty \(0 bytes\)"),
        (lambda data: b"epoch 3, loss 0.2\n", r"is not a PyTorch file \(it starts with b'epoc'\)"),
    ],
)
def test_unreadable_files_get_a_one_line_cause_and_what_to_do(tmp_path, damage, cause):
    path = save_checkpoint(trained_net(), tmp_path / "net.pt")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=cause + ".*Write it again") as caught:
        load_checkpoint(TinyNet(), path)
    assert "\n" not in str(caught.value) and caught.value.__cause__ is None


def test_a_whole_pickled_model_is_refused_without_running_its_code(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(TinyNet(), path)
    with pytest.raises(ValueError, match=r"pickled Python objects.*weights_only=False"):
        load_checkpoint(TinyNet(), path)


@pytest.mark.parametrize("body_only", [False, True])
def test_another_architecture_is_named_briefly_not_blamed_on_the_head(tmp_path, body_only):
    path = save_checkpoint(OtherNet(), tmp_path / "other.pt")
    with pytest.raises(ArchitectureMismatchError) as caught:
        load_checkpoint(TinyNet(), path, body_only=body_only)
    message = str(caught.value)
    assert "holds OtherNet, not TinyNet" in message and "Build the model" in message
    assert "body.0.weight" in message and len(message) < 600


def test_a_body_of_other_shapes_is_a_configuration_mismatch(tmp_path):
    wide = TinyNet()
    wide.body[0] = nn.Conv2d(1, 4, 5)
    path = save_checkpoint(wide, tmp_path / "wide.pt")
    with pytest.raises(
        ArchitectureMismatchError,
        match=r"TinyNet of another configuration.*"
        r"body\.0\.weight: \(4, 1, 5, 5\) saved, \(4, 1, 3, 3\) in the model",
    ):
        load_checkpoint(TinyNet(), path, body_only=True)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda p: save_checkpoint(trained_net().state_dict(), p), TypeError, "is a state_dict"),
        (lambda p: load_checkpoint(p, TinyNet()), TypeError, r"the model comes first: load_chec"),
        (lambda p: load_checkpoint(TinyNet(), p, body_only="yes"), TypeError, "True or False"),
        (lambda p: load_checkpoint(TinyNet(), p, map_location="gpu"), ValueError, "unknown device"),
    ],
    ids=["state-dict-for-model", "arguments-swapped", "body-only-text", "unknown-device"],
)
def test_arguments_in_the_wrong_place_or_form_are_named(tmp_path, call, error, message):
    path = save_checkpoint(trained_net(), tmp_path / "c.pt")
    with pytest.raises(error, match=message):
        call(path)
