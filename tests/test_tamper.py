"""The static tamper scan flags what attacks reach for, and nothing in honest work.

Honest work is calibrated twice: on every lesson as the course ships it (the untouched release
and the release with the solution typed in, graded as nbgrader restores it), and on answers that
are correct but written differently from the solution. A false flag costs a student points
until an instructor looks, so these must stay at zero findings.
"""

from __future__ import annotations

import ast

import nbformat
import pytest
from submissions import as_graded, solved
from tiny_lesson import one_exercise

from ftlib_course.config import ROOT
from ftlib_course.notebooks import lesson_names
from ftlib_course.tamper import (
    REVIEW_ONLY,
    LockedCell,
    locked_cells,
    protected_names,
    scan_notebook,
    scan_source,
)

SETUP = LockedCell(
    "setup",
    "import math\nimport torch\nfrom torch import nn\nfrom ftlib_course.checks import check\n"
    "X = 2.0  # the one input\nfor seed in range(3):\n    pass",
    graded=False,
)
TEST = LockedCell(
    "test_loss",
    "value = loss(0.1)\nassert isinstance(value, float) and abs(value - 0.32) < 1e-12\n"
    "import random\nexpected = round(random.random(), 3)\ncheck.close(loss(X), 4.5, 'loss')\n"
    "check.tensor_close(torch.zeros(1), LAYER.bias, 'bias')",
    graded=True,
)
# A locked cell the test depends on (LAYER), and a display cell no test reads (fig).
HELPER = LockedCell("helper", "LAYER = nn.Linear(1, 1)\nnn.init.zeros_(LAYER.bias)", False)
DISPLAY = LockedCell("display", "fig = plot(X, math.pi)\nlosses = [loss(w) for w in W]", False)
PROTECTED = protected_names([SETUP, HELPER, DISPLAY, TEST])
# What the locked cells import, as scan_notebook gathers it: patching any of them is found.
MODULES = {"math": "math", "torch": "torch", "nn": "torch.nn"}

