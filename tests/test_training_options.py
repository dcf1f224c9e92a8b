"""fit's options for real runs: per-step schedulers, gradient accumulation, precision and speed."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ftlib.training import Performance, fit
from ftlib.training.progress import postfix, progress_bar


def blobs(n=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    targets = torch.arange(n) % 3
    centres = torch.tensor([[3.0, 0.0], [-3.0, 3.0], [-3.0, -3.0]])
    return TensorDataset(centres[targets] + torch.randn(n, 2, generator=generator), targets)


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))


def sgd(model, lr=0.1):
    return torch.optim.SGD(model.parameters(), lr=lr)


def rates_of_each_step(model, data, epochs, schedule, *, per, **options):
    """Fit with ``schedule`` stepped ``per`` epoch or step; the body's rate at every step."""
    rates = []
    optimizer = schedule.optimizer
    optimizer.register_step_pre_hook(lambda opt, *_: rates.append(opt.param_groups[0]["lr"]))
    fit(
        model,
        data,
        epochs=epochs,
        optimizer=optimizer,
        scheduler=schedule,
        scheduler_step=per,
        progress=False,
        **options,
    )
    return rates


def test_a_one_cycle_schedule_steps_after_every_optimizer_step():
    model, epochs = mlp(), 3
    data = DataLoader(blobs(), batch_size=16)  # 4 batches: 2 optimizer steps with accumulate=2
    optimizer = sgd(model)
    total = epochs * math.ceil(len(data) / 2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.5, total_steps=total)
    rates = rates_of_each_step(model, data, epochs, schedule, per="step", accumulate=2)
    assert schedule.last_epoch == total  # one scheduler step per optimizer step, none more
    assert len(rates) == total and rates[0] < rates[1] > rates[-1]  # warm up, then anneal
    assert rates[-1] < 0.01 * max(rates)


def test_epoch_is_the_default_scheduler_step_and_other_names_are_refused():
    model = mlp()
    optimizer = sgd(model)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    fit(
        model,
        DataLoader(blobs(), batch_size=16),
        epochs=2,
        optimizer=optimizer,
        scheduler=schedule,
        progress=False,
    )
    assert schedule.last_epoch == 2
    with pytest.raises(ValueError, match="unknown SchedulerStep 'batchwise'; use one of"):
        fit(mlp(), DataLoader(blobs()), epochs=1, scheduler_step="batchwise", progress=False)


def test_reduce_on_plateau_cannot_step_per_batch():
    model = mlp()
    optimizer = sgd(model)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    with pytest.raises(ValueError, match="ReduceLROnPlateau .* scheduler_step='epoch'"):
        fit(
            model,
            DataLoader(blobs()),
            epochs=1,
            optimizer=optimizer,
            scheduler=plateau,
            scheduler_step="step",
        )


def test_accumulating_two_half_batches_equals_one_full_batch():
    whole, halves = mlp(), mlp()
    fit(whole, DataLoader(blobs(), batch_size=32), epochs=2, optimizer=sgd(whole), progress=False)
    fit(
        halves,
        DataLoader(blobs(), batch_size=16),
        epochs=2,
        optimizer=sgd(halves),
        accumulate=2,
        progress=False,
    )
    for name, tensor in whole.state_dict().items():
        torch.testing.assert_close(halves.state_dict()[name], tensor, rtol=1e-5, atol=1e-6)


def test_a_last_short_group_of_an_epoch_still_steps():
    model = mlp()
    steps = []
    optimizer = sgd(model)
    optimizer.register_step_post_hook(lambda *_: steps.append(1))
    fit(
        model,
        DataLoader(blobs(48), batch_size=16),
        epochs=2,
        optimizer=optimizer,
        accumulate=2,
        progress=False,
    )
    assert len(steps) == 4  # batches (1, 2) and (3) in each epoch


@pytest.mark.parametrize("accumulate", [0, 1.5, True])
def test_accumulate_must_be_a_positive_int(accumulate):
    with pytest.raises(ValueError, match=r"accumulate \(1: step after every batch\) must be"):
        fit(mlp(), DataLoader(blobs()), epochs=1, accumulate=accumulate, progress=False)


