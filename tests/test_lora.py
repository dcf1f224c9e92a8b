"""ftlib.surgery.lora: LoRA adapters that start as the identity, train r (in + out) numbers a
layer, merge into the same outputs, and travel without the model but with its new head."""

import pytest
import torch
import torchvision
from torch import nn

import ftlib
from ftlib.surgery.lora import LoRAConv2d, LoRALinear, add_lora, load_lora, merge_lora, save_lora
from ftlib.training.checkpoint import ArchitectureMismatchError, HeadMismatchError


class ConvNet(nn.Module):
    """A conv body (a strided, dilated conv, batch norm, a 1x1 conv), a hidden Linear, a head."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 6, 3, stride=2, padding=2, dilation=2),
            nn.BatchNorm2d(6),
            nn.ReLU(),
            nn.Conv2d(6, 8, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.hidden = nn.Linear(8, 7)
        self.fc = nn.Linear(7, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.hidden(self.body(x))))


def pretrained(num_classes: int = 3, seed: int = 0) -> ConvNet:
    """A net with seeded weights and batch-norm statistics that are not the initial ones."""
    torch.manual_seed(seed)
    net = ConvNet(num_classes)
    net(torch.randn(16, 3, 9, 9) * 2 + 1)  # a train-mode pass moves the running statistics
    return net.eval()


def images(n: int = 5, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, 9, 9, generator=torch.Generator().manual_seed(seed))


def randomise_adapters(model: nn.Module, seed: int = 2) -> None:
    """Give every B a random value, as training would, so the adapters change the outputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (LoRALinear, LoRAConv2d)):
                module.lora_B.copy_(torch.randn(module.lora_B.shape, generator=generator))


