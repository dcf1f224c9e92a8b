"""Feature caching: with a frozen body, compute its outputs once and train the head on them.

In state (2) only the head learns, yet a plain training loop pushes every image through the whole
frozen body in every epoch, getting the same features each time. ``fit_head_cached`` runs the body
once, records what goes into the head (a forward hook; no surgery), and trains the head on that
cache: the same trained head as ``fit`` on the frozen model, for a fraction of the time per epoch.

The result is the same because a frozen body is a fixed function: batch-norm and dropout layers
held in eval mode (``ftlib.freeze``'s default) and inputs without random augmentation.
With augmentation each epoch sees new images, and a cache would freeze one draw of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ftlib.device import best_device, to_device
from ftlib.surgery.heads import find_head, find_heads
from ftlib.training.arguments import check_run_inputs
from ftlib.training.batches import call_model, split_batch, split_outputs
from ftlib.training.loop import (
    DEFAULT_LR,
    DEFAULT_WEIGHT_DECAY,
    History,
    default_optimizer,
    eval_mode,
    fit,
)
from ftlib.training.progress import progress_bar


def extract_features(
    model: nn.Module,
    loader: DataLoader,
    *,
    head: str | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> TensorDataset:
    """The inputs the head receives for every sample of ``loader``, with their targets.

    Why: a frozen body turns each image into the same feature vector every time; compute it once.

    Args:
        model: the network; run in eval mode without gradients (each module's mode is
            restored afterwards) and moved to ``device``.
        loader: yields ``(inputs, targets)`` over a map-style dataset. It is read in dataset
            order, with its batch size and collate function; its shuffling and random number
            generators are left untouched.
        head: qualified name of the head; None finds it with ``ftlib.find_head``.
        device: where to run the body; None picks the best available.
        progress: show a progress bar.

    Returns:
        ``TensorDataset(features, targets)`` on the CPU; row ``i`` belongs to ``dataset[i]``.

    Raises:
        ValueError: an empty dataset, a dataset without ``__len__``/``__getitem__``, or batches
            that are not ``(inputs, targets)``.
    """
    features, _ = _extract(model, loader, head or find_head(model), best_device(device), progress)
    return features


def fit_head_cached(
    model: nn.Module,
    train_loader: DataLoader,
    *,
    head: str | None = None,
    val_loader: DataLoader | None = None,
    epochs: int,
    **fit_kwargs: Any,
) -> History:
    """Train only the head of a model whose body is frozen, on features computed once.

    Why: state (2) (feature extraction, linear probing) in seconds rather than minutes.

    The cache is served with ``train_loader``'s own batch sampler and generator, so batches hold
    the same samples in the same order as ``fit`` would see: with the same seed, the trained head
    matches ``fit(model, train_loader, ...)`` up to float rounding. (With mixed precision on a GPU
    ``fit`` runs the body in half precision, while the features are computed in float32.)

    Args:
        model: the network, body frozen (e.g. ``ftlib.prepare(model, "head")``). Its head
            module is trained in place.
        train_loader: yields ``(inputs, targets)`` from a map-style dataset, without random
            augmentation.
        head: qualified name of the head; None finds it with ``ftlib.find_head``.
        val_loader: when given, its features are cached too and evaluated after each epoch.
        epochs: number of passes over the cache, at least 1.
        **fit_kwargs: passed on to ``ftlib.training.fit`` (optimizer, lr, weight_decay,
            loss_fn, device, amp, clip_grad_norm, topk, scheduler, progress, ...). An optimizer
            must hold the head's parameters (one built over all trainable parameters of the
            model does); without one, the head gets what ``fit`` would give it on the whole
            model (``default_optimizer(model, ...)``: the head's rate, ``10 * lr``).

    Returns:
        The ``History`` of ``fit`` on the cache; ``seconds`` excludes the one-off extraction.

    Raises:
        ValueError: parameters outside the head are trainable, the head has none, the model
            changes the head's output afterwards (so the head's output is not the logits), or
            the loader has no batch sampler (``batch_size=None`` or an iterable dataset).
    """
    check_run_inputs("fit_head_cached", model, train_loader, val_loader=val_loader, **fit_kwargs)
    heads = find_heads(model, head)
    head, head_module = heads[0], model.get_submodule(heads[0])
    _check_only_head_trains(model, head, others=heads[1:])
    if train_loader.batch_sampler is None:
        raise ValueError(
            "fit_head_cached needs a train_loader that batches a map-style dataset "
            "(DataLoader(dataset, batch_size=...)); use fit for this loader"
        )
    device = best_device(fit_kwargs.pop("device", None))
    progress = fit_kwargs.get("progress", True)
    if fit_kwargs.get("optimizer") is None:
        fit_kwargs["optimizer"] = default_optimizer(
            model,
            lr=fit_kwargs.pop("lr", DEFAULT_LR),
            weight_decay=fit_kwargs.pop("weight_decay", DEFAULT_WEIGHT_DECAY),
        )
    train_features, head_is_last = _extract(model, train_loader, head, device, progress)
    if not head_is_last:
        raise ValueError(
            f"{type(model).__name__} transforms the output of its head {head!r} before "
            "returning it, so training the head alone would not train the logits; use fit"
        )
    # Same batch sampler and generator: the same batches in the same order as train_loader.
    cache = DataLoader(
        train_features, batch_sampler=train_loader.batch_sampler, generator=train_loader.generator
    )
    val_cache = None
    if val_loader is not None:
        val_features, _ = _extract(model, val_loader, head, device, progress)
        val_cache = DataLoader(val_features, batch_size=val_loader.batch_size or 1)
    return fit(head_module, cache, epochs=epochs, val_loader=val_cache, device=device, **fit_kwargs)


def _extract(
    model: nn.Module, loader: DataLoader, head: str, device: torch.device, progress: bool
) -> tuple[TensorDataset, bool]:
    """Cached features and whether the model returns the head's output unchanged."""
    head_module = model.get_submodule(head)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def record(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        seen.append((args[0].detach(), output))

    features, targets, head_is_last = [], [], True
    model.to(device)
    ordered = _in_order(loader)
    bar = progress_bar(
        total=len(ordered), desc="extract features", unit="batch", enabled=progress, leave=False
    )
    handle = head_module.register_forward_hook(record)
    try:
        with _rng_untouched(), eval_mode(model), torch.no_grad():
            for batch in ordered:
                inputs, batch_targets = to_device(split_batch(batch), device)
                seen.clear()
                logits, _ = split_outputs(call_model(model, inputs))
                if len(seen) != 1:
                    raise ValueError(
                        f"the head {head!r} ran {len(seen)} times in one forward pass; "
                        "caching needs it to run exactly once"
                    )
                head_input, head_output = seen[0]
                head_is_last = head_is_last and (
                    head_output is logits or torch.equal(head_output, logits)
                )
                features.append(head_input.cpu())
                targets.append(batch_targets.cpu())
                bar.update()
    finally:
        handle.remove()
        bar.close()
    return TensorDataset(torch.cat(features), torch.cat(targets)), head_is_last


def _in_order(loader: DataLoader) -> DataLoader:
    """A twin of ``loader`` that reads its dataset once, in order."""
    dataset = loader.dataset
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise ValueError(
            f"feature caching needs a map-style dataset (with __len__ and __getitem__), got "
            f"{type(dataset).__name__}; use fit instead"
        )
    if len(dataset) == 0:
        raise ValueError("the loader's dataset is empty; there are no features to extract")
    return DataLoader(
        dataset,
        batch_size=loader.batch_size or 1,
        collate_fn=loader.collate_fn,
        num_workers=loader.num_workers,
        pin_memory=loader.pin_memory,
    )


@contextmanager
def _rng_untouched() -> Iterator[None]:
    """Restore the global random state afterwards, so a later ``fit`` draws what it would have.

    Reading a dataset draws from it (a DataLoader seeds its workers), and so could a dataset.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        yield


def _check_only_head_trains(model: nn.Module, head: str, others: list[str]) -> None:
    """The head, and nothing outside the heads, must train. The other heads (GoogLeNet's
    auxiliary ones) may be trainable as ``prepare`` leaves them: only ``head`` trains here."""
    prefix = head + "."
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    spared = tuple(name + "." for name in others)
    outside = [name for name in trainable if not name.startswith((prefix, *spared))]
    if outside:
        shown = ", ".join(outside[:5]) + (", ..." if len(outside) > 5 else "")
        raise ValueError(
            f"fit_head_cached trains only the head {head!r}, but {len(outside)} parameters "
            f"outside it are trainable ({shown}); freeze the body first, e.g. "
            "ftlib.prepare(model, 'head'), or use fit"
        )
    if not trainable:
        raise ValueError(
            f"the head {head!r} has no trainable parameters; unfreeze it "
            f"(ftlib.unfreeze(model, {head!r}))"
        )