@pytest.mark.parametrize(("amp", "dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_amp_names_the_autocast_dtype_even_on_a_cpu(amp, dtype):
    model, seen = mlp(), []
    model[0].register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    history = fit(
        model,
        DataLoader(blobs(), batch_size=16),
        epochs=3,
        lr=3e-2,
        amp=amp,
        device="cpu",
        progress=False,
    )
    assert set(seen) == {dtype}
    assert model[0].weight.dtype == torch.float32  # master weights stay float32
    assert history.last["train_loss"] < history.column("train_loss")[0]


def test_amp_true_is_float32_on_a_cpu_and_unknown_names_are_refused():
    model, seen = mlp(), []
    model[0].register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    fit(model, DataLoader(blobs(), batch_size=32), epochs=1, device="cpu", progress=False)
    assert set(seen) == {torch.float32}
    with pytest.raises(ValueError, match="amp must be True .*'bf16' or 'fp16', got 'fp8'"):
        fit(mlp(), DataLoader(blobs()), epochs=1, amp="fp8", progress=False)


def conv_net():
    """A conv, batch-norm, linear net. No conv bias: before batch norm its gradient is rounding
    noise, which Adam would blow up to full steps."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3),
    )


def images(n=24):
    generator = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, 3, 8, 8, generator=generator), torch.arange(n) % 3)


def test_channels_last_trains_the_same_model_in_the_other_layout():
    plain, nhwc = conv_net(), conv_net()
    fit(plain, DataLoader(images(), batch_size=8), epochs=2, device="cpu", progress=False)
    seen = []
    nhwc[0].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    fit(
        nhwc,
        DataLoader(images(), batch_size=8),
        epochs=2,
        device="cpu",
        progress=False,
        performance=Performance(channels_last=True),
    )
    assert nhwc[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert all(x.is_contiguous(memory_format=torch.channels_last) for x in seen)
    for name, tensor in plain.state_dict().items():
        torch.testing.assert_close(nhwc.state_dict()[name], tensor, rtol=1e-4, atol=1e-5)


def test_compile_runs_the_model_through_torch_compile_with_the_same_result():
    from torch._dynamo.utils import counters

    eager, compiled = mlp(), mlp()
    fit(eager, DataLoader(blobs(), batch_size=16), epochs=1, optimizer=sgd(eager), progress=False)
    counters.clear()
    fit(
        compiled,
        DataLoader(blobs(), batch_size=16),
        epochs=1,
        optimizer=sgd(compiled),
        performance=Performance(compile="eager"),
        progress=False,
    )
    assert counters["stats"]["calls_captured"] > 0
    for name, tensor in eager.state_dict().items():
        torch.testing.assert_close(compiled.state_dict()[name], tensor)
    with pytest.raises(ValueError, match="compile must be True, False or a torch.compile backend"):
        Performance(compile=1)


def test_the_postfix_is_short_and_keeps_the_numbers_worth_watching():
    record = {
        "epoch": 3,
        "train_loss": 0.4123,
        "train_top1": 0.91,
        "train_top5": 1.0,
        "val_loss": 0.3802,
        "val_top1": 0.9125,
        "val_top5": 1.0,
        "seconds": 12.5,
    }
    assert postfix(record) == "loss=0.412, val_loss=0.380, val_acc=0.912"
    assert postfix({"epoch": 1, "train_loss": 1.0, "train_top1": 0.5}) == "loss=1.000, acc=0.500"


def test_a_notebook_bar_spans_the_row_and_wraps_its_text_rather_than_hide_the_bar(monkeypatch):
    pytest.importorskip("ipywidgets")
    from tqdm.notebook import tqdm as notebook_bar

    monkeypatch.setattr("ftlib.training.progress._bar_class", lambda: notebook_bar)
    monkeypatch.setattr("tqdm.notebook.display", lambda *args, **kwargs: None)
    bar = progress_bar(total=4, desc="fit", unit="epoch", enabled=True, leave=True)
    label, widget, text = bar.container.children
    assert bar.container.layout.width == "100%"
    assert bar.container.layout.flex_flow == "row wrap"
    assert widget.layout.flex == "2"
    bar.close()


def test_a_silent_bar_imports_and_shows_nothing(capsys):
    bar = progress_bar(total=4, desc="fit", unit="epoch", enabled=False, leave=True)
    bar.update()
    bar.set_postfix_str("loss=1.0")
    bar.close()
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("per", ["epoch", "step"])
def test_a_timm_scheduler_is_told_the_epoch_or_the_optimizer_step(per):
    pytest.importorskip("timm")
    from timm.scheduler import CosineLRScheduler

    model, epochs = mlp(), 4
    data = DataLoader(blobs(), batch_size=32)  # 2 steps per epoch
    optimizer = sgd(model)
    length = epochs if per == "epoch" else epochs * len(data)
    schedule = CosineLRScheduler(optimizer, t_initial=length, t_in_epochs=per == "epoch")
    rates = rates_of_each_step(model, data, epochs, schedule, per=per)
    position = [step // len(data) if per == "epoch" else step for step in range(len(rates))]
    expected = [0.05 * (1 + math.cos(math.pi * t / length)) for t in position]
    assert rates == pytest.approx(expected)
