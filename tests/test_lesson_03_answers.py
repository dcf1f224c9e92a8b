"""Answers to lesson 3 (a safe body copy, learning rates by module, steps to accuracy,
Welch's interval, the rank of the true class, per-class accuracy), graded as the autograder
grades them. What each list must show is in `lesson_answers`."""

from lesson_answers import Answer, answer_tests, mutant

LESSON = "03_fine_tune"

COPY_ON_A_TRIAL = Answer(
    "fine_tune_copy_body",
    "checks on a trial copy, then loads",
    """
def copy_body(source, target, head="fc"):
    body = {k: v for k, v in source.state_dict().items() if not k.startswith(head + ".")}
    result = copy.deepcopy(target).load_state_dict(body, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(head + ".")]
    if missing or result.unexpected_keys:
        raise ValueError(f"missing {missing}, unexpected {result.unexpected_keys}")
    target.load_state_dict(body, strict=False)
    return sorted(body)
""",
)
COPY_BY_TENSOR = Answer(
    "fine_tune_copy_body",
    "copies tensor by tensor with copy_",
    """
def copy_body(source, target, head="fc"):
    outside = lambda name: not name.startswith(head + ".")
    theirs = {k: v for k, v in source.state_dict().items() if outside(k)}
    mine = {k: v for k, v in target.state_dict().items() if outside(k)}
    if theirs.keys() != mine.keys():
        raise ValueError(f"entries without a counterpart: {sorted(theirs.keys() ^ mine.keys())}")
    with torch.no_grad():
        for name, value in theirs.items():
            mine[name].copy_(value)
    return sorted(theirs)
""",
)
CHECK = (
    """    if theirs.keys() != mine.keys():
        raise ValueError(f"entries without a counterpart: {sorted(theirs.keys() ^ mine.keys())}")
""",
    "",
)
RATES_BY_PREFIX = Answer(
    "fine_tune_sgd_with_rates",
    "the longest matching name prefix instead of module identity",
    """
def sgd_with_rates(model, rates, momentum=0.9):
    def owner(name):
        matches = [m for m in rates if m == "" or name.startswith(m + ".")]
        return max(matches, key=len) if matches else None
    groups, missing = {m: [] for m in rates}, []
    for name, p in model.named_parameters():
        if p.requires_grad:
            if owner(name) is None:
                missing.append(name)
            else:
                groups[owner(name)].append(p)
    if missing:
        raise ValueError(f"no rate for {missing}")
    return torch.optim.SGD([dict(name=m, params=ps, lr=rates[m]) for m, ps in groups.items()
                            if ps], lr=1.0, momentum=momentum)
""",
)
STEPS_FORWARD = Answer(
    "fine_tune_steps_to_accuracy",
    "scans forward with all()",
    """
def steps_to_accuracy(steps, accuracies, threshold):
    if not steps or len(steps) != len(accuracies):
        raise ValueError("steps and accuracies must be non-empty and of one length")
    for i in range(len(steps)):
        if all(a >= threshold for a in accuracies[i:]):
            return steps[i]
    return None
""",
)
WELCH_BY_HAND = Answer(
    "fine_tune_unpaired_interval",
    "numpy arrays, numpy floats returned",
    """
import numpy as np
def unpaired_interval(a, b, confidence=0.95):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2 or b.size < 2:
        raise ValueError("each group needs two results")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    nu = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    half = stats.t.ppf((1 + confidence) / 2, nu) * np.sqrt(va + vb)
    d = a.mean() - b.mean()
    return (d, d - half, d + half)
""",
)
WELCH_BY_SCIPY = Answer(
    "fine_tune_unpaired_interval",
    "scipy's Welch test",
    """
def unpaired_interval(a, b, confidence=0.95):
    if min(len(a), len(b)) < 2:
        raise ValueError("each group needs two results")
    ends = stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence)
    return statistics.mean(a) - statistics.mean(b), float(ends.low), float(ends.high)
""",
)
RANK_IN_TWO_PARTS = Answer(
    "fine_tune_true_class_rank",
    "counts higher and tied classes separately",
    """
def true_class_rank(logits, targets):
    true = logits[torch.arange(len(targets)), targets][:, None]
    return 1 + (logits > true).sum(1) + (logits == true).sum(1) - 1
""",
)
PER_CLASS_LOOP = Answer(
    "fine_tune_per_class_accuracy",
    "a loop with masks and nan by default",
    """
def per_class_accuracy(hits, targets, num_classes):
    out = torch.full((num_classes,), float("nan"))
    for c in range(num_classes):
        mask = targets == c
        if mask.any():
            out[c] = hits[mask].float().mean()
    return out
""",
)

