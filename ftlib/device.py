"""Where tensors live and in which precision they are computed.

One place decides the device (CUDA, then Apple MPS, then CPU), moves nested batches there and
switches on mixed precision where it helps, so training code never branches on hardware.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any, TypeVar

import torch

DEVICE_ENV_VAR = "FTLIB_DEVICE"

T = TypeVar("T")


def best_device(prefer: str | torch.device | None = None) -> torch.device:
    """Pick the fastest available device, unless told otherwise.

    Why: the same notebook should use a GPU when there is one and still run on a laptop CPU.

    Args:
        prefer: a device such as ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``. When None, the
            environment variable ``FTLIB_DEVICE`` is used if set, else CUDA, then MPS, then CPU.

    Returns:
        The chosen ``torch.device``.

    Raises:
        ValueError: the preference is not a device name, or that device is not available here.
    """
    source = "prefer"
    if prefer is None and os.environ.get(DEVICE_ENV_VAR):
        prefer, source = os.environ[DEVICE_ENV_VAR], f"environment variable {DEVICE_ENV_VAR}"
    if prefer is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(prefer)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"unknown device {prefer!r} (from {source}); use 'cpu', 'cuda', 'cuda:<index>' "
            "or 'mps', or None to pick the best available device"
        ) from error
    if not _is_available(device):
        raise ValueError(
            f"device {str(device)!r} (from {source}) is not available on this machine; "
            "use None to pick the best available device, or 'cpu'"
        )
    return device


def _is_available(device: torch.device) -> bool:
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        index = 0 if device.index is None else device.index
        return torch.cuda.is_available() and index < torch.cuda.device_count()
    if device.type == "mps":
        return torch.backends.mps.is_available()
    return False


def to_device(batch: T, device: str | torch.device, *, non_blocking: bool = True) -> T:
    """Move every tensor in a (nested) batch to ``device``.

    Why: data loaders yield tuples, lists, dicts and namedtuples of tensors; the model needs
    them all on its device, and the containers should come back the way they went in.

    Args:
        batch: a tensor, or tuples/lists/dicts/namedtuples nesting tensors. Anything else is
            returned as it is (labels as strings, file names, ...).
        device: where to move the tensors.
        non_blocking: overlap host-to-accelerator copies with compute (pays off with pinned
            memory). Copies towards the CPU are always blocking so their values are ready.

    Returns:
        A batch of the same structure with tensors on ``device``.
    """
    device = torch.device(device)
    # A non-blocking copy *to* the CPU may be read before it has arrived.
    return _move(batch, device, non_blocking and device.type != "cpu")


def _move(batch: Any, device: torch.device, non_blocking: bool) -> Any:
    if isinstance(batch, torch.Tensor):  # already there: no dispatch (a step counts them)
        return batch if batch.device == device else batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, dict):
        moved = batch.copy()  # keeps the dict subclass (OrderedDict, defaultdict, ...)
        for key, value in batch.items():
            moved[key] = _move(value, device, non_blocking)
        return moved
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(_move(value, device, non_blocking) for value in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_move(value, device, non_blocking) for value in batch)
    return batch


def amp_dtype(device: str | torch.device) -> torch.dtype | None:
    """The low-precision dtype mixed precision should use on ``device``.

    Why: bfloat16 keeps float32's range (no loss scaling needed) but only newer GPUs have it;
    float16 needs a gradient scaler. On CPU and MPS we train in float32.

    Returns:
        ``torch.bfloat16`` on CUDA GPUs that support it, ``torch.float16`` on other CUDA GPUs,
        None elsewhere (mixed precision off).
    """
    if torch.device(device).type != "cuda":
        return None
    # Emulated bfloat16 (pre-Ampere GPUs) is slower than float16, so only native support counts.
    native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.bfloat16 if native_bf16 else torch.float16


@contextlib.contextmanager
def autocast(
    device: str | torch.device, enabled: bool = True, *, dtype: torch.dtype | None = None
) -> Iterator[None]:
    """Run the enclosed forward pass in mixed precision where that is supported.

    Why: on a GPU half-precision matmuls are several times faster and use half the memory;
    elsewhere this context does nothing, so the same training loop runs everywhere.

    Args:
        device: the device the model runs on.
        enabled: False turns mixed precision off (for debugging numerics).
        dtype: ``torch.bfloat16`` or ``torch.float16`` to choose the precision yourself, on any
            device whose autocast has it (CUDA, and the CPU too); None picks ``amp_dtype``.
    """
    device = torch.device(device)
    dtype = dtype if dtype is not None else amp_dtype(device)
    if not enabled or dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def grad_scaler(
    device: str | torch.device, enabled: bool = True, *, dtype: torch.dtype | None = None
) -> torch.amp.GradScaler:
    """A gradient scaler that is active only when the loss needs scaling (float16 autocast).

    Why: float16 gradients underflow to zero unless the loss is scaled up first; bfloat16 and
    float32 do not need it. A disabled scaler passes ``scale``/``step``/``update`` straight through,
    so callers can always use it.

    Args:
        device, enabled, dtype: as for ``autocast``.

    Returns:
        A ``torch.amp.GradScaler``, enabled only when the autocast dtype is float16 (by default
        on CUDA GPUs without native bfloat16).
    """
    device = torch.device(device)
    dtype = dtype if dtype is not None else amp_dtype(device)
    active = enabled and device.type in ("cuda", "cpu") and dtype == torch.float16
    return torch.amp.GradScaler("cuda" if device.type == "cuda" else "cpu", enabled=active)
