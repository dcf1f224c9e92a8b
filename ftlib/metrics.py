"""Top-k accuracy: how often the right class is among the model's k best guesses.

Top-1 is plain accuracy; top-5 is the ImageNet habit that forgives near misses between similar
classes. The training loop adds up the counts from ``topk_correct`` batch by batch, so a whole
epoch's accuracy is exact even when the last batch is smaller.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def topk_accuracy(
    logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = (1, 5)
) -> dict[int, float]:
    """Fraction of samples whose true class is among the ``k`` highest logits, for each ``k``.

    Why: a model choosing between look-alike classes can be nearly right; top-k shows how near.

    Args:
        logits: scores of shape ``(N, C)``, one row per sample, one column per class.
        targets: true class indices of shape ``(N,)``.
        ks: the values of k. A k larger than the number of classes ``C`` is clamped to ``C``
            (so top-5 of a 3-class problem is 1.0); the result is still keyed by the k asked for.

    Returns:
        ``{k: fraction in [0, 1]}`` for each k in ``ks``.

    Raises:
        ValueError: shapes that do not match, no samples, or a k below 1.
    """
    counts = topk_correct(logits, targets, ks)
    return {k: count.item() / len(targets) for k, count in counts.items()}


def topk_correct(
    logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = (1, 5)
) -> dict[int, torch.Tensor]:
    """Number of samples whose true class is among the ``k`` highest logits, for each ``k``.

    Why: counts add up across batches of different sizes; fractions do not. They stay tensors on
    the logits' device, so a training loop can add them up without waiting for the GPU.

    Args and raises are those of ``topk_accuracy``.

    Returns:
        ``{k: count}`` for each k in ``ks``, each count a 0-dim integer tensor.
    """
    if logits.ndim != 2:
        raise ValueError(
            f"logits must have shape (N, C) (samples, classes), got {tuple(logits.shape)}"
        )
    if targets.shape != logits.shape[:1]:
        raise ValueError(
            f"targets must be class indices of shape ({logits.shape[0]},) to match logits "
            f"{tuple(logits.shape)}, got {tuple(targets.shape)}"
        )
    if len(targets) == 0:
        raise ValueError("top-k accuracy of an empty batch is undefined; pass at least one sample")
    bad = [k for k in ks if k < 1]
    if bad:
        raise ValueError(f"k must be at least 1, got {bad} in ks={tuple(ks)}")
    if not ks:
        return {}
    num_classes = logits.shape[1]
    best = logits.topk(min(max(ks), num_classes), dim=1).indices
    hits = best.eq(targets.unsqueeze(1))  # (N, k_max): True where guess j is the true class
    return {k: hits[:, : min(k, num_classes)].any(dim=1).sum() for k in ks}