CORRECT = [
    COPY_ON_A_TRIAL,
    COPY_BY_TENSOR,
    RATES_BY_PREFIX,
    STEPS_FORWARD,
    WELCH_BY_HAND,
    WELCH_BY_SCIPY,
    Answer(
        "fine_tune_true_class_rank",
        "a Python loop over rows",
        """
def true_class_rank(logits, targets):
    ranks = []
    for row, target in zip(logits.tolist(), targets.tolist()):
        ranks.append(1 + sum(1 for j, v in enumerate(row) if j != target and v >= row[target]))
    return torch.tensor(ranks)
""",
    ),
    RANK_IN_TWO_PARTS,
    PER_CLASS_LOOP,
]

WRONG = [
    mutant(
        COPY_BY_TENSOR,
        "no check of the names (strict=False alone)",
        "into a target whose body has an extra layer fc_norm",
        CHECK,
    ),
    mutant(
        COPY_BY_TENSOR,
        "copies first, checks afterwards",
        "a refused copy must change nothing",
        CHECK,
        ("    return sorted(theirs)", CHECK[0] + "    return sorted(theirs)"),
    ),
    mutant(
        COPY_BY_TENSOR,
        "checks only the source's entries",
        "into a target whose body has an extra layer fc_norm",
        ("theirs.keys() != mine.keys():", "theirs.keys() - mine.keys():"),
    ),
    mutant(
        COPY_BY_TENSOR,
        "checks only the target's entries",
        "from a source whose body has an extra layer fc_norm",
        ("theirs.keys() != mine.keys():", "mine.keys() - theirs.keys():"),
    ),
    mutant(COPY_BY_TENSOR, "the head's prefix without the dot", "with the dot", ('+ "."', "")),
    mutant(
        COPY_BY_TENSOR,
        "names in state_dict order, not sorted",
        "every entry outside fc, parameters and buffers, sorted",
        ("return sorted(theirs)", "return list(theirs)"),
    ),
    mutant(
        COPY_BY_TENSOR,
        "checks the names, then shares the source's modules",
        "copy values into the target's own tensors",
        (
            """    with torch.no_grad():
        for name, value in theirs.items():
            mine[name].copy_(value)
""",
            """    for name, module in source.named_children():
        if name != head:
            setattr(target, name, module)
""",
        ),
    ),
    Answer(
        "fine_tune_sgd_with_rates",
        "wraps ftlib's two-rate param_groups",
        """
from ftlib.training.optim import param_groups
def sgd_with_rates(model, rates, momentum=0.9):
    groups = param_groups(model, model.fc, lr=rates[""], head_lr_mult=rates["fc"] / rates[""])
    merged = {"": [], "fc": []}
    for group in groups:
        merged["fc" if group["name"].startswith("head") else ""].extend(group["params"])
    return torch.optim.SGD([{"name": n, "params": p, "lr": rates[n]}
                            for n, p in merged.items() if p], momentum=momentum)
""",
        "keep the order of rates",
    ),
    mutant(
        RATES_BY_PREFIX,
        "the first entry that holds a parameter wins, not the innermost",
        "one group per entry of rates, in order",
        ("max(matches, key=len)", "matches[0]"),
    ),
    mutant(
        RATES_BY_PREFIX,
        "leaves parameters without a rate out silently",
        "sgd_with_rates with no rate for block1",
        ('    if missing:\n        raise ValueError(f"no rate for {missing}")\n', ""),
    ),
    mutant(
        RATES_BY_PREFIX,
        "keeps frozen parameters that have a rate",
        "holds a frozen parameter of block1",
        ("if p.requires_grad:", "if p.requires_grad or owner(name) is not None:"),
    ),
    mutant(
        RATES_BY_PREFIX,
        "ignores the momentum argument",
        "with one rate per block",
        ("momentum=momentum)", "momentum=0.9)"),
    ),
    mutant(
        STEPS_FORWARD,
        "the first step that touches the threshold",
        "falls back at 15",
        ("all(a >= threshold for a in accuracies[i:])", "accuracies[i] >= threshold"),
    ),
    mutant(
        STEPS_FORWARD,
        "> instead of >=",
        "reaching the threshold counts",
        ("a >= threshold", "a > threshold"),
    ),
    mutant(
        STEPS_FORWARD,
        "no ValueError for different lengths",
        "steps_to_accuracy with 2 steps and 1 accuracy",
        ("    if not steps or len(steps) != len(accuracies):\n", "    if not steps:\n"),
    ),
    mutant(
        WELCH_BY_SCIPY,
        "Student's pooled interval",
        "not n_a + n_b - 2 degrees of freedom",
        ("equal_var=False", "equal_var=True"),
    ),
    mutant(
        WELCH_BY_HAND,
        "the normal quantile 1.96",
        "not 1.96",
        ("stats.t.ppf((1 + confidence) / 2, nu)", "1.96"),
    ),
    mutant(
        WELCH_BY_HAND,
        "population variances",
        "sample variances (n - 1)",
        ("a.var(ddof=1)", "a.var()"),
        ("b.var(ddof=1)", "b.var()"),
    ),
    Answer(
        "fine_tune_unpaired_interval",
        "ftlib's paired comparison",
        """
def unpaired_interval(a, b, confidence=0.95):
    c = compare_paired(a, b, confidence=confidence)
    return c.mean, c.low, c.high
""",
        "paired results need one value per seed",
        visible=False,  # ftlib's own error, raised on the visible example
    ),
    mutant(
        WELCH_BY_SCIPY,
        "b - a",
        "mean(a) - mean(b), in that order",
        ("ttest_ind(a, b,", "ttest_ind(b, a,"),
        ("statistics.mean(a) - statistics.mean(b)", "statistics.mean(b) - statistics.mean(a)"),
    ),
    mutant(
        WELCH_BY_SCIPY,
        "ignores the confidence argument",
        "use the confidence argument",
        ("confidence_interval(confidence)", "confidence_interval(0.95)"),
        visible=False,
    ),
    mutant(
        RANK_IN_TWO_PARTS,
        "ties counted for the model",
        "four equal scores give rank 4",
        (" + (logits == true).sum(1) - 1", ""),
    ),
    Answer(
        "fine_tune_true_class_rank",
        "the position after argsort, ties in sort order",
        """
def true_class_rank(logits, targets):
    order = logits.argsort(dim=1, descending=True)
    return (order == targets[:, None]).int().argmax(dim=1) + 1
""",
        "the ranks with ties",
    ),
    mutant(
        RANK_IN_TWO_PARTS,
        "int32 ranks",
        "true_class_rank(logits, targets)",
        (
            "return 1 + (logits > true).sum(1) + (logits == true).sum(1) - 1",
            "return (1 + (logits > true).sum(1) + (logits == true).sum(1) - 1).int()",
        ),
    ),
    mutant(
        PER_CLASS_LOOP,
        "0 for a class without samples",
        "nan, not 0",
        ('float("nan")', "0.0"),
    ),
    mutant(
        PER_CLASS_LOOP,
        "as many entries as the largest class seen",
        "one entry per class",
        ("(num_classes,)", "(int(targets.max()) + 1,)"),
        ("range(num_classes)", "range(len(out))"),
    ),
]

kernel, test_correct_answers_earn_the_points, test_wrong_answers_lose_them = answer_tests(
    LESSON, CORRECT, WRONG
)
