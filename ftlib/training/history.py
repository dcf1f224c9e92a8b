"""``History``: what happened in each epoch of a training run, as plain data.

One dict per epoch, so a notebook can print it, plot a column, pick the best epoch, or save it
inside a checkpoint and rebuild it later.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class History:
    """What happened in each epoch of ``fit``, one dict per epoch.

    Keys, in order: ``epoch`` (counting from 1); ``train_loss`` and ``train_top1``,
    ``train_top5`` (one ``top{k}`` per k in ``fit(topk=...)``); the same with ``val_`` when ``fit``
    got a ``val_loader``; ``seconds`` (wall time of the epoch, validation included).
    Losses are means over samples; accuracies are fractions in [0, 1].
    """

    epochs: list[dict[str, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.epochs)

    def column(self, key: str) -> list[float]:
        """The values of ``key``, one per epoch, ready to plot.

        Raises:
            KeyError: ``key`` is not recorded; the message lists the keys there are.
        """
        if self.epochs and key not in self.epochs[0]:
            raise unknown_key(key, list(self.epochs[0]))
        return [record[key] for record in self.epochs]

    @property
    def last(self) -> dict[str, float]:
        """The record of the final epoch. Raises IndexError when the history is empty."""
        if not self.epochs:
            raise IndexError("this history has no epochs yet")
        return self.epochs[-1]

    def best(self, key: str) -> dict[str, float]:
        """The record of the epoch with the best ``key``.

        Best means highest for accuracies (keys containing ``top``) and lowest for everything
        else (losses, seconds). The first such epoch wins a tie.

        Raises:
            KeyError: ``key`` is not recorded.
            IndexError: the history is empty.
        """
        values = self.column(key)
        if not values:
            raise IndexError("this history has no epochs yet")
        pick = max if higher_is_better(key) else min
        return self.epochs[pick(range(len(values)), key=values.__getitem__)]

    def to_dict(self) -> dict[str, list[dict[str, float]]]:
        """Plain data, JSON-ready and fit for ``save_checkpoint(extra=...)``.

        ``History(**history.to_dict())`` rebuilds the history.
        """
        return {"epochs": [dict(record) for record in self.epochs]}


def higher_is_better(key: str) -> bool:
    """Whether a larger value of the history column ``key`` is better: accuracies (``top``)."""
    return "top" in key


def unknown_key(key: str, keys: list[str]) -> KeyError:
    """The error for a column that is not recorded, with the keys there are."""
    hint = " (val_ keys need fit(..., val_loader=...))" if key.startswith("val_") else ""
    return KeyError(f"no {key!r} in this history{hint}; keys: {keys}")
