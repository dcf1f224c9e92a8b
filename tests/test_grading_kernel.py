"""The grading kernel: nothing lost on a crash, output capped, trusted cells skipped, every
kind of tampering recorded, honest lessons never flagged, one kernel never sees another's state.

All of it through the real nbgrader autograde in the real sandboxed kernel (`grading_course`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from grading_course import (
    GradingCourse,
    answer_cell,
    graded_cell,
    lesson,
    needs_sandbox,
    read_only_cell,
)
from nbgrader.utils import determine_grade

from ftlib_course.config import ROOT
from ftlib_course.notebooks import SOLUTION, lesson_names
from ftlib_course.sandbox import forkserver
from ftlib_course.sandbox.execute import DIED_BEFORE, DIED_HERE, GradingExecute
from ftlib_course.sandbox.limits import writable_controllers
from ftlib_course.sandbox.preload import notebook_imports
from ftlib_course.sandbox.skipping import SKIP_TAG, SKIPPED_TEXT

TWO_EXERCISES = lesson(
    read_only_cell("from ftlib_course.checks import check", "setup"),
    answer_cell("### BEGIN SOLUTION\nfirst = 1\n### END SOLUTION", "first"),
    graded_cell('check.equal(first, 1, "first")\ncheck.passed("first")', "test_first"),
    answer_cell("### BEGIN SOLUTION\nsecond = 2\n### END SOLUTION", "second"),
    graded_cell('check.equal(second, 2, "second")\ncheck.passed("second")', "test_second"),
)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> GradingCourse:
    needs_sandbox()
    return GradingCourse(tmp_path_factory.mktemp("course"), TWO_EXERCISES, memory_mb=1024)


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("import os; os._exit(3)", "exited with status 3"),
        ("import faulthandler; faulthandler._sigsegv()", "SIGSEGV"),
    ],
)
def test_a_kernel_death_keeps_the_credit_earned_before_it(course: GradingCourse, how, reason):
    graded = course.grade(
        f"dies-{reason[:4]}", course.submission("first = 1", f"{how}\nsecond = 2")
    )
    death = graded.grading["kernel_death"]
    assert death["cell"] == 3 and death["grade_id"] == "second"
    assert reason in death["reason"]
    assert graded.scores == {"test_first": 1, "test_second": 0}
    outputs = [cell.outputs for cell in graded.notebook.cells]
    assert outputs[3][-1].evalue == DIED_HERE
    assert outputs[4][-1].evalue == DIED_BEFORE


def test_a_kernel_over_its_memory_limit_is_killed_and_reported(course: GradingCourse):
    if "memory" not in writable_controllers():
        pytest.skip("no writable memory cgroup here: memory is capped by RLIMIT_AS instead")
    hog = "blocks = [bytearray(2**20) for _ in range(2000)]\nsecond = 2"
    graded = course.grade("hog", course.submission("first = 1", hog))
    assert "memory" in graded.grading["kernel_death"]["reason"]
    assert graded.scores == {"test_first": 1, "test_second": 0}


def test_without_a_memory_cgroup_the_address_space_is_capped(course: GradingCourse, monkeypatch):
    monkeypatch.setattr(forkserver, "writable_controllers", dict)
    hog = (
        "try:\n    block = bytearray(3 * 2**30)\n"
        "except MemoryError:\n    print('refused')\n"
        "second = 2"
    )
    graded = course.grade("capped", course.submission("first = 1", hog))
    assert graded.text(3) == "refused\n"
    assert graded.grading["kernel_death"] is None
    assert graded.scores == {"test_first": 1, "test_second": 1}


def test_runaway_output_is_cut_while_it_arrives(course: GradingCourse):
    flood = "print('x' * 100_000_000)\nfor _ in range(2_000):\n    print('y' * 10_000)\nsecond = 2"
    graded = course.grade("flood", course.submission("first = 1", flood))
    assert graded.grading["truncated"] == [3]
    assert len(nbformat.writes(graded.notebook)) < 3_000_000
    assert "output cut here" in graded.text(3)
    assert graded.scores == {"test_first": 1, "test_second": 1}


def test_figures_show_as_in_any_kernel(course: GradingCourse):
    plot = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.title('a line')\nfirst = 1"
    graded = course.grade("plotter", course.submission(plot, "second = 2"))
    assert [output.output_type for output in graded.notebook.cells[1].outputs] == ["display_data"]
    assert "image/png" in graded.notebook.cells[1].outputs[0].data
    assert graded.grading["evidence"] == []


def test_a_cell_past_its_timeout_is_interrupted_and_grading_goes_on(tmp_path):
    needs_sandbox()
    course = GradingCourse(tmp_path, TWO_EXERCISES, timeout=5)
    graded = course.grade("loops", course.submission("first = 1", "while True:\n    pass"))
    assert graded.scores == {"test_first": 1, "test_second": 0}
    assert graded.grading["kernel_death"] is None
    assert graded.notebook.cells[3].outputs[-1].ename in {"KeyboardInterrupt", "CellTimeoutError"}
    assert graded.notebook.cells[4].outputs[-1].ename == "NameError"  # `second` never set


UNINTERRUPTIBLE = (
    "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n"
    "    except KeyboardInterrupt:\n        pass"
)
FAKE_REPLY = (
    "kernel = get_ipython().kernel\n"
    "content = {'status': 'ok', 'execution_count': 1, 'user_expressions': {}, 'payload': []}\n"
    "kernel.session.send(kernel.shell_stream, 'execute_reply', content, kernel.get_parent(),"
    " ident=kernel._shell_parent_ident.get())\n"
)


@pytest.mark.parametrize("hang", ["loop", "fake-reply"])
def test_a_notebook_past_its_time_limit_is_stopped_and_keeps_earlier_credit(tmp_path, hang):
    needs_sandbox()
    course = GradingCourse(tmp_path, TWO_EXERCISES, notebook_timeout=6)
    code = UNINTERRUPTIBLE if hang == "loop" else FAKE_REPLY + UNINTERRUPTIBLE
    graded = course.grade(f"hangs-{hang}", course.submission("first = 1", code))
    death = graded.grading["kernel_death"]
    assert "ran past the notebook's time limit of 6 s" in death["reason"]
    assert death["cell"] in {3, 4}  # the fake reply moves the grader on to the next cell
    assert graded.scores == {"test_first": 1, "test_second": 0}
    assert graded.notebook.cells[4].outputs[-1].ename == "KernelDied"


def test_a_fork_server_starts_from_a_virtual_environment_reached_through_a_link(tmp_path):
    needs_sandbox()
    link = tmp_path / "venv-link"
    link.symlink_to(Path(sys.prefix).resolve(), target_is_directory=True)
    start = (
        "from ftlib_course.sandbox.forkserver import ForkServer\n"
        "server = ForkServer()\nprint(server.info['ready'])\nserver.close()"
    )
    started = subprocess.run(
        [str(link / "bin" / "python"), "-c", start], capture_output=True, text=True, timeout=300
    )
    assert started.returncode == 0, started.stderr[-3000:]
    assert started.stdout.strip() == "True"


def test_a_fork_server_that_fails_to_start_says_why(monkeypatch):
    needs_sandbox()
    monkeypatch.setattr(forkserver, "_SERVER_MODULE", "ftlib_course.sandbox.no_such_server")
    with pytest.raises(forkserver.SandboxError, match="No module named"):
        forkserver.ForkServer()


def test_a_kernel_that_hangs_after_the_last_test_fails_the_closing_check(tmp_path):
    needs_sandbox()
    course = GradingCourse(tmp_path, CALLED_ANSWER, notebook_timeout=6)
    answer = "def answer():\n    return 1"
    graded = course.grade("hangs-last", course.submission(answer, FAKE_REPLY + UNINTERRUPTIBLE))
    assert graded.scores == {"test_answer": 1}
    assert "integrity-check-missing" in graded.evidence_kinds, graded.grading["evidence"]


SKIPPED_LESSON = lesson(
    answer_cell("### BEGIN SOLUTION\nfirst = 1\n### END SOLUTION", "first"),
    read_only_cell("print('the long experiment ran')", "experiment", tags=(SKIP_TAG,)),
    graded_cell('assert first == 1, "first"', "test_first"),
)


def test_only_cells_the_source_marks_are_skipped_and_they_keep_their_text(tmp_path):
    needs_sandbox()
    # Even with nbclient's own tag-based skipping configured for that tag.
    course = GradingCourse(tmp_path, SKIPPED_LESSON, skip_cells_with_tag=SKIP_TAG)
    submission = course.submission("first = 1\nprint('the answer ran')")
    # A student's own tag must not skip anything: the answer cell and the test cell carry it.
    for index in (0, 2):
        submission.cells[index].metadata.setdefault("tags", []).append(SKIP_TAG)
    graded = course.grade("skipper", submission)
    assert graded.grading["skipped"] == ["experiment"]
    assert graded.notebook.cells[1].source == "print('the long experiment ran')"
    assert graded.text(1) == SKIPPED_TEXT
    assert graded.text(0) == "the answer ran\n"
    assert graded.scores == {"test_first": 1}


def test_validate_skips_the_notebooks_own_marked_cells():
    notebook = nbformat.from_dict(SKIPPED_LESSON)
    notebook.cells[0].source = "first = 1"
    executed, _ = GradingExecute(kernel_name="python3").preprocess(notebook, {})
    assert executed.cells[1].outputs[0].text == SKIPPED_TEXT
    assert executed.metadata["ftlib_grading"]["skipped"] == ["experiment"]
    assert executed.cells[2].outputs == []  # the test passed


WRITES_STATE = """
import os, subprocess
for path in ("/tmp/left.txt", "/dev/shm/left.txt", os.path.expanduser("~/left.txt"), "left.txt"):
    open(path, "w").write("secret")
