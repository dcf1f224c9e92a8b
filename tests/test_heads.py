"""ftlib.surgery.heads: find and replace the classifier of every torchvision model and others."""

import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import regnet

from ftlib.surgery.heads import (
    AmbiguousHeadError,
    HeadNotFoundError,
    all_heads,
    find_aux_heads,
    find_head,
    find_heads,
    swap_head,
)
from ftlib.surgery.states import prepare
from ftlib.training.optim import param_groups

ALL_MODELS = torchvision.models.list_models(module=torchvision.models)

AUX_HEADS = {"googlenet": ["aux1.fc2", "aux2.fc2"], "inception_v3": ["AuxLogits.fc"]}

# One model per family, with the smallest input its forward accepts (ViT via a smaller image_size).
FAMILIES = [
    ("resnet18", 32, {}),
    ("resnext50_32x4d", 32, {}),
    ("vgg11", 32, {}),
    ("alexnet", 63, {}),
    ("squeezenet1_0", 64, {}),
    ("densenet121", 32, {}),
    ("mobilenet_v2", 32, {}),
    ("mobilenet_v3_small", 32, {}),
    ("efficientnet_b0", 32, {}),
    ("convnext_tiny", 32, {}),
    ("regnet_x_400mf", 32, {}),
    ("shufflenet_v2_x0_5", 32, {}),
    ("mnasnet0_5", 32, {}),
    ("googlenet", 32, {}),
    ("inception_v3", 75, {}),
    ("vit_b_16", 32, {"image_size": 32}),
    ("swin_t", 32, {}),
    ("maxvit_t", 224, {}),
]


@pytest.fixture
def regnet_on_meta(monkeypatch):
    """RegNet computes its block widths with tensors; keep those on the CPU under meta."""
    compute = regnet.BlockParams.from_init_params.__func__

    def on_cpu(cls, *args, **kwargs):
        with torch.device("cpu"):
            return compute(cls, *args, **kwargs)

    monkeypatch.setattr(regnet.BlockParams, "from_init_params", classmethod(on_cpu))


def build(name: str, **kwargs) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # GoogLeNet/Inception init_weights notice
        return torchvision.models.get_model(name, weights=None, **kwargs)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_swap_head_on_every_torchvision_classifier(name, regnet_on_meta):
    with torch.device("meta"):
        model = build(name)
    old = model.get_submodule(find_head(model))
    new = swap_head(model, 7)
    assert model.get_submodule(find_head(model)) is new
    assert type(new) is type(old) and new.weight.is_meta
    assert new.weight.shape[0] == 7 and new.weight.shape[1:] == old.weight.shape[1:]
    assert (new.bias is None) == (old.bias is None)
    assert find_aux_heads(model) == AUX_HEADS.get(name, [])
    for aux in find_aux_heads(model):
        assert model.get_submodule(aux).out_features == 7
    # The rest of the surgery, on the same model: state 2 trains exactly the heads, and layer
    # decay finds the body's depth.
    prepare(model, "head")
    head_ids = {id(p) for head in all_heads(model) for p in head.parameters()}
    assert {id(p) for p in model.parameters() if p.requires_grad} == head_ids
    prepare(model, "full")
    groups = param_groups(model, lr=1.0, head_lr_mult=1.0, layer_decay=0.5)
    assert min(group["lr"] for group in groups) <= 0.5**4, "at least four body layers"


def test_torchvision_heads_are_where_their_forward_reads_them():
    assert len(ALL_MODELS) == 80
    with torch.device("meta"):
        names = {name: find_head(build(name)) for name in ["resnet18", "vgg11", "vit_b_16"]}
    assert names == {"resnet18": "fc", "vgg11": "classifier.6", "vit_b_16": "heads.head"}


@pytest.mark.parametrize(("name", "size", "kwargs"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_swapped_head_is_the_one_the_forward_pass_uses(name, size, kwargs):
    torch.manual_seed(0)
    model = build(name, **kwargs)
    swap_head(model, 3)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, size, size)).shape == (1, 3)


@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_auxiliary_heads_predict_the_new_classes_in_train_mode(name):
    with torch.device("meta"):  # shapes flow through a meta forward pass without any compute
        model = build(name)
        swap_head(model, 3)
        outputs = model.train()(torch.empty(2, 3, 299, 299))
    assert [tuple(out.shape) for out in outputs] == [(2, 3)] * len(outputs)
    assert len(outputs) == 1 + len(AUX_HEADS[name])


def test_all_heads_are_the_main_head_then_the_auxiliary_ones():
    with torch.device("meta"):
        model = build("googlenet")
    assert [id(m) for m in all_heads(model)] == [
        id(model.fc),
        id(model.aux1.fc2),
        id(model.aux2.fc2),
    ]


def test_a_body_block_named_aux_is_not_an_auxiliary_head():
    model = nn.Sequential(
        OrderedDict(
            aux_block=nn.Sequential(nn.Linear(8, 8), nn.ReLU()),
            fc=nn.Linear(8, 2),
        )
    )
    assert find_head(model) == "fc" and find_aux_heads(model) == []
    swap_head(model, 3)
    assert model.aux_block[0].out_features == 8
    assert model(torch.randn(4, 8)).shape == (4, 3)


