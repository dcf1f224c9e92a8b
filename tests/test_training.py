"""fit / evaluate / predict: they learn, record what they promise, and refuse bad inputs."""

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ftlib.seeding import seed_everything
from ftlib.surgery.heads import all_heads
from ftlib.surgery.states import prepare
from ftlib.training import History, evaluate, fit, predict
from ftlib.training.loop import default_optimizer
from ftlib.training.optim import param_groups
from ftlib.training.steps import NonFiniteLossError

KEYS = ["epoch", "train_loss", "train_top1", "train_top5"]
VAL_KEYS = ["val_loss", "val_top1", "val_top5"]


def blobs(n=120, seed=0):
    """Three well-separated Gaussian blobs in 2-D: a problem any small model can learn."""
    generator = torch.Generator().manual_seed(seed)
    targets = torch.arange(n) % 3
    centres = torch.tensor([[3.0, 0.0], [-3.0, 3.0], [-3.0, -3.0]])
    return TensorDataset(centres[targets] + torch.randn(n, 2, generator=generator), targets)


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))


def loader(dataset, *, seed=0, batch_size=32):
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=seed_everything(seed))


def test_fit_reduces_the_loss_on_a_learnable_problem():
    model = mlp()
    history = fit(
        model, loader(blobs()), epochs=6, lr=3e-2, val_loader=loader(blobs(seed=1)), progress=False
    )
    losses = history.column("train_loss")
    assert losses[-1] < 0.3 * losses[0]
    assert history.last["val_top1"] > 0.95


def test_history_has_one_record_per_epoch_with_the_documented_keys():
    history = fit(
        mlp(), loader(blobs()), epochs=3, val_loader=loader(blobs(seed=1)), progress=False
    )
    assert len(history) == 3
    assert history.column("epoch") == [1, 2, 3]
    for record in history.epochs:
        assert list(record) == [*KEYS, *VAL_KEYS, "seconds"]
        assert all(0.0 <= record[key] <= 1.0 for key in record if "top" in key)
        assert record["seconds"] > 0


def test_history_without_val_loader_has_no_val_keys_and_says_how_to_get_them():
    history = fit(mlp(), loader(blobs()), epochs=1, progress=False)
    assert list(history.last) == [*KEYS, "seconds"]
    with pytest.raises(KeyError, match="val_loader"):
        history.column("val_top1")


def test_topk_argument_names_the_accuracy_keys():
    history = fit(mlp(), loader(blobs()), epochs=1, topk=(1, 2), progress=False)
    assert list(history.last) == ["epoch", "train_loss", "train_top1", "train_top2", "seconds"]


def test_history_best_picks_lowest_loss_and_highest_accuracy_and_round_trips():
    history = History(
        [
            {"epoch": 1, "val_loss": 0.9, "val_top1": 0.5},
            {"epoch": 2, "val_loss": 0.4, "val_top1": 0.7},
            {"epoch": 3, "val_loss": 0.6, "val_top1": 0.8},
        ]
    )
    assert history.best("val_loss")["epoch"] == 2
    assert history.best("val_top1")["epoch"] == 3
    assert History(**history.to_dict()) == history


def test_clip_grad_norm_bounds_the_total_gradient_norm_at_each_step():
    def huge_loss(logits, targets):
        return 1e6 * nn.functional.cross_entropy(logits, targets)

    def norms_seen(clip):
        model = mlp()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        seen = []

        def record(optimizer, args, kwargs):
            grads = [p.grad for p in model.parameters()]
            seen.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())

        optimizer.register_step_pre_hook(record)
        fit(
            model,
            loader(blobs()),
            epochs=1,
            optimizer=optimizer,
            loss_fn=huge_loss,
            clip_grad_norm=clip,
            progress=False,
        )
        return seen

    assert min(norms_seen(None)) > 1e3
    assert max(norms_seen(1.0)) == pytest.approx(1.0, rel=1e-4)


def test_fit_optimises_only_trainable_parameters():
    model = mlp()
    model[0].requires_grad_(False)
    frozen, trained = model[0].weight.clone(), model[2].weight.clone()
    fit(model, loader(blobs()), epochs=1, progress=False)
    assert torch.equal(model[0].weight, frozen)
    assert not torch.equal(model[2].weight, trained)


