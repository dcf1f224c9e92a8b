"""The three figures the lessons draw: training curves, gradient norms per layer, strategy results.

Each function draws on a given matplotlib `Axes` (or a new figure), gives it a title and labelled
axes, and returns the `Axes` so a notebook can adjust it further. They take the library's own
results: `History` objects from `ftlib.fit`, norm dicts from `ftlib.analysis.diagnostics`,
and accuracies per seed from your own experiment loops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

if TYPE_CHECKING:
    from ftlib.training import History
    from ftlib.training.lr_find import LrSweep

_SPLITS = {"train_": "training ", "val_": "validation "}
_METRICS = {"loss": "loss (cross-entropy)", "seconds": "seconds per epoch"}
_MAX_NAMED_TICKS = 20  # beyond this, layer names on the x axis overlap


def _new_axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    # Imported here so that importing ftlib does not start a matplotlib backend.
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6, 4))[1]


def _describe(key: str) -> str:
    """'val_top1' -> 'validation top-1 accuracy', 'train_loss' -> 'training loss (...)'."""
    split = next((_SPLITS[p] for p in _SPLITS if key.startswith(p)), "")
    metric = key.removeprefix("train_").removeprefix("val_")
    if metric.startswith("top") and metric[3:].isdigit():
        return f"{split}top-{metric[3:]} accuracy"
    return split + _METRICS.get(metric, metric)


def plot_history(
    histories: History | Mapping[str, History], key: str = "val_top1", ax: Axes | None = None
) -> Axes:
    """Plot one metric per epoch, one line per run: how training went, and which run did better.

    Args:
        histories: one `History`, or several by label (e.g. {"head only": h1, "full": h2}).
        key: the `History` column to plot, e.g. "val_top1", "train_loss".
        ax: the axes to draw on; None makes a new figure.

    Returns:
        The axes, titled, with labelled axes and (for several runs) a legend.

    Raises:
        KeyError: if a history has no `key` column (the message lists the columns).
    """
    ax = _new_axes(ax)
    runs = histories if isinstance(histories, Mapping) else {"": histories}
    for label, history in runs.items():
        ax.plot(history.column("epoch"), history.column(key), marker="o", label=label)
    description = _describe(key)
    ax.set(title=f"Training curves: {description}", xlabel="epoch", ylabel=description)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if isinstance(histories, Mapping):
        ax.legend()
    return ax


def plot_grad_norms(
    norms: Mapping[str, float] | Mapping[str, Mapping[str, float]],
    ax: Axes | None = None,
    title: str = "Gradient norm per layer",
) -> Axes:
    """Plot gradient norms against layer depth on a log scale, to see them vanish or explode.

    Why log: norms that shrink by a constant factor per layer fall on a straight line, and a
    1e-8 next to a 1 stays visible.

    Args:
        norms: {layer name: norm} in forward order (e.g.
            `ftlib.analysis.diagnostics.activation_grad_norms`), or several such dicts by label
            (e.g. {"sigmoid": ..., "relu": ...}) to compare.
        ax: the axes to draw on; None makes a new figure.
        title: the figure title.

    Returns:
        The axes: layer index (1 = first layer) on x, norm on a log y scale. A single series
        labels the ticks with the layer names (up to 20 layers). Zero norms cannot be drawn on a
        log scale and are left out, as a gap in the line.
    """
    ax = _new_axes(ax)
    nested = all(isinstance(value, Mapping) for value in norms.values())
    series = norms if nested else {"": norms}
    for label, layer_norms in series.items():
        depth = np.arange(1, len(layer_norms) + 1)
        values = np.asarray(list(layer_norms.values()), dtype=float)
        ax.plot(depth, np.where(values > 0, values, np.nan), marker="o", label=label)
    ax.set_yscale("log")
    ax.set(title=title, xlabel="layer (1 = input side)", ylabel="gradient L2 norm (log scale)")
    if nested:
        ax.legend()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    elif 0 < len(norms) <= _MAX_NAMED_TICKS:
        ax.set_xticks(np.arange(1, len(norms) + 1), list(norms), rotation=45, ha="right")
    return ax


def plot_strategy_comparison(
    results: Mapping[str, Mapping[str, Sequence[float]]],
    ax: Axes | None = None,
    *,
    ylabel: str = "test top-1 accuracy",
    title: str = "Fine-tuning strategies compared",
) -> Axes:
    """Grouped bars of mean results with error bars over seeds: which strategy wins where.

    Args:
        results: {strategy: {setting: values over seeds}}, e.g.
            {"head only": {"small, similar": [0.91, 0.93], ...}, "full": {...}}. Each setting is a
            group on the x axis; each strategy a bar colour in every group it has values for.
        ax: the axes to draw on; None makes a new figure.
        ylabel: what the values measure.
        title: the figure title.

    Returns:
        The axes: bar height = mean, error bar = sample standard deviation over seeds (none for
        a single seed), legend of strategies (and of any labelled artist already on the axes,
        e.g. a chance line) outside the axes, on the right.

    Raises:
        ValueError: if some strategy has no values for a setting it lists.
    """
    ax = _new_axes(ax)
    settings = list(dict.fromkeys(setting for runs in results.values() for setting in runs))
    width = 0.8 / max(len(results), 1)
    for index, (strategy, runs) in enumerate(results.items()):
        empty = [setting for setting, values in runs.items() if len(values) == 0]
        if empty:
            raise ValueError(f"strategy {strategy!r} has no values for {empty}")
        positions = [settings.index(setting) for setting in runs]
        values = [np.asarray(runs[setting], dtype=float) for setting in runs]
        ax.bar(
            np.asarray(positions) + (index - (len(results) - 1) / 2) * width,
            [v.mean() for v in values],
            width,
            yerr=[v.std(ddof=1) if len(v) > 1 else 0.0 for v in values],
            capsize=3,
            label=strategy,
        )
    ax.set_xticks(np.arange(len(settings)), settings)
    ax.set(title=title, xlabel="setting", ylabel=f"{ylabel} (mean ± std over seeds)")
    # Bars can reach any height in any group, so a legend inside the axes would cover some:
    # it goes to the right of them (figure.tight_layout() keeps it inside the figure).
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return ax


def plot_lr_find(sweep: LrSweep, ax: Axes | None = None) -> Axes:
    """Plot the loss of a learning-rate sweep against the rate, with the suggested rate marked.

    Args:
        sweep: what ``ftlib.training.lr_find.lr_find`` returned.
        ax: the axes to draw on; None makes a new figure.

    Returns:
        The axes: rate on a log x axis, smoothed training loss on y, a dashed line at the
        suggestion (labelled with its value).
    """
    ax = _new_axes(ax)
    ax.plot(sweep.lrs, sweep.losses, label="smoothed training loss")
    label = f"suggestion {sweep.suggestion:.2g}"
    ax.axvline(sweep.suggestion, color="tab:red", linestyle="--", label=label)
    ax.set_xscale("log")
    ax.set(
        title="Learning-rate sweep",
        xlabel="learning rate of the body (log scale)",
        ylabel=_describe("train_loss"),
    )
    ax.legend()
    return ax
