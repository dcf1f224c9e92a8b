"""lr_find: an exponential sweep that stops on divergence, suggests a rate, and undoes itself."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from ftlib.analysis.plots import plot_lr_find  # noqa: E402
from ftlib.data import digits_tasks  # noqa: E402
from ftlib.models import load_pretrained  # noqa: E402
from ftlib.seeding import seed_everything  # noqa: E402
from ftlib.surgery.states import prepare  # noqa: E402
from ftlib.training import fit  # noqa: E402
from ftlib.training.lr_find import LrSweep, lr_find  # noqa: E402

OPTIONS = {"device": "cpu", "progress": False}


@pytest.fixture(scope="module")
def target_train():
    return digits_tasks().target_train


def full_model():
    seed_everything(0)
    model = load_pretrained("digits")
    prepare(model, "full", num_classes=5)
    return model


def test_the_sweep_grows_the_rate_exponentially_and_stops_when_the_loss_explodes(target_train):
    data = DataLoader(target_train, batch_size=32, shuffle=True, generator=seed_everything(0))
    sweep = lr_find(full_model(), data, start_lr=1e-5, end_lr=100.0, steps=60, **OPTIONS)
    ratios = [b / a for a, b in zip(sweep.lrs, sweep.lrs[1:], strict=False)]
    assert ratios == pytest.approx([(100.0 / 1e-5) ** (1 / 59)] * len(ratios))
    assert sweep.diverged and len(sweep.lrs) < 60
    assert sweep.losses[-1] > 4 * min(sweep.losses)
    assert sweep.lrs[0] == pytest.approx(1e-5)
    assert 1e-5 < sweep.suggestion < sweep.lrs[-1]


def test_the_suggested_rate_trains_well(target_train):
    data = DataLoader(target_train, batch_size=32, shuffle=True, generator=seed_everything(0))
    model = full_model()
    sweep = lr_find(model, data, start_lr=1e-6, end_lr=10.0, steps=60, **OPTIONS)
    history = fit(model, data, epochs=2, lr=sweep.suggestion, topk=(1,), **OPTIONS)
    assert history.last["train_top1"] > 0.9


def test_the_sweep_leaves_weights_statistics_modes_and_random_state_as_they_were(target_train):
    generator = seed_everything(0)
    data = DataLoader(target_train, batch_size=32, shuffle=True, generator=generator)
    model = full_model()
    model.eval()
    model.block1.train()
    before = {name: t.clone() for name, t in model.state_dict().items()}
    global_state, loader_state = torch.get_rng_state(), generator.get_state()
    lr_find(model, data, steps=20, **OPTIONS)
    assert all(torch.equal(model.state_dict()[n], t) for n, t in before.items())
    assert not model.training and model.block1.training and not model.block2.training
    assert torch.equal(torch.get_rng_state(), global_state)
    assert torch.equal(generator.get_state(), loader_state)
    assert all(p.grad is None for p in model.parameters())


def test_a_short_loader_is_read_again_until_the_sweep_is_done(target_train):
    few = DataLoader(torch.utils.data.Subset(target_train, range(64)), batch_size=32)
    sweep = lr_find(full_model(), few, end_lr=1e-2, steps=10, **OPTIONS)
    assert len(sweep.lrs) == 10 and not sweep.diverged


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"start_lr": 1.0, "end_lr": 0.1}, "0 < start_lr < end_lr"),
        ({"start_lr": 0.0}, "0 < start_lr < end_lr"),
        ({"steps": 3}, "steps must be an integer, got 3; use 5 or more"),
        ({"diverge_factor": 1.0}, "diverge_factor must be above 1"),
        ({"smoothing": 1.0}, r"smoothing must be in \[0, 1\)"),
    ],
)
def test_bad_sweeps_are_refused(target_train, options, message):
    with pytest.raises(ValueError, match=message):
        lr_find(full_model(), DataLoader(target_train), **options)


def test_plot_lr_find_draws_the_loss_on_a_log_rate_axis_and_marks_the_suggestion():
    sweep = LrSweep(
        lrs=[1e-4, 1e-3, 1e-2, 1e-1], losses=[1.0, 0.8, 0.5, 2.0], suggestion=1e-2, diverged=True
    )
    ax = plot_lr_find(sweep)
    curve, marker = ax.get_lines()
    assert list(curve.get_xdata()) == sweep.lrs and list(curve.get_ydata()) == sweep.losses
    assert list(marker.get_xdata()) == [1e-2, 1e-2]
    assert ax.get_xscale() == "log" and "learning rate" in ax.get_xlabel()
    assert ax.get_title() and "loss" in ax.get_ylabel()
    assert "suggestion 0.01" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close("all")
