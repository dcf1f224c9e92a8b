"""What ftlib's common first uses import, in a fresh process: start-up is paid in every kernel
and every graded submission, so the light uses must not pull in torchvision (and with it
``torch._dynamo``), timm or transformers. Speed itself is measured in ``bench/import_time.py``."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["torchvision", "torch._dynamo", "timm", "transformers", "matplotlib"]
SMALL_MODEL = "nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))"
FIRST_USES = [
    "import ftlib",
    "from torch import nn",
    f"ftlib.prepare({SMALL_MODEL}, 'head', 2)",
    f"ftlib.freeze({SMALL_MODEL})",
    f"ftlib.swap_head({SMALL_MODEL}, 2)",
    f"ftlib.param_groups({SMALL_MODEL}, lr=0.1, layer_decay=0.75)",
    "from ftlib.data import digits_tasks",
    "ftlib.prepare(ftlib.load_pretrained('digits'), 'head', num_classes=5)",
]


def imported_after_each(steps: list[str]) -> list[list[str]]:
    """For each step of a fresh process, the heavy packages (and torch) imported by then."""
    lines = ["import json, sys", "seen = []"]
    for step in steps:
        lines += [step, f"seen.append([m for m in {HEAVY + ['torch']} if m in sys.modules])"]
    lines.append("print(json.dumps(seen))")
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(lines)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_import_ftlib_imports_not_even_torch():
    assert imported_after_each(["import ftlib"]) == [[]]


def test_common_first_uses_import_no_heavy_package():
    loaded = imported_after_each(FIRST_USES)
    assert loaded[-1] == ["torch"], {
        step: seen for step, seen in zip(FIRST_USES, loaded, strict=True)
    }


def test_torchvision_comes_in_when_the_model_needs_it():
    steps = [
        "import ftlib",
        "import torchvision",
        "ftlib.prepare(torchvision.models.resnet18(), 'head', 2)",
    ]
    assert "torchvision" in imported_after_each(steps)[-1]
