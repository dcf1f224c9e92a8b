"""ftlib.training.optim: groups with a faster head, no decay on biases and norms, no frozen."""

from collections import OrderedDict

import pytest
import torch
import torchvision
from torch import nn

from ftlib.surgery.freezing import freeze
from ftlib.training.optim import HEAD_LR_MULT, body_layers, param_groups


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


def test_heads_may_be_named_instead_of_passed():
    model = tricky_net()
    by_name = param_groups(model, "out", lr=0.1, weight_decay=0.1)
    by_module = param_groups(model, model.out, lr=0.1, weight_decay=0.1)
    assert [(g["name"], ids(g["params"])) for g in by_name] == [
        (g["name"], ids(g["params"])) for g in by_module
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -1e-3}, r"lr must be a finite number >= 0, got -0.001"),
        ({"lr": float("nan")}, r"lr must be a finite number >= 0, got nan"),
        ({"lr": "1e-3"}, r"lr must be a number, got '1e-3' \(str\)"),
        ({"lr": 1e-3, "head_lr_mult": 0}, r"head_lr_mult must be a finite number > 0, got 0"),
        ({"lr": 1e-3, "weight_decay": -0.1}, r"weight_decay must be a finite number >= 0"),
        ({"lr": 1e-3, "layer_decay": 1.5}, r"layer_decay must be a finite number > 0 and <= 1"),
        ({"lr": 1e-3, "layer_decay": 0}, r"layer_decay must be a finite number > 0 and <= 1"),
    ],
)
def test_bad_rates_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        param_groups(tricky_net(), **kwargs)


def test_a_head_that_is_neither_a_module_of_the_model_nor_a_name_is_refused():
    with pytest.raises(ValueError, match="int is not a submodule.*or its name"):
        param_groups(tricky_net(), [3], lr=1e-3)


def test_tokens_and_position_embeddings_get_no_weight_decay_in_torchvision_vit():
    model = torchvision.models.vit_b_16(image_size=32)
    groups = {g["name"]: ids(g["params"]) for g in param_groups(model, lr=0.1, weight_decay=0.1)}
    assert ids([model.class_token, model.encoder.pos_embedding]) <= groups["body_no_decay"]
    assert id(model.conv_proj.weight) in groups["body"]


class Wrapper(nn.Module):
    """A project's own model around a timm backbone."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        return self.backbone(x)


@pytest.mark.parametrize("wrapped", [False, True], ids=["timm-model", "inside-a-wrapper"])
def test_a_models_own_no_weight_decay_is_followed_as_timm_does(wrapped):
    timm = pytest.importorskip("timm")
    backbone = timm.create_model("levit_128s", pretrained=False)
    model, prefix = (Wrapper(backbone), "backbone.") if wrapped else (backbone, "")
    heads = [prefix + name for name in ("head.linear", "head_dist.linear")]
    groups = param_groups(model, heads, lr=0.1, weight_decay=0.1)
    groups = {g["name"]: ids(g["params"]) for g in groups}
    parameters = dict(model.named_parameters())
    biases = [parameters[prefix + name] for name in backbone.no_weight_decay()]
    assert biases and all(p.ndim == 2 for p in biases), "2-d: only the model's list spares them"
    assert ids(biases) <= groups["body_no_decay"]


def test_layer_decay_on_a_timm_model_gives_timms_own_rates_and_decays():
    timm = pytest.importorskip("timm")
    from timm.optim import param_groups_layer_decay

    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=3)
    ours = param_groups(model, lr=1.0, head_lr_mult=1.0, weight_decay=0.05, layer_decay=0.65)
    theirs = param_groups_layer_decay(
        model, weight_decay=0.05, no_weight_decay_list=model.no_weight_decay(), layer_decay=0.65
    )

    def per_parameter(groups, rate):
        return {id(p): (round(rate(g), 12), g["weight_decay"]) for g in groups for p in g["params"]}

    expected = per_parameter(theirs, lambda group: group["lr_scale"])
    assert per_parameter(ours, lambda group: group["lr"]) == expected
    # The stem, 3 blocks (timm puts the final norm with the last) and the head.
    assert len({rate for rate, _ in expected.values()}) == 5


def test_the_tree_rule_layers_torchvision_resnet_as_timm_groups_its_resnet():
    timm = pytest.importorskip("timm")
    from timm.models import group_parameters

    theirs_model = timm.create_model("resnet18", pretrained=False)
    matched = group_parameters(theirs_model, theirs_model.group_matcher(), reverse=True)
    theirs: dict[int, list[str]] = {}
    for name, layer in matched.items():
        if not name.startswith("fc."):
            theirs.setdefault(layer, []).append(name)
    ours = body_layers(torchvision.models.resnet18())
    assert [sorted(names) for names in ours] == [sorted(theirs[k]) for k in sorted(theirs)]


def test_a_vits_stem_is_its_tokens_patch_and_position_embeddings_then_one_layer_per_block():
    layers = body_layers(torchvision.models.vit_b_16(image_size=32))
    assert layers[0] == [
        "class_token",
        "conv_proj.weight",
        "conv_proj.bias",
        "encoder.pos_embedding",
    ]
    blocks = [{name.split(".")[2] for name in layer} for layer in layers[1:-1]]
    assert blocks == [{f"encoder_layer_{i}"} for i in range(12)]
    assert layers[-1] == ["encoder.ln.weight", "encoder.ln.bias"]


def test_parallel_branches_are_one_layer_as_in_googlenet():
    with torch.device("meta"):
        model = torchvision.models.googlenet(weights=None, init_weights=False)
    tops = [sorted({name.split(".")[0] for name in layer}) for layer in body_layers(model)]
    assert tops[:5] == [["conv1"], ["conv2"], ["conv3"], ["inception3a"], ["inception3b"]]


def test_layer_decay_multiplies_the_rate_once_per_layer_below_the_head():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2))
    freeze(model, "0")
    groups = param_groups(model, lr=1.0, head_lr_mult=2.0, layer_decay=0.5)
    rates = {g["name"]: g["lr"] for g in groups}
    assert rates == {
        "layer1": 0.25,
        "layer1_no_decay": 0.25,
        "layer2": 0.5,
        "layer2_no_decay": 0.5,
        "head": 2.0,
        "head_no_decay": 2.0,
    }, "layer 0 is frozen and left out; the others keep their depth"
    no_decay = param_groups(model, lr=1.0, layer_decay=1.0)
    assert {g["lr"] for g in no_decay if not g["name"].startswith("head")} == {1.0}
