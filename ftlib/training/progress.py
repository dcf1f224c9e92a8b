"""Progress bars for the training loop: advanced by hand, short, and visible in a notebook.

The loop owns the only iterator over a data loader and moves the bar itself. Handing the loader
to ``tqdm.auto.tqdm`` instead would start it twice: that class mixes in ``tqdm.asyncio``, whose
constructor calls ``iter()`` on what it wraps, so a shuffling loader would draw one extra
permutation (another order than a hand-written loop with the same seed) and start its worker
processes twice per pass.

In a notebook the bar is an ipywidgets row: the label, the bar, then the text. Text wider than
the row squeezes the bar to nothing, so the text is kept short (a few metrics, short names) and
the row may wrap (tqdm's ``ncols="100%"`` layout) rather than lose the bar.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Protocol


class Bar(Protocol):
    """What the loop needs from a bar (tqdm's own methods)."""

    def update(self, n: int = 1) -> Any: ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...

    def close(self) -> None: ...


class _Silent:
    """A bar that shows nothing and costs nothing: ``progress=False`` imports no tqdm."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(*, total: int | None, desc: str, unit: str, enabled: bool, leave: bool) -> Bar:
    """A tqdm bar (the notebook widget in Jupyter, text elsewhere), or a silent one.

    Args:
        total: number of updates expected, None when unknown.
        desc: the label on the left.
        unit: what one update counts ("batch", "epoch").
        enabled: False returns a bar that shows nothing.
        leave: keep the bar on screen after ``close``.
    """
    if not enabled:
        return _Silent()
    # dynamic_ncols: the terminal's width for text; in a notebook a full-width row that wraps.
    return _bar_class()(total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)


def postfix(record: Mapping[str, float]) -> str:
    """The few numbers worth watching, in a string that fits beside a bar.

    Training loss always; validation loss and top-1 accuracy when there is validation,
    else training top-1 accuracy.
    """
    shown = {"loss": record.get("train_loss")}
    if "val_loss" in record:
        shown.update(val_loss=record["val_loss"], val_acc=record.get("val_top1"))
    else:
        shown["acc"] = record.get("train_top1")
    return ", ".join(f"{key}={value:.3f}" for key, value in shown.items() if value is not None)


def _bar_class() -> type:
    # tqdm.autonotebook is the notebook widget under Jupyter and the text bar elsewhere,
    # without tqdm.auto's asyncio mix-in; it warns that it is experimental, which we know.
    from tqdm.std import TqdmExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=TqdmExperimentalWarning)
        from tqdm.autonotebook import tqdm

    return tqdm
