"""Answers to lesson 4 (a confusion matrix, cached features, a linear probe, a probe for
running statistics, holding frozen batch norm), graded as the autograder grades them. What each
list must show is in `lesson_answers`."""

from lesson_answers import Answer, answer_tests, mutant

LESSON = "04_three_states"

CONFUSION_BY_INDEX_PUT = Answer(
    "three_states_confusion_matrix",
    "index_put_ with accumulate",
    """
def confusion_matrix(predicted, actual, num_predicted, num_actual):
    counts = torch.zeros(num_actual, num_predicted, dtype=torch.int64)
    counts.index_put_((actual, predicted), torch.ones_like(actual), accumulate=True)
    return counts
""",
)
EXTRACT_EVERY_MODE = Answer(
    "three_states_extract_features",
    "inference_mode, and every module's mode restored",
    """
def extract_features(body, batches):
    modes = {module: module.training for module in body.modules()}
    body.eval()
    try:
        with torch.inference_mode():
            pairs = [(body(x), y) for x, y in batches]
    finally:
        for module, mode in modes.items():
            module.train(mode)
    return torch.cat([f for f, _ in pairs]), torch.cat([y for _, y in pairs])
""",
)
PROBE_IN_A_WHILE_LOOP = Answer(
    "three_states_fit_linear_probe",
    "CrossEntropyLoss and a while loop",
    """
def fit_linear_probe(features, labels, num_classes, epochs=300, lr=0.05, seed=0):
    torch.manual_seed(seed)
    head = nn.Linear(features.shape[1], num_classes)
    optimizer, loss_fn = torch.optim.Adam(head.parameters(), lr=lr), nn.CrossEntropyLoss()
    step = 0
    while step < epochs:
        optimizer.zero_grad(set_to_none=False)
        loss_fn(head(features), labels).backward()
        optimizer.step()
        step += 1
    return head
""",
)
CHANGES_VIA_STATE_DICT = Answer(
    "three_states_running_stat_changes",
    "restores the whole state_dict",
    """
def running_stat_changes(model, images):
    saved = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        model(images)
    changes = {}
    for name, buffer in model.named_buffers():
        if name.endswith("running_mean") or name.endswith("running_var"):
            changes[name] = float((buffer - saved[name]).abs().max())
    model.load_state_dict(saved)
    return changes
""",
)
HOLD_LISTED_KINDS = Answer(
    "three_states_freeze_bn_stats",
    "lists the batch-norm classes and tests all()",
    """
def freeze_bn_stats(model):
    kinds = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
    held = [name for name, m in model.named_modules()
            if isinstance(m, kinds) and all(not p.requires_grad for p in m.parameters())]
    for name in held:
        model.get_submodule(name).train(False)
    return held
""",
)

CORRECT = [
    CONFUSION_BY_INDEX_PUT,
    Answer(
        "three_states_confusion_matrix",
        "a Python loop",
        """
def confusion_matrix(predicted, actual, num_predicted, num_actual):
    counts = [[0] * num_predicted for _ in range(num_actual)]
    for p, a in zip(predicted.tolist(), actual.tolist()):
        counts[a][p] += 1
    return torch.tensor(counts)
""",
    ),
    EXTRACT_EVERY_MODE,
    PROBE_IN_A_WHILE_LOOP,
    CHANGES_VIA_STATE_DICT,
    HOLD_LISTED_KINDS,
]

