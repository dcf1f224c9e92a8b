"""The files of one ``finetune`` run, all in its output folder.

- ``checkpoint.pt``: the trained weights with the class names, the model's description and the
  preprocessing (``ftlib.load_checkpoint`` reads it; ``python -m ftlib predict`` rebuilds the
  model from it);
- ``history.json``: one record per epoch (``ftlib.History``);
- ``training_curves.png``: loss and top-1 accuracy per epoch, training and validation;
- ``splits.json``: which image went to which split, so a result can be checked later;
- ``summary.json``: the settings, the plan, the final validation and test numbers.

A folder that already holds a run is not overwritten unless asked: nothing is lost by a typo.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from ftlib.analysis.plots import plot_history
from ftlib.training.checkpoint import save_checkpoint
from ftlib.training.history import History

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.json"
CURVES = "training_curves.png"
SPLITS = "splits.json"
SUMMARY = "summary.json"
RUN_FILES = (CHECKPOINT, HISTORY, CURVES, SPLITS, SUMMARY)


def check_output_folder(out: Path, *, overwrite: bool) -> None:
    """Refuse an ``out`` that is a file, or a folder holding a run, unless ``overwrite``.

    Raises:
        ValueError: says which files are there and how to proceed.
    """
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; name a folder for the run's outputs")
    held = [name for name in RUN_FILES if (out / name).exists()]
    if held and not overwrite:
        raise ValueError(
            f"{out} already holds a run ({', '.join(held)}); choose another --out, or pass "
            "--overwrite to replace it"
        )


def write_run(
    out: Path,
    model: nn.Module,
    *,
    checkpoint_extra: dict[str, Any],
    history: History,
    splits: dict[str, Any],
    summary: dict[str, Any],
) -> dict[str, str]:
    """Write the run's files to ``out`` (created if needed); the paths written, by role.

    The curves are drawn only when there was training (state "predict" has no epochs).
    """
    out.mkdir(parents=True, exist_ok=True)
    files = {"checkpoint": out / CHECKPOINT, "history": out / HISTORY, "splits": out / SPLITS}
    save_checkpoint(model, files["checkpoint"], extra=checkpoint_extra)
    _write_json(files["history"], history.to_dict())
    _write_json(files["splits"], splits)
    if len(history):
        files["curves"] = out / CURVES
        draw_curves(history, files["curves"])
    files["summary"] = out / SUMMARY
    written = {role: str(path) for role, path in files.items()}
    _write_json(files["summary"], {**summary, "files": written})
    return written


def draw_curves(history: History, path: Path) -> None:
    """Save loss and top-1 accuracy per epoch, training beside validation, as a PNG."""
    # A bare Figure draws without choosing a matplotlib backend (no display needed).
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), layout="constrained")
    for ax, metric, title, label in zip(
        figure.subplots(1, 2),
        ("loss", "top1"),
        ("Loss per epoch", "Top-1 accuracy per epoch"),
        ("loss (cross-entropy)", "top-1 accuracy"),
        strict=True,
    ):
        for split, name in (("train_", "training"), ("val_", "validation")):
            if split + metric in history.epochs[0]:
                plot_history({name: history}, split + metric, ax=ax)
        ax.set(title=title, ylabel=label)
    figure.savefig(path, dpi=100)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")
