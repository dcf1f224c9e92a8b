"""Lesson 6's tests grade what each exercise teaches: correct answers written differently earn
the points, plausible wrong ones lose them with a message that helps, caught by the visible test
where they break a rule the exercise states (see `lesson_answers`)."""

from lesson_answers import Answer, answer_tests

LESSON = "06_quadrants"

CORRECT = [
    Answer(
        "quadrants_quadrant_of",
        "counts with a dict by hand",
        """
def quadrant_of(labels, similar, threshold=1000):
    if not labels:
        raise ValueError("no labels")
    counts = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    size = "large" if min(counts.values()) >= threshold else "small"
    return size + ("_similar" if similar else "_different")
""",
    ),
    Answer(
        "quadrants_quadrant_of",
        "list.count over the set of labels",
        """
def quadrant_of(labels, similar, threshold=1000):
    if len(labels) < 1:
        raise ValueError("labels must not be empty")
    smallest = min(labels.count(label) for label in set(labels))
    return {(True, True): "small_similar", (True, False): "small_different",
            (False, True): "large_similar", (False, False): "large_different"}[
        (smallest < threshold, bool(similar))]
""",
    ),
    Answer(
        "quadrants_strategies_to_measure",
        "an if chain returning literal tuples",
        """
def strategies_to_measure(quadrant):
    if quadrant == "small_similar":
        return ("head only",)
    if quadrant == "small_different":
        return ("cut early", "freeze first k")
    if quadrant == "large_similar":
        return ("fine-tune all",)
    if quadrant == "large_different":
        return ("fine-tune all", "from scratch")
    raise ValueError(f"not a quadrant: {quadrant!r}")
""",
    ),
    Answer(
        "quadrants_strategies_to_measure",
        "one set per source, united and sorted by cost",
        """
def strategies_to_measure(quadrant):
    cs231n = {"small_similar": {"head only"}, "small_different": {"cut early"},
              "large_similar": {"fine-tune all"},
              "large_different": {"from scratch", "fine-tune all"}}
    introduction = {"small_similar": {"head only"}, "small_different": {"cut early"},
                    "large_similar": {"fine-tune all"}, "large_different": {"fine-tune all"}}
    vgg16 = {"small_similar": {"head only"}, "small_different": {"freeze first k"},
             "large_similar": {"fine-tune all"}, "large_different": {"from scratch"}}
    if quadrant not in cs231n:
        raise ValueError(quadrant)
    advised = cs231n[quadrant] | introduction[quadrant] | vgg16[quadrant]
    return tuple(sorted(advised, key=STRATEGIES.index))
""",
    ),
    Answer(
        "quadrants_summarise",
        "statistics.mean and statistics.stdev",
        """
import statistics
def summarise(scores):
    if not scores:
        raise ValueError("no scores")
    if len(scores) == 1:
        return float(scores[0]), 0.0
    return statistics.mean(scores), statistics.stdev(scores)
""",
    ),
    Answer(
        "quadrants_summarise",
        "float32 tensors, turned into Python floats",
        """
def summarise(scores):
    if len(scores) == 0:
        raise ValueError("empty")
    values = torch.tensor(scores, dtype=torch.float32)
    std = values.std().item() if len(values) > 1 else 0.0
    return values.mean().item(), std
""",
    ),
    Answer(
        "quadrants_summarise",
        "NumPy floats",
        """
import numpy as np
def summarise(scores):
    if len(scores) == 0:
        raise ValueError("empty")
    values = np.asarray(scores, dtype=float)
    return values.mean(), (values.std(ddof=1) if len(values) > 1 else 0.0)
""",
    ),
    Answer(
        "quadrants_winner",
        "sorts by mean and reads the low end of each interval",
        """
def winner(results):
    if len(results) == 0:
        raise ValueError("nothing to choose from")
    order = list(results)
    best = sorted(order, key=lambda s: -sum(results[s]) / len(results[s]))[0]
    for strategy in order:
        if strategy == best or compare_paired(results[best], results[strategy]).low <= 0:
            return strategy
""",
    ),
    Answer(
        "quadrants_winner",
        "its own paired t interval with scipy",
        """
from scipy import stats
def winner(results):
    if not results:
        raise ValueError("empty results")
    means = {s: sum(v) / len(v) for s, v in results.items()}
    best = max(means, key=means.get)
    for strategy, scores in results.items():
        if strategy == best:
            return best
        d = [x - y for x, y in zip(results[best], scores)]
        n = len(d)
        mean = sum(d) / n
        sd = (sum((x - mean) ** 2 for x in d) / (n - 1)) ** 0.5
        if mean - stats.t.ppf(0.975, n - 1) * sd / n**0.5 <= 0:
            return strategy
""",
    ),
]