WRONG = [
    mutant(
        CONFUSION_BY_INDEX_PUT,
        "rows are the predicted classes",
        "shape (num_actual, num_predicted)",
        ("zeros(num_actual, num_predicted,", "zeros(num_predicted, num_actual,"),
        ("(actual, predicted)", "(predicted, actual)"),
    ),
    Answer(
        "three_states_confusion_matrix",
        "the row stride of a square matrix",
        """
def confusion_matrix(predicted, actual, num_predicted, num_actual):
    cells = actual * num_actual + predicted
    counts = torch.bincount(cells, minlength=num_actual * num_predicted)
    return counts[: num_actual * num_predicted].reshape(num_actual, num_predicted)
""",
        "the counts of confusion_matrix(predicted, actual, 4, 3)",
    ),
    mutant(
        CONFUSION_BY_INDEX_PUT,
        "float counts",
        "int64 counts",
        ("dtype=torch.int64", "dtype=torch.float32"),
        ("torch.ones_like(actual)", "torch.ones(len(actual))"),
    ),
    Answer(
        "three_states_extract_features",
        "wraps ftlib's extract_features behind an identity head",
        """
from ftlib.training.caching import extract_features as library_extract
def extract_features(body, batches):
    model = nn.Sequential(body, nn.Identity())
    return library_extract(model, batches, head="1", device="cpu", progress=False).tensors
""",
        "the labels from a shuffled loader",
    ),
    mutant(
        EXTRACT_EVERY_MODE,
        "runs the body in the mode it is in",
        "run the body in eval mode",
        ("    body.eval()\n", ""),
    ),
    mutant(
        EXTRACT_EVERY_MODE,
        "builds a graph",
        "extract under torch.no_grad()",
        ("with torch.inference_mode():", "if True:"),
    ),
    mutant(
        EXTRACT_EVERY_MODE,
        "leaves the body in eval mode",
        "must be again after",
        ("            module.train(mode)\n", "            pass\n"),
    ),
    mutant(
        EXTRACT_EVERY_MODE,
        "switches every module to train mode afterwards",
        "a body in eval mode must stay in eval mode",
        ("module.train(mode)", "module.train()"),
    ),
    mutant(
        EXTRACT_EVERY_MODE,
        "labels in the dataset's order",
        "the labels from a shuffled loader",
        (
            "    return torch.cat([f for f, _ in pairs]), torch.cat([y for _, y in pairs])",
            "    if hasattr(batches, 'dataset'):\n"
            "        labels = torch.stack([y for _, y in batches.dataset])\n"
            "    else:\n"
            "        labels = torch.cat([y for _, y in pairs])\n"
            "    return torch.cat([f for f, _ in pairs]), labels",
        ),
    ),
    mutant(
        PROBE_IN_A_WHILE_LOOP,
        "SGD instead of Adam",
        "seed first, then the layer, then full-batch Adam",
        ("torch.optim.Adam(", "torch.optim.SGD("),
    ),
    mutant(
        PROBE_IN_A_WHILE_LOOP,
        "the layer before the seed",
        "seed first, then the layer, then full-batch Adam",
        (
            "    torch.manual_seed(seed)\n    head = nn.Linear(features.shape[1], num_classes)\n",
            "    head = nn.Linear(features.shape[1], num_classes)\n    torch.manual_seed(seed)\n",
        ),
    ),
    mutant(
        PROBE_IN_A_WHILE_LOOP,
        "a batch of 16 per step, not the whole cache",
        "seed first, then the layer, then full-batch Adam",
        ("loss_fn(head(features), labels)", "loss_fn(head(features[:16]), labels[:16])"),
    ),
    mutant(
        CHANGES_VIA_STATE_DICT,
        "does not put the buffers back",
        "put every buffer back as it was",
        ("    model.load_state_dict(saved)\n", ""),
    ),
    mutant(
        CHANGES_VIA_STATE_DICT,
        "puts back the running statistics but not num_batches_tracked",
        "num_batches_tracked too",
        (
            "    model.load_state_dict(saved)\n",
            "    for name, buffer in model.named_buffers():\n"
            "        if 'running' in name:\n"
            "            buffer.copy_(saved[name])\n",
        ),
    ),
    mutant(
        CHANGES_VIA_STATE_DICT,
        "tensors instead of floats",
        "the change of",
        ("float((buffer - saved[name]).abs().max())", "(buffer - saved[name]).abs().max()"),
    ),
    mutant(
        CHANGES_VIA_STATE_DICT,
        "switches to train mode to be sure",
        "running_stat_changes(model in eval mode, images)",
        (
            "    with torch.no_grad():\n        model(images)\n",
            "    mode = model.training\n    model.train()\n"
            "    with torch.no_grad():\n        model(images)\n    model.train(mode)\n",
        ),
    ),
    mutant(
        HOLD_LISTED_KINDS,
        "every batch-norm layer, trainable or not",
        "block3.1 still trains its bias",
        (" and all(not p.requires_grad for p in m.parameters())", ""),
    ),
    mutant(
        HOLD_LISTED_KINDS,
        "looks at the weight only",
        "block3.1 still trains its bias",
        (
            "all(not p.requires_grad for p in m.parameters())",
            "(m.weight is None or not m.weight.requires_grad)",
        ),
    ),
    mutant(
        HOLD_LISTED_KINDS,
        "holds the layers for good with ftlib's freeze",
        "do not hold them there for good",
        ("def freeze_bn_stats", "from ftlib.surgery.freezing import freeze\ndef freeze_bn_stats"),
        ("model.get_submodule(name).train(False)", "freeze(model, name)"),
    ),
    mutant(
        HOLD_LISTED_KINDS,
        "puts the whole model in eval mode",
        "leave everything else in the mode it is in",
        (
            "    for name in held:\n        model.get_submodule(name).train(False)\n",
            "    model.eval()\n",
        ),
    ),
]

kernel, test_correct_answers_earn_the_points, test_wrong_answers_lose_them = answer_tests(
    LESSON, CORRECT, WRONG
)
