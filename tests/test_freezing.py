"""ftlib.surgery.freezing: which parameters learn; frozen batch norm that really stays frozen."""

import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from ftlib.surgery.freezing import (
    BatchNormPolicy,
    freeze,
    freeze_to,
    parameter_summary,
    top_level_blocks,
    unfreeze,
)


def small_net() -> nn.Sequential:
    """Blocks stem, body (with batch norm and dropout), pool (no parameters) and fc."""
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            stem=nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()),
            body=nn.Sequential(
                nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.5)
            ),
            pool=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
            fc=nn.Linear(8, 3),
        )
    )


def batch() -> torch.Tensor:
    return torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(1)) * 3 + 1


def trainable(model: nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


def bn_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "batches" in k}


def test_freeze_whole_model_returns_every_parameter_name_once():
    model = small_net()
    names = [name for name, _ in model.named_parameters()]
    assert freeze(model) == names
    assert trainable(model) == []
    assert freeze(model) == [], "freeze returns only the names it changed"


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.1),
        lambda params: torch.optim.AdamW(params, lr=0.1, weight_decay=0.1),
    ],
    ids=["sgd-momentum-weight-decay", "adamw"],
)
def test_frozen_parameters_are_bit_identical_after_optimizer_steps(make_optimizer):
    model = small_net()
    optimizer = make_optimizer(model.parameters())  # frozen parameters included on purpose
    for step in range(3):
        optimizer.zero_grad()
        model(batch()).square().mean().backward()
        if step == 1:  # momentum buffers and a fresh gradient exist by now
            freeze(model, "body")
            before = {name: p.clone() for name, p in model.named_parameters()}
        optimizer.step()
    for name, p in model.named_parameters():
        if name.startswith("body."):
            assert torch.equal(p, before[name]), name
    assert not torch.equal(model.fc.weight, before["fc.weight"])


def test_frozen_batchnorm_keeps_running_stats_in_train_mode():
    model = small_net()
    freeze(model)
    model.train()
    before = bn_state(model)
    model(batch())
    after = bn_state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_frozen_dropout_stays_off_in_train_mode():
    model = small_net()
    freeze(model, "body")
    model.train()
    x = batch()
    assert torch.equal(model(x), model(x))


def test_train_policy_lets_frozen_batchnorm_update_running_stats():
    model = small_net()
    freeze(model, batchnorm="train")
    model.train()
    before = bn_state(model)
    model(batch())
    assert not torch.equal(before["stem.1.running_mean"], model.stem[1].running_mean)
    assert trainable(model) == []


def test_unfreeze_releases_the_batchnorm_hold_even_in_a_copy():
    model = small_net()
    freeze(model)
    twin = copy.deepcopy(model)
    for m in (model, twin):
        unfreeze(m)
        m.train()
        before = bn_state(m)
        m(batch())
        assert not torch.equal(before["body.1.running_var"], m.body[1].running_var)


def test_freeze_accepts_glob_patterns():
    model = small_net()
    frozen = freeze(model, "body.*")
    assert frozen == ["body.0.weight", "body.0.bias", "body.1.weight", "body.1.bias"]
    assert trainable(model) == [
        "stem.0.weight",
        "stem.0.bias",
        "stem.1.weight",
        "stem.1.bias",
        "fc.weight",
        "fc.bias",
    ]
    assert freeze(model, "*.bias") == ["stem.0.bias", "stem.1.bias", "fc.bias"]


def test_freezing_one_parameter_holds_only_its_own_layer():
    model = small_net()
    model.scale = nn.Parameter(torch.ones(1))  # owned by the model itself, like a ViT class token
    assert freeze(model, ["body.1.weight", "scale"]) == ["scale", "body.1.weight"]
    model.train()
    before = bn_state(model)
    model(batch())
    assert torch.equal(before["body.1.running_mean"], model.body[1].running_mean)
    assert not torch.equal(before["stem.1.running_mean"], model.stem[1].running_mean)


def test_freeze_accepts_modules_names_and_lists_of_them():
    model = small_net()
    assert freeze(model, [model.stem, "fc.bias"]) == [
        "stem.0.weight",
        "stem.0.bias",
        "stem.1.weight",
        "stem.1.bias",
        "fc.bias",
    ]
    assert unfreeze(model, model.stem[1]) == ["stem.1.weight", "stem.1.bias"]


def test_unknown_name_raises_and_suggests_close_names():
    with pytest.raises(ValueError, match=r"'bdy'.*did you mean 'body'"):
        freeze(small_net(), "bdy")
    with pytest.raises(ValueError, match=r"'zzz'.*'stem', 'body', 'fc'"):
        freeze(small_net(), "zzz")