os.environ["LEFT"] = "secret"
import builtins; builtins.left_behind = "secret"
first = 1
"""
READS_STATE = """
import builtins, os
paths = ("/tmp/left.txt", "/dev/shm/left.txt", os.path.expanduser("~/left.txt"), "left.txt")
seen = [path for path in paths if os.path.exists(path)]
seen += ["env"] * ("LEFT" in os.environ) + ["builtins"] * hasattr(builtins, "left_behind")
print(seen, os.getpid())
first = 1
"""


def test_consecutive_kernels_share_no_files_or_state(course: GradingCourse):
    course.grade("leaves", course.submission(WRITES_STATE, "second = 2"))
    graded = course.grade("finds", course.submission(READS_STATE, "second = 2"))
    assert graded.text(1) == "[] 2\n"


ATTACKS = {
    "input-transformer": (
        "get_ipython().input_transformers_cleanup.append("
        "lambda lines: [line.replace('check.', 'print') for line in lines])"
    ),
    "ast-transformer": (
        "import ast\n"
        "class Blank(ast.NodeTransformer):\n"
        "    def visit_Expr(self, node):\n"
        "        return ast.Pass()\n"
        "get_ipython().ast_transformers.append(Blank())"
    ),
    "event-hook": "get_ipython().events.register('pre_run_cell', lambda info: None)",
    "shell-replaced": "get_ipython().showtraceback = lambda *args, **kwargs: None",
    "builtin-rebound": "import builtins\nbuiltins.abs = lambda value: 0",
    "library-rebound": "import torch\ntorch.allclose = lambda *args, **kwargs: True",
    "attribute-write": "import torch\ntorch.Tensor.__eq__ = lambda self, other: True",
    "trace-hook": "import sys\nsys.settrace(lambda *args: None)\nsys.settrace(None)",
    "ctypes": "import ctypes\nctypes.string_at(id(0), 8)",
    "gc-inspection": "import gc\ngc.get_referrers(abs)",
    "audit-hook": "import sys\nsys.addaudithook(lambda event, args: None)",
    "outside-file": "import os\nos.path.exists('../../solutions') or os.listdir('/')",
    "forged-record": "import os\nos.write(3, b\"(2, 'end', 'x', '')\\tnot-a-mac\\n\")",
}
MORE_ATTACKS = {
    # The kinds above, by other routes.
    # (sys.displayhook and sys.excepthook need no check: IPython restores them after each cell.)
    "shell-replaced, displayhook": (
        "shell = get_ipython()\nshell.displayhook = type(shell.displayhook)(shell=shell)"
    ),
    "shell-replaced, a class method": (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.showtraceback = lambda *args, **kwargs: None"
    ),
    "attribute-write, a function's code": (
        "import torch\n"
        "torch.nn.functional.relu.__code__ = (lambda input, inplace=False: input).__code__"
    ),
    "shell-replaced, custom exceptions": (
        "get_ipython().set_custom_exc((AssertionError,), lambda *args, **kwargs: None)"
    ),
    "builtin-rebound, in the notebook": "isinstance = lambda *args: True",
    "library-rebound, numpy": "import numpy\nnumpy.isclose = lambda *args, **kwargs: True",
    "library-rebound, math": "import math\nmath.isclose = lambda *args, **kwargs: True",
    "library-rebound, scipy.stats": (
        "from scipy import stats\nstats.ttest_ind = lambda *args, **kwargs: None"
    ),
    "library-rebound, statistics": "import statistics\nstatistics.mean = lambda data: 0.0",
    "library-rebound, checks": (
        "from ftlib_course import checks\n"
        "cell = type(checks.check).equal.__closure__[0]\n"
        "cell.cell_contents = lambda *args: None"
    ),
    "library-rebound, check in the notebook": "check = None",
    "trace-hook, profile": "import sys\nsys.setprofile(lambda *args: None)\nsys.setprofile(None)",
    "gc-inspection, objects": "import gc\nlen(gc.get_objects())",
    "outside-file, open": "try:\n    open('/etc/shadow')\nexcept OSError:\n    pass",
    "outside-file, pathlib": (
        "from pathlib import Path\n"
        "try:\n    (Path('..') / '..' / 'solutions' / 'tiny.ipynb').read_text()\n"
        "except OSError:\n    pass"
    ),
    "channel-closed": "import os\nos.close(3)",
    "integrity-check-missing": (
        "from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult\n"
        "async def pretend(cell, *args, **kwargs):\n"
        "    return ExecutionResult(ExecutionInfo(cell, False, False, True, None))\n"
        "get_ipython().run_cell_async = pretend"
    ),
}
ALSO_EXPECTED = {
    "input-transformer": {"test-cell-altered"},
    "ast-transformer": {"test-cell-altered"},
    "channel-closed": {"integrity-check-missing"},
    # No cell is compiled after the replacement, so no snapshot check runs again either.
    "integrity-check-missing": {"test-cell-altered"},
}


@pytest.mark.parametrize("case", [*ATTACKS, *MORE_ATTACKS])
def test_each_kind_of_tampering_is_recorded(course: GradingCourse, case: str):
    code = {**ATTACKS, **MORE_ATTACKS}[case]
    kind = case.split(",")[0]
    graded = course.grade(
        re.sub(r"\W+", "-", case), course.submission(f"{code}\nfirst = 1", "second = 2")
    )
    expected = {kind} | ALSO_EXPECTED.get(kind, set())
    assert expected <= graded.evidence_kinds, graded.grading["evidence"]
    cells = {item["cell"] for item in graded.grading["evidence"] if item["kind"] == kind}
    assert cells <= {1, None}, f"evidence placed in other cells: {graded.grading['evidence']}"


QUIET = """
def quiet(kind, content):
    # Drop error messages; make a failed execution's reply say it went well.
    if kind == "error":
        return None
    if kind == "execute_reply" and content.get("status") == "error":
        return {"status": "ok", "execution_count": 0, "user_expressions": {}, "payload": []}
    return content
