"""ftlib.surgery.states: the three states (predict, head, train all) and partial freezing."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from ftlib.surgery.freezing import freeze, parameter_summary
from ftlib.surgery.heads import HeadNotFoundError
from ftlib.surgery.states import State, prepare


def tiny_cnn() -> nn.Sequential:
    """block1 and block2 (conv, batch norm, ReLU), then a classifier with dropout and a Linear."""
    torch.manual_seed(0)

    def block(c_in: int, c_out: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())

    return nn.Sequential(
        OrderedDict(
            block1=block(1, 4),
            block2=block(4, 8),
            pool=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
            classifier=nn.Sequential(nn.Dropout(0.5), nn.Linear(8, 5)),
        )
    )


def images(channels: int = 1, size: int = 8) -> torch.Tensor:
    return torch.randn(4, channels, size, size, generator=torch.Generator().manual_seed(1)) + 2


def trainable(model: nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


def running_means(model: nn.Module) -> list[torch.Tensor]:
    return [m.running_mean.clone() for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def stats_change_in_a_forward_pass(model: nn.Module, x: torch.Tensor) -> list[bool]:
    before = running_means(model)
    with torch.no_grad():
        model(x)
    return [not torch.equal(b, a) for b, a in zip(before, running_means(model), strict=True)]


def test_state_parse_accepts_names_and_lists_valid_ones():
    assert State.parse("HEAD") is State.HEAD
    assert State.parse(State.FULL) is State.FULL
    with pytest.raises(ValueError, match=r"'linear'.*'predict', 'head', 'full'"):
        prepare(tiny_cnn(), "linear")


def test_a_state_prints_as_the_name_a_user_types():
    assert str(State.HEAD) == f"{State.HEAD}" == "head"


def test_predict_freezes_everything_and_switches_to_eval():
    model = tiny_cnn()
    head = prepare(model, "predict")
    assert head is model.classifier[1] and head.out_features == 5
    assert trainable(model) == [] and not model.training
    assert stats_change_in_a_forward_pass(model, images()) == [False, False]


def test_predict_keeps_the_pretrained_head():
    with pytest.raises(ValueError, match="num_classes=3.*state='head'"):
        prepare(tiny_cnn(), State.PREDICT, 3)


def test_head_state_trains_only_the_new_head_and_holds_batchnorm_stats():
    model = tiny_cnn()
    head = prepare(model, "head", 3)
    assert model.classifier[1] is head and head.out_features == 3
    assert trainable(model) == ["classifier.1.weight", "classifier.1.bias"]
    assert model.training
    assert stats_change_in_a_forward_pass(model, images()) == [False, False]
    x = images()
    assert torch.equal(model(x), model(x)), "frozen dropout before the head stays off"


def test_full_state_trains_everything_and_updates_batchnorm_stats():
    model = tiny_cnn()
    prepare(model, "head", 3)
    head = prepare(model, "full")  # from state 2 to state 3: the holds are released
    assert head is model.classifier[1] and head.out_features == 3
    assert trainable(model) == [name for name, _ in model.named_parameters()]
    assert model.training
    assert stats_change_in_a_forward_pass(model, images()) == [True, True]


def test_full_state_with_freeze_first_keeps_the_first_blocks_frozen():
    model = tiny_cnn()
    prepare(model, "full", 3, freeze_first=1)
    assert trainable(model) == [name for name, _ in model.named_parameters()][4:]
    assert stats_change_in_a_forward_pass(model, images()) == [False, True]


def test_freeze_first_that_would_freeze_the_head_is_refused_before_any_surgery():
    model = tiny_cnn()
    with pytest.raises(ValueError, match=r"freeze_first=3 .*0 <= freeze_first <= 2"):
        prepare(model, "full", 3, freeze_first=3)
    assert model.classifier[1].out_features == 5 and len(trainable(model)) == 10


def test_freeze_first_only_applies_to_the_full_state():
    with pytest.raises(ValueError, match="freeze_first=1 only applies to state='full'"):
        prepare(tiny_cnn(), "head", 3, freeze_first=1)


@pytest.mark.parametrize(
    ("state", "freeze_first", "trainable_blocks", "training"),
    [
        ("predict", 0, set(), False),
        ("head", 0, {"fc"}, True),
        ("full", 0, {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"}, True),
        ("full", 4, {"layer3", "layer4", "fc"}, True),
    ],
)
def test_states_on_resnet18(state, freeze_first, trainable_blocks, training):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    num_classes = None if state == "predict" else 4
    head = prepare(model, state, num_classes, freeze_first=freeze_first)
    assert head is model.fc and head.out_features == (num_classes or 1000)
    assert {name.split(".")[0] for name in trainable(model)} == trainable_blocks
    assert model.training == training
    changed = stats_change_in_a_forward_pass(model, images(3, 32))
    assert changed[0] == (state == "full" and freeze_first == 0)  # bn1, in the stem
    assert changed[-1] == (state == "full"), "batch norm in layer4"


def test_head_state_on_inception_v3_trains_the_new_main_and_auxiliary_heads():
    with torch.device("meta"):
        model = torchvision.models.inception_v3(weights=None, init_weights=False)
    prepare(model, "head", num_classes=4)
    assert trainable(model) == ["AuxLogits.fc.weight", "AuxLogits.fc.bias", "fc.weight", "fc.bias"]


@pytest.mark.parametrize(
    ("freeze_first", "message"),
    [
        (2.5, r"freeze_first must be a non-negative integer, got 2.5 \(float\)"),
        (True, r"freeze_first must be a non-negative integer, got the boolean True"),
        ("1", r"freeze_first must be a non-negative integer, got '1' \(str\)"),
        (-1, r"freeze_first must be a non-negative integer, got -1; use 0 or more"),
    ],
)
def test_a_freeze_first_that_is_not_a_count_is_refused_before_any_surgery(freeze_first, message):
    model = tiny_cnn()
    with pytest.raises(ValueError, match=message):
        prepare(model, "full", 3, freeze_first=freeze_first)
    assert model.classifier[1].out_features == 5


def test_integral_freeze_first_and_num_classes_from_numpy_and_torch_are_accepted():
    model = tiny_cnn()
    head = prepare(model, "full", torch.tensor(3), freeze_first=np.int64(1))
    assert head.out_features == 3
    assert trainable(model) == [name for name, _ in model.named_parameters()][4:]


def test_an_unknown_head_name_in_prepare_lists_the_candidates():
    with pytest.raises(HeadNotFoundError, match=r"head='fc' is no module.*classifier\.1"):
        prepare(tiny_cnn(), "head", head="fc")


def test_head_state_trains_every_named_head():
    model = nn.Sequential(OrderedDict(body=nn.Linear(4, 8), a=nn.Linear(8, 3), b=nn.Linear(8, 3)))
    head = prepare(model, "head", 2, head=["a", "b"])
    assert head is model.a and model.b.out_features == 2
    assert trainable(model) == ["a.weight", "a.bias", "b.weight", "b.bias"]


def test_prepare_refuses_a_model_class():
    with pytest.raises(TypeError, match=r"prepare needs an nn.Module.*prepare\(Sequential\(\)"):
        prepare(nn.Sequential, "head", 3)


def test_a_number_where_the_state_belongs_says_the_state_comes_first():
    with pytest.raises(
        ValueError, match=r"got 3; the state comes before .*prepare\(model, 'head', 3\)"
    ):
        prepare(tiny_cnn(), 3)


@pytest.mark.parametrize(
    "call",
    [
        lambda model: prepare(model, "head", num_classes=3),
        lambda model: prepare(model, "full", num_classes=3, freeze_first=1),
        freeze,
        parameter_summary,
    ],
    ids=["prepare-head", "prepare-full", "freeze", "parameter_summary"],
)
def test_a_lazy_layer_that_never_ran_is_refused_before_anything_changes(call):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(10))
    with pytest.raises(ValueError, match=r"lazy layers .*: 2\. Run one forward pass first"):
        call(model)
    assert model[2].out_features == 10 and all(p.requires_grad for p in model[0].parameters())
    model(torch.zeros(1, 3, 6, 6))  # the shapes are known now
    call(model)
