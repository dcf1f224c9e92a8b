"""Lesson 1's tests grade the idea of each exercise: right answers written differently earn the
points, plausible wrong ones lose them with a message that says what went wrong.

Each answer runs in a kernel that has run the solution notebook, followed by the exercise's test
cell with its hidden tests, as the autograder runs it.
"""

from __future__ import annotations

import pytest
from lesson_kernel import LessonKernel

from ftlib_course.checks import PASS_MARK

# (answer cell, answer, what the test must say: the pass line, or a part of the failure message)
RIGHT = [
    ("warm_start_loss", "def loss(w, x=X, y=Y):\n    return (w * x - y) ** 2 / 2"),
    ("warm_start_loss", "def loss(w, x=X, y=Y):\n    u = w * x - y\n    return 0.5 * u * u"),
    ("warm_start_gradient", "def gradient(w, x=X, y=Y):\n    return x * x * w - x * y"),
    ("warm_start_gradient", "def gradient(w, x=X, y=Y):\n    return float(x * (w * x - y))"),
    (
        "warm_start_autograd_gradient",
        "def autograd_gradient(w, x=X, y=Y):\n"
        "    w_t = torch.tensor(w, dtype=torch.float64, requires_grad=True)\n"
        "    (slope,) = torch.autograd.grad(loss(w_t, x, y), w_t)\n"
        "    return slope.item()",
    ),
    (
        "warm_start_autograd_gradient",  # float32, against the instructions but right to 1e-7
        "def autograd_gradient(w, x=X, y=Y):\n"
        "    w_t = torch.tensor(w, requires_grad=True)\n"
        "    loss(w_t, x, y).backward()\n"
        "    return float(w_t.grad)",
    ),
    (
        "warm_start_gradient_step",
        "def gradient_step(w, lr, x=X, y=Y):\n    return w - lr * x * (w * x - y)",
    ),
    (
        "warm_start_learning_rate_for",
        "def learning_rate_for(w_before, w_after, x=X, y=Y):\n"
        "    try:\n"
        "        return (w_before - w_after) / gradient(w_before, x, y)\n"
        "    except ZeroDivisionError:\n"
        "        raise ValueError('zero gradient: no learning rate moves the weight') from None",
    ),
    (
        "warm_start_steps_to_tolerance",
        "def steps_to_tolerance(w0, lr, tol, x=X, y=Y, max_steps=1000):\n"
        "    w, steps = w0, 0\n"
        "    while abs(w - y / x) > tol:\n"
        "        if steps == max_steps:\n"
        "            return None\n"
        "        w, steps = gradient_step(w, lr, x, y), steps + 1\n"
        "    return steps",
    ),
    (
        "warm_start_claims_hold",
        "def claims_hold(tol, cold_start=W_SCRATCH, warm_start=W_PRETRAINED, lr=SEED_LR):\n"
        "    cold = steps_to_tolerance(cold_start, lr, tol)\n"
        "    warm = steps_to_tolerance(warm_start, lr, tol)\n"
        "    if cold is None or warm is None:\n"
        "        return False\n"
        "    return 10 <= cold <= 20 and 1 <= warm <= 2",
    ),
    (
        "warm_start_closed_form_steps",
        "def closed_form_steps(w0, lr, tol, x=X, y=Y):\n"
        "    gap, factor = abs(w0 - y / x), abs(1 - lr * x**2)\n"
        "    if gap <= tol:\n"
        "        return 0\n"
        "    if factor >= 1:\n"
        "        return None\n"
        "    if factor == 0:\n"
        "        return 1\n"
        "    return int(math.ceil((math.log(tol) - math.log(gap)) / math.log(factor)))",
    ),
]