def test_module_outside_the_model_raises():
    with pytest.raises(ValueError, match="not a submodule"):
        freeze(small_net(), nn.Linear(2, 2))


def test_batchnorm_policy_accepts_names_and_rejects_others():
    assert BatchNormPolicy.parse("TRAIN") is BatchNormPolicy.TRAIN
    assert BatchNormPolicy.parse(BatchNormPolicy.EVAL) is BatchNormPolicy.EVAL
    with pytest.raises(ValueError, match="'frozen'.*'eval', 'train'"):
        freeze(small_net(), batchnorm="frozen")


def test_top_level_blocks_are_the_children_with_parameters():
    assert [name for name, _ in top_level_blocks(small_net())] == ["stem", "body", "fc"]


def test_freeze_to_freezes_the_first_k_blocks_and_unfreezes_the_rest():
    model = small_net()
    freeze(model)
    assert freeze_to(model, 2) == [name for name, _ in model.named_parameters()][:8]
    assert trainable(model) == ["fc.weight", "fc.bias"]
    assert freeze_to(model, 0) == []
    assert len(trainable(model)) == 10
    with pytest.raises(ValueError, match=r"k=4 .*0 <= k <= 3"):
        freeze_to(model, 4)


def test_parameter_summary_counts_each_block_and_the_total():
    model = small_net()
    freeze(model, "stem")
    summary = parameter_summary(model)
    assert [row.name for row in summary.rows] == ["stem", "body", "fc"]
    stem = summary.rows[0]
    assert stem.parameters == stem.frozen == sum(p.numel() for p in model.stem.parameters())
    assert stem.trainable == 0
    total = summary.total
    assert total.parameters == sum(p.numel() for p in model.parameters())
    assert total.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    lines = str(summary).splitlines()
    assert lines[0].split() == ["name", "parameters", "trainable", "frozen"]
    assert len({len(line) for line in lines}) == 1, "columns are aligned"
    assert lines[-1].split()[0] == "total"
    assert summary._repr_html_().startswith("<table>") and "<td" in summary._repr_html_()


@pytest.mark.parametrize(
    ("k", "message"), [(2.5, r"k must be a non-negative integer, got 2.5 \(float\)"), (-1, "-1")]
)
def test_freeze_to_refuses_a_k_that_is_not_a_count(k, message):
    with pytest.raises(ValueError, match=message):
        freeze_to(small_net(), k)


def test_freeze_to_accepts_integral_values_of_other_libraries():
    model = small_net()
    assert (
        freeze_to(model, np.int64(1))
        == freeze_to(model, torch.tensor(1))
        == [
            "stem.0.weight",
            "stem.0.bias",
            "stem.1.weight",
            "stem.1.bias",
        ]
    )


def stochastic_depth(library: str) -> nn.Module:
    """A stochastic-depth layer of torchvision, timm or Hugging Face (recognised by class name)."""
    if library == "torchvision":
        from torchvision.ops import StochasticDepth

        return StochasticDepth(0.5, "row")
    if library == "timm":
        from timm.layers import DropPath

        return DropPath(0.5)
    from transformers.models.beit.modeling_beit import BeitDropPath

    return BeitDropPath(0.5)


@pytest.mark.parametrize("library", ["torchvision", "timm", "transformers"])
def test_frozen_stochastic_depth_of_any_library_stays_off_in_train_mode(library):
    layer = stochastic_depth(library)
    model = nn.Sequential(nn.Linear(6, 6), layer, nn.Linear(6, 2))
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(0))
    model.train()
    assert not torch.equal(model[1](x), x), "stochastic depth drops rows in train mode"
    freeze(model, "1")
    model.train()
    assert torch.equal(model[1](x), x)
    unfreeze(model, "1")
    assert not torch.equal(model[1](x), x)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: freeze("resnet18"), r"freeze needs an nn.Module, got 'resnet18'"),
        (lambda: unfreeze(None), r"unfreeze needs an nn.Module, got None"),
        (lambda: freeze_to(nn.Sequential, 1), r"freeze_to needs an nn.Module"),
        (lambda: parameter_summary(3), r"parameter_summary needs an nn.Module, got 3 \(int\)"),
        (lambda: freeze(small_net(), 3), r"cannot freeze 3 \(int\); pass a module, a name"),
    ],
    ids=["freeze-name", "unfreeze-none", "freeze_to-class", "summary-int", "target-int"],
)
def test_bad_arguments_say_what_was_wrong(call, message):
    with pytest.raises(TypeError, match=message):
        call()