HOSTILE = {
    "input transformer": ("get_ipython().input_transformers_cleanup.append(f)", "ipython"),
    "AST transformer": ("ip = get_ipython()\nip.ast_transformers.append(t)", "ipython"),
    "event hook": ("get_ipython().events.register('pre_run_cell', f)", "ipython"),
    "test source from In": ("def loss(w):\n    return len(In[-1])", "ipython"),
    "input history": ("source = _ih[-1]", "ipython"),
    "shell escape": ("!cat ../../solutions/01_warm_start/01_warm_start.ipynb", "ipython"),
    "%run magic": ("%run ../../solutions/helper.py", "ipython"),
    "code hidden in %time": ("%time get_ipython().user_ns.clear()", "ipython"),
    "IPython import": ("from IPython import get_ipython", "ipython"),
    "builtins module": ("import builtins\nbuiltins.abs = lambda x: 0.0", "builtins"),
    "__builtins__": ("__builtins__.isinstance = lambda *a: True", "builtins"),
    "rebound abs": ("abs = lambda x: 0.0", "rebinding"),
    "rebound isinstance by def": ("def isinstance(a, b):\n    return True", "rebinding"),
    "rebound torch by import": ("import numpy as torch", "rebinding"),
    "rebound check helper": ("from mymodule import check", "rebinding"),
    "rebound by global": ("def f():\n    global abs\n    abs = len", "rebinding"),
    "rebound by walrus": ("[(abs := len) for _ in range(1)]", "rebinding"),
    "rebound by for loop": ("for float in [int]:\n    pass", "rebinding"),
    "rebound setup constant": ("X = 3.0", "rebinding"),
    "rebound by except": (
        "try:\n    1 / 0\nexcept ZeroDivisionError as abs:\n    pass",
        "rebinding",
    ),
    "patched library function": ("torch.allclose = lambda *a, **k: True", "patching"),
    "patched method": ("nn.Linear.forward = lambda self, x: x", "patching"),
    "patched via setattr": ("setattr(math, 'isclose', lambda *a, **k: True)", "patching"),
    "patched comparison": ("torch.Tensor.__eq__ = lambda a, b: True", "patching"),
    "float subclass": ("class Zero(float):\n    pass", "subclass"),
    "int subclass": ("class Eight(int):\n    pass", "subclass"),
    "tensor subclass": ("class T(torch.Tensor):\n    pass", "subclass"),
    "class from type()": ("Zero = type('Zero', (float,), {})", "subclass"),
    "metaclass": ("class A(metaclass=Meta):\n    pass", "subclass"),
    "comparison method": (
        "class A:\n    def __eq__(self, other):\n        return True",
        "special_method",
    ),
    "conversion method": (
        "class A:\n    def __float__(self):\n        return 0.32",
        "special_method",
    ),
    "__torch_function__": (
        "class A:\n    @classmethod\n    def __torch_function__(cls, f, t, a=(), k=None):\n"
        "        return True",
        "torch_function",
    ),
    "torch overrides": ("import torch.overrides", "torch_function"),
    "caller's frame": (
        "import sys\ndef loss(w):\n    return sys._getframe(1).f_locals['x']",
        "introspection",
    ),
    "frame via traceback": ("import traceback", "introspection"),
    "inspect.stack": ("import inspect\ninspect.stack()", "introspection"),
    "linecache": ("import linecache\nlines = linecache.getlines(name)", "introspection"),
    "globals()": ("globals()['abs'] = len", "introspection"),
    "vars()": ("vars(torch)['equal'] = max", "introspection"),
    "sys.modules": ("import sys\nsys.modules['torch'].equal = max", "introspection"),
    "function globals by name": ("getattr(loss, '__globals__')", "introspection"),
    "builtins via __self__": ("print.__self__.abs = len", "introspection"),
    "subclass walk": ("().__class__.__base__.__subclasses__()", "introspection"),
    "gc objects": ("import gc\ngc.get_objects()", "introspection"),
    "exec": ("exec(source)", "dynamic_code"),
    "eval": ("eval('1 + 1')", "dynamic_code"),
    "compile": ("compile('1', 'f', 'eval')", "dynamic_code"),
    "__import__": ("__import__('os')", "dynamic_code"),
    "importlib": ("import importlib\nimportlib.import_module('os')", "dynamic_code"),
    "ctypes": ("import ctypes", "native"),
    "kill the grader": ("import os\nos.kill(os.getppid(), 9)", "process"),
    "signal alarm": ("import signal\nsignal.alarm(1)", "process"),
    "thread": ("import threading\nthreading.Thread(target=f).start()", "process"),
    "atexit": ("import atexit\natexit.register(f)", "process"),
    "os reached through tempfile": ("import tempfile\ntempfile._os.system('x')", "process"),
    "subprocess": ("import subprocess", "process"),
    "gradebook by sqlite": ("import sqlite3", "grader"),
    "checks module": ("import ftlib_course.checks as checks", "grader"),
    "marker text": ("x = 1  # ### BEGIN HIDDEN TESTS", "markers"),
    "os._exit": ("import os\nos._exit(0)", "exit"),
    "absolute path": ("open('/work/main/gradebook.db', 'rb')", "path"),
    "parent folder": ("open('../../gradebook.db')", "path"),
    "home folder": ("open('~/.bashrc')", "path"),
    "f-string path": ("open(f'/etc/{name}')", "path"),
    "working directory": ("import os\nroot = os.getcwd()", "path"),
    "python installation": ("import sys\nopen(f'{sys.prefix}/lib/x.py', 'a')", "path"),
    "the main module": ("import __main__\nsource = __main__.In[-1]", "introspection"),
    "from the main module": ("from __main__ import _ih", "introspection"),
    "pydoc.locate": ("import pydoc\nb = pydoc.locate('builtins')", "dynamic_code"),
    "linecache of another module": (
        "import doctest\ndoctest.linecache.getlines(f)",
        "introspection",
    ),
    "the kernel's session": ("import sys\nkey = sys.stdout.session.key", "ipython"),
    "logging.currentframe": ("import logging\nframe = logging.currentframe()", "introspection"),
    "dunder put together": ("getattr(loss, '__glo' + 'bals__')", "introspection"),
    "dunder from repeats": ("getattr(m, '_' * 2 + 'builtins' + '_' * 2)", "introspection"),
    "dunder joined": ("getattr(m, ''.join(['__buil', 'tins__']))", "introspection"),
    "dunder reversed": ("getattr(m, '__snitliub__'[::-1])", "introspection"),
    "dunder by %": ("getattr(m, '__%s__' % 'globals')", "introspection"),
    "dunder by f-string": ("getattr(m, f'__{name}__')", "introspection"),
    "pickle.loads": ("import pickle\nanswer = pickle.loads(blob)", "dynamic_code"),
    "marshal.loads": ("import marshal\ncode = marshal.loads(blob)", "dynamic_code"),
    "attrgetter of a frame": (
        "import operator\noperator.attrgetter('gi_frame.f_back')(g)",
        "introspection",
    ),
    "methodcaller of a dunder": (
        "from operator import methodcaller\nmethodcaller('__subclasses__')",
        "introspection",
    ),
    "aliased float base": ("F = float\nclass Zero(F):\n    pass", "subclass"),
    "computed base": ("class Zero(type(0.5)):\n    pass", "subclass"),
    "input history by index": ("source = _i1", "ipython"),
    "history manager": ("shell.history_manager.get_range()", "ipython"),
    "history by name": ("getattr(main, '_ih')", "ipython"),
    "script in HTML": ("display(HTML('<img src=x onerror=alert(1)>'))", "active_content"),
    "JavaScript display": ("from IPython.display import Javascript", "active_content"),
    "JavaScript by type": ("display({'application/javascript': 'x'}, raw=True)", "active_content"),
    "pip from a folder": ("%pip install -e .", "ipython"),
    "shell with Python inside": ("!ls {__import__('os').system('id')}", "ipython"),
    "config with code": ("%config InlineBackend.rc = __import__('os')", "ipython"),
    "any extension": ("%load_ext my_hooks", "ipython"),
}