"""
SUPPRESSED_ERRORS = {
    # Ways to keep a failing test cell's error from reaching the grader.
    "session.send": QUIET
    + (
        "import sys\nsession = sys.stdout.session\nsend = session.send\n"
        "def patched(stream, kind, content=None, *args, **kwargs):\n"
        "    content = quiet(kind, content)\n"
        "    return None if content is None else send(stream, kind, content, *args, **kwargs)\n"
        "session.send = patched"
    ),
    "Session class": QUIET
    + (
        "from jupyter_client.session import Session\nsend = Session.send\n"
        "def patched(self, stream, kind, content=None, *args, **kwargs):\n"
        "    content = quiet(kind, content)\n"
        "    if content is not None:\n"
        "        return send(self, stream, kind, content, *args, **kwargs)\n"
        "Session.send = patched"
    ),
    "serialize": QUIET
    + (
        "import sys\nsession = sys.stdout.session\nserialize = session.serialize\n"
        "def patched(msg, ident=None):\n"
        "    content = quiet(msg['msg_type'], msg['content'])\n"
        "    lost = {'parent_header': {}} if content is None else {'content': content}\n"
        "    return serialize({**msg, **lost}, ident)\n"
        "session.serialize = patched"
    ),
}
WITHOUT_OUTCOMES = {
    # The same, with the guard's callback taken away or emptied as well.
    "callback removed": "get_ipython().events.callbacks['post_run_cell'].clear()",
    "callback emptied": (
        "import functools\nfor callback in get_ipython().events.callbacks['post_run_cell']:\n"
        "    if isinstance(callback, functools.partial):\n"
        "        callback.__setstate__((id, (), {}, None))"
    ),
}


@pytest.mark.parametrize("route", [*SUPPRESSED_ERRORS, *WITHOUT_OUTCOMES])
def test_a_failing_test_cell_whose_error_is_suppressed_still_fails_and_is_flagged(
    course: GradingCourse, route: str
):
    code = SUPPRESSED_ERRORS.get(route) or (
        f"{WITHOUT_OUTCOMES[route]}\n{SUPPRESSED_ERRORS['session.send']}"
    )
    graded = course.grade(
        re.sub(r"\W+", "-", route), course.submission(f"{code}\nfirst = 0", "second = 0")
    )
    assert graded.scores == {"test_first": 0, "test_second": 0}
    kind = "output-suppressed" if route in SUPPRESSED_ERRORS else "outcome-missing"
    cells = {item["cell"] for item in graded.grading["evidence"] if item["kind"] == kind}
    assert cells == {2, 4}, graded.grading["evidence"]


CALLED_ANSWER = lesson(
    read_only_cell("from ftlib_course.checks import check", "setup"),
    answer_cell("### BEGIN SOLUTION\ndef answer():\n    return 1\n### END SOLUTION", "answer"),
    graded_cell('secret = "kumquat-marmalade"\ncheck.equal(answer(), 1, "answer")', "test_answer"),
    answer_cell("### BEGIN SOLUTION\npass\n### END SOLUTION", "notes"),
)
"""A test cell that calls the answer: what the answer can see of it, and of it later."""


@pytest.fixture(scope="module")
def called(tmp_path_factory) -> GradingCourse:
    needs_sandbox()
    return GradingCourse(tmp_path_factory.mktemp("called"), CALLED_ANSWER)


PEEK = """
import glob, linecache, os
def peek():
    shell = get_ipython()
    texts = [*In, *_ih, _i, _ii, _iii, *shell.history_manager.input_hist_raw]
    texts += [str(entry) for entry in shell.history_manager.db_input_cache]
    texts += ["".join(entry[2]) for entry in list(linecache.cache.values())]
    texts.append(str(shell.kernel.get_parent()))
    if shell.displayhook.exec_result is not None:
        texts.append(str(shell.displayhook.exec_result.info))
    for path in glob.glob(os.path.expanduser("~/**/*.sqlite"), recursive=True):
        texts.append(open(path, "rb").read().decode(errors="replace"))
    return "\\n".join(text for text in texts if isinstance(text, str))
