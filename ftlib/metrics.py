"""Top-k accuracy: how often the right class is among the model's k best guesses.

Top-1 is plain accuracy; top-5 is the ImageNet habit that forgives near misses between similar
classes. Counts add up batch by batch (``topk_correct``, or ``TopkCounts`` in the training loop),
so a whole epoch's accuracy is exact even when the last batch is smaller.

Ties count against the model. ``torch.topk`` breaks ties among equal scores in an unspecified
order, so a model that gives every class the same score would earn whatever share of the
samples the arbitrary pick happens to match (1/C at top-1). Here the true class is in the top k
only when fewer than k *other* classes score at least as high as it does; without ties this is
the usual definition. A NaN score counts as at least as high as any other (a broken model earns
nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def topk_accuracy(
    logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = (1, 5)
) -> dict[int, float]:
    """Fraction of samples whose true class is among the ``k`` highest logits, for each ``k``.

    Why: a model choosing between look-alike classes can be nearly right; top-k shows how near.

    A sample counts for top-k only if fewer than ``k`` other classes score at least as high as
    its true class: ties and NaN scores count against the model (see the module docstring), so
    equal scores for every class give top-1 accuracy 0, not 1/C.

    Args:
        logits: scores of shape ``(N, C)``, one row per sample, one column per class.
        targets: true class indices (integers in ``0..C-1``) of shape ``(N,)``.
        ks: the values of k. A k of ``C`` or more makes every sample a hit (so top-5 of a
            3-class problem is 1.0); the result is still keyed by the k asked for.

    Returns:
        ``{k: fraction in [0, 1]}`` for each k in ``ks``.

    Raises:
        ValueError: shapes that do not match, no samples, a k below 1, targets that are not
            integers, or a target outside ``0..C-1``.
    """
    counts = topk_correct(logits, targets, ks)
    low, high = int(targets.min()), int(targets.max())
    if low < 0 or high >= logits.shape[1]:
        bad = low if low < 0 else high
        raise ValueError(
            f"targets must be class indices in 0..{logits.shape[1] - 1} for logits with "
            f"{logits.shape[1]} classes, got {bad}; check the labels or the head's outputs"
        )
    return {k: count.item() / len(targets) for k, count in counts.items()}


def topk_correct(
    logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = (1, 5)
) -> dict[int, torch.Tensor]:
    """Number of samples whose true class is among the ``k`` highest logits, for each ``k``.

    Why: counts add up across batches of different sizes; fractions do not. They stay tensors on
    the logits' device, so a training loop can add them up without waiting for the GPU (for the
    same reason a target outside ``0..C-1`` is not reported here: it counts as a miss).

    The rule for ties is that of ``topk_accuracy``: the true class counts only when fewer than
    ``k`` other classes score at least as high. Half-precision logits tie more often than
    float32 ones, and those ties count as misses too.

    Args, other raises: as in ``topk_accuracy``.

    Returns:
        ``{k: count}`` for each k in ``ks``, each count a 0-dim integer tensor.
    """
    _check_batch(logits, targets)
    _check_ks(ks)
    if not ks:
        return {}
    rivals = _rivals(logits, targets.long())
    return {k: (rivals < k).sum() for k in ks}


def _check_batch(logits: torch.Tensor, targets: torch.Tensor) -> None:
    if logits.ndim != 2:
        raise ValueError(
            f"logits must have shape (N, C) (samples, classes), got {tuple(logits.shape)}"
        )
    if targets.shape != logits.shape[:1]:
        raise ValueError(
            f"targets must be class indices of shape ({logits.shape[0]},) to match logits "
            f"{tuple(logits.shape)}, got {tuple(targets.shape)}"
        )
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise ValueError(
            f"targets must be integer class indices, got dtype {targets.dtype}; "
            "for one-hot or soft labels pass labels.argmax(dim=1)"
        )
    if len(targets) == 0:
        raise ValueError("top-k accuracy of an empty batch is undefined; pass at least one sample")


def _check_ks(ks: Sequence[int]) -> None:
    bad = [k for k in ks if k < 1]
    if bad:
        raise ValueError(f"k must be at least 1, got {bad} in ks={tuple(ks)}")


def _rivals(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per sample, how many other classes score at least as high as the true class.

    A target outside ``0..C-1`` gets ``C`` rivals, so it is a miss at every k.
    """
    num_classes = logits.shape[1]
    clamped = targets.clamp(0, num_classes - 1)
    below = _classes_below(logits, clamped)
    return torch.where(clamped == targets, (num_classes - 1) - below, num_classes)


def _classes_below(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per sample, how many classes score strictly below the true class (valid ``targets``).

    Every class not strictly below the true one is a rival: a NaN on either side compares
    False, so it counts against the model. The true class is not below itself.
    """
    return (logits < logits.gather(1, targets.unsqueeze(1))).sum(dim=1)


class TopkCounts:
    """Top-k hits added up over batches on the device, in a few tensor operations per batch.

    Why: a training step of a small model lasts milliseconds and every small tensor operation
    costs microseconds, so counting each k separately made ``fit`` measurably slower than a
    hand-written ``argmax`` loop. Each batch adds one histogram of how many classes score
    strictly below the true one; the hits at every k are read from it once, at the end. Ties
    and NaN scores count as in ``topk_correct``.

    The targets must already be class indices in ``0..C-1`` (``fit`` and ``evaluate`` check
    them before the loss sees them); ``topk_correct`` handles any targets.
    """

    def __init__(self, ks: Sequence[int], device: torch.device) -> None:
        _check_ks(ks)
        self.ks, self.device = tuple(ks), device
        self._below: torch.Tensor | None = None  # samples per number of classes below the true
        self._one = torch.ones((), dtype=torch.long, device=device)

    def add(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Count one batch: ``logits`` of shape ``(N, C)``, valid ``torch.long`` class indices.

        Nothing here waits for the device (``torch.bincount`` would, to size its output).
        """
        _check_batch(logits, targets)
        if self._below is None:
            self._below = torch.zeros(logits.shape[1], dtype=torch.long, device=self.device)
        self._below.index_put_((_classes_below(logits, targets),), self._one, accumulate=True)

    def counts(self) -> dict[int, torch.Tensor]:
        """``{k: hits}`` so far, each a 0-dim integer tensor on the device (zero before any batch).

        A sample is a hit at k when at least ``C - k`` classes score below its true class.
        """
        if self._below is None:
            return {k: torch.zeros((), dtype=torch.long, device=self.device) for k in self.ks}
        num_classes = len(self._below)
        return {k: self._below[max(num_classes - k, 0) :].sum() for k in self.ks}