def trainable(model: nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


def test_an_adapted_model_computes_exactly_what_the_pretrained_one_did():
    model = pretrained()
    expected = outputs(model, images())
    add_lora(model, ["body.*", "hidden"], rank=2, alpha=16)
    assert torch.equal(outputs(model, images()), expected)


@pytest.mark.parametrize(
    ("layer", "rank", "expected"),
    [
        (nn.Linear(20, 12), 3, 3 * (20 + 12)),
        (nn.Linear(7, 30, bias=False), 1, 1 * (7 + 30)),
        (nn.Conv2d(4, 10, 1), 2, 2 * (4 + 10)),  # a 1x1 conv is a Linear at every pixel
        (nn.Conv2d(4, 10, (3, 5)), 2, 2 * (4 * 3 * 5 + 10)),
    ],
)
def test_an_adapter_trains_rank_times_in_plus_out_numbers(layer, rank, expected):
    model = nn.Sequential(layer)
    add_lora(model, "0", rank=rank, trainable=[])
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected
    assert trainable(model) == ["0.lora_A", "0.lora_B"]


def test_the_adapted_layer_computes_w_plus_alpha_over_rank_b_a():
    torch.manual_seed(0)
    base = nn.Linear(6, 4)
    model = nn.Sequential(base)
    add_lora(model, "0", rank=2, alpha=5.0, trainable=[])
    adapter = model[0]
    randomise_adapters(model)
    x = torch.randn(3, 6)
    weight = base.weight + (5.0 / 2) * adapter.lora_B @ adapter.lora_A
    torch.testing.assert_close(model(x), x @ weight.T + base.bias)
    assert adapter.base is base, "the adapter wraps the layer itself, not a copy"


def test_add_lora_freezes_all_but_the_adapters_and_the_head_and_holds_batch_norm():
    model = pretrained()
    names = add_lora(model, "body.*", rank=2)
    assert names == ["body.0", "body.3"]
    assert trainable(model) == [
        "body.0.lora_A",
        "body.0.lora_B",
        "body.3.lora_A",
        "body.3.lora_B",
        "fc.weight",
        "fc.bias",
    ]
    statistics = model.body[1].running_mean.clone()
    model.train()
    model(images(16))
    assert torch.equal(model.body[1].running_mean, statistics), "frozen batch norm must not move"


def test_training_moves_only_the_adapters_and_the_head():
    model = pretrained()
    frozen = {
        name: t.clone() for name, t in model.state_dict().items() if not name.startswith("fc")
    }
    add_lora(model, ["body.*", "hidden"], rank=2)
    data = [(images(8, seed), torch.randint(0, 3, (8,))) for seed in range(4)]
    ftlib.fit(model, data, epochs=3, lr=1e-2, device="cpu", progress=False, topk=(1,))
    state = model.state_dict()
    for name, before in frozen.items():
        wrapped = name.replace("body.0.", "body.0.base.").replace("body.3.", "body.3.base.")
        wrapped = wrapped.replace("hidden.", "hidden.base.")
        assert torch.equal(state[wrapped], before), f"{name} moved"
    assert model.body[0].lora_B.abs().sum() > 0, "the adapters should have learned something"


def test_the_default_optimizer_gives_adapters_the_body_rate_and_the_head_ten_times_it():
    model = pretrained()
    add_lora(model, "hidden", rank=2)
    groups = {group["name"]: group for group in ftlib.param_groups(model, lr=1e-3)}
    assert {id(p) for p in groups["body"]["params"]} == {
        id(model.hidden.lora_A),
        id(model.hidden.lora_B),
    }
    assert groups["body"]["lr"] == 1e-3 and groups["head"]["lr"] == pytest.approx(1e-2)


def test_merging_gives_plain_layers_with_the_same_outputs():
    model = pretrained()
    add_lora(model, ["body.*", "hidden"], rank=3, alpha=6)
    randomise_adapters(model)
    expected = outputs(model, images())
    assert merge_lora(model) == ["body.0", "body.3", "hidden"]
    assert type(model.body[0]) is nn.Conv2d and type(model.hidden) is nn.Linear
    torch.testing.assert_close(outputs(model, images()), expected, rtol=1e-5, atol=1e-5)
    assert sorted(model.state_dict()) == sorted(pretrained().state_dict()), "original names"
    assert trainable(model) == ["fc.weight", "fc.bias"], "the merged layers stay frozen"
    assert merge_lora(model) == []


def test_an_adapter_file_holds_what_trains_and_restores_the_outputs_in_a_fresh_model(tmp_path):
    model = pretrained()
    ftlib.swap_head(model, 5)
    add_lora(model, ["body.*", "hidden"], rank=2)
    randomise_adapters(model)
    with torch.no_grad():
        model.fc.weight.mul_(3)  # a trained head, not the fresh one
    expected = outputs(model, images())
    path = save_lora(model, tmp_path / "adapter.pt", extra={"classes": list("vwxyz")})
    saved = torch.load(path, weights_only=True)["state_dict"]
    assert sorted(saved) == sorted(
        [f"{layer}.lora_{part}" for layer in ("body.0", "body.3", "hidden") for part in "AB"]
        + ["fc.weight", "fc.bias"]
    )
    assert ftlib.checkpoint_extra(path) == {"classes": list("vwxyz")}

    fresh = pretrained()
    ftlib.swap_head(fresh, 5)
    assert load_lora(fresh, path) == {"classes": list("vwxyz")}
    assert torch.equal(outputs(fresh, images()), expected)
    assert trainable(fresh) == trainable(model), "the loaded model trains what the saved one did"


def test_an_adapter_file_is_a_small_part_of_the_full_checkpoint(tmp_path):
    model = torchvision.models.resnet18(weights=None, num_classes=4)
    add_lora(model, "layer4.*.conv2", rank=4)
    adapter = save_lora(model, tmp_path / "adapter.pt").stat().st_size
    full = ftlib.save_checkpoint(model, tmp_path / "full.pt").stat().st_size
    assert adapter < full / 100


def test_modules_left_trainable_are_saved_with_their_buffers(tmp_path):
    model = pretrained()
    add_lora(model, "hidden", rank=2, trainable=["fc", "body.1"])
    model.train()
    model(images(16))  # the trainable batch norm updates its statistics
    path = save_lora(model, tmp_path / "adapter.pt")
    saved = torch.load(path, weights_only=True)["state_dict"]
    assert {"body.1.running_mean", "body.1.running_var", "body.1.weight"} <= set(saved)
    fresh = pretrained()
    load_lora(fresh, path)
    assert torch.equal(fresh.body[1].running_mean, model.body[1].running_mean)


def test_a_single_trainable_parameter_is_saved_on_its_own(tmp_path):
    model = pretrained()
    add_lora(model, "hidden", rank=2, trainable=["fc.bias"])
    assert trainable(model) == ["hidden.lora_A", "hidden.lora_B", "fc.bias"]
    saved = torch.load(save_lora(model, tmp_path / "a.pt"), weights_only=True)["state_dict"]
    assert "fc.bias" in saved and "fc.weight" not in saved


def test_loading_into_a_model_with_another_head_says_to_swap_it_first_and_changes_nothing(
    tmp_path,
):
    model = pretrained()
    ftlib.swap_head(model, 5)
    add_lora(model, "hidden", rank=2)
    path = save_lora(model, tmp_path / "adapter.pt")
    other = pretrained(num_classes=3)
    before = {name: t.clone() for name, t in other.state_dict().items()}
    with pytest.raises(HeadMismatchError, match=r"fc\.weight .*swap_head\(model, 5\)"):
        load_lora(other, path)
    assert type(other.hidden) is nn.Linear, "no adapter was added"
    assert all(torch.equal(other.state_dict()[name], t) for name, t in before.items())


def test_loading_into_another_architecture_names_the_missing_layer(tmp_path):
    model = pretrained()
    add_lora(model, "hidden", rank=2)
    path = save_lora(model, tmp_path / "adapter.pt")
    with pytest.raises(ArchitectureMismatchError, match="adapts hidden.*ConvNet"):
        load_lora(torchvision.models.resnet18(weights=None, num_classes=3), path)


def test_a_full_checkpoint_is_not_an_adapter_file(tmp_path):
    path = ftlib.save_checkpoint(pretrained(), tmp_path / "full.pt")
    with pytest.raises(ValueError, match="full checkpoint.*load_checkpoint"):
        load_lora(pretrained(), path)


def test_loading_into_a_model_with_other_adapters_is_refused(tmp_path):
    model = pretrained()
    add_lora(model, "hidden", rank=2)
    path = save_lora(model, tmp_path / "adapter.pt")
    other = pretrained()
    add_lora(other, "hidden", rank=4)
    with pytest.raises(ValueError, match="other LoRA adapters"):
        load_lora(other, path)
    same = pretrained()
    add_lora(same, "hidden", rank=2)
    load_lora(same, path)
    assert torch.equal(same.hidden.lora_A, model.hidden.lora_A)


@pytest.mark.parametrize(
    ("targets", "options", "message"),
    [
        ("hiden", {}, r"did you mean 'hidden'"),
        ("body.1", {}, r"body\.1 is a BatchNorm2d; LoRA adapts nn\.Linear and nn\.Conv2d"),
        ("body", {}, r"body is a Sequential.*'body\.\*'"),
        ("fc", {}, r"fc trains fully"),
        ("nothing.*", {}, r"matches no Linear or Conv2d layer.*body\.0, body\.3, hidden"),
        ([], {}, r"targets is empty"),
        ("hidden", {"rank": 0}, r"rank must be a positive integer"),
        ("hidden", {"rank": 2.5}, r"rank must be a positive integer"),
        ("hidden", {"alpha": -1.0}, r"alpha must be a finite number > 0"),
        ("hidden", {"trainable": "head"}, r"no module or parameter of ConvNet is named 'head'"),
    ],
)
def test_bad_targets_and_settings_are_refused_with_the_way_out(targets, options, message):
    model = pretrained()
    with pytest.raises(ValueError, match=message):
        add_lora(model, targets, **options)
    assert type(model.hidden) is nn.Linear and all(p.requires_grad for p in model.parameters())


def test_a_layer_is_adapted_once():
    model = pretrained()
    add_lora(model, "hidden", rank=2)
    with pytest.raises(ValueError, match="hidden already has a LoRA adapter"):
        add_lora(model, "hidden", rank=2)
    assert add_lora(model, "*", rank=2) == ["body.0", "body.3"], "patterns skip adapted layers"


def test_grouped_convolutions_are_refused():
    model = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4))
    with pytest.raises(ValueError, match="groups=4"):
        add_lora(model, "0", trainable=[])


