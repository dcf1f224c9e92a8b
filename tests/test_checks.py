"""ftlib_course.checks: test-cell checks that right answers pass and cheating answers do not."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
import torch
from torch import nn

from ftlib_course.checks import PASS_MARK, check


class AlwaysEqualFloat(float):
    def __eq__(self, other):
        return True

    def __sub__(self, other):
        return 0.0

    __hash__ = float.__hash__


class AlwaysCloseTensor(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return True


def test_right_answers_of_every_accepted_kind_pass():
    assert check.close(0.1 + 0.2, 0.3, "sum") == pytest.approx(0.3)
    assert check.close(np.float32(0.5), 0.5, "float32 half", tol=0) == 0.5
    assert check.close(3, 3.0, "an int for a float", tol=0) == 3.0
    assert check.close(float("nan"), float("nan"), "nan") != 0
    assert check.is_float(0.25, "quarter") == 0.25
    assert check.is_int(7, "seven") == 7
    assert check.is_bool(False, "flag") is False
    assert check.equal([1, (2, "x")], [1, (2, "x")], "nested") == [1, (2, "x")]
    assert check.equal({"a": np.int64(3)}, {"a": 3}, "numpy int in a dict") == {"a": 3}
    weight = nn.Linear(2, 3).weight
    assert check.is_tensor(weight, "a parameter", shape=(3, 2)).requires_grad is False
    check.tensor_close(torch.ones(2, dtype=torch.float32), torch.ones(2, dtype=torch.float64), "x")
    check.tensor_equal(torch.arange(3), torch.arange(3), "range")
    assert isinstance(check.raises(ValueError, int, "x", what="int('x')"), ValueError)
    check.that(1 < 2, "one is less than two")


@pytest.mark.parametrize(
    "call",
    [
        lambda: check.close(AlwaysEqualFloat(0.0), 0.32, "loss"),
        lambda: check.is_float(AlwaysEqualFloat(0.32), "loss"),
        lambda: check.equal(AlwaysEqualFloat(2.0), 2.0, "steps"),
        lambda: check.is_int(True, "steps"),
        lambda: check.is_float(torch.tensor(0.5), "a tensor for a float"),
        lambda: check.close(torch.tensor(0.5), 0.5, "a tensor for a number"),
        lambda: check.tensor_close(
            torch.zeros(3).as_subclass(AlwaysCloseTensor), torch.ones(3), "weights"
        ),
        lambda: check.tensor_close(torch.zeros(3), torch.ones(3), "weights"),
        lambda: check.tensor_equal(torch.zeros(3), torch.zeros(3, dtype=torch.int64), "dtype"),
        lambda: check.tensor_close(torch.zeros(2, 3), torch.zeros(3, 2), "shape"),
        lambda: check.close(0.33, 0.32, "loss", tol=1e-3),
        lambda: check.close(float("inf"), 0.32, "loss", tol=1e9),
        lambda: check.equal((1, 2), [1, 2], "a tuple for a list"),
        lambda: check.raises(ValueError, lambda: None, what="quiet"),
        lambda: check.raises(ValueError, lambda: 1 / 0, what="wrong error"),
        lambda: check.that(np.bool_(True), "numpy's True is not True"),
    ],
)
def test_wrong_or_cheating_answers_fail(call):
    with pytest.raises(AssertionError):
        call()


def test_messages_say_what_was_expected_and_what_came_back():
    with pytest.raises(AssertionError, match=r"loss\(0.1\): expected 0.32 .*got 0.64 \(half\?\)"):
        check.close(0.64, 0.32, "loss(0.1)", hint="half?")
    with pytest.raises(AssertionError, match="Python float, got numpy.float64; wrap it in float"):
        check.is_float(np.float64(1.0), "rate")
    with pytest.raises(
        AssertionError, match="got test_checks.AlwaysEqualFloat; return a plain float"
    ):
        check.close(AlwaysEqualFloat(1.0), 1.0, "rate")


def test_rebinding_builtins_and_torch_functions_does_not_reach_the_checks(monkeypatch):
    monkeypatch.setattr(builtins, "abs", lambda x: 0.0)
    monkeypatch.setattr(torch, "allclose", lambda *args, **kwargs: True)
    monkeypatch.setattr(torch, "equal", lambda *args, **kwargs: True)
    with pytest.raises(AssertionError):
        check.close(1.0, 0.32, "loss")
    with pytest.raises(AssertionError):
        check.tensor_close(torch.zeros(3), torch.ones(3), "weights")
    with pytest.raises(AssertionError):
        check.tensor_equal(torch.zeros(3), torch.ones(3), "weights")


def test_the_check_object_cannot_be_patched_in_place():
    with pytest.raises(AttributeError):
        check.close = lambda *args, **kwargs: None


def test_a_passing_cell_prints_one_confirmation_line(capsys):
    check.passed("loss")
    assert capsys.readouterr().out == f"{PASS_MARK} loss: all checks passed\n"