WRONG = [
    ("warm_start_loss", "def loss(w, x=X, y=Y):\n    return (w * x - y) ** 2", "forget the 1/2"),
    (
        "warm_start_loss",
        "def loss(w, x=X, y=Y):\n    return float(0.5 * (w * x - y) ** 2)",
        "should be a torch.Tensor",
    ),
    ("warm_start_loss", "def loss(w, x=X, y=Y):\n    return 0.5 * (w * X - Y) ** 2", "x=3.0"),
    (
        "warm_start_gradient",
        "def gradient(w, x=X, y=Y):\n    return 2 * x * (w * x - y)",
        "the 1/2 in the loss",
    ),
    ("warm_start_gradient", "def gradient(w, x=X, y=Y):\n    return X * (w * X - Y)", "x=3.0"),
    (
        "warm_start_gradient",
        "def gradient(w, x=X, y=Y):\n"
        "    w_t = torch.tensor(w, dtype=torch.float64, requires_grad=True)\n"
        "    loss(w_t, x, y).backward()\n"
        "    return w_t.grad.item()",
        "gradient needs torch",
    ),
    (
        "warm_start_gradient",
        "def gradient(w, x=X, y=Y):\n"
        "    h = 1e-6\n"
        "    return (loss(w + h, x, y) - loss(w - h, x, y)) / (2 * h)",
        "gradient called loss",
    ),
    (
        "warm_start_autograd_gradient",
        "def autograd_gradient(w, x=X, y=Y):\n    return float(gradient(w, x, y))",
        "called gradient",
    ),
    (
        "warm_start_autograd_gradient",
        "def autograd_gradient(w, x=X, y=Y):\n"
        "    w_t = torch.tensor(w, dtype=torch.float64, requires_grad=True)\n"
        "    (0.5 * (w_t * x - y) ** 2).backward()\n"
        "    return w_t.grad.item()",
        "evaluate `loss` itself",
    ),
    (
        "warm_start_autograd_gradient",
        "def autograd_gradient(w, x=X, y=Y):\n"
        "    w_t = torch.tensor(w, dtype=torch.float64, requires_grad=True)\n"
        "    loss(w_t, x, y).backward()\n"
        "    return w_t.grad",
        "use .item()",
    ),
    (
        "warm_start_gradient_step",
        "def gradient_step(w, lr, x=X, y=Y):\n    return w + lr * gradient(w, x, y)",
        "instead of subtracting",
    ),
    (
        "warm_start_gradient_step",
        "def gradient_step(w, lr, x=X, y=Y):\n    return w - lr * gradient(w)",
        "pass x and y on",
    ),
    (
        "warm_start_learning_rate_for",
        "def learning_rate_for(w_before, w_after, x=X, y=Y):\n"
        "    return (w_before - w_after) / gradient(w_before, x, y)",
        "should raise ValueError, but raised ZeroDivisionError",
    ),
    (
        "warm_start_learning_rate_for",
        "def learning_rate_for(w_before, w_after, x=X, y=Y):\n"
        "    slope = gradient(w_before, x, y)\n"
        "    if slope == 0:\n"
        "        raise ValueError('zero gradient')\n"
        "    return (w_after - w_before) / slope",
        "check the sign",
    ),
    (
        "warm_start_steps_to_tolerance",
        "def steps_to_tolerance(w0, lr, tol, x=X, y=Y, max_steps=1000):\n"
        "    w = w0\n"
        "    for step in range(1, max_steps + 1):\n"
        "        w = gradient_step(w, lr, x, y)\n"
        "        if abs(w - y / x) <= tol:\n"
        "            return step\n"
        "    return None",
        "already within 0.05",
    ),
    (
        "warm_start_steps_to_tolerance",
        "def steps_to_tolerance(w0, lr, tol, x=X, y=Y, max_steps=1000):\n"
        "    w = w0\n"
        "    for step in range(max_steps + 1):\n"
        "        if abs(w - y / x) <= tol:\n"
        "            return step\n"
        "        w = gradient_step(w, lr, x, y)\n"
        "    return max_steps",
        "return None",
    ),
    (
        "warm_start_steps_to_tolerance",  # one step short of max_steps: a hidden boundary
        "def steps_to_tolerance(w0, lr, tol, x=X, y=Y, max_steps=1000):\n"
        "    w = w0\n"
        "    for step in range(max_steps):\n"
        "        if abs(w - y / x) <= tol:\n"
        "            return step\n"
        "        w = gradient_step(w, lr, x, y)\n"
        "    return None",
        "exactly max_steps steps still counts",
    ),
    (
        "warm_start_claims_hold",
        "def claims_hold(tol, cold_start=W_SCRATCH, warm_start=W_PRETRAINED, lr=SEED_LR):\n"
        "    cold = steps_to_tolerance(cold_start, lr, tol)\n"
        "    warm = steps_to_tolerance(warm_start, lr, tol)\n"
        "    return cold is not None and 10 <= cold <= 20 and warm is not None and warm <= 2",
        "0 steps is not 1 or 2",
    ),
    (
        "warm_start_claims_hold",
        "def claims_hold(tol, cold_start=W_SCRATCH, warm_start=W_PRETRAINED, lr=SEED_LR):\n"
        "    cold = steps_to_tolerance(cold_start, lr, tol)\n"
        "    warm = steps_to_tolerance(warm_start, lr, tol)\n"
        "    return cold is not None and 10 <= cold < 20 and warm in (1, 2)",
        "both ends of 10 to 20 count",
    ),
    (
        "warm_start_claims_hold",
        "def claims_hold(tol, cold_start=W_SCRATCH, warm_start=W_PRETRAINED, lr=SEED_LR):\n"
        "    cold = steps_to_tolerance(cold_start, lr, tol)\n"
        "    warm = steps_to_tolerance(warm_start, lr, tol)\n"
        "    return cold is not None and 10 < cold <= 20 and warm in (1, 2)",
        "cold_start=0.2",
    ),
    (
        "warm_start_claims_hold",
        "def claims_hold(tol, cold_start=W_SCRATCH, warm_start=W_PRETRAINED, lr=SEED_LR):\n"
        "    cold = steps_to_tolerance(cold_start, lr, tol)\n"
        "    warm = steps_to_tolerance(warm_start, lr, tol)\n"
        "    return cold is not None and 10 <= cold <= 20 and warm == 2",
        "warm_start=0.475",
    ),
    (
        "warm_start_claims_hold",
        "def claims_hold(tol, cold_start=W_SCRATCH, warm_start=W_PRETRAINED, lr=SEED_LR):\n"
        "    cold = steps_to_tolerance(cold_start, lr, tol)\n"
        "    warm = steps_to_tolerance(warm_start, lr, tol)\n"
        "    return (cold is not None and 10 <= cold <= 20) * (warm in (1, 2))",
        "should be True or False",
    ),
    (
        "warm_start_closed_form_steps",
        "def closed_form_steps(w0, lr, tol, x=X, y=Y):\n"
        "    return steps_to_tolerance(w0, lr, tol, x, y)",
        "called a step-by-step function",
    ),
    (
        "warm_start_closed_form_steps",
        "def closed_form_steps(w0, lr, tol, x=X, y=Y):\n"
        "    w = w0\n"
        "    for step in range(10**6):\n"
        "        if abs(w - y / x) <= tol:\n"
        "            return step\n"
        "        w -= lr * x * (w * x - y)\n"
        "    return None",
        "too many to count one by one",
    ),
    (
        "warm_start_closed_form_steps",
        "def closed_form_steps(w0, lr, tol, x=X, y=Y):\n"
        "    gap = abs(w0 - y / x)\n"
        "    if gap <= tol:\n"
        "        return 0\n"
        "    return math.ceil(math.log(tol / gap) / math.log(abs(1 - lr * x * x)))",
        "math domain error",
    ),
    (
        "warm_start_closed_form_steps",
        "def closed_form_steps(w0, lr, tol, x=X, y=Y):\n"
        "    gap, factor = abs(w0 - y / x), abs(1 - lr * x * x)\n"
        "    if gap <= tol:\n"
        "        return 0\n"
        "    if factor == 0:\n"
        "        return 1\n"
        "    if factor >= 1:\n"
        "        return None\n"
        "    return round(math.log(tol / gap) / math.log(factor))",
        "expected 8",
    ),
]


@pytest.fixture(scope="module")
def lesson():
    with LessonKernel("01_warm_start") as kernel:
        yield kernel


@pytest.mark.parametrize(("answer_id", "source"), RIGHT)
def test_right_answers_written_differently_earn_the_points(lesson, answer_id, source):
    graded = lesson.grade(answer_id, source)
    assert graded.passed, f"{answer_id}: a right answer failed: {graded.message}"
    assert graded.message.startswith(PASS_MARK)


@pytest.mark.parametrize(("answer_id", "source", "says"), WRONG)
def test_wrong_answers_lose_the_points_with_a_helpful_message(lesson, answer_id, source, says):
    graded = lesson.grade(answer_id, source)
    assert not graded.passed, f"{answer_id}: a wrong answer passed:\n{source}"
    assert says in graded.message, f"{answer_id}: unhelpful message {graded.message!r}"
