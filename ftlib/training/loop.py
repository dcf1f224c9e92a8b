"""The training loop every lesson reuses: ``fit``, ``evaluate`` and ``predict``.

``fit`` is the loop you would write by hand (forward, loss, backward, step), plus what a real run
needs: mixed precision on a GPU, optional gradient clipping, a progress bar, and a ``History`` of
per-epoch numbers returned as data for the notebook to print or plot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ftlib.device import autocast, best_device, grad_scaler, to_device
from ftlib.metrics import topk_correct

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

AUX_LOSS_WEIGHT = 0.3
"""Weight of each auxiliary head's loss (GoogLeNet, Inception v3) in training, as in GoogLeNet's
paper (Szegedy et al. 2015). Accuracies are always those of the main head."""


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
            hint = " (val_ keys need fit(..., val_loader=...))" if key.startswith("val_") else ""
            raise KeyError(f"no {key!r} in this history{hint}; keys: {list(self.epochs[0])}")
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
        pick = max if "top" in key else min
        return self.epochs[pick(range(len(values)), key=values.__getitem__)]

    def to_dict(self) -> dict[str, list[dict[str, float]]]:
        """Plain data, JSON-ready and fit for ``save_checkpoint(extra=...)``.

        ``History(**history.to_dict())`` rebuilds the history.
        """
        return {"epochs": [dict(record) for record in self.epochs]}


def fit(
    model: nn.Module,
    train_loader: Iterable[Any],
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    loss_fn: LossFn | None = None,
    val_loader: Iterable[Any] | None = None,
    device: str | torch.device | None = None,
    amp: bool = True,
    clip_grad_norm: float | None = None,
    topk: Sequence[int] = (1, 5),
    scheduler: Any | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader``.

    Why: one loop for every fine-tuning state; what is frozen decides what learns, because only
    parameters with ``requires_grad=True`` are optimised.

    Args:
        model: the network; moved to ``device``. Frozen batch-norm layers stay as ``ftlib.freeze``
            left them.
        train_loader: yields ``(inputs, targets)`` batches, targets as class indices.
        epochs: number of passes over ``train_loader``, at least 1.
        optimizer: defaults to AdamW over the trainable parameters with learning rate ``lr``
            (``lr`` is ignored when you pass an optimizer).
        lr: learning rate of the default optimizer.
        loss_fn: ``loss_fn(logits, targets)`` returning the batch mean; defaults to cross-entropy.
        val_loader: when given, evaluated after each epoch (``val_`` keys in the history).
        device: where to train; None picks the best available (see ftlib.device.best_device).
        amp: mixed precision on CUDA (bfloat16 or float16 with loss scaling); no effect elsewhere.
        clip_grad_norm: when given, rescale the gradients so their total L2 norm is at most this.
        topk: the k of the top-k accuracies to record.
        scheduler: a learning-rate scheduler, stepped once per epoch. ``ReduceLROnPlateau`` gets
            the validation loss (the training loss without a ``val_loader``).
        progress: show a progress bar (tqdm; renders in notebooks); False silences it.

    Returns:
        The ``History``, one record per epoch.

    Raises:
        ValueError: ``epochs`` below 1, ``clip_grad_norm`` not positive, a model with no
            trainable parameters, an empty loader, or batches that are not ``(inputs, targets)``.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int of at least 1, got {epochs!r}")
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise ValueError(
            f"clip_grad_norm must be a positive number, got {clip_grad_norm!r}; "
            "use None for no clipping"
        )
    device = best_device(device)
    model.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError(
            f"{type(model).__name__} has no trainable parameters, so fit would change nothing; "
            "unfreeze some (ftlib.unfreeze), or use evaluate/predict for a frozen model"
        )
    optimizer = optimizer if optimizer is not None else torch.optim.AdamW(trainable, lr=lr)
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    scaler = grad_scaler(device, enabled=amp)

    def step(loss: torch.Tensor) -> None:
        model.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if clip_grad_norm is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the loss-scaled ones
            nn.utils.clip_grad_norm_(trainable, clip_grad_norm)
        scaler.step(optimizer)
        scaler.update()

    history = History()
    bar = tqdm(range(1, epochs + 1), desc="fit", unit="epoch", disable=not progress)
    for epoch in bar:
        start = time.perf_counter()
        model.train()
        train = _run_epoch(
            model,
            train_loader,
            device=device,
            loss_fn=loss_fn,
            topk=topk,
            amp=amp,
            step=step,
            desc=f"epoch {epoch}/{epochs}",
            progress=progress,
        )
        record: dict[str, float] = {"epoch": epoch, **_prefixed("train_", train)}
        if val_loader is not None:
            val = evaluate(
                model,
                val_loader,
                loss_fn=loss_fn,
                device=device,
                topk=topk,
                amp=amp,
                progress=progress,
            )
            record.update(_prefixed("val_", val))
        if scheduler is not None:
            _step_scheduler(scheduler, record)
        record["seconds"] = time.perf_counter() - start
        history.epochs.append(record)
        bar.set_postfix({key: f"{value:.3f}" for key, value in record.items() if "_" in key})
    return history


def evaluate(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    loss_fn: LossFn | None = None,
    device: str | torch.device | None = None,
    topk: Sequence[int] = (1, 5),
    amp: bool = True,
    progress: bool = True,
) -> dict[str, float]:
    """Mean loss and top-k accuracies of ``model`` on ``loader``, without training.

    Why: validation and test numbers must come from eval mode (batch-norm running statistics,
    no dropout) and cost no gradient memory; each module's mode is restored afterwards.

    Args:
        model: the network; moved to ``device``.
        loader: yields ``(inputs, targets)`` batches.
        loss_fn, device, topk, amp, progress: as in ``fit``.

    Returns:
        ``{"loss": ..., "top1": ..., "top5": ...}`` (one ``top{k}`` per k in ``topk``).

    Raises:
        ValueError: an empty loader, or batches that are not ``(inputs, targets)``.
    """
    device = best_device(device)
    model.to(device)
    with _eval_mode(model), torch.no_grad():
        return _run_epoch(
            model,
            loader,
            device=device,
            topk=topk,
            amp=amp,
            desc="evaluate",
            loss_fn=loss_fn if loss_fn is not None else nn.CrossEntropyLoss(),
            progress=progress,
        )


def predict(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    device: str | torch.device | None = None,
    amp: bool = True,
    progress: bool = True,
) -> torch.Tensor:
    """The model's outputs (logits) for every sample of ``loader``, in loader order.

    Why: confusion matrices, error analysis and submissions need the raw scores, not a summary.

    Args:
        model: the network; run in eval mode without gradients, modes restored afterwards.
        loader: yields input tensors, or ``(inputs, ...)`` tuples whose first item is the input.
        device, amp, progress: as in ``fit``.

    Returns:
        A float32 tensor of shape ``(N, C)`` on the CPU.

    Raises:
        ValueError: an empty loader, or batches with no input tensor first.
    """
    device = best_device(device)
    model.to(device)
    outputs = []
    with _eval_mode(model), torch.no_grad():
        for batch in tqdm(loader, desc="predict", unit="batch", leave=False, disable=not progress):
            inputs = to_device(_inputs_of(batch), device)
            with autocast(device, enabled=amp):
                outputs.append(model(inputs).float())
    if not outputs:
        raise ValueError(_EMPTY_LOADER)
    return torch.cat(outputs).cpu()


_EMPTY_LOADER = (
    "the data loader yielded no batches; check that its dataset is not empty, and use "
    "drop_last=False when it holds fewer samples than one batch"
)


def _run_epoch(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    device: torch.device,
    loss_fn: LossFn,
    topk: Sequence[int],
    amp: bool,
    desc: str,
    progress: bool,
    step: Callable[[torch.Tensor], None] | None = None,
) -> dict[str, float]:
    """One pass over ``loader``; ``step(loss)`` after each batch when training."""
    # Sums stay on the device so the loop never waits for the GPU; one sync at the end.
    loss_sum = torch.zeros((), device=device)
    hits = {k: torch.zeros((), dtype=torch.long, device=device) for k in topk}
    seen = 0
    for batch in tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress):
        inputs, targets = to_device(_inputs_and_targets(batch), device)
        with autocast(device, enabled=amp):
            logits, aux_logits = _split_outputs(model(inputs))
            loss = loss_fn(logits, targets)
            for aux in aux_logits:
                loss = loss + AUX_LOSS_WEIGHT * loss_fn(aux, targets)
        if step is not None:
            step(loss)
        loss_sum += loss.detach().float() * len(targets)
        for k, count in topk_correct(logits.detach(), targets, topk).items():
            hits[k] += count
        seen += len(targets)
    if seen == 0:
        raise ValueError(_EMPTY_LOADER)
    return {"loss": loss_sum.item() / seen, **{f"top{k}": hits[k].item() / seen for k in topk}}


def _split_outputs(outputs: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(main logits, auxiliary logits) of a forward pass.

    GoogLeNet and Inception v3 return a named tuple with ``logits`` and auxiliary logits in train
    mode (``GoogLeNetOutputs``, ``InceptionOutputs``) and plain logits in eval mode.
    """
    if isinstance(outputs, torch.Tensor):
        return outputs, []
    fields = getattr(outputs, "_asdict", lambda: {})()
    if isinstance(fields.get("logits"), torch.Tensor):
        aux = [value for key, value in fields.items() if key != "logits" and value is not None]
        return fields["logits"], aux
    raise ValueError(
        f"the model returned {_describe(outputs)}, not a tensor of logits (or a named tuple "
        "with a 'logits' field, as GoogLeNet and Inception v3 return in train mode)"
    )


def _inputs_and_targets(batch: Any) -> tuple[Any, torch.Tensor]:
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError(
        f"expected each batch to be (inputs, targets), got {_describe(batch)}; "
        "make the dataset return (input, target) pairs"
    )


def _inputs_of(batch: Any) -> torch.Tensor:
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    raise ValueError(
        f"expected each batch to be an input tensor or (inputs, ...), got {_describe(batch)}"
    )


def _describe(batch: Any) -> str:
    if isinstance(batch, (tuple, list)):
        return f"a {type(batch).__name__} of {len(batch)} items"
    return f"a {type(batch).__name__}"


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {prefix + key: value for key, value in metrics.items()}


def _step_scheduler(scheduler: Any, record: dict[str, float]) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(record.get("val_loss", record["train_loss"]))
    else:
        scheduler.step()


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside, each module's own train/eval flag restored on the way out."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