def test_scheduler_is_stepped_once_per_epoch():
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    fit(model, loader(blobs()), epochs=3, optimizer=optimizer, scheduler=scheduler, progress=False)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)


def test_evaluate_matches_cross_entropy_over_the_whole_dataset():
    model, dataset = mlp(), blobs()
    result = evaluate(model, DataLoader(dataset, batch_size=50), topk=(1,), progress=False)
    inputs, targets = dataset.tensors
    with torch.no_grad():
        logits = model(inputs)
    assert result["loss"] == pytest.approx(nn.functional.cross_entropy(logits, targets).item())
    assert result["top1"] == pytest.approx((logits.argmax(1) == targets).float().mean().item())
    assert list(result) == ["loss", "top1"]


def test_evaluate_and_predict_use_eval_mode_and_restore_each_module_mode():
    model = nn.Sequential(nn.Linear(2, 16), nn.Dropout(0.9), nn.Linear(16, 3))
    model.train()
    model[1].eval()  # a module the caller set apart must stay as it was
    dataset = blobs(n=40)
    once = predict(model, DataLoader(dataset, batch_size=16), progress=False)
    again = predict(model, DataLoader(dataset, batch_size=7), progress=False)
    evaluate(model, DataLoader(dataset, batch_size=16), progress=False)
    torch.testing.assert_close(once, again)  # no dropout noise (dropout 0.9 would be loud)
    assert model.training and model[0].training and not model[1].training


def test_predict_returns_cpu_float_logits_for_tensor_or_tuple_batches():
    model, dataset = mlp(), blobs(n=50)
    from_pairs = predict(model, DataLoader(dataset, batch_size=16), progress=False)
    from_inputs = predict(model, DataLoader(dataset.tensors[0], batch_size=16), progress=False)
    assert from_pairs.shape == (50, 3)
    assert from_pairs.dtype == torch.float32 and from_pairs.device.type == "cpu"
    assert torch.equal(from_pairs, from_inputs)


def test_library_prints_nothing_when_progress_is_off(capsys):
    fit(mlp(), loader(blobs()), epochs=1, val_loader=loader(blobs()), progress=False)
    predict(mlp(), loader(blobs()), progress=False)
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("epochs", [0, -1, 1.5, True])
def test_fit_rejects_epochs_that_are_not_a_positive_int(epochs):
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        fit(mlp(), loader(blobs()), epochs=epochs, progress=False)


def test_empty_loader_raises_a_clear_error():
    empty = DataLoader(TensorDataset(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)))
    for run in (
        lambda: fit(mlp(), empty, epochs=1, progress=False),
        lambda: evaluate(mlp(), empty, progress=False),
        lambda: predict(mlp(), empty, progress=False),
    ):
        with pytest.raises(ValueError, match="yielded no batches"):
            run()


def test_fit_rejects_a_fully_frozen_model_and_non_positive_clipping():
    frozen = mlp().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(frozen, loader(blobs()), epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"clip_grad_norm \(None: no clipping\) must be a finite"):
        fit(mlp(), loader(blobs()), epochs=1, clip_grad_norm=0.0, progress=False)


def test_batches_that_are_not_input_target_pairs_are_rejected():
    inputs_only = DataLoader(blobs().tensors[0], batch_size=8)
    with pytest.raises(ValueError, match=r"\(inputs, targets\)"):
        fit(mlp(), inputs_only, epochs=1, progress=False)


def test_seed_everything_makes_two_runs_identical():
    def run():
        seed_everything(7)
        model = nn.Sequential(nn.Linear(2, 16), nn.Dropout(0.2), nn.ReLU(), nn.Linear(16, 3))
        history = fit(model, loader(blobs(), seed=7), epochs=2, progress=False)
        return history.column("train_loss"), model.state_dict()

    (losses_a, state_a), (losses_b, state_b) = run(), run()
    assert losses_a == losses_b
    assert all(torch.equal(state_a[name], state_b[name]) for name in state_a)