"""


def test_cell_code_cannot_read_the_text_of_a_test_cell(called: GradingCourse):
    answer = f"{PEEK}\ndef answer():\n    global seen\n    seen = peek()\n    return 1"
    graded = called.grade("peeker", called.submission(answer, "print(seen)\nprint(peek())"))
    assert graded.scores == {"test_answer": 1}
    assert "check.equal(answer(), 1" in graded.notebook.cells[2].source
    printed = graded.text(3)
    assert "print(peek())" not in printed and "def peek" not in printed  # nor its own
    # Text found nowhere else: digits turn up by chance in the hashes, ids and sources it prints.
    assert "kumquat-marmalade" not in printed and "check.equal" not in printed, printed


FRAME_READS = {
    # Ways an answer reaches the frame of the test cell that calls it.
    "sys._getframe": "sys._getframe(1).f_code",
    "logging.currentframe": "logging.currentframe().f_back.f_code",
    "operator.methodcaller": 'operator.methodcaller("_getframe", 1)(sys)',
    "pydoc.locate": 'pydoc.locate("sys._getframe")(1)',
    "a traceback": "error.__traceback__.tb_frame.f_back.f_code",
    "inspect.stack": "inspect.stack()",
}
FRAME_READER = """
import inspect, logging, operator, pydoc, sys
def answer():
    try:
        raise ValueError
    except ValueError as error:
        {read}
    return 1