def test_plain_sequential_ending_in_linear():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4))
    assert find_head(model) == "3"
    new = swap_head(model, 2)
    assert model[3] is new and (new.in_features, new.out_features) == (8, 2)
    assert model(torch.randn(5, 3, 2, 2)).shape == (5, 2)


def test_custom_model_head_keeps_bias_dtype_and_in_features():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 6, 3), nn.AdaptiveAvgPool2d(1))
            self.out = nn.Linear(6, 10, bias=False)

        def forward(self, x):
            return self.out(self.features(x).flatten(1))

    model = Net().double()
    new = swap_head(model, 4)
    assert model.out is new and new.bias is None and new.weight.dtype == torch.float64
    assert model(torch.randn(2, 3, 5, 5, dtype=torch.float64)).shape == (2, 4)


def test_one_by_one_convolution_head_like_squeezenet():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.Sequential(nn.Dropout(), nn.Conv2d(8, 10, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1)),
        nn.Flatten(),
    )
    assert find_head(model) == "1.1"
    new = swap_head(model, 5)
    assert isinstance(new, nn.Conv2d) and new.kernel_size == (1, 1) and new.in_channels == 8
    assert model(torch.randn(2, 3, 6, 6)).shape == (2, 5)


def test_named_head_overrides_the_guess():
    model = nn.Sequential(
        OrderedDict(body=nn.Linear(4, 6), classifier=nn.Linear(6, 3), projection=nn.Linear(3, 3))
    )
    assert find_head(model) == "projection"
    new = swap_head(model, 9, head="classifier")
    assert model.classifier is new and model.projection.out_features == 3


def test_model_without_a_head_raises_listing_candidates():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
    with pytest.raises(HeadNotFoundError, match=r"candidates: 0 \(Conv2d\), 2 \(Conv2d\).*head="):
        swap_head(model, 3)


def test_unknown_head_name_raises_head_not_found():
    model = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(HeadNotFoundError, match=r"head='fc' is no module.*head='0'"):
        swap_head(model, 3, head="fc")
    assert issubclass(HeadNotFoundError, ValueError)


@pytest.mark.parametrize("num_classes", [0, -1, 2.0, True])
def test_num_classes_must_be_a_positive_integer(num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        swap_head(nn.Sequential(nn.Linear(4, 3)), num_classes)


class HeadFirst(nn.Module):
    """The head is registered before the body, so the last Linear is a body layer."""

    def __init__(self):
        super().__init__()
        self.classifier = nn.Linear(16, 10)
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU())

    def forward(self, x):
        return self.classifier(self.body(x))


class ClassifierBeside(nn.Module):
    """A classifier, then a second output on the same features (a regressor, a projector).

    ``returns_both``: forward returns both outputs; otherwise the second is used elsewhere (a
    SimCLR-style projector), as the forward pass cannot show.
    """

    def __init__(self, name, second, *, returns_both=True):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.classifier = nn.Linear(16, 10)
        self.add_module(name, second)
        self.second, self.returns_both = name, returns_both

    def forward(self, x):
        features = self.body(x)
        scores = self.classifier(features)
        return (scores, self.get_submodule(self.second)(features)) if self.returns_both else scores


def classifier_and_regressor():
    return ClassifierBeside("regressor", nn.Linear(16, 1))


def mlp(*sizes):
    layers = [nn.Linear(a, b) for a, b in zip(sizes, sizes[1:], strict=False)]
    return nn.Sequential(*[x for layer in layers for x in (layer, nn.ReLU())][:-1])


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (HeadFirst(), "reads what it computes"),
        (classifier_and_regressor(), "two outputs"),
        (
            ClassifierBeside("regressor", mlp(16, 8, 1)),
            "same features as regressor.2's branch.*two outputs",
        ),
        (
            ClassifierBeside("projector", mlp(16, 12, 6), returns_both=False),
            "same features as projector.2's branch.*two outputs",
        ),
    ],
    ids=["head-registered-first", "classifier-and-regressor", "mlp-regressor", "projector"],
)
def test_an_ambiguous_guess_is_refused_with_the_names_to_choose_from(model, reason):
    with pytest.raises(AmbiguousHeadError, match=rf"{reason}.*head='classifier'") as caught:
        swap_head(model, 3)
    assert isinstance(caught.value, HeadNotFoundError)
    assert model.classifier.out_features == 10, "nothing changed"
    new = swap_head(model, 3, head="classifier")
    assert model.classifier is new and new.in_features == 16
    out = model(torch.randn(2, 8))
    assert (out[0] if isinstance(out, tuple) else out).shape == (2, 3)


def test_layers_in_a_sequential_run_in_order_so_their_guess_is_not_ambiguous():
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 4))  # 4 features, 4 classes
    assert find_head(model) == "2"


