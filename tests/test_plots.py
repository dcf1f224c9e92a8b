"""ftlib.analysis.plots: what each figure draws, checked on its matplotlib artists."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ftlib.analysis.plots import plot_grad_norms, plot_history, plot_strategy_comparison  # noqa: E402
from ftlib.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _history(accuracies: list[float]) -> History:
    return History(
        epochs=[
            {"epoch": i + 1, "train_loss": 1.0 / (i + 1), "val_top1": acc}
            for i, acc in enumerate(accuracies)
        ]
    )


def test_plot_history_draws_one_labelled_curve_per_run():
    ax = plot_history({"head only": _history([0.5, 0.6]), "full": _history([0.4, 0.7, 0.8])})
    assert [line.get_label() for line in ax.get_lines()] == ["head only", "full"]
    assert list(ax.get_lines()[1].get_ydata()) == [0.4, 0.7, 0.8]
    assert list(ax.get_lines()[1].get_xdata()) == [1, 2, 3]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "validation top-1 accuracy"
    assert "validation top-1 accuracy" in ax.get_title()
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["head only", "full"]


def test_plot_history_of_one_run_labels_the_loss_and_draws_on_the_given_axes():
    _, given = plt.subplots()
    ax = plot_history(_history([0.5, 0.6]), key="train_loss", ax=given)
    assert ax is given and len(ax.get_lines()) == 1 and ax.get_legend() is None
    assert ax.get_ylabel() == "training loss (cross-entropy)"


def test_plot_history_names_the_missing_column():
    with pytest.raises(KeyError, match="val_top5"):
        plot_history(_history([0.5]), key="val_top5")


def test_plot_grad_norms_uses_a_log_scale_and_names_the_layers():
    norms = {"0": 1e-8, "2": 1e-4, "4": 1.0}
    ax = plot_grad_norms(norms, title="Sigmoid, 3 layers")
    assert ax.get_yscale() == "log"
    assert ax.get_title() == "Sigmoid, 3 layers" and ax.get_xlabel() and ax.get_ylabel()
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [1, 2, 3] and list(line.get_ydata()) == [1e-8, 1e-4, 1.0]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["0", "2", "4"]


def test_plot_grad_norms_compares_several_networks_with_a_legend():
    ax = plot_grad_norms({"sigmoid": {"a": 1e-3, "b": 1.0}, "relu": {"a": 0.9, "b": 1.0}})
    assert [line.get_label() for line in ax.get_lines()] == ["sigmoid", "relu"]
    assert ax.get_yscale() == "log" and ax.get_legend() is not None


def test_plot_strategy_comparison_draws_mean_bars_with_std_error_bars():
    results = {
        "head": {"small": [0.8, 0.9], "large": [0.7, 0.7]},
        "full": {"small": [0.6, 0.8], "large": [0.9]},
    }
    ax = plot_strategy_comparison(results)
    assert len(ax.patches) == 4
    bars = {c.get_label(): c for c in ax.containers if hasattr(c, "patches")}
    heights = [p.get_height() for p in bars["head"].patches + bars["full"].patches]
    assert heights == pytest.approx([0.85, 0.7, 0.7, 0.9])
    # Error bar of "head, small": from mean - std to mean + std (sample std of 0.8 and 0.9).
    segments = bars["head"].errorbar.lines[2][0].get_segments()
    low, high = segments[0][:, 1]
    assert high - low == pytest.approx(2 * np.std([0.8, 0.9], ddof=1))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["small", "large"]
    assert ax.get_title() and ax.get_xlabel() == "setting" and "std over seeds" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["head", "full"]


def test_plot_strategy_comparison_keeps_its_legend_off_the_bars_and_inside_the_figure():
    # Tall bars in every group: any legend inside the axes would cover one of them.
    results = {
        name: {"small": [0.95, 0.97], "large": [0.96, 0.98], "other": [0.2, 0.3]}
        for name in ("head only", "cut early", "freeze first k", "fine-tune all", "scratch")
    }
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.axhline(0.2, linestyle=":", label="chance")
    plot_strategy_comparison(results, ax=ax)
    fig.tight_layout()
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["chance", *results]
    assert legend.x0 >= ax.get_window_extent().x1, "the legend overlaps the axes"
    assert not any(legend.overlaps(bar.get_window_extent()) for bar in ax.patches)
    assert fig.bbox.x0 <= legend.x0 and legend.x1 <= fig.bbox.x1, "the legend is cut off"


def test_plot_strategy_comparison_rejects_a_setting_without_values():
    with pytest.raises(ValueError, match="'full'.*'small'"):
        plot_strategy_comparison({"full": {"small": []}})


def test_plot_grad_norms_leaves_a_gap_where_a_norm_is_zero():
    ax = plot_grad_norms({"layer1": 1e-3, "layer2": 0.0, "layer3": 1.0})
    y = ax.get_lines()[0].get_ydata()
    assert y[0] == 1e-3 and np.isnan(y[1]) and y[2] == 1.0