"""


@pytest.mark.parametrize("route", FRAME_READS)
def test_reading_the_calling_test_cells_frame_is_recorded(called: GradingCourse, route: str):
    code = FRAME_READER.format(read=FRAME_READS[route])
    graded = called.grade(re.sub(r"\W+", "-", route), called.submission(code, "pass"))
    assert "frame-inspection" in graded.evidence_kinds, graded.grading["evidence"]


def test_reading_an_earlier_cells_frame_from_its_traceback_is_recorded(course: GradingCourse):
    walk = (
        "import sys\ntb = sys.last_traceback\nwhile tb is not None:\n"
        "    tb.tb_frame.f_code\n    tb = tb.tb_next\nsecond = 2"
    )
    graded = course.grade("last-traceback", course.submission("first = 0", walk))
    assert "frame-inspection" in graded.evidence_kinds, graded.grading["evidence"]


HONEST_FRAMES = """
import collections, enum, inspect, logging, traceback, typing, warnings
Point = collections.namedtuple("Point", "x y")
T = typing.TypeVar("T")
class Box(typing.NamedTuple):
    value: int
def helper():
    return 1 / 0
def answer():
    Color = enum.Enum("Color", "RED GREEN")
    logging.getLogger("lesson").warning("computing the answer")
    warnings.warn("a slow path")
    try:
        helper()
    except ZeroDivisionError:
        traceback.print_exc()
    own = inspect.currentframe().f_code.co_name
    pair = collections.namedtuple("Pair", "a b")(1, 2)
    return Box(Point(pair.a, Color.RED.value).x).value if own == "answer" else 0
