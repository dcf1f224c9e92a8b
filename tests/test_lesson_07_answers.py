"""Answers to lesson 7 (counting the images of a folder, the number the plan needs, a stratified
split), graded as the autograder grades them. What each list must show is in `lesson_answers`."""

from lesson_answers import Answer, answer_tests, mutant

LESSON = "07_project"

COUNT_WITH_OS_WALK = Answer(
    "project_count_images",
    "os.listdir and os.walk",
    """
import os


def count_images(root):
    counts = {}
    for entry in sorted(os.listdir(root)):
        folder = os.path.join(root, entry)
        if entry.startswith(".") or not os.path.isdir(folder):
            continue
        counts[entry] = sum(
            1
            for _, _, files in os.walk(folder)
            for name in files
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
        )
    return counts
""",
)
SMALLEST_BY_SORTING = Answer(
    "project_images_per_class",
    "sorted counts and its own messages",
    """
def images_per_class(counts):
    if len(counts) < 2:
        raise ValueError(f"{len(counts)} class found, at least 2 are needed")
    empty = sorted(name for name, count in counts.items() if not count)
    if empty:
        raise ValueError("no images in: " + ", ".join(empty))
    return sorted(counts.values())[0]
""",
)
SPLIT_BY_SHUFFLING = Answer(
    "project_stratified_split",
    "a shuffled list per class, sliced",
    """
def stratified_split(targets, val_fraction, seed=0):
    if not 0 < val_fraction < 1:
        raise ValueError("val_fraction must be between 0 and 1")
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted(set(targets)):
        members = [i for i, t in enumerate(targets) if t == label]
        rng.shuffle(members)
        n = len(members)
        k = min(max(round(n * val_fraction), 1), n - 1) if n > 1 else 0
        val += members[:k]
        train += members[k:]
    return sorted(train), sorted(val)
""",
)

CORRECT = [
    COUNT_WITH_OS_WALK,
    Answer(
        "project_count_images",
        "rglob with str.endswith on the lower-case name",
        """
def count_images(root):
    folders = sorted(p for p in Path(root).iterdir() if p.is_dir() and p.name[0] != ".")
    extensions = tuple(IMAGE_EXTENSIONS)
    return {
        folder.name: len([f for f in folder.rglob("*")
                          if f.is_file() and f.name.lower().endswith(extensions)])
        for folder in folders
    }
""",
    ),
    SMALLEST_BY_SORTING,
    Answer(
        "project_images_per_class",
        "min over the items, checks in the other order",
        """
def images_per_class(counts):
    empty = [name for name in counts if counts[name] == 0]
    if len(counts) < 2:
        raise ValueError(f"need 2 or more classes, found {len(counts)}")
    if empty:
        raise ValueError(f"empty classes: {empty}")
    return int(min(count for _, count in counts.items()))
""",
    ),
    SPLIT_BY_SHUFFLING,
    Answer(
        "project_stratified_split",
        "torch.randperm with a seeded generator, round half up",
        """
def stratified_split(targets, val_fraction, seed=0):
    if val_fraction <= 0 or val_fraction >= 1:
        raise ValueError(f"val_fraction={val_fraction} is not in (0, 1)")
    generator = torch.Generator().manual_seed(seed)
    labels = torch.tensor(targets)
    held = []
    for label in labels.unique().tolist():
        members = (labels == label).nonzero().flatten()
        n = len(members)
        k = 0 if n == 1 else min(max(int(n * val_fraction + 0.5), 1), n - 1)
        held += members[torch.randperm(n, generator=generator)[:k]].tolist()
    held = set(held)
    return ([i for i in range(len(targets)) if i not in held],
            [i for i in range(len(targets)) if i in held])
""",
    ),
]