def test_saving_needs_adapters_and_refuses_parameters_training_inside_them(tmp_path):
    with pytest.raises(ValueError, match="no LoRA adapters to save"):
        save_lora(pretrained(), tmp_path / "a.pt")
    model = pretrained()
    add_lora(model, "hidden", rank=2)
    model.hidden.base.bias.requires_grad_(True)
    with pytest.raises(ValueError, match=r"hidden\.base\.bias train inside adapted layers"):
        save_lora(model, tmp_path / "a.pt")


def test_torchvision_resnet_adapts_by_pattern_and_trains_with_fit():
    model = torchvision.models.resnet18(weights=None, num_classes=1000)
    ftlib.swap_head(model, 3)
    names = add_lora(model, "layer4.*.conv*", rank=2)
    assert names == ["layer4.0.conv1", "layer4.0.conv2", "layer4.1.conv1", "layer4.1.conv2"]
    expected = sum(
        2 * (c.in_channels * 9 + c.out_channels)
        for c in map(model.get_submodule, [f"{name}.base" for name in names])
    )
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected + 512 * 3 + 3
    data = [(torch.randn(2, 3, 32, 32), torch.tensor([0, 2]))]
    history = ftlib.fit(model, data, epochs=1, device="cpu", progress=False, topk=(1,))
    assert len(history) == 1