"""


def test_honest_uses_of_frames_and_warnings_are_not_recorded_and_lose_nothing(
    called: GradingCourse,
):
    graded = called.grade("honest-frames", called.submission(HONEST_FRAMES, "pass"))
    assert graded.grading["evidence"] == []
    assert graded.scores == {"test_answer": 1}
    streams = [out for out in graded.notebook.cells[2].outputs if out.output_type == "stream"]
    assert {out.name for out in streams} == {"stdout"}  # stderr would have cost the points
    assert "a slow path" in graded.text(2) and "ZeroDivisionError" in graded.text(2)


AUTORELOAD = "%load_ext autoreload\n%autoreload 2\ndef answer():\n    return 1"


def test_autoreload_is_an_honest_habit_that_leaves_no_evidence(called: GradingCourse):
    graded = called.grade("autoreload", called.submission(AUTORELOAD, "pass"))
    assert graded.grading["evidence"] == []
    assert graded.scores == {"test_answer": 1}


FAKE_RELOADER = """
from IPython.extensions.autoreload import AutoreloadMagics
class Reloader:
    enabled = True
    def check(self, *args, **kwargs):
        pass
magics = AutoreloadMagics(get_ipython())
magics._reloader = Reloader()
get_ipython().events.register("pre_run_cell", magics.pre_run_cell)
def answer():
    return 1