WRONG = [
    mutant(
        COUNT_WITH_OS_WALK,
        "counts only lower-case extensions",
        "count .JPG too",
        ("os.path.splitext(name)[1].lower()", "os.path.splitext(name)[1]"),
    ),
    Answer(
        "project_count_images",
        "looks into the class folder but not its sub-folders",
        """
def count_images(root):
    counts = {}
    for folder in sorted(Path(root).iterdir()):
        if folder.is_dir() and not folder.name.startswith("."):
            counts[folder.name] = sum(
                1 for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
            )
    return counts
""",
        "look into sub-folders",
    ),
    mutant(
        COUNT_WITH_OS_WALK,
        "takes .ipynb_checkpoints for a class",
        "whose name starts with a dot",
        ('entry.startswith(".") or ', ""),
    ),
    mutant(
        COUNT_WITH_OS_WALK,
        "drops classes without images",
        "keep the empty class with 0",
        (
            "        counts[entry] = sum(\n",
            "        found = sum(\n",
        ),
        (
            "        )\n    return counts",
            "        )\n        if found:\n            counts[entry] = found\n    return counts",
        ),
    ),
    mutant(
        COUNT_WITH_OS_WALK,
        "classes in reverse order",
        "the order of the classes",
        ("sorted(os.listdir(root))", "sorted(os.listdir(root), reverse=True)"),
    ),
    mutant(
        COUNT_WITH_OS_WALK,
        "takes a file in the root for a class",
        "ignore files in the root",
        ('entry.startswith(".") or not os.path.isdir(folder)', 'entry.startswith(".")'),
    ),
    Answer(
        "project_count_images",
        "needs a Path, fails on a str",
        """
def count_images(root):
    return {
        folder.name: sum(1 for f in folder.rglob("*")
                         if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        for folder in sorted(root.iterdir())
        if folder.is_dir() and not folder.name.startswith(".")
    }
""",
        "has no attribute 'iterdir'",
        visible=False,  # the visible test fails on it, with Python's own message
    ),
    Answer(
        "project_images_per_class",
        "an int subclass that equals anything",
        """
class Anything(int):
    def __eq__(self, other):
        return True


def images_per_class(counts):
    return Anything(0)
""",
        "images_per_class({'cat': 20, 'dog': 12, 'rabbit': 30})",
    ),
    mutant(
        SMALLEST_BY_SORTING,
        "the largest class",
        "images_per_class({'cat': 20, 'dog': 12, 'rabbit': 30})",
        ("sorted(counts.values())[0]", "sorted(counts.values())[-1]"),
    ),
    mutant(
        SMALLEST_BY_SORTING,
        "the mean count",
        "images_per_class({'cat': 20, 'dog': 12, 'rabbit': 30})",
        ("sorted(counts.values())[0]", "sum(counts.values()) / len(counts)"),
    ),
    mutant(
        SMALLEST_BY_SORTING,
        "accepts a single class",
        "images_per_class({'only': 40})",
        ("    if len(counts) < 2:\n", "    if len(counts) < 1:\n"),
    ),
    mutant(
        SMALLEST_BY_SORTING,
        "a message without the number of classes",
        "the message should say that 1 class was found",
        ('f"{len(counts)} class found, at least 2 are needed"', '"too few classes"'),
    ),
    mutant(
        SMALLEST_BY_SORTING,
        "names only the first empty class",
        "name every empty class",
        ('", ".join(empty)', "empty[0]"),
    ),
    mutant(
        SMALLEST_BY_SORTING,
        "an empty class counts as the smallest",
        "images_per_class({'owl': 0, 'cat': 4, 'emu': 0})",
        ("    if empty:\n", "    if False:\n"),
    ),
    mutant(
        SPLIT_BY_SHUFFLING,
        "rounds down",
        "round(n * val_fraction), at least 1 and at most n - 1",
        ("round(n * val_fraction)", "int(n * val_fraction)"),
    ),
    mutant(
        SPLIT_BY_SHUFFLING,
        "rounds up",
        "round(n * val_fraction), at least 1 and at most n - 1",
        ("round(n * val_fraction)", "math.ceil(n * val_fraction)"),
        ("    rng = random.Random(seed)\n", "    import math\n    rng = random.Random(seed)\n"),
    ),
    mutant(
        SPLIT_BY_SHUFFLING,
        "no lower limit: a small class may keep nothing back",
        "round(n * val_fraction), at least 1 and at most n - 1",
        ("min(max(round(n * val_fraction), 1), n - 1)", "min(round(n * val_fraction), n - 1)"),
    ),
    mutant(
        SPLIT_BY_SHUFFLING,
        "no upper limit: a class may be held out whole",
        "round(n * val_fraction), at least 1 and at most n - 1",
        ("min(max(round(n * val_fraction), 1), n - 1)", "max(round(n * val_fraction), 1)"),
    ),
    mutant(
        SPLIT_BY_SHUFFLING,
        "holds out the single image of a class",
        "none of a class of",
        (" if n > 1 else 0", ""),
        ("min(max(round(n * val_fraction), 1), n - 1)", "max(round(n * val_fraction), 1)"),
    ),
    mutant(
        SPLIT_BY_SHUFFLING,
        "lists in class order, not sorted",
        "a sorted list of ints",
        ("return sorted(train), sorted(val)", "return train, val"),
    ),
    mutant(
        SPLIT_BY_SHUFFLING,
        "the first images of each class, not random ones",
        "draw the held-out images at",
        ("        rng.shuffle(members)\n", ""),
    ),
    mutant(
        SPLIT_BY_SHUFFLING,
        "an unseeded generator",
        "the same seed must give the same split",
        ("random.Random(seed)", "random.Random()"),
    ),
    mutant(
        SPLIT_BY_SHUFFLING,
        "accepts any fraction",
        "stratified_split(targets, ",
        (
            "    if not 0 < val_fraction < 1:\n"
            '        raise ValueError("val_fraction must be between 0 and 1")\n',
            "",
        ),
    ),
]

kernel, test_correct_answers_earn_the_points, test_wrong_answers_lose_them = answer_tests(
    LESSON, CORRECT, WRONG
)
