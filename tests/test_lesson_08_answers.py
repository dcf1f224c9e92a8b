"""Answers to lesson 8 (a LoRA layer, merging it, layer-wise learning-rate groups, feature
movement), graded as the autograder grades them. What each list must show is in `lesson_answers`.
"""

from lesson_answers import Answer, answer_tests, mutant

LESSON = "08_careful_fine_tuning"

LORA_WITH_F_LINEAR = Answer(
    "careful_lora_linear",
    "F.linear, kaiming-initialised A, the module frozen at once",
    """
import math

import torch.nn.functional as F


class LoRALinear(nn.Module):
    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.A = nn.Parameter(torch.empty(rank, base.in_features))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))
        self.scale = alpha / rank

    def forward(self, x):
        return self.base(x) + F.linear(F.linear(x, self.A), self.B) * self.scale
""",
)
MERGE_BY_DEEPCOPY = Answer(
    "careful_merged_linear",
    "a deep copy of the base, the change added in place",
    """
def merged_linear(layer):
    merged = copy.deepcopy(layer.base)
    with torch.no_grad():
        merged.weight += layer.scale * (layer.B @ layer.A)
    return merged
""",
)
GROUPS_FROM_THE_TOP = Answer(
    "careful_layer_decay_groups",
    "walks from the head down, multiplying the rate by decay",
    """
def layer_decay_groups(model, blocks, head, lr, decay):
    groups, rate = [], lr
    for name in reversed([*blocks, head]):
        params = [p for p in model.get_submodule(name).parameters() if p.requires_grad]
        if params:
            groups.insert(0, {"params": params, "lr": rate})
        rate *= decay
    covered = {id(p) for group in groups for p in group["params"]}
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in covered]
    if missing:
        raise ValueError(f"these parameters are in no group: {missing}")
    return groups
""",
)
MOVEMENT_WITH_LINALG = Answer(
    "careful_feature_movement",
    "torch.linalg.vector_norm and float()",
    """
def feature_movement(before, after):
    if before.shape != after.shape:
        raise ValueError("before and after must have the same shape")
    moved = torch.linalg.vector_norm(after - before, dim=1)
    return float((moved / torch.linalg.vector_norm(before, dim=1)).mean())
""",
)

CORRECT = [
    LORA_WITH_F_LINEAR,
    Answer(
        "careful_lora_linear",
        "einsum, a loop over the base's parameters, uniform A",
        """
class LoRALinear(nn.Module):
    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base = base
        for name, parameter in base.named_parameters():
            parameter.requires_grad = False
        self.A = nn.Parameter((torch.rand(rank, base.in_features) - 0.5) / base.in_features)
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))
        self.scale = float(alpha) / rank

    def forward(self, x):
        low_rank = torch.einsum("...i,ri,or->...o", x, self.A, self.B)
        return self.base(x) + self.scale * low_rank
""",
    ),
    MERGE_BY_DEEPCOPY,
    Answer(
        "careful_merged_linear",
        "new parameters from einsum and clone",
        """
def merged_linear(layer):
    base = layer.base
    merged = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
    change = torch.einsum("or,ri->oi", layer.B, layer.A)
    merged.weight = nn.Parameter((base.weight + layer.scale * change).detach().clone())
    if base.bias is not None:
        merged.bias = nn.Parameter(base.bias.detach().clone())
    return merged
""",
    ),
    GROUPS_FROM_THE_TOP,
    Answer(
        "careful_layer_decay_groups",
        "groups by parameter-name prefixes",
        """
def layer_decay_groups(model, blocks, head, lr, decay):
    names = [*blocks, head]
    rates = {name: lr * decay ** (len(names) - 1 - i) for i, name in enumerate(names)}
    chosen = {name: [] for name in names}
    for full_name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        owners = [n for n in names if full_name == n or full_name.startswith(n + ".")]
        if not owners:
            raise ValueError(f"{full_name} belongs to none of {names}")
        chosen[owners[0]].append(parameter)
    return [{"params": chosen[n], "lr": rates[n]} for n in names if chosen[n]]
""",
    ),
    MOVEMENT_WITH_LINALG,
    Answer(
        "careful_feature_movement",
        "NumPy, in float64",
        """
import numpy as np


def feature_movement(before, after):
    if tuple(before.shape) != tuple(after.shape):
        raise ValueError(f"shapes {tuple(before.shape)} and {tuple(after.shape)} differ")
    b, a = before.double().numpy(), after.double().numpy()
    return float(np.mean(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)))
""",
    ),
]

