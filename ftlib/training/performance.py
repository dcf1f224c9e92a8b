"""How fast a run goes: mixed-precision dtype, memory layout, compilation.

None of these changes what a model learns beyond float rounding, so they are grouped apart from
the options that do (learning rate, epochs, loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ftlib.device import amp_dtype

AmpSetting = bool | str
"""``fit(amp=...)``: True (the device's choice), False (float32), "bf16" or "fp16"."""

_AMP_NAMES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
_AMP_NAMES.update({"fp16": torch.float16, "float16": torch.float16})


@dataclass(frozen=True)
class Performance:
    """Speed settings for ``fit``.

    Args:
        channels_last: store images and convolution weights as NHWC, the layout tensor cores
            (and oneDNN on CPUs) prefer; mostly a GPU speed-up with mixed precision.
        compile: ``torch.compile`` the model: True for PyTorch's default backend ("inductor"),
            or a backend name ("aot_eager" checks the tracing without generating code). The
            first steps pay for the compilation; worth it for long runs.
    """

    channels_last: bool = False
    compile: bool | str = False

    def __post_init__(self) -> None:
        if not isinstance(self.compile, (bool, str)):
            raise ValueError(
                f"compile must be True, False or a torch.compile backend name, got {self.compile!r}"
            )


def resolve_amp(amp: AmpSetting, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``fit(amp=...)`` on ``device``, None for float32.

    Raises:
        ValueError: an unknown setting, or bfloat16 asked of a GPU without it.
    """
    if amp is True:
        return amp_dtype(device)
    if amp is False:
        return None
    dtype = _AMP_NAMES.get(amp.lower()) if isinstance(amp, str) else None
    if dtype is None:
        raise ValueError(
            f"amp must be True (the device's choice), False (float32), 'bf16' or 'fp16', "
            f"got {amp!r}"
        )
    if dtype == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(
            f"this GPU ({torch.cuda.get_device_name(device)}) has no bfloat16; use amp='fp16' "
            "(with loss scaling) or amp=False"
        )
    return dtype


def use_layout(model: nn.Module, performance: Performance) -> None:
    """Store the model's weights channels-last when asked for (in place)."""
    if performance.channels_last:
        model.to(memory_format=torch.channels_last)


def compiled(model: nn.Module, performance: Performance) -> nn.Module:
    """``model`` itself, or its ``torch.compile`` wrapper (which shares the weights)."""
    if performance.compile is False:
        return model
    backend = "inductor" if performance.compile is True else performance.compile
    return torch.compile(model, backend=backend)


def prepare_inputs(inputs: object, performance: Performance) -> object:
    """Image batches (4-d tensors) in channels-last layout when asked for, else unchanged."""
    if performance.channels_last and isinstance(inputs, torch.Tensor) and inputs.ndim == 4:
        return inputs.contiguous(memory_format=torch.channels_last)
    return inputs
