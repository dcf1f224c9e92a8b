"""What the training loop accepts as a batch and as a model's output, and the target checks.

Batches come in two conventions:

- ``(inputs, targets)`` pairs, as torchvision datasets give them; ``inputs`` is a tensor, or a
  dict of keyword arguments for the model;
- dicts holding the targets under ``"labels"`` (or ``"label"``) and the model's keyword arguments
  under the other keys, as Hugging Face datasets give them (``{"pixel_values": ..., "labels":
  ...}``).

A model may return logits, a named tuple with a ``logits`` field and auxiliary logits
(GoogLeNet and Inception v3 in train mode), or an object with a ``logits`` attribute (a Hugging
Face ``ModelOutput``). Targets are class indices; they are checked before the loss sees them,
so a wrong label never reaches an optimizer step (or, on a GPU, a device-side assert).
``batch_loss`` puts these together: one batch in, its loss, logits and targets out.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import Subset, TensorDataset

from ftlib.device import autocast, to_device
from ftlib.training.arguments import check_topk_fits
from ftlib.training.performance import Performance, prepare_inputs

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

TARGET_KEYS = ("labels", "label")
"""Keys under which a dict batch holds its targets (Hugging Face's names), first match wins."""

AUX_LOSS_WEIGHT = 0.3
"""Weight of each auxiliary head's loss (GoogLeNet, Inception v3) in training, as in GoogLeNet's
paper (Szegedy et al. 2015). Accuracies are always those of the main head."""


def batch_loss(
    model: nn.Module,
    batch: Any,
    *,
    device: torch.device,
    loss_fn: LossFn,
    dtype: torch.dtype | None,
    performance: Performance,
    check_targets: bool,
    fitting_topk: Sequence[int] = (),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The forward pass of one batch: ``(loss, logits, targets)``, targets on ``device``.

    Why: ``fit``, ``evaluate`` and ``lr_find`` must read batches, check targets and weigh
    auxiliary heads the same way. Targets are checked where the loader left them (usually the
    CPU, so the check does not wait for a GPU) and before the loss sees them; so are the
    ``fitting_topk`` (each k at most the number of classes) and the loss (one number).
    """
    inputs, targets = split_batch(batch)
    if check_targets:
        targets = check_target_format(targets)
    labels = targets
    inputs, targets = to_device((inputs, targets), device)
    inputs = prepare_inputs(inputs, performance)
    with autocast(device, dtype=dtype) if dtype is not None else contextlib.nullcontext():
        logits, aux_logits = split_outputs(call_model(model, inputs))
        if check_targets:
            _check_logits_shape(logits, labels)
            check_target_range(labels, logits.shape[1])
            check_topk_fits(fitting_topk, logits.shape[1])
        loss = _batch_mean(loss_fn(logits, targets))
        for aux in aux_logits:
            loss = loss + AUX_LOSS_WEIGHT * loss_fn(aux, targets)
    return loss, logits, targets


def _check_logits_shape(logits: torch.Tensor, targets: torch.Tensor) -> None:
    """Class-index targets need one row of class scores per sample: shape ``(batch, classes)``."""
    if logits.ndim != 2 or len(logits) != len(targets):
        raise ValueError(
            f"the model returned logits of shape {tuple(logits.shape)} for {len(targets)} "
            "targets; a classifier returns (batch, classes). Pool and flatten the features "
            "before the head, or, for per-pixel or other targets, pass your own loss_fn and "
            "topk=()"
        )


def _batch_mean(loss: Any) -> torch.Tensor:
    """Refuse a loss that is not one number: backward needs a scalar, and the history a mean."""
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        got = f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else describe(loss)
        raise ValueError(
            f"loss_fn must return the batch's mean loss as a 0-dim tensor, got {got}; use "
            "reduction='mean' (the default), or return losses.mean() from your function"
        )
    return loss


def batches(loader: Iterable[Any]) -> Iterator[Any]:
    """The batches of ``loader`` (iterated once), with what to do when torch cannot collate them.

    Why: a dataset of PIL images or of images of several sizes fails inside the DataLoader with
    a message about collating, not about the transform that is missing.
    """
    iterator = iter(loader)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except (TypeError, RuntimeError) as error:
            hint = _collate_hint(str(error))
            if hint is None:
                raise
            raise type(error)(hint) from error
        yield batch


def _collate_hint(error: str) -> str | None:
    if "default_collate" in error and "PIL" in error:
        return (
            "the dataset returns PIL images, which a DataLoader cannot put in one batch; turn "
            "them into tensors in its transform, e.g. transforms.Compose([transforms.ToImage(), "
            "transforms.ToDtype(torch.float32, scale=True)])"
        )
    if "stack expects each tensor to be equal size" in error:
        return (
            f"the samples of a batch have different sizes ({error.strip().splitlines()[-1]}); "
            "resize the images to one size in the dataset's transform, e.g. "
            "transforms.Resize((224, 224))"
        )
    return None


def split_batch(batch: Any) -> tuple[Any, torch.Tensor]:
    """``(inputs, targets)`` of a pair or a dict batch.

    Raises:
        ValueError: the batch is neither, with what it is and how to make it fit.
    """
    if isinstance(batch, Mapping):
        key = next((key for key in TARGET_KEYS if key in batch), None)
        if key is None:
            raise ValueError(
                f"a dict batch needs its targets under 'labels' (or 'label'), got the keys "
                f"{sorted(batch)}; rename the target key, or yield (inputs, targets) pairs"
            )
        return _without_targets(batch), batch[key]
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError(
        f"expected each batch to be (inputs, targets) or a dict with 'labels', got "
        f"{describe(batch)}; make the dataset return (input, target) pairs"
    )


def inputs_of(batch: Any) -> Any:
    """The model inputs of a batch that may carry no targets (``predict``).

    Accepts a tensor, ``(inputs, ...)`` with a tensor or dict first, or a dict batch (its
    target keys, if any, are left out).

    Raises:
        ValueError: no inputs can be found in the batch.
    """
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, Mapping):
        return _without_targets(batch)
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], (torch.Tensor, Mapping)):
        return batch[0]
    raise ValueError(
        f"expected each batch to be an input tensor, (inputs, ...) or a dict of model inputs, "
        f"got {describe(batch)}"
    )


def call_model(model: nn.Module, inputs: Any) -> Any:
    """``model(**inputs)`` for a dict of keyword arguments, else ``model(inputs)``.

    Raises:
        ValueError: the inputs are not tensors, or torch refused their dtype or channels; the
            message says how to convert the images (torch's own error is chained).
    """
    if isinstance(inputs, (list, tuple)) and not all(isinstance(i, torch.Tensor) for i in inputs):
        kinds = sorted({type(i).__name__ for i in inputs})
        raise ValueError(
            f"the inputs of a batch are a {type(inputs).__name__} of {', '.join(kinds)}, not a "
            "tensor; make the dataset turn each sample into a tensor (for images: "
            "transforms.Compose([transforms.ToImage(), transforms.ToDtype(torch.float32, "
            "scale=True)]))"
        )
    try:
        return model(**inputs) if isinstance(inputs, Mapping) else model(inputs)
    except RuntimeError as error:
        hint = _input_hint(model, inputs, str(error))
        if hint is None:
            raise
        raise ValueError(hint) from error


def _layout_hint(inputs: torch.Tensor, wanted: int, got: int) -> str:
    """What the batch's shape says about why its channels do not fit, and the fix."""
    shape = tuple(inputs.shape)
    if inputs.ndim == 4 and shape[-1] == wanted:
        return (
            f"the batch of shape {shape} holds channels last (batch, height, width, channels); "
            "move them: images.permute(0, 3, 1, 2), or transforms.ToImage() in the dataset"
        )
    if inputs.ndim == 3:
        return (
            f"the batch of shape {shape} has no channel dimension (batch, height, width); add "
            f"one: images.unsqueeze(1){'.expand(-1, 3, -1, -1)' if wanted == 3 else ''}"
        )
    if (wanted, got) == (3, 1):
        fix = "transforms.Grayscale(num_output_channels=3), or image.convert('RGB')"
    elif (wanted, got) == (3, 4):
        fix = "drop the alpha channel: image.convert('RGB'), or images[:, :3]"
    else:
        fix = f"resize them, or give the model a first layer for {got} channels"
    return f"the images have {got} (batch of shape {shape}); convert them: {fix}"


def _input_hint(model: nn.Module, inputs: Any, error: str) -> str | None:
    """What to change when torch refused an input tensor's dtype or number of channels."""
    if not isinstance(inputs, torch.Tensor):
        return None
    channels = re.search(r"expected input\[.*\] to have (\d+) channels, but got (\d+)", error)
    if channels:
        wanted, got = (int(n) for n in channels.groups())
        return f"the model's first layer takes {wanted} channels, but " + _layout_hint(
            inputs, wanted, got
        )
    weights = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    dtype_words = ("Input type", "expected scalar type", "should be the same", "same dtype")
    if weights is None or inputs.dtype == weights or not any(w in error for w in dtype_words):
        return None
    convert = (
        "scale them to floats: transforms.ToDtype(torch.float32, scale=True), or "
        "images.float() / 255"
        if not inputs.is_floating_point()
        else f"convert them with images.to({weights})"
    )
    return (
        f"the inputs are {inputs.dtype} but the model's weights are {weights}; {convert} in "
        "the dataset's transform"
    )


def split_outputs(outputs: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(main logits, auxiliary logits) of a forward pass.

    GoogLeNet and Inception v3 return a named tuple with ``logits`` and auxiliary logits in
    train mode (``GoogLeNetOutputs``, ``InceptionOutputs``); Hugging Face models a
    ``ModelOutput`` whose other fields (hidden states, attentions, a loss) are no logits.

    Raises:
        ValueError: no logits in what the model returned.
    """
    if isinstance(outputs, torch.Tensor):
        return outputs, []
    fields = getattr(outputs, "_asdict", lambda: {})()
    if isinstance(fields.get("logits"), torch.Tensor):
        aux = [value for key, value in fields.items() if key != "logits" and value is not None]
        return fields["logits"], aux
    if isinstance(getattr(outputs, "logits", None), torch.Tensor):
        return outputs.logits, []
    raise ValueError(
        f"the model returned {describe(outputs)}, not a tensor of logits (or an output with a "
        "'logits' field, as GoogLeNet, Inception v3 and Hugging Face models return)"
    )


def check_target_format(targets: Any) -> torch.Tensor:
    """Class-index targets as ``torch.long``, or a ValueError that says what to change.

    Why: cross-entropy and top-k accuracy need one class index per sample; one-hot rows, float
    labels and nested lists fail late and obscurely (or train on the wrong thing).
    """
    if not isinstance(targets, torch.Tensor):
        raise ValueError(
            f"targets must be a tensor of class indices, got {describe(targets)}; return "
            "torch.tensor(label) (or an int) from the dataset's __getitem__"
        )
    shape = tuple(targets.shape)
    if targets.is_floating_point() and targets.ndim == 2:
        raise ValueError(
            f"targets of shape {shape} and dtype {targets.dtype} look like one-hot or "
            "probability rows; fit needs class indices of shape (batch,): use "
            "targets.argmax(dim=1). For soft targets pass your own loss_fn and topk=()"
        )
    if targets.ndim == 0:
        raise ValueError(
            "targets must be class indices of shape (batch,), got a single target of shape (); "
            "the loader yields single samples, not batches: wrap the dataset in "
            "torch.utils.data.DataLoader(dataset, batch_size=32)"
        )
    if targets.ndim != 1:
        raise ValueError(
            f"targets must be class indices of shape (batch,), got shape {shape}; "
            "return one integer label per sample"
        )
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise ValueError(
            f"targets must be integer class indices, got dtype {targets.dtype}; convert them "
            "with targets.long() (after rounding, if they are whole numbers stored as floats)"
        )
    return targets if targets.dtype == torch.long else targets.long()


def check_target_range(targets: torch.Tensor, num_classes: int, where: str = "") -> None:
    """Raise ValueError unless every target is a valid index into ``num_classes`` logits;
    ``where`` says where the targets come from, for the message."""
    low, high = (value.item() for value in torch.aminmax(targets))
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        found = f" (in {where}, found before any training step)" if where else ""
        raise ValueError(
            f"target {bad}{found} is out of range for a model with {num_classes} outputs (valid "
            f"classes: 0 to {num_classes - 1}); give the model one output per class "
            "(ftlib.swap_head(model, num_classes=...)), or number the classes from 0"
            + (
                "; labels a loss ignores (ignore_index=-100) need your own loss_fn and topk=()"
                if bad < 0
                else ""
            )
        )


def declared_targets(loader: Any) -> torch.Tensor | None:
    """Every target of a DataLoader's dataset, when the dataset lists them, else None.

    Why: a bad label in the last batch would otherwise be found after an epoch of steps. The
    lists read are torchvision's ``targets`` (ImageFolder and the built-in datasets, passed
    through their ``target_transform``), a two-tensor ``TensorDataset``'s second tensor, and
    ``Subset``s of either.
    """
    dataset, indices = getattr(loader, "dataset", None), None
    while isinstance(dataset, Subset):
        chosen = torch.as_tensor(dataset.indices, dtype=torch.long).reshape(-1)
        indices = chosen if indices is None else chosen[indices]
        dataset = dataset.dataset
    if isinstance(dataset, TensorDataset):
        targets = dataset.tensors[1] if len(dataset.tensors) == 2 else None
    else:
        targets = getattr(dataset, "targets", None)
    transform = getattr(dataset, "target_transform", None)
    try:
        if targets is not None and transform is not None:
            targets = [transform(int(target)) for target in targets]
        targets = torch.as_tensor(targets) if targets is not None else None
    except Exception:  # a transform or a list that gives no class indices: nothing to check
        return None
    if targets is None or targets.ndim != 1 or not _is_integral(targets) or not len(targets):
        return None
    return targets[indices] if indices is not None else targets


def listed_targets(train_loader: Any, val_loader: Any) -> list[tuple[str, torch.Tensor]]:
    """(where from, every target) of the training and validation sets that list them."""
    listed = [("the training set", train_loader), ("the validation set", val_loader)]
    return [
        (where, targets)
        for where, loader in listed
        if (targets := declared_targets(loader)) is not None
    ]


def _is_integral(tensor: torch.Tensor) -> bool:
    return not (tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool)


def describe(value: Any) -> str:
    """A short description of a batch or output for error messages: its type, and size."""
    if isinstance(value, Mapping):
        return f"a {type(value).__name__} with keys {sorted(map(str, value))}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def _without_targets(batch: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in batch.items() if key not in TARGET_KEYS}
