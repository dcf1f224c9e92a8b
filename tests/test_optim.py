"""ftlib.training.optim: groups with a faster head, no decay on biases and norms, no frozen."""

from collections import OrderedDict

import pytest
import torch
import torchvision
from torch import nn

from ftlib.surgery.freezing import freeze
from ftlib.training.optim import HEAD_LR_MULT, param_groups


def tricky_net() -> nn.Sequential:
    """A body block named "head_proj" and a head named "out": names must not decide groups."""
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            stem=nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6)),
            head_proj=nn.Linear(6, 6),
            out=nn.Linear(6, 3),
        )
    )


def ids(params) -> set[int]:
    return {id(p) for p in params}


def test_groups_split_body_and_head_by_identity_and_decay_by_dimension():
    model = tricky_net()
    groups = param_groups(model, model.out, lr=0.01, weight_decay=0.1)
    by_name = {group["name"]: group for group in groups}
    assert list(by_name) == ["body", "body_no_decay", "head", "head_no_decay"]
    assert ids(by_name["head"]["params"]) == {id(model.out.weight)}
    assert ids(by_name["head_no_decay"]["params"]) == {id(model.out.bias)}
    assert ids(by_name["body"]["params"]) == ids([model.stem[0].weight, model.head_proj.weight])
    no_decay = [model.stem[0].bias, model.stem[1].weight, model.stem[1].bias, model.head_proj.bias]
    assert ids(by_name["body_no_decay"]["params"]) == ids(no_decay)
    assert [(g["lr"], g["weight_decay"]) for g in groups] == [
        (0.01, 0.1),
        (0.01, 0.0),
        (0.01 * HEAD_LR_MULT, 0.1),
        (0.01 * HEAD_LR_MULT, 0.0),
    ]


def test_sgd_built_from_the_groups_steps_each_parameter_with_its_own_lr_and_decay():
    model = tricky_net()
    freeze(model, "stem")
    optimizer = torch.optim.SGD(
        param_groups(model, model.out, lr=0.1, head_lr_mult=3.0, weight_decay=0.5), lr=1.0
    )
    model(torch.randn(8, 4)).square().mean().backward()
    before = {name: (p.detach().clone(), p.grad) for name, p in model.named_parameters()}
    optimizer.step()
    expected = {
        "head_proj.weight": (0.1, 0.5),
        "head_proj.bias": (0.1, 0.0),
        "out.weight": (0.3, 0.5),
        "out.bias": (0.3, 0.0),
    }
    for name, p in model.named_parameters():
        value, grad = before[name]
        if name.startswith("stem."):
            assert torch.equal(p, value), f"frozen {name} moved"
            continue
        lr, decay = expected[name]
        assert torch.allclose(p, value - lr * (grad + decay * value)), name


def test_frozen_parameters_are_left_out_and_empty_groups_dropped():
    model = tricky_net()
    freeze(model, ["stem", "head_proj"])
    groups = param_groups(model, model.out, lr=1e-3)
    assert [group["name"] for group in groups] == ["head", "head_no_decay"]


def test_several_head_modules_share_the_head_groups():
    model = tricky_net()
    groups = param_groups(model, [model.out, model.head_proj], lr=1e-3)
    head = [p for group in groups if group["name"].startswith("head") for p in group["params"]]
    assert ids(head) == ids([*model.out.parameters(), *model.head_proj.parameters()])


def test_head_outside_the_model_raises():
    with pytest.raises(ValueError, match="not a submodule"):
        param_groups(tricky_net(), nn.Linear(6, 3), lr=1e-3)


def test_fully_frozen_model_raises():
    model = tricky_net()
    freeze(model)
    with pytest.raises(ValueError, match="frozen.*unfreeze"):
        param_groups(model, model.out, lr=1e-3)


def test_normalisation_parameters_of_any_shape_get_no_weight_decay():
    model = nn.Sequential(nn.Flatten(0), nn.Unflatten(0, (4, 5)), nn.LayerNorm([4, 5]))
    model.append(nn.Flatten(0)).append(nn.Linear(20, 3))
    groups = {g["name"]: ids(g["params"]) for g in param_groups(model, model[4], lr=0.1)}
    assert model[2].weight.ndim == 2
    assert ids([model[2].weight, model[2].bias]) <= groups["body_no_decay"]
    assert "body" not in groups


def test_without_a_head_argument_the_classifier_and_auxiliary_heads_learn_fastest():
    with torch.device("meta"):
        model = torchvision.models.googlenet(weights=None, init_weights=False)
    groups = {g["name"]: ids(g["params"]) for g in param_groups(model, lr=0.01)}
    heads = [model.fc, model.aux1.fc2, model.aux2.fc2]
    assert groups["head"] == ids(head.weight for head in heads)
    assert groups["head_no_decay"] == ids(head.bias for head in heads)
