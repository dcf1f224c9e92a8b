"""Checks for the lessons' test cells that an answer cannot win by cheating.

A test cell runs in the same interpreter as the learner's code, so a plain
``assert abs(got - 0.32) < 1e-12`` can be beaten without doing the exercise: return a ``float``
subclass whose comparisons always succeed, or rebind ``abs``, ``isinstance`` or
``torch.allclose`` before the test runs. Every lesson therefore imports ``check`` in a locked
cell before any answer cell runs::

    from ftlib_course.checks import check

``check`` captured the built-ins and library functions it compares with when it was imported,
accepts answers only of exact, known types (a ``float`` is a ``float``, not a subclass; a tensor
is a plain ``torch.Tensor`` or ``nn.Parameter``), turns them into plain values before comparing,
and raises ``AssertionError`` with a message that says what was expected and what came back.
Its methods are defined in a closure and the object has no instance dictionary, so replacing
one means writing to a class or a function's attributes, which the grading kernel's audit hook
reports. ``check.passed(name)`` ends a test cell with a short confirmation line.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

PASS_MARK = "✓"
"""The first character of the line a passing test cell prints."""


def _make_check() -> Any:
    """Build the ``check`` object with every reference it needs bound in its closure."""
    type_, repr_, float_, int_ = builtins.type, builtins.repr, float, int
    abs_, print_, issubclass_, getattr_ = builtins.abs, builtins.print, issubclass, getattr
    bool_, dict_ = bool, dict
    isnan, isfinite = math.isnan, math.isfinite
    tensor_type, parameter_type = torch.Tensor, nn.Parameter
    detach, to_float64, cpu = torch.Tensor.detach, torch.Tensor.double, torch.Tensor.cpu
    allclose, equal, isnan_all = torch.allclose, torch.equal, torch.isnan
    no_torch_function = torch._C.DisableTorchFunction
    numpy_reals = frozenset(
        [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64]
        + [np.uint8, np.uint16, np.uint32, np.uint64]
    )
    plain_scalars = frozenset([bool, int, float, str, type(None)])  # exact types only
    plain_containers = {list: list, tuple: tuple}
    assertion_error = AssertionError

    def fail(message: str, hint: str | None) -> None:
        __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out
        raise assertion_error(message + (f" ({hint})" if hint else ""))

    def kind(value: object) -> str:
        __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out
        cls = type_(value)
        module = getattr_(cls, "__module__", "")
        name = getattr_(cls, "__qualname__", "?")
        return name if module in ("builtins", "") else f"{module}.{name}"

    def real(value: object, what: str, hint: str | None) -> float:
        """A plain float from a number of an exact, known type."""
        __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out
        cls = type_(value)
        if cls is float_ or cls is int_:
            return float_(value)
        if cls in numpy_reals:
            return float_(value)
        if cls is tensor_type:
            advice = "use .item() to get a Python number"
        elif issubclass_(cls, (float_, int_)):
            advice = "return a plain float or int, not an object of a subclass"
        else:
            advice = "return a number"
        fail(f"{what} should be a number, got {kind(value)}; {advice}", hint)
        return 0.0  # not reached

    def plain(value: object, what: str, hint: str | None) -> object:
        """``value`` rebuilt from exact built-in types (lists, tuples, dicts of scalars)."""
        __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out
        cls = type_(value)
        if cls in plain_scalars:
            return value
        if cls in numpy_reals:
            return float_(value) if cls.__name__.startswith("float") else int_(value)
        if cls in plain_containers:
            return plain_containers[cls](plain(item, what, hint) for item in value)
        if cls is dict_:
            return {plain(k, what, hint): plain(v, what, hint) for k, v in value.items()}
        fail(f"{what} should be made of plain Python values, got {kind(value)}", hint)
        return None  # not reached

    def as_tensor(value: object, what: str, hint: str | None) -> torch.Tensor:
        __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out
        cls = type_(value)
        if cls is not tensor_type and cls is not parameter_type:
            fail(f"{what} should be a torch.Tensor, got {kind(value)}", hint)
        with no_torch_function():
            return detach(value)

    class Check:
        """Comparisons for test cells; see the module docstring."""

        __slots__ = ()

        def is_float(self, value: object, what: str, *, hint: str | None = None) -> float:
            """``value`` if it is exactly a Python float, else AssertionError."""
            __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out
            if type_(value) is not float_:
                advice = ""
                if type_(value) is tensor_type:
                    advice = "; use .item() to turn a one-element tensor into a float"
                elif type_(value) in numpy_reals or type_(value) is int_:
                    advice = "; wrap it in float(...)"
                fail(f"{what} should be a Python float, got {kind(value)}{advice}", hint)
            return value

        def is_int(self, value: object, what: str, *, hint: str | None = None) -> int:
            """``value`` if it is exactly a Python int (not a bool), else AssertionError."""
            __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out
            if type_(value) is not int_:
                advice = "; wrap it in int(...)" if type_(value) in numpy_reals else ""
                fail(f"{what} should be a Python int, got {kind(value)}{advice}", hint)
            return value

        def is_bool(self, value: object, what: str, *, hint: str | None = None) -> bool:
            """``value`` if it is exactly True or False, else AssertionError."""
            __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out
            if type_(value) is not bool_:
                fail(f"{what} should be True or False, got {kind(value)}", hint)
            return value

        def is_tensor(
            self,
            value: object,
            what: str,
            *,
            shape: tuple[int, ...] | None = None,
            dtype: torch.dtype | None = None,
            hint: str | None = None,
        ) -> torch.Tensor:
            """``value`` detached, if it is a plain tensor of the given shape and dtype."""
            __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out
            tensor = as_tensor(value, what, hint)
            if shape is not None and tuple(tensor.shape) != tuple(shape):
                fail(f"{what} should have shape {tuple(shape)}, got {tuple(tensor.shape)}", hint)
            if dtype is not None and tensor.dtype != dtype:
                fail(f"{what} should have dtype {dtype}, got {tensor.dtype}", hint)
            return tensor

        def is_instance(
            self, value: object, cls: type, what: str, *, hint: str | None = None
        ) -> Any:
            """``value`` if its type is ``cls`` or a subclass of it (e.g. an ``nn.Module``)."""
            __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out
            if not issubclass_(type_(value), cls):
                fail(f"{what} should be a {cls.__name__}, got {kind(value)}", hint)
            return value

        def close(
            self,
            got: object,
            expected: float,
            what: str,
            *,
            tol: float = 1e-9,
            rel: float = 0.0,
            hint: str | None = None,
        ) -> float:
            """``got`` as a float, if it is within ``tol + rel * |expected|`` of ``expected``.

            ``expected`` may be nan, which only nan matches.
            """
            __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out
            value, target = real(got, what, hint), real(expected, "the expected value", None)
            if isnan(target):
                if not isnan(value):
                    fail(f"{what}: expected nan, got {value!r}", hint)
                return value
            if not isfinite(value) or abs_(value - target) > tol + rel * abs_(target):
                fail(f"{what}: expected {target!r} (within {tol:g}), got {value!r}", hint)
            return value

        def equal(self, got: object, expected: object, what: str, *, hint: str | None = None):
            """``got`` as plain values, if it equals ``expected`` exactly (types included)."""
            __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out
            value = plain(got, what, hint)
            target = plain(expected, "the expected value", None)
            # Both are rebuilt from exact built-in types, so == and repr cannot be overridden.
            if type_(value) is not type_(target) or value != target:
                fail(f"{what}: expected {repr_(target)}, got {repr_(value)}", hint)
            return value

        def tensor_close(
            self,
            got: object,
            expected: torch.Tensor,
            what: str,
            *,
            atol: float = 1e-6,
            rtol: float = 1e-5,
            hint: str | None = None,
        ) -> torch.Tensor:
            """``got`` detached, if it has ``expected``'s shape and values within tolerance.

            Compared in float64 on the CPU, so a float32 answer of the right values passes;
            nan matches nan.
            """
            __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out
            tensor = as_tensor(got, what, hint)
            target = as_tensor(expected, "the expected value", None)
            if tuple(tensor.shape) != tuple(target.shape):
                fail(
                    f"{what} should have shape {tuple(target.shape)}, got {tuple(tensor.shape)}",
                    hint,
                )
            with no_torch_function():
                a, b = to_float64(cpu(tensor)), to_float64(cpu(target))
                same_nans = equal(isnan_all(a), isnan_all(b))
                if not same_nans or not allclose(a, b, rtol=rtol, atol=atol, equal_nan=True):
                    worst = float_((a - b).abs().nan_to_num(0.0).max())
                    fail(
                        f"{what}: values differ from the expected ones by up to {worst:.3g} "
                        f"(tolerance {atol:g} + {rtol:g} x |expected|)",
                        hint,
                    )
            return tensor

        def tensor_equal(
            self, got: object, expected: torch.Tensor, what: str, *, hint: str | None = None
        ) -> torch.Tensor:
            """``got`` detached, if it has ``expected``'s shape, dtype and exact values."""
            __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out
            tensor = as_tensor(got, what, hint)
            target = as_tensor(expected, "the expected value", None)
            if tensor.dtype != target.dtype:
                fail(f"{what} should have dtype {target.dtype}, got {tensor.dtype}", hint)
            with no_torch_function():
                if tuple(tensor.shape) != tuple(target.shape) or not equal(
                    cpu(tensor), cpu(target)
                ):
                    fail(f"{what}: expected {target.tolist()}, got {tensor.tolist()}", hint)
            return tensor

        def raises(
            self,
            error: type[BaseException],
            call: Callable[..., object],
            *args: object,
            what: str,
            hint: str | None = None,
            **kwargs: object,
        ) -> BaseException:
            """The exception ``call(*args, **kwargs)`` raised, if it is an ``error``."""
            __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out
            try:
                call(*args, **kwargs)
            except BaseException as raised:  # noqa: BLE001 - the type is checked just below
                if issubclass_(type_(raised), error):
                    return raised
                fail(f"{what} should raise {error.__name__}, but raised {kind(raised)}", hint)
            fail(f"{what} should raise {error.__name__}, but returned normally", hint)
            return error()  # not reached

        def that(self, condition: object, message: str) -> None:
            """Fail with ``message`` unless ``condition`` is exactly True."""
            __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out
            if condition is not True:
                fail(message, None)

        def passed(self, name: str) -> None:
            """Print the confirmation line that ends a passing test cell."""
            print_(f"{PASS_MARK} {name}: all checks passed")

    return Check()


check = _make_check()
"""The one instance test cells use: ``from ftlib_course.checks import check``."""