WRONG = [
    Answer(
        "quadrants_quadrant_of",
        "counts all images rather than the smallest class",
        """
def quadrant_of(labels, similar, threshold=1000):
    if not labels:
        raise ValueError("no labels")
    size = "small" if len(labels) < threshold else "large"
    return f"{size}_{'similar' if similar else 'different'}"
""",
        "the smallest class, 999 images, decides",
    ),
    Answer(
        "quadrants_quadrant_of",
        "the mean class size",
        """
def quadrant_of(labels, similar, threshold=1000):
    counts = collections.Counter(labels)
    size = "small" if len(labels) / len(counts) < threshold else "large"
    return f"{size}_{'similar' if similar else 'different'}"
""",
        "the smallest class, 999 images, decides",
    ),
    Answer(
        "quadrants_quadrant_of",
        "counts the threshold itself as small",
        """
def quadrant_of(labels, similar, threshold=1000):
    if not labels:
        raise ValueError("no labels")
    size = "small" if min(collections.Counter(labels).values()) <= threshold else "large"
    return f"{size}_{'similar' if similar else 'different'}"
""",
        "1000 itself is large",
    ),
    Answer(
        "quadrants_quadrant_of",
        "ignores the threshold argument",
        """
def quadrant_of(labels, similar, threshold=1000):
    if not labels:
        raise ValueError("no labels")
    return Quadrant.of(min(collections.Counter(labels).values()), similar).value
""",
        "threshold=100",
    ),
    Answer(
        "quadrants_quadrant_of",
        "torch.bincount, as if the labels were 0, 1, 2, ...",
        """
def quadrant_of(labels, similar, threshold=1000):
    if not labels:
        raise ValueError("no labels")
    smallest = torch.bincount(torch.tensor(labels)).min().item()
    return f"{'small' if smallest < threshold else 'large'}_{'similar' if similar else 'different'}"
""",
        "need not start at 0",
    ),
    Answer(
        "quadrants_strategies_to_measure",
        "ftlib.recommend's single choice",
        """
def strategies_to_measure(quadrant):
    if quadrant not in {q.value for q in Quadrant}:
        raise ValueError(quadrant)
    size = 100 if quadrant.startswith("small") else 5000
    return (strategy_of(recommend(size, quadrant.endswith("_similar"))),)
""",
        "in the order of STRATEGIES",
    ),
    Answer(
        "quadrants_strategies_to_measure",
        "CS231n's column only",
        """
def strategies_to_measure(quadrant):
    advice = {"small_similar": ("head only",), "small_different": ("cut early",),
              "large_similar": ("fine-tune all",),
              "large_different": ("fine-tune all", "from scratch")}
    if quadrant not in advice:
        raise ValueError(quadrant)
    return advice[quadrant]
""",
        "in the order of STRATEGIES",
    ),
    Answer(
        "quadrants_strategies_to_measure",
        "the disputed quadrant's strategies in the wrong order",
        """
def strategies_to_measure(quadrant):
    advice = {"small_similar": ("head only",), "small_different": ("cut early", "freeze first k"),
              "large_similar": ("fine-tune all",),
              "large_different": ("from scratch", "fine-tune all")}
    if quadrant not in advice:
        raise ValueError(quadrant)
    return advice[quadrant]
""",
        "in the order of STRATEGIES",
    ),
    Answer(
        "quadrants_strategies_to_measure",
        "lists instead of tuples",
        """
def strategies_to_measure(quadrant):
    advice = {"small_similar": ["head only"], "small_different": ["cut early", "freeze first k"],
              "large_similar": ["fine-tune all"],
              "large_different": ["fine-tune all", "from scratch"]}
    if quadrant not in advice:
        raise ValueError(quadrant)
    return advice[quadrant]
""",
        "a tuple of names from STRATEGIES",
    ),
    Answer(
        "quadrants_strategies_to_measure",
        "an empty tuple for an unknown quadrant",
        """
def strategies_to_measure(quadrant):
    advice = {"small_similar": ("head only",), "small_different": ("cut early", "freeze first k"),
              "large_similar": ("fine-tune all",),
              "large_different": ("fine-tune all", "from scratch")}
    return advice.get(quadrant, ())
""",
        "strategies_to_measure('small, similar')",
    ),
    Answer(
        "quadrants_summarise",
        "divides by n: the population standard deviation",
        """
def summarise(scores):
    if not scores:
        raise ValueError("empty")
    mean = sum(scores) / len(scores)
    return mean, math.sqrt(sum((x - mean) ** 2 for x in scores) / len(scores))
""",
        "divide by n - 1",
    ),
    Answer(
        "quadrants_summarise",
        "returns tensors",
        """
def summarise(scores):
    if not scores:
        raise ValueError("empty")
    values = torch.tensor(scores)
    return values.mean(), (values.std() if len(values) > 1 else torch.tensor(0.0))
""",
        "the mean of",
    ),
    Answer(
        "quadrants_summarise",
        "a list instead of a tuple",
        """
def summarise(scores):
    if not scores:
        raise ValueError("empty")
    mean = sum(scores) / len(scores)
    spread = sum((x - mean) ** 2 for x in scores) / max(len(scores) - 1, 1)
    return [mean, math.sqrt(spread)]
""",
        "return a tuple (mean, std)",
    ),
    Answer(
        "quadrants_summarise",
        "nan for a single score",
        """
def summarise(scores):
    if not scores:
        raise ValueError("empty")
    values = torch.tensor(scores, dtype=torch.float64)
    return values.mean().item(), values.std().item()
""",
        "a single score has std 0.0",
    ),
    Answer(
        "quadrants_summarise",
        "no ValueError for an empty list",
        """
def summarise(scores):
    mean = sum(scores) / len(scores)
    if len(scores) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((x - mean) ** 2 for x in scores) / (len(scores) - 1))
""",
        "summarise([])",
    ),
    Answer(
        "quadrants_winner",
        "the highest mean",
        """
def winner(results):
    if not results:
        raise ValueError("empty")
    return max(results, key=lambda s: sum(results[s]) / len(results[s]))
""",
        "the data cannot tell, so the cheaper one wins",
    ),
    Answer(
        "quadrants_winner",
        "a fixed tie margin of 0.02",
        """
def winner(results):
    if not results:
        raise ValueError("empty")
    means = {s: sum(v) / len(v) for s, v in results.items()}
    return next(s for s, m in means.items() if m >= max(means.values()) - 0.02)
""",
        "the data cannot tell, so the cheaper one wins",
    ),
    Answer(
        "quadrants_winner",
        "compares each strategy with the next one, not with the best",
        """
def winner(results):
    if not results:
        raise ValueError("empty")
    names = list(results)
    for cheaper, dearer in zip(names, names[1:]):
        if compare_paired(results[dearer], results[cheaper]).winner is None:
            return cheaper
    return names[-1]
""",
        "compare each strategy with c",
    ),
    Answer(
        "quadrants_winner",
        "an unpaired Welch test instead of the paired interval",
        """
from scipy import stats
def winner(results):
    if not results:
        raise ValueError("empty")
    means = {s: sum(v) / len(v) for s, v in results.items()}
    best = max(means, key=means.get)
    for strategy, scores in results.items():
        welch = stats.ttest_ind(results[best], scores, equal_var=False)
        if strategy == best or welch.pvalue > 0.05:
            return strategy
""",
        "better by 0.02 on every seed",
    ),
    Answer(
        "quadrants_winner",
        "compares the verdict with the strategy's name, not passing names=",
        """
def winner(results):
    if not results:
        raise ValueError("empty")
    means = {s: sum(v) / len(v) for s, v in results.items()}
    best = max(means, key=means.get)
    for strategy, scores in results.items():
        if compare_paired(results[best], scores).winner != best:
            return strategy
""",
        "better by 0.02 on every seed",
    ),
]

kernel, test_correct_answers_earn_the_points, test_wrong_answers_lose_them = answer_tests(
    LESSON, CORRECT, WRONG
)