HONEST = {
    "loss written another way": "import math\n\ndef loss(w, x=X, y=2.0):\n    err = w * x - y\n"
    "    return err * err / 2",
    "builtins shadowed inside a function": "def steps(w, max_steps=1000):\n    max = max_steps\n"
    "    sum = 0\n    for abs_step in range(max):\n        sum += 1\n    return sum",
    "imports again": "import torch\nfrom torch import nn\nimport torch.nn as nn\nimport math",
    "other imports": "from math import ceil, log\nimport numpy as np\nprint(np.isclose(1.0, 1.0))",
    "a small class": "class Tracker:\n    '''Keeps values.'''\n\n    def __init__(self):\n"
    "        self.values = []\n\n    def __repr__(self):\n        return f'Tracker({self.values})'"
    "\n\n    def __len__(self):\n        return len(self.values)",
    "a module": "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        self.fc = nn.Linear(2, 2)\n\n    def forward(self, x):\n        return self.fc(x)",
    "a dataclass": "from dataclasses import dataclass\n\n@dataclass\nclass Result:\n"
    "    value: float\n\n    def __post_init__(self):\n        self.value = float(self.value)",
    "an exception class": "class ShapeError(ValueError):\n    pass",
    "no_grad and type names": "with torch.no_grad():\n    y = torch.zeros(3)\n"
    "print(type(y).__name__, torch.__version__)",
    "sorting and throwaway names": "pairs = sorted({'a': 1}.items(), key=lambda kv: kv[1])\n"
    "for _ in range(3):\n    pass",
    "harmless magics": "%matplotlib inline\n%timeit -n 3 -r 2 loss(0.1)\n%time y = loss(5)\nloss?",
    "shell commands that report": "!ls\n!ls -la images\n!nvidia-smi\n!nproc\nfiles = !ls",
    "installing by name": "%pip install timm==1.0.3 -q\n!pip list\n%pip show torch",
    "autoreload": "%load_ext autoreload\n%autoreload 2",
    "timing without spaces": "%timeit -n1 -r1 loss(0.1)",
    "a timed cell": "%%timeit -n 3\nloss(0.1)",
    "a captured cell": "%%capture output\nprint(loss(0.1))",
    "figure settings": "%config InlineBackend.figure_format = 'retina'",
    "HTML without scripts": "from IPython.display import HTML\nHTML('<b>bold</b> <a href=\"https://x.org\">x</a>')",
    "type names as values": "kind = float\ndtype = torch.float32\nprint(kind(1), '__init__')",
    "models by name, modes by name": "import torchvision\n"
    "model = getattr(torchvision.models, 'resnet18')(weights=None)\nfor mode in ('train', 'eval'):"
    "\n    getattr(model, mode)()\nmodel.eval()",
    "files in the notebook's folder": "from pathlib import Path\nfolder = Path('images') / 'cat'\n"
    "with open('notes.txt', 'w') as f:\n    f.write('1/16 of it')\nprint(f'{3}/s', '/', 'wait...')",
    "paths of found files": "for p in Path('.').rglob('*.png'):\n"
    "    print(p.parent.name, p.suffix.lower(), p.resolve())",
    "a folder from a variable": "DATA_DIR = None  # e.g. '~/pictures/birds'\n"
    "data_dir = Path(DATA_DIR or 'images').expanduser()",
    "catching errors": "try:\n    loss(None)\nexcept (TypeError, ValueError) as error:\n    pass",
    "library settings": "torch.backends.cudnn.deterministic = True\n"
    "import matplotlib.pyplot as plt\nplt.rcParams['figure.figsize'] = (6, 4)",
    "names the tests assign for themselves": "value = loss(0.1)\nexpected = 0.32\nseed = 1",
    "checking types": "assert isinstance(value, float) and abs(value) >= 0\n"
    "print(math.inf, type(float('nan')))",
    "display": "from IPython.display import display, clear_output\ndisplay('hi')",
    "gc.collect and sys facts": "import gc\nimport sys\ngc.collect()\n"
    "print(sys.version_info, sys.platform)",
    "os for files": "import os\nos.makedirs('out', exist_ok=True)\n"
    "print(os.path.join('out', 'a.pt'), os.listdir('.'))",
    "plain tensors": "t = torch.ones(2).as_subclass(torch.Tensor)\n"
    "total = sum(p.numel() for p in model.parameters())",
    "a docstring naming places": "def f():\n    '''Reads /data/x and ~/y, see ../notes.'''\n"
    "    return 1",
    "a cell that does not parse": "def loss(w:\n    return",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_each_attack_is_found_with_its_kind(name: str):
    source, kind = HOSTILE[name]
    kinds = {finding.kind for finding in scan_source(source, PROTECTED, MODULES)}
    assert kind in kinds, f"{name}: expected a {kind!r} finding, got {kinds or 'none'}"


@pytest.mark.parametrize("name", HONEST)
def test_honest_code_written_differently_is_not_flagged(name: str):
    findings = scan_source(HONEST[name], PROTECTED)
    assert not findings, f"{name}: {[finding.describe() for finding in findings]}"


def test_only_paths_and_exits_ask_for_review_without_holding():
    assert {"path", "exit"} == REVIEW_ONLY
    held = {finding.holds for finding in scan_source("abs = len\nopen('/etc/passwd')", PROTECTED)}
    assert held == {True, False}


def test_protected_names_are_what_locked_cells_import_use_and_define():
    assert PROTECTED["torch"] == "torch" and PROTECTED["nn"] == "torch.nn"
    assert PROTECTED["check"] == "ftlib_course.checks.check"
    assert PROTECTED["random"] == "random"  # imported by a test cell
    assert {"abs", "isinstance", "float", "X", "LAYER"} <= PROTECTED.keys()
    # What a test assigns for itself, a setup cell's loop variable and what only a display
    # cell defines or reads are not protected: a scratch cell may reuse them.
    assert not {"value", "expected", "seed", "loss", "fig", "losses", "plot"} & PROTECTED.keys()
    assert "math" not in PROTECTED, "math is imported by setup but read only by a display cell"


def test_a_locked_cell_with_its_released_text_is_trusted_and_an_edited_one_scanned():
    notebook = one_exercise("def double(x):\n    return 2 * x", "assert double(1) == 2")
    locked = [LockedCell("test_answer", "assert double(1) == 2", graded=True)]
    assert scan_notebook(notebook, locked) == []
    notebook.cells[1].source = "X = 3\nassert double(1) == 2"  # claims the locked id
    reads_x = LockedCell("test_x", "assert double(X) == 2 * X", graded=True)
    (finding,) = scan_notebook(notebook, [*locked, SETUP, reads_x])
    assert (finding.kind, finding.cell) == ("rebinding", 1)


def test_markdown_cells_are_checked_for_marker_text_and_active_content_only():
    notebook = one_exercise("x = 1", "assert x == 1")
    notebook.cells.append(nbformat.v4.new_markdown_cell("import ctypes\n### BEGIN SOLUTION"))
    notebook.cells.append(nbformat.v4.new_markdown_cell("Fine <b>work</b>, `<script>` [a](b.md)"))
    notebook.cells.append(nbformat.v4.new_markdown_cell("<img src=x onerror=alert(1)>"))
    found = [(f.kind, f.cell, f.holds) for f in scan_notebook(notebook, [])]
    assert found == [("markers", 2, True), ("active_content", 4, True)]


def test_a_cell_the_scan_cannot_read_is_held():
    notebook = one_exercise("def double(x):\n    return 2 * x", "assert double(1) == 2")
    notebook.cells.insert(1, nbformat.v4.new_code_cell("total = " + " + ".join(["1"] * 600)))
    (finding,) = scan_notebook(notebook, [])
    assert (finding.kind, finding.cell, finding.holds) == ("unreadable", 1, True)
    assert "RecursionError" in finding.detail


def test_function_parameters_and_comprehension_variables_are_not_what_a_test_reads():
    test = LockedCell(
        "test_fit",
        "def _summary(optimizer):\n    return optimizer.param_groups\n"
        "pairs = [(images, labels) for images, labels in batches]\nassert _summary(make(tasks))",
        graded=True,
    )
    setup = LockedCell("setup", "optimizer = None\nlabels = images = tasks = []", graded=False)
    assert set(protected_names([setup, test])) & {"optimizer", "labels", "images", "tasks"} == {
        "tasks"
    }


def test_a_scratch_binding_matters_only_between_the_lessons_binding_and_a_test():
    """A scratch cell that binds a name the tests read is flagged only where the tests would
    read its value: not above the lesson's own binding, not after the last test."""
    setup = LockedCell("setup", "tasks = make_tasks()", graded=False)
    test = LockedCell("test_answer", "assert answer(tasks) == 1", graded=True)
    notebook = one_exercise("def answer(t):\n    return 1", test.source)
    setup_cell = nbformat.v4.new_code_cell(setup.source)
    setup_cell.metadata.nbgrader = {"grade_id": "setup", "locked": True}
    notebook.cells.insert(0, setup_cell)

    def rebinding_at(position: int) -> list[int | None]:
        copy = nbformat.from_dict(notebook)
        copy.cells.insert(position, nbformat.v4.new_code_cell("tasks = None"))
        found = scan_notebook(copy, [setup, test])
        return [finding.cell for finding in found if finding.kind == "rebinding"]

    assert rebinding_at(0) == [], "the lesson binds it again before any test reads it"
    assert rebinding_at(1) == [1] and rebinding_at(2) == [2], "the test would read it"
    assert rebinding_at(4) == [], "after the last test nothing reads it"


@pytest.mark.parametrize("lesson", lesson_names())
def test_scratch_bindings_above_the_lessons_own_are_not_flagged(lesson: str):
    """`NAME = None` in a learner's cell just above each locked cell that binds a name the
    tests read, for every such name of the lesson."""
    solution = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    release = nbformat.read(ROOT / "lessons" / lesson / f"{lesson}.ipynb", as_version=4)
    locked = locked_cells(solution)
    protected = protected_names(locked)
    notebook = as_graded(solved(release, solution), solution)
    for index in reversed(range(len(notebook.cells))):
        cell = notebook.cells[index]
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("locked"):
            continue
        names = sorted(_bound_at_top(cell.source) & protected.keys())
        if names and index > 0:
            scratch = "\n".join(f"{name} = None" for name in names)
            notebook.cells.insert(index, nbformat.v4.new_code_cell(scratch))
    findings = scan_notebook(notebook, locked)
    assert not findings, f"{lesson}: {[f.describe() for f in findings]}"


def _bound_at_top(source: str) -> set[str]:
    """Names the top-level assignments, definitions and imports of `source` bind."""
    names = set()
    for statement in ast.parse(source).body:
        if isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
            names.add(statement.name)
        elif isinstance(statement, ast.Assign):
            names |= {
                n.id for t in statement.targets for n in ast.walk(t) if isinstance(n, ast.Name)
            }
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in statement.names}
    return names


@pytest.mark.parametrize("lesson", lesson_names())
def test_every_lesson_untouched_and_solved_has_no_findings(lesson: str):
    solution = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    release = nbformat.read(ROOT / "lessons" / lesson / f"{lesson}.ipynb", as_version=4)
    locked = locked_cells(solution)
    for name, notebook in [("untouched", release), ("solved", solved(release, solution))]:
        findings = scan_notebook(as_graded(notebook, solution), locked)
        assert not findings, f"{lesson} {name}: {[f.describe() for f in findings]}"


@pytest.mark.parametrize("lesson", lesson_names())
def test_a_scratch_cell_reusing_a_figure_name_of_the_lesson_is_not_flagged(lesson: str):
    """A learner's own cell that reuses what display cells call their figures is honest work."""
    solution = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    release = nbformat.read(ROOT / "lessons" / lesson / f"{lesson}.ipynb", as_version=4)
    notebook = solved(release, solution)
    notebook.cells.append(nbformat.v4.new_code_cell("fig, ax = None, None\nresults = {}"))
    findings = scan_notebook(as_graded(notebook, solution), locked_cells(solution))
    assert not findings, f"{lesson}: {[f.describe() for f in findings]}"
