"""Lesson 1's tests grade the idea of each exercise: right answers written differently earn the
points, plausible wrong ones lose them with a message that says what went wrong, and a mistake
that breaks a rule the exercise states already fails the visible test.

Each answer runs in one real kernel that has run the solution notebook, followed by the
exercise's test cell, as the autograder runs it.
"""

from __future__ import annotations

from lesson_kernel import Answer, answer_tests

RIGHT = [
    Answer(
        "warm_start_loss", "divides by 2", "def loss(w, x=X, y=Y):\n    return (w * x - y) ** 2 / 2"
    ),
    Answer(
        "warm_start_loss",
        "names the error",
        "def loss(w, x=X, y=Y):\n    u = w * x - y\n    return 0.5 * u * u",
    ),
    Answer(
        "warm_start_gradient",
        "expands the product",
        "def gradient(w, x=X, y=Y):\n    return x * x * w - x * y",
    ),
    Answer(
        "warm_start_gradient",
        "wraps the result in float",
        "def gradient(w, x=X, y=Y):\n    return float(x * (w * x - y))",
    ),
    Answer(
        "warm_start_autograd_gradient",
        "torch.autograd.grad instead of backward",
        "def autograd_gradient(w, x=X, y=Y):\n"
        "    w_t = torch.tensor(w, dtype=torch.float64, requires_grad=True)\n"
        "    (slope,) = torch.autograd.grad(loss(w_t, x, y), w_t)\n"
        "    return slope.item()",
    ),
    Answer(
        "warm_start_autograd_gradient",
        "float32 against the instructions, right to 1e-7",
        "def autograd_gradient(w, x=X, y=Y):\n"
        "    w_t = torch.tensor(w, requires_grad=True)\n"
        "    loss(w_t, x, y).backward()\n"
        "    return float(w_t.grad)",
    ),
    Answer(
        "warm_start_gradient_step",
        "writes the slope out",
        "def gradient_step(w, lr, x=X, y=Y):\n    return w - lr * x * (w * x - y)",
    ),
    Answer(
        "warm_start_learning_rate_for",
        "turns ZeroDivisionError into ValueError",
        "def learning_rate_for(w_before, w_after, x=X, y=Y):\n"
        "    try:\n"
        "        return (w_before - w_after) / gradient(w_before, x, y)\n"
        "    except ZeroDivisionError:\n"
        "        raise ValueError('zero gradient: no learning rate moves the weight') from None",
    ),
    Answer(
        "warm_start_steps_to_tolerance",
        "a while loop",
        "def steps_to_tolerance(w0, lr, tol, x=X, y=Y, max_steps=1000):\n"
        "    w, steps = w0, 0\n"
        "    while abs(w - y / x) > tol:\n"
        "        if steps == max_steps:\n"
        "            return None\n"
        "        w, steps = gradient_step(w, lr, x, y), steps + 1\n"
        "    return steps",
    ),
    Answer(
        "warm_start_claims_hold",
        "handles None first, then chained comparisons",
        "def claims_hold(tol, cold_start=W_SCRATCH, warm_start=W_PRETRAINED, lr=SEED_LR):\n"
        "    cold = steps_to_tolerance(cold_start, lr, tol)\n"
        "    warm = steps_to_tolerance(warm_start, lr, tol)\n"
        "    if cold is None or warm is None:\n"
        "        return False\n"
        "    return 10 <= cold <= 20 and 1 <= warm <= 2",
    ),
    Answer(
        "warm_start_closed_form_steps",
        "a difference of logs, checks in another order",
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
    Answer(
        "warm_start_loss",
        "no 1/2",
        "def loss(w, x=X, y=Y):\n    return (w * x - y) ** 2",
        "forget the 1/2",
    ),
    Answer(
        "warm_start_loss",
        "always a float",
        "def loss(w, x=X, y=Y):\n    return float(0.5 * (w * x - y) ** 2)",
        "should be a torch.Tensor",
    ),
    Answer(
        "warm_start_loss",
        "ignores x and y",
        "def loss(w, x=X, y=Y):\n    return 0.5 * (w * X - Y) ** 2",
        "x=3.0",
    ),
    Answer(
        "warm_start_gradient",
        "keeps the 2 of the square",
        "def gradient(w, x=X, y=Y):\n    return 2 * x * (w * x - y)",
        "the 1/2 in the loss",
    ),
    Answer(
        "warm_start_gradient",
        "ignores x and y",
        "def gradient(w, x=X, y=Y):\n    return X * (w * X - Y)",
        "x=3.0",
    ),
    Answer(
        "warm_start_gradient",
        "autograd instead of the formula",
        "def gradient(w, x=X, y=Y):\n"
        "    w_t = torch.tensor(w, dtype=torch.float64, requires_grad=True)\n"
        "    loss(w_t, x, y).backward()\n"
        "    return w_t.grad.item()",
        "gradient needs torch",
    ),
    Answer(
        "warm_start_gradient",
        "a finite difference of loss",
        "def gradient(w, x=X, y=Y):\n"
        "    h = 1e-6\n"
        "    return (loss(w + h, x, y) - loss(w - h, x, y)) / (2 * h)",
        "gradient called loss",
    ),
    Answer(
        "warm_start_autograd_gradient",
        "calls gradient",
        "def autograd_gradient(w, x=X, y=Y):\n    return float(gradient(w, x, y))",
        "called gradient",
    ),
    Answer(
        "warm_start_autograd_gradient",
        "differentiates its own copy of the formula",
        "def autograd_gradient(w, x=X, y=Y):\n"
        "    w_t = torch.tensor(w, dtype=torch.float64, requires_grad=True)\n"
        "    (0.5 * (w_t * x - y) ** 2).backward()\n"
        "    return w_t.grad.item()",
        "evaluate `loss` itself",
    ),
    Answer(
        "warm_start_autograd_gradient",
        "returns the tensor",
        "def autograd_gradient(w, x=X, y=Y):\n"
        "    w_t = torch.tensor(w, dtype=torch.float64, requires_grad=True)\n"
        "    loss(w_t, x, y).backward()\n"
        "    return w_t.grad",
        "use .item()",
    ),
    Answer(
        "warm_start_gradient_step",
        "adds the gradient",
        "def gradient_step(w, lr, x=X, y=Y):\n    return w + lr * gradient(w, x, y)",
        "instead of subtracting",
    ),
    Answer(
        "warm_start_gradient_step",
        "does not pass x and y on",
        "def gradient_step(w, lr, x=X, y=Y):\n    return w - lr * gradient(w)",
        "pass x and y on",
    ),
    Answer(
        "warm_start_learning_rate_for",
        "lets ZeroDivisionError escape",
        "def learning_rate_for(w_before, w_after, x=X, y=Y):\n"
        "    return (w_before - w_after) / gradient(w_before, x, y)",
        "should raise ValueError, but raised ZeroDivisionError",
    ),
    Answer(
        "warm_start_learning_rate_for",
        "the wrong sign",
        "def learning_rate_for(w_before, w_after, x=X, y=Y):\n"
        "    slope = gradient(w_before, x, y)\n"
        "    if slope == 0:\n"
        "        raise ValueError('zero gradient')\n"
        "    return (w_after - w_before) / slope",
        "check the sign",
    ),
    Answer(
        "warm_start_steps_to_tolerance",
        "steps before it looks, so never 0",
        "def steps_to_tolerance(w0, lr, tol, x=X, y=Y, max_steps=1000):\n"
        "    w = w0\n"
        "    for step in range(1, max_steps + 1):\n"
        "        w = gradient_step(w, lr, x, y)\n"
        "        if abs(w - y / x) <= tol:\n"
        "            return step\n"
        "    return None",
        "already within 0.05",
    ),
    Answer(
        "warm_start_steps_to_tolerance",
        "< for <=",
        "def steps_to_tolerance(w0, lr, tol, x=X, y=Y, max_steps=1000):\n"
        "    w = w0\n"
        "    for step in range(max_steps + 1):\n"
        "        if abs(w - y / x) < tol:\n"
        "            return step\n"
        "        w = gradient_step(w, lr, x, y)\n"
        "    return None",
        "compare with <=",
    ),
    Answer(
        "warm_start_steps_to_tolerance",
        "max_steps instead of None",
        "def steps_to_tolerance(w0, lr, tol, x=X, y=Y, max_steps=1000):\n"
        "    w = w0\n"
        "    for step in range(max_steps + 1):\n"
        "        if abs(w - y / x) <= tol:\n"
        "            return step\n"
        "        w = gradient_step(w, lr, x, y)\n"
        "    return max_steps",
        "return None",
    ),
    Answer(
        "warm_start_steps_to_tolerance",
        "one step short of max_steps",
        "def steps_to_tolerance(w0, lr, tol, x=X, y=Y, max_steps=1000):\n"
        "    w = w0\n"
        "    for step in range(max_steps):\n"
        "        if abs(w - y / x) <= tol:\n"
        "            return step\n"
        "        w = gradient_step(w, lr, x, y)\n"
        "    return None",
        "exactly max_steps steps still counts",
    ),
    Answer(
        "warm_start_claims_hold",
        "warm <= 2 lets 0 steps through",
        "def claims_hold(tol, cold_start=W_SCRATCH, warm_start=W_PRETRAINED, lr=SEED_LR):\n"
        "    cold = steps_to_tolerance(cold_start, lr, tol)\n"
        "    warm = steps_to_tolerance(warm_start, lr, tol)\n"
        "    return cold is not None and 10 <= cold <= 20 and warm is not None and warm <= 2",
        "0 steps is not 1 or 2",
    ),
    Answer(
        "warm_start_claims_hold",
        "cold < 20 drops the upper end",
        "def claims_hold(tol, cold_start=W_SCRATCH, warm_start=W_PRETRAINED, lr=SEED_LR):\n"
        "    cold = steps_to_tolerance(cold_start, lr, tol)\n"
        "    warm = steps_to_tolerance(warm_start, lr, tol)\n"
        "    return cold is not None and 10 <= cold < 20 and warm in (1, 2)",
        "both ends of 10 to 20 count",
    ),
    Answer(
        "warm_start_claims_hold",
        "10 < cold drops the lower end",
        "def claims_hold(tol, cold_start=W_SCRATCH, warm_start=W_PRETRAINED, lr=SEED_LR):\n"
        "    cold = steps_to_tolerance(cold_start, lr, tol)\n"
        "    warm = steps_to_tolerance(warm_start, lr, tol)\n"
        "    return cold is not None and 10 < cold <= 20 and warm in (1, 2)",
        "cold_start=0.2",
    ),
    Answer(
        "warm_start_claims_hold",
        "only 2 warm steps count",
        "def claims_hold(tol, cold_start=W_SCRATCH, warm_start=W_PRETRAINED, lr=SEED_LR):\n"
        "    cold = steps_to_tolerance(cold_start, lr, tol)\n"
        "    warm = steps_to_tolerance(warm_start, lr, tol)\n"
        "    return cold is not None and 10 <= cold <= 20 and warm == 2",
        "warm_start=0.475",
    ),
    Answer(
        "warm_start_claims_hold",
        "an int instead of a bool",
        "def claims_hold(tol, cold_start=W_SCRATCH, warm_start=W_PRETRAINED, lr=SEED_LR):\n"
        "    cold = steps_to_tolerance(cold_start, lr, tol)\n"
        "    warm = steps_to_tolerance(warm_start, lr, tol)\n"
        "    return (cold is not None and 10 <= cold <= 20) * (warm in (1, 2))",
        "should be True or False",
    ),
    Answer(
        "warm_start_closed_form_steps",
        "calls steps_to_tolerance",
        "def closed_form_steps(w0, lr, tol, x=X, y=Y):\n"
        "    return steps_to_tolerance(w0, lr, tol, x, y)",
        "called a step-by-step function",
    ),
    Answer(
        "warm_start_closed_form_steps",
        "a loop of its own, capped",
        "def closed_form_steps(w0, lr, tol, x=X, y=Y):\n"
        "    w = w0\n"
        "    for step in range(10**6):\n"
        "        if abs(w - y / x) <= tol:\n"
        "            return step\n"
        "        w -= lr * x * (w * x - y)\n"
        "    return None",
        "too many to count one by one",
    ),
    Answer(
        "warm_start_closed_form_steps",
        "forgets the factor-0 case",
        "def closed_form_steps(w0, lr, tol, x=X, y=Y):\n"
        "    gap = abs(w0 - y / x)\n"
        "    if gap <= tol:\n"
        "        return 0\n"
        "    return math.ceil(math.log(tol / gap) / math.log(abs(1 - lr * x * x)))",
        "math domain error",
    ),
    Answer(
        "warm_start_closed_form_steps",
        "rounds instead of taking the ceiling",
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


kernel, test_right_answers_earn_the_points, test_wrong_answers_lose_them = answer_tests(
    "01_warm_start", RIGHT, WRONG
)