"""


def test_autoreloads_callback_on_another_reloader_is_an_event_hook(called: GradingCourse):
    graded = called.grade("fake-reloader", called.submission(FAKE_RELOADER, "pass"))
    assert "event-hook" in graded.evidence_kinds, graded.grading["evidence"]


def test_validate_shows_a_graded_cells_warnings_as_output_and_keeps_the_points():
    notebook = nbformat.from_dict(CALLED_ANSWER)
    notebook.cells[
        1
    ].source = "import warnings\ndef answer():\n    warnings.warn('slow')\n    return 1"
    executed, _ = GradingExecute(kernel_name="python3").preprocess(notebook, {})
    streams = [out for out in executed.cells[2].outputs if out.output_type == "stream"]
    assert [out.name for out in streams] == ["stdout"]
    assert "UserWarning: slow" in streams[0].text
    assert determine_grade(executed.cells[2])[0] == 1


def test_an_honest_submission_leaves_no_evidence(course: GradingCourse):
    graded = course.grade("honest", course.submission("first = 1", "second = 2"))
    assert graded.grading["evidence"] == []
    assert graded.scores == {"test_first": 1, "test_second": 1}


def test_without_the_sandbox_the_evidence_is_still_gathered(tmp_path):
    course = GradingCourse(tmp_path, TWO_EXERCISES, sandbox=False)
    graded = course.grade(
        "unsandboxed", course.submission(ATTACKS["builtin-rebound"], "second = 2")
    )
    assert graded.grading["mode"] == "no-sandbox"
    assert "builtin-rebound" in graded.evidence_kinds


@pytest.mark.parametrize("name", lesson_names())
def test_the_lessons_solutions_leave_no_evidence(tmp_path, name: str):
    needs_sandbox()
    shutil.copytree(ROOT / "solutions" / name, tmp_path / "source")
    source = nbformat.read(tmp_path / "source" / f"{name}.ipynb", as_version=4)
    files = {
        path.name: path.read_text()
        for path in (tmp_path / "source").iterdir()
        if path.is_file() and path.suffix != ".ipynb"
    }
    course = GradingCourse(tmp_path / "course", source, files=files)
    answers = [
        _without_markers(cell.source)
        for cell in source.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    ]
    graded = course.grade("solution", course.submission(*answers))
    assert graded.grading["evidence"] == [], json.dumps(graded.grading["evidence"], indent=1)
    assert graded.grading["kernel_death"] is None and graded.grading["truncated"] == []
    assert graded.score == graded.max_score


def _without_markers(source: str) -> str:
    """An answer as a student types it: the solution without nbgrader's marker lines."""
    return "\n".join(line for line in source.splitlines() if not any(m in line for m in SOLUTION))


ATTACHED_KERNEL = """
import asyncio, sys
from pathlib import Path
from ftlib_course.sandbox import forkserver, layout
from ftlib_course.sandbox.evidence import EvidenceChannel
from ftlib_course.sandbox.limits import Limits
from ftlib_course.sandbox.manager import SandboxKernelManager

async def main():
    forkserver.attach(Path(sys.argv[1]), int(sys.argv[2]))
    server = forkserver.shared_fork_server()
    channel = EvidenceChannel()
    manager = SandboxKernelManager(server=server, channel=channel, files={},
        env=layout.kernel_environment(), limits=Limits(), kernel_name="python3")
    await manager.start_kernel()
    client = manager.client()
    client.start_channels()
    await client.wait_for_ready(timeout=120)
    shown = []
    await client.execute_interactive("import sys; print('colorsys' in sys.modules)",
        output_hook=lambda m: shown.append(m["content"].get("text", "")), timeout=120)
    client.stop_channels()
    await manager.shutdown_kernel(now=True)
    print(type(server).__name__, server.runtime == Path(sys.argv[1]), "".join(shown).strip())

asyncio.run(main())
"""


def test_another_process_forks_its_kernels_from_the_server_it_attached_to():
    """The workers of a grading run share the server their parent started, with the lesson's
    modules imported; none starts a server of its own."""
    needs_sandbox()
    server = forkserver.ForkServer(preload=["colorsys", "no_such_module_here"], wait=False)
    try:
        runtime, pid = server.address
        attached = subprocess.run(
            [sys.executable, "-c", ATTACHED_KERNEL, str(runtime), str(pid)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert attached.returncode == 0, attached.stderr[-3000:]
        assert attached.stdout.split() == ["ForkServerClient", "True", "True"]
        assert server.wait_until_ready()["not_preloaded"] == ["no_such_module_here"]
    finally:
        server.close()
    assert not runtime.exists()


def test_the_server_imports_what_the_lessons_source_notebook_imports(tmp_path):
    source = nbformat.v4.new_notebook()
    source.cells = [
        nbformat.v4.new_markdown_cell("import not_code"),
        nbformat.v4.new_code_cell("%matplotlib inline\nimport torch.nn as nn, math\nx = 1"),
        nbformat.v4.new_code_cell("def f():\n    from ftlib.stats import paired_interval\n"),
        nbformat.v4.new_code_cell("from . import nothing\nimport math"),
    ]
    path = tmp_path / "lesson.ipynb"
    nbformat.write(source, path)
    assert notebook_imports(path) == ["torch.nn", "math", "ftlib.stats"]
    assert notebook_imports(tmp_path / "missing.ipynb") == []
    for name in lesson_names():
        imports = notebook_imports(ROOT / "solutions" / name / f"{name}.ipynb")
        assert "ftlib_course.checks" in imports, name