def test_two_named_heads_are_both_swapped():
    model = classifier_and_regressor()
    swap_head(model, 5, head=["classifier", "regressor"])
    assert (model.classifier.out_features, model.regressor.out_features) == (5, 5)
    assert find_heads(model, head="regressor") == ["regressor"]


@pytest.mark.parametrize("head", [5, [], ["fc", 3]])
def test_a_head_that_is_not_a_name_is_refused(head):
    with pytest.raises(HeadNotFoundError, match=r"head must be a layer's name.*candidates"):
        swap_head(nn.Sequential(nn.Linear(4, 3)), 2, head=head)


def test_a_lazy_head_stays_lazy_and_learns_its_inputs_on_the_first_pass():
    model = nn.Sequential(nn.Flatten(), nn.LazyLinear(10))
    new = swap_head(model, 4)
    assert isinstance(new, nn.LazyLinear) and new.has_uninitialized_params()
    assert model(torch.randn(2, 3, 5)).shape == (2, 4)
    assert model[1].in_features == 15


def test_a_lazy_one_by_one_convolution_head_stays_lazy():
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.LazyConv2d(10, 1), nn.AdaptiveAvgPool2d(1))
    new = swap_head(model, 4)
    assert isinstance(new, nn.LazyConv2d) and new.kernel_size == (1, 1)
    assert model(torch.randn(2, 3, 7, 7)).shape == (2, 4, 1, 1)


@pytest.mark.parametrize(
    "num_classes", [np.int64(7), np.int32(7), torch.tensor(7)], ids=["int64", "int32", "tensor"]
)
def test_integral_num_classes_of_any_library_are_accepted(num_classes):
    new = swap_head(nn.Sequential(nn.Linear(4, 3)), num_classes)
    assert new.out_features == 7 and type(new.out_features) is int


@pytest.mark.parametrize(
    ("num_classes", "message"),
    [
        ("7", r"'7' \(str\); pass a whole number such as 7"),
        (7.5, r"7.5 \(float\); pass a whole number such as 8"),
        (torch.tensor([7, 8]), r"\(Tensor\)"),
        (torch.tensor(7.0), r"\(Tensor\); pass a whole number such as 7"),
    ],
)
def test_non_integral_num_classes_say_what_to_pass(num_classes, message):
    with pytest.raises(
        ValueError, match=rf"num_classes must be a positive integer, got .*{message}"
    ):
        swap_head(nn.Sequential(nn.Linear(4, 3)), num_classes)


@pytest.mark.parametrize(
    ("model", "hint"),
    [
        ("resnet18", r"torchvision.models.get_model\('resnet18'\)"),
        (torchvision.models.resnet18, r"swap_head\(resnet18\(\), \.\.\.\)"),
        (nn.Linear, r"swap_head\(Linear\(\), \.\.\.\)"),
        (None, r"pass the model \(an nn.Module\)"),
    ],
    ids=["name", "builder", "class", "none"],
)
def test_something_other_than_a_model_instance_is_refused_with_what_to_do(model, hint):
    with pytest.raises(TypeError, match=rf"needs an nn.Module, got .*{hint}"):
        swap_head(model, 3)


def test_a_grouped_convolution_cannot_be_a_head():
    model = nn.Sequential(nn.Conv2d(4, 4, 1, groups=2))
    with pytest.raises(HeadNotFoundError, match="head="):
        swap_head(model, 3, head="0")


class HeadBeforeAConvBody(nn.Module):
    """The head first, and a body whose 1x1 convolution is followed by more layers."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32, 10)
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 1), nn.ReLU(), nn.Conv2d(16, 32, 3)
        )

    def forward(self, x):
        return self.fc(self.body(x).mean((2, 3)))


class SideClassifier(nn.Module):
    """A main classifier and a deep-supervision one on earlier features, not named "aux"."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
        self.rest = nn.Sequential(nn.Conv2d(8, 16, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(16, 10)
        self.side = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

    def forward(self, x):
        features = self.stem(x)
        return self.fc(self.rest(features)), self.side(features)


class ClassSizedAfterTheHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(16, 10), nn.BatchNorm1d(10))

    def forward(self, x):
        return self.head(self.body(x))


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (HeadBeforeAConvBody(), r"body.2 .* but body.4 \(Conv2d\) runs after it.*head='fc'"),
        (SideClassifier(), r"fc \(Linear 16->10\) has as many outputs \(10\).*head='fc'"),
        (ClassSizedAfterTheHead(), r"head.1 \(BatchNorm1d\) runs after it with one entry per"),
    ],
    ids=["head-before-a-conv-body", "side-classifier", "class-sized-layer-after-the-head"],
)
def test_a_guess_that_could_swap_the_wrong_layer_is_refused_and_nothing_changes(model, message):
    before = {name: t.clone() for name, t in model.state_dict().items()}
    with pytest.raises(AmbiguousHeadError, match=message):
        prepare(model, "head", num_classes=3)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[n], after[n]) for n in before)
    assert all(p.requires_grad for p in model.parameters())