WRONG = [
    mutant(
        LORA_WITH_F_LINEAR,
        "A at zero and B random",
        "B starts at zero",
        ("torch.empty(rank, base.in_features)", "torch.zeros(rank, base.in_features)"),
        ("        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))\n", ""),
        ("torch.zeros(base.out_features, rank)", "torch.randn(base.out_features, rank)"),
    ),
    mutant(
        LORA_WITH_F_LINEAR,
        "A and B both zero",
        "A should start random",
        ("torch.empty(rank, base.in_features)", "torch.zeros(rank, base.in_features)"),
        ("        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))\n", ""),
    ),
    mutant(
        LORA_WITH_F_LINEAR,
        "wraps a copy of the base",
        "not a copy",
        ("self.base = base.requires_grad_(False)", "self.base = copy.deepcopy(base)"),
        ("        self.A =", "        self.base.requires_grad_(False)\n        self.A ="),
    ),
    mutant(
        LORA_WITH_F_LINEAR,
        "leaves the base trainable",
        "freeze base",
        ("self.base = base.requires_grad_(False)", "self.base = base"),
    ),
    mutant(
        LORA_WITH_F_LINEAR,
        "freezes the weight but not the bias",
        "freeze base",
        (
            "self.base = base.requires_grad_(False)",
            "self.base = base\n        base.weight.requires_grad_(False)",
        ),
    ),
    mutant(
        LORA_WITH_F_LINEAR,
        "A and B as plain tensors that require grad",
        "nn.Parameter objects",
        (
            "nn.Parameter(torch.empty(rank, base.in_features))",
            "torch.empty(rank, base.in_features, requires_grad=True)",
        ),
        (
            "nn.Parameter(torch.zeros(base.out_features, rank))",
            "torch.zeros(base.out_features, rank, requires_grad=True)",
        ),
        ("nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))", "self.A.data.normal_()"),
    ),
    mutant(
        LORA_WITH_F_LINEAR,
        "A stored as (in_features, rank)",
        "A has shape (rank, in_features)",
        ("torch.empty(rank, base.in_features)", "torch.empty(base.in_features, rank)"),
        ("F.linear(F.linear(x, self.A), self.B)", "F.linear(x @ self.A, self.B)"),
    ),
    mutant(
        LORA_WITH_F_LINEAR,
        "scale = alpha",
        "scale = alpha / rank",
        ("self.scale = alpha / rank", "self.scale = alpha"),
    ),
    mutant(
        LORA_WITH_F_LINEAR,
        "the right scale, left out of forward",
        "once A and B have moved",
        (
            "F.linear(F.linear(x, self.A), self.B) * self.scale",
            "F.linear(F.linear(x, self.A), self.B)",
        ),
    ),
    Answer(
        "careful_lora_linear",
        "ftlib's adapter under the names the exercise asks for",
        """
class LoRALinear(ftlib.LoRALinear):
    def __init__(self, base, rank, alpha):
        super().__init__(base.requires_grad_(False), rank, alpha)
        self.A, self.B, self.scale = self.lora_A, self.lora_B, alpha / rank
""",
        "build LoRALinear from torch alone",
    ),
    mutant(
        LORA_WITH_F_LINEAR,
        "torch.mm, which takes only 2-d inputs",
        "self must be a matrix",
        ("F.linear(F.linear(x, self.A), self.B)", "torch.mm(torch.mm(x, self.A.T), self.B.T)"),
        visible=False,
    ),
    Answer(
        "careful_merged_linear",
        "adds the change into the base and returns it",
        """
def merged_linear(layer):
    with torch.no_grad():
        layer.base.weight += layer.scale * layer.B @ layer.A
    return layer.base
""",
        "do not add B @ A into the base in place",
    ),
    mutant(
        MERGE_BY_DEEPCOPY,
        "forgets the scale",
        "weight = base.weight + scale * B @ A",
        ("layer.scale * (layer.B @ layer.A)", "(layer.B @ layer.A)"),
    ),
    Answer(
        "careful_merged_linear",
        "always gives the merged layer a (zero) bias",
        """
def merged_linear(layer):
    base = layer.base
    merged = nn.Linear(base.in_features, base.out_features)
    with torch.no_grad():
        merged.weight.copy_(base.weight + layer.scale * layer.B @ layer.A)
        merged.bias.copy_(base.bias if base.bias is not None else torch.zeros(base.out_features))
    return merged
""",
        "a base without a bias gives a merged layer without one",
    ),
    Answer(
        "careful_merged_linear",
        "shares the base's bias",
        """
def merged_linear(layer):
    base = layer.base
    merged = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
    with torch.no_grad():
        merged.weight.copy_(base.weight + layer.scale * layer.B @ layer.A)
    if base.bias is not None:
        merged.bias = base.bias
    return merged
""",
        "shares its bias tensor with the base",
    ),
    Answer(
        "careful_merged_linear",
        "calls ftlib's merge_lora",
        """
def merged_linear(layer):
    ftlib.merge_lora(layer.base)
    return layer.base
""",
        "the outputs of",
    ),
    mutant(
        GROUPS_FROM_THE_TOP,
        "counts the decay per group kept, so a frozen block moves the others' rates",
        "the rate of",
        (
            '        if params:\n            groups.insert(0, {"params": params, "lr": rate})\n'
            "        rate *= decay\n",
            '        if params:\n            groups.insert(0, {"params": params, "lr": rate})\n'
            "            rate *= decay\n",
        ),
    ),
    mutant(
        GROUPS_FROM_THE_TOP,
        "the first block at the full rate, the head slowest",
        "the head at lr, the block k places below it at lr * decay**k",
        ("reversed([*blocks, head])", "[*blocks, head]"),
        ("groups.insert(0, ", "groups.append("),
    ),
    mutant(
        GROUPS_FROM_THE_TOP,
        "keeps frozen parameters in the groups",
        "trainable parameters",
        (
            "model.get_submodule(name).parameters() if p.requires_grad]",
            "model.get_submodule(name).parameters()]",
        ),
    ),
    mutant(
        GROUPS_FROM_THE_TOP,
        "leaves a left-out parameter untrained without a word",
        "layer_decay_groups(model, ['block2', 'block3'], 'fc', ...)",
        ("    if missing:\n", "    if False:\n"),
    ),
    mutant(
        GROUPS_FROM_THE_TOP,
        "raises without naming the parameter",
        "the message should name the left-out parameter",
        ('f"these parameters are in no group: {missing}"', '"a parameter is in no group"'),
    ),
    mutant(
        GROUPS_FROM_THE_TOP,
        "keeps an empty group for a frozen block",
        "the number of groups",
        (
            "        if params:\n            groups.insert",
            "        if True:\n            groups.insert",
        ),
    ),
    Answer(
        "careful_layer_decay_groups",
        "wraps ftlib.param_groups with layer decay",
        """
def layer_decay_groups(model, blocks, head, lr, decay):
    groups = ftlib.param_groups(model, head, lr=lr, layer_decay=decay, head_lr_mult=1.0)
    return [{"params": group["params"], "lr": group["lr"]} for group in groups]
""",
        "the number of groups",
    ),
    Answer(
        "careful_feature_movement",
        "the distance of the whole matrices",
        """
def feature_movement(before, after):
    if before.shape != after.shape:
        raise ValueError("shapes differ")
    return ((after - before).norm() / before.norm()).item()
""",
        "of the whole matrices",
    ),
    mutant(
        MOVEMENT_WITH_LINALG,
        "the mean distance, not relative",
        "feature_movement(before, after)",
        ("(moved / torch.linalg.vector_norm(before, dim=1)).mean()", "moved.mean()"),
    ),
    mutant(
        MOVEMENT_WITH_LINALG,
        "relative to the rows after",
        "feature_movement(before, after)",
        ("vector_norm(before, dim=1)", "vector_norm(after, dim=1)"),
    ),
    mutant(
        MOVEMENT_WITH_LINALG,
        "returns a tensor",
        "feature_movement(before, after)",
        (
            "return float((moved / torch.linalg.vector_norm(before, dim=1)).mean())",
            "return (moved / torch.linalg.vector_norm(before, dim=1)).mean()",
        ),
    ),
    Answer(
        "careful_feature_movement",
        "the right number as a float subclass that equals anything",
        """
class Anything(float):
    def __eq__(self, other):
        return True


def feature_movement(before, after):
    return Anything(0.5)
""",
        "feature_movement(before, after)",
    ),
    mutant(
        LORA_WITH_F_LINEAR,
        "outputs as a tensor subclass",
        "(x) at the start",
        (
            "class LoRALinear(nn.Module):",
            "class Outputs(torch.Tensor):\n    pass\n\n\nclass LoRALinear(nn.Module):",
        ),
        (
            "return self.base(x) + F.linear(F.linear(x, self.A), self.B) * self.scale",
            "out = self.base(x) + F.linear(F.linear(x, self.A), self.B) * self.scale\n"
            "        return out.as_subclass(Outputs)",
        ),
    ),
    mutant(
        MOVEMENT_WITH_LINALG,
        "no check of the shapes",
        "feature_movement of a (3, 2) and a (2, 2) tensor",
        (
            "    if before.shape != after.shape:\n"
            '        raise ValueError("before and after must have the same shape")\n',
            "",
        ),
    ),
]

kernel, test_correct_answers_earn_the_points, test_wrong_answers_lose_them = answer_tests(
    LESSON, CORRECT, WRONG
)