def test_seed_everything_returns_a_generator_seeded_with_the_seed():
    assert torch.equal(
        torch.rand(3, generator=seed_everything(3)),
        torch.rand(3, generator=torch.Generator().manual_seed(3)),
    )


@pytest.mark.parametrize(
    ("seed", "error"), [(-1, ValueError), (2**32, ValueError), (1.0, TypeError)]
)
def test_seed_everything_rejects_seeds_numpy_cannot_take(seed, error):
    with pytest.raises(error, match="seed must be"):
        seed_everything(seed)


def test_googlenet_trains_its_new_main_and_auxiliary_heads_and_nothing_else():
    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    prepare(model, "head", num_classes=3)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    images = TensorDataset(torch.randn(6, 3, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2]))
    history = fit(
        model, DataLoader(images, batch_size=3), epochs=1, device="cpu", topk=(1,), progress=False
    )
    heads = {id(p) for head in all_heads(model) for p in head.parameters()}
    changed = {id(p) for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed == heads and len(heads) == 6
    assert history.last["train_loss"] > 0


def test_a_model_that_returns_neither_logits_nor_named_logits_is_refused():
    class Dict(nn.Module):
        def forward(self, x):
            return {"scores": x}

    with pytest.raises(ValueError, match=r"returned a dict with keys \['scores'\], not a tensor"):
        evaluate(Dict(), loader(blobs()), device="cpu", progress=False)


class NoisyBlobs(torch.utils.data.Dataset):
    """Blobs whose __getitem__ draws noise: in worker processes it uses the workers' seeds."""

    def __init__(self, n=96):
        self.base = blobs(n)

    def __len__(self):
        return len(self.base)

    def __getitem__(self, index):
        inputs, target = self.base[index]
        return inputs + 0.1 * torch.randn(2), target


def dropout_mlp():
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


def seeded_start(num_workers):
    """A model with dropout and a shuffling loader of noisy samples, both seeded."""
    seed_everything(0)
    model = dropout_mlp()
    data = DataLoader(
        NoisyBlobs(),
        batch_size=16,
        shuffle=True,
        num_workers=num_workers,
        generator=seed_everything(1),
    )
    return model, data


def hand_written_run(epochs, lr, num_workers):
    """The loop a learner writes, with the optimizer recipe fit uses by default."""
    model, data = seeded_start(num_workers)
    optimizer = torch.optim.AdamW(param_groups(model, lr=lr, weight_decay=0.01))
    for _ in range(epochs):
        model.train()
        for inputs, targets in data:
            loss = nn.functional.cross_entropy(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


@pytest.mark.parametrize("num_workers", [0, 2])
def test_fit_equals_a_hand_written_loop_bit_for_bit_with_shuffling(num_workers):
    by_hand = hand_written_run(epochs=2, lr=1e-2, num_workers=num_workers)
    model, data = seeded_start(num_workers)
    # Each pass over a DataLoader draws a seed from its generator: give validation its own.
    val = DataLoader(blobs(seed=1), batch_size=50, generator=torch.Generator())
    fit(model, data, epochs=2, lr=1e-2, val_loader=val, progress=True)
    for name, tensor in by_hand.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


class CountingLoader(DataLoader):
    """A DataLoader that counts how often an iterator over it is made."""

    iterators = 0

    def __iter__(self):
        self.iterators += 1
        return super().__iter__()


@pytest.mark.parametrize("progress", [True, False])
def test_each_pass_makes_one_iterator_of_each_loader(progress):
    train, val = CountingLoader(blobs(), batch_size=32), CountingLoader(blobs(), batch_size=32)
    fit(mlp(), train, epochs=3, val_loader=val, progress=progress)
    evaluate(mlp(), val, progress=progress)
    predict(mlp(), val, progress=progress)
    assert (train.iterators, val.iterators) == (3, 5)


def test_default_optimizer_gives_the_head_ten_times_the_rate_and_no_decay_on_biases():
    model = mlp()
    groups = {group["name"]: group for group in default_optimizer(model, lr=0.01).param_groups}
    assert groups["body"]["lr"] == 0.01 and groups["head"]["lr"] == pytest.approx(0.1)
    assert groups["body"]["weight_decay"] == 0.01 and groups["body_no_decay"]["weight_decay"] == 0
    assert {id(p) for p in groups["head"]["params"]} == {id(model[2].weight)}
    assert {id(p) for p in groups["head_no_decay"]["params"]} == {id(model[2].bias)}


def test_a_model_without_a_head_trains_every_parameter_at_lr():
    class Bilinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(3, 2))

        def forward(self, x):
            return x @ self.weight.T

    groups = default_optimizer(Bilinear(), lr=0.01).param_groups
    assert [(group["name"], group["lr"]) for group in groups] == [("body", 0.01)]


def nan_at(index, n=40):
    """Blobs whose sample ``index`` is NaN."""
    inputs, targets = blobs(n).tensors
    inputs = inputs.clone()
    inputs[index] = float("nan")
    return TensorDataset(inputs, targets)


def test_a_nan_loss_stops_fit_naming_epoch_and_batch_before_any_weight_changes():
    torch.manual_seed(0)
    stopped = mlp()
    with pytest.raises(NonFiniteLossError, match=r"nan at epoch 1, batch 2 of 4.*lr=.*clip_grad"):
        fit(stopped, DataLoader(nan_at(15), batch_size=10), epochs=1, progress=False)
    first_batch_only = mlp()
    first_batch = TensorDataset(*nan_at(15)[:10])
    fit(first_batch_only, DataLoader(first_batch, batch_size=10), epochs=1, progress=False)
    for name, tensor in first_batch_only.state_dict().items():
        assert torch.equal(stopped.state_dict()[name], tensor), name


def test_an_infinite_loss_is_stopped_too():
    def overflowing(logits, targets):
        return nn.functional.cross_entropy(logits, targets) * float("inf")

    with pytest.raises(NonFiniteLossError, match="inf at epoch 1, batch 1"):
        fit(mlp(), loader(blobs()), epochs=1, loss_fn=overflowing, progress=False)


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (nn.functional.one_hot(torch.arange(8) % 3).float(), r"one-hot .*argmax\(dim=1\)"),
        ((torch.arange(8) % 3).float(), r"integer class indices, got dtype torch.float32"),
        (torch.arange(8) % 4, r"target 3 is out of range for a model with 3 outputs"),
        (torch.arange(8) % 3 - 1, r"target -1 is out of range"),
        ((torch.arange(8) % 3).reshape(4, 2), r"shape \(batch,\), got shape \(4, 2\)"),
    ],
)
def test_bad_targets_are_refused_before_any_weight_changes(targets, message):
    model = mlp()
    before = {name: t.clone() for name, t in model.state_dict().items()}
    bad = DataLoader(TensorDataset(torch.randn(len(targets), 2), targets), batch_size=8)
    with pytest.raises(ValueError, match=message):
        fit(model, bad, epochs=1, progress=False)
    assert all(torch.equal(model.state_dict()[name], t) for name, t in before.items())


def test_integer_targets_of_any_width_train_like_long_ones():
    narrow, wide = mlp(), mlp()
    inputs, targets = blobs().tensors
    for model, labels in ((narrow, targets.to(torch.uint8)), (wide, targets)):
        data = DataLoader(TensorDataset(inputs, labels), batch_size=32)
        fit(model, data, epochs=1, progress=False)
    for name, tensor in wide.state_dict().items():
        assert torch.equal(narrow.state_dict()[name], tensor), name


def test_a_custom_loss_with_no_topk_may_take_float_targets():
    inputs = torch.randn(32, 2)
    regression = DataLoader(TensorDataset(inputs, inputs.sum(1, keepdim=True)), batch_size=8)
    model = nn.Linear(2, 1)
    history = fit(model, regression, epochs=40, lr=0.05, loss_fn=nn.functional.mse_loss, topk=())
    assert history.last["train_loss"] < 0.05 * history.column("train_loss")[0]
    assert list(history.last) == ["epoch", "train_loss", "seconds"]
