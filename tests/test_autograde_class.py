"""Grading a class: set-up on a fresh clone, parallel workers, bad input, flags and holds, feedback,
and `course.py place`, which puts received notebooks where grading finds them.

One small probe lesson (a locked setup cell, an answer, a test with a hidden part) keeps this
fast; one class run grades every kind of submission at once, with two workers on one gradebook.
The hostile corpus on the real lessons is in test_hostile_submissions.py.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader.api import Gradebook
from tiny_lesson import one_exercise

from ftlib_course import autograde
from ftlib_course.autograde import GradingError, grade_class
from ftlib_course.config import ROOT, course_config
from ftlib_course.feedback import write_feedback
from ftlib_course.hidden_tests import HIDDEN_LINE
from ftlib_course.inert import active_parts, markdown2html_mistune, markdown_active_parts
from ftlib_course.review import CELL_COUNT_LIMIT, CELL_LIMIT, FlagForReview
from ftlib_course.sandbox import sandbox_problem

LESSON = "00_probe"
CORRECT = "def double(x):\n    return x + x"
HIDDEN_MESSAGE = "double(21.0) should be 42.0"
# Prints a hidden test line, as a submission that read the tests would; the cell's own text
# holds no line of the test, nor its message.
QUOTING_CELL = (
    """print("assert abs(double(21.0) - 42.0) < 1e-12, " + '"double(21.0) should' + ' be 42.0"')"""
)
PAYLOAD = "document.title = `pwned`"
ACTIVE_CODE = f"""from IPython.display import HTML, SVG, Javascript, display

display(HTML("<script>{PAYLOAD}</script>"))
display(Javascript("{PAYLOAD}"))
display(HTML('<iframe srcdoc="<script>parent.{PAYLOAD}</script>"></iframe>'))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg"><script>{PAYLOAD}</script></svg>'))"""
ACTIVE_MARKDOWN = f'My answer <img src=x onerror="{PAYLOAD}">'
HONEST_SCRATCH = ["!ls", "%timeit -n1 -r1 double(2.0)", "!nvidia-smi", "%pip list"]
SANDBOX = sandbox_problem() is None  # grade in the sandbox where one can be made


def _probe_source() -> nbformat.NotebookNode:
    notebook = one_exercise(
        "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
        '"""double: doubles floats."""\n'
        'assert abs(double(0.5) - FACTOR * 0.5) < 1e-12, "double(0.5) should be 1.0"\n'
        "### BEGIN HIDDEN TESTS\n"
        'assert abs(double(21.0) - 42.0) < 1e-12, "double(21.0) should be 42.0"\n'
        "### END HIDDEN TESTS",
        name="double",
    )
    setup = new_code_cell("import math\n\nFACTOR = 2.0")
    setup.metadata.nbgrader = {
        "schema_version": 3,
        "grade": False,
        "solution": False,
        "locked": True,
        "grade_id": "setup",
    }
    notebook.cells.insert(0, setup)
    return notebook


@pytest.fixture(scope="module", autouse=True)
def _alembic_on_path():
    # nbgrader runs the `alembic` command to create a gradebook.
    bin_dir = str(Path(sys.executable).parent)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", os.pathsep.join([bin_dir, os.environ.get("PATH", "")]))
        yield


def _fresh_course(root: Path) -> Path:
    """A fresh course: solutions/ only, no gradebook, no lessons/ (as in a new clone)."""
    source = root / "solutions" / LESSON / f"{LESSON}.ipynb"
    source.parent.mkdir(parents=True)
    nbformat.write(_probe_source(), source)
    return root


@pytest.fixture
def course(tmp_path: Path) -> Path:
    return _fresh_course(tmp_path)


def _release(root: Path) -> nbformat.NotebookNode:
    """The student version, made the way nbgrader makes it (in a throwaway course)."""
    from nbgrader.apps import NbGraderAPI

    scratch = root / ".release"
    released = scratch / "lessons" / LESSON / f"{LESSON}.ipynb"
    if not released.exists():
        (scratch / "solutions").mkdir(parents=True)
        (scratch / "solutions" / LESSON).symlink_to(root / "solutions" / LESSON)
        assert NbGraderAPI(config=course_config(scratch)).generate_assignment(LESSON)["success"]
    return nbformat.read(released, as_version=4)


def _hand_in(root: Path, student: str, notebook: nbformat.NotebookNode, name: str = LESSON):
    target = root / "submitted" / student / LESSON / f"{name}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)


def _with_answer(release: nbformat.NotebookNode, answer: str, *, drop=(), add=()):
    notebook = nbformat.from_dict(release)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "double":
            cell.source = answer
    notebook.cells = [
        cell
        for cell in notebook.cells
        if cell.metadata.get("nbgrader", {}).get("grade_id") not in drop
    ]
    notebook.cells += [new_code_cell(source) for source in add]
    return notebook


def _grades(root: Path, student: str) -> dict:
    config = course_config(root)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", config.CourseDirectory.course_id) as book:
        submission = book.find_submission_notebook(LESSON, LESSON, student)
        return {
            "score": submission.score,
            "flagged": submission.flagged,
            "needs_manual_grade": [grade.needs_manual_grade for grade in submission.grades],
            "extra_credit": [grade.extra_credit for grade in submission.grades],
            "comments": [comment.auto_comment for comment in submission.comments],
        }


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """One class run over every kind of submission, with two workers; (root, outcomes, said)."""
    course = _fresh_course(tmp_path_factory.mktemp("class"))
    release = _release(course)
    forged = _with_answer(release, CORRECT)
    forged.metadata["ftlib_grading"] = {"mode": "sandbox", "evidence": []}
    forged.metadata["ftlib_review"] = {"flags": [], "held": False}
    copied = _with_answer(release, CORRECT)
    pasted = nbformat.from_dict(copied.cells[-1])  # the test cell, pasted early
    pasted.id = "pasted-test"
    copied.cells.insert(1, pasted)
    submissions = {
        "right": _with_answer(release, CORRECT),
        "wrong": _with_answer(release, "def double(x):\n    return x"),
        "untouched": release,
        "tamper": _with_answer(release, CORRECT + "\n\nabs = lambda value: 0.0"),
        "tamper_then_clean": _with_answer(release, CORRECT + "\n\nabs = lambda value: 0.0"),
        "marker": _with_answer(release, CORRECT + "\n# ### BEGIN HIDDEN TESTS"),
        "no_test": _with_answer(release, CORRECT, drop=["test_double"]),
        "no_setup": _with_answer(release, CORRECT, drop=["setup"]),
        "copied": copied,
        "forged": forged,
        "active": _with_answer(release, CORRECT, add=[ACTIVE_CODE]),
        "deep": _with_answer(release, CORRECT + "\n\n\n_ = " + " + ".join(["0"] * 600)),
        "huge": _with_answer(release, CORRECT),
        "quoted": _with_answer(
            release,
            CORRECT,
            add=[QUOTING_CELL],
        ),
        "honest_scratch": _with_answer(
            release, CORRECT, add=[*HONEST_SCRATCH, "FACTOR = None  # after the test"]
        ),
    }
    submissions["active"].cells.append(new_markdown_cell(ACTIVE_MARKDOWN))
    submissions["huge"].cells.append(new_markdown_cell("x" * 3_000_000))
    submissions["huge"].cells += [new_markdown_cell("more") for _ in range(CELL_COUNT_LIMIT + 10)]
    for student, notebook in submissions.items():
        _hand_in(course, student, notebook)
    _hand_in(course, "renamed", release, name="my_work")
    (course / "submitted" / "empty" / LESSON).mkdir(parents=True)
    said: list[str] = []
    outcomes = grade_class(LESSON, root=course, jobs=2, sandbox=SANDBOX, say=said.append)
    return course, {outcome.student: outcome for outcome in outcomes}, said


def test_a_fresh_course_is_set_up_from_solutions_without_touching_lessons(graded_class):
    root, outcomes, said = graded_class
    assert said == [
        f"{LESSON} was not in the gradebook: added it from solutions/ (lessons/ unchanged)"
    ]
    assert not (root / "lessons").exists()
    assert (outcomes["right"].score, outcomes["right"].max_score) == (1, 1)
    assert (outcomes["wrong"].score, outcomes["untouched"].score) == (0, 0)
    assert not outcomes["right"].flags and not outcomes["wrong"].flags


def test_submissions_that_cannot_be_graded_say_why_and_the_others_are_graded(graded_class):
    _, outcomes, _ = graded_class
    assert "holds my_work.ipynb" in outcomes["renamed"].error
    assert f"course.py place {LESSON} renamed" in outcomes["renamed"].error
    assert "holds no notebook" in outcomes["empty"].error
    graded = [student for student, outcome in outcomes.items() if not outcome.error]
    assert len(graded) == 15


def test_tampering_holds_the_score_with_the_withheld_score_in_the_comment(graded_class):
    root, outcomes, _ = graded_class
    assert outcomes["tamper"].held and outcomes["tamper"].score == 0
    assert "static:rebinding" in [flag.kind for flag in outcomes["tamper"].flags]
    grades = _grades(root, "tamper")
    assert grades["flagged"] and all(grades["needs_manual_grade"])
    (comment,) = grades["comments"]
    assert "the automatic score 1 of 1 is withheld" in comment
    assert "rebinds 'abs'" in comment and "test_double 1/1" in comment


def test_a_clean_regrade_lifts_the_hold(graded_class):
    root, outcomes, _ = graded_class
    assert outcomes["tamper_then_clean"].held
    _hand_in(root, "tamper_then_clean", _with_answer(_release(root), CORRECT))
    (outcome,) = grade_class(
        LESSON, root=root, students=["tamper_then_clean"], jobs=1, sandbox=SANDBOX
    )
    assert (outcome.score, outcome.flags) == (1, [])
    grades = _grades(root, "tamper_then_clean")
    assert not grades["flagged"] and grades["comments"] == [None]
    assert not any(grades["needs_manual_grade"])


def test_deleted_locked_cells_are_restored_and_flagged_without_a_hold(graded_class):
    root, outcomes, _ = graded_class
    for student, grade_id in [("no_test", "test_double"), ("no_setup", "setup")]:
        outcome = outcomes[student]
        assert outcome.score == 1, f"{student}: the restored cells should grade the answer"
        assert [flag.kind for flag in outcome.flags] == ["restored"]
        assert grade_id in outcome.flags[0].detail and not outcome.held
        assert _grades(root, student)["flagged"]
        assert "flagged for review (score kept)" in _grades(root, student)["comments"][0]


def test_a_pasted_copy_of_a_test_cell_grades_instead_of_failing(graded_class):
    _, outcomes, _ = graded_class
    assert outcomes["copied"].score == 1
    assert {flag.kind for flag in outcomes["copied"].flags} >= {"duplicated"}


def test_grading_records_written_by_the_student_are_dropped(graded_class):
    root, outcomes, _ = graded_class
    assert outcomes["forged"].score == 1 and not outcomes["forged"].held
    assert [flag.kind for flag in outcomes["forged"].flags] == ["forged"]
    graded = nbformat.read(root / "autograded/forged" / LESSON / f"{LESSON}.ipynb", as_version=4)
    record = graded.metadata["ftlib_grading"]
    assert record["mode"] == outcomes["right"].mode and "skipped" in record, "the grader's own"
    assert (
        graded.metadata["ftlib_review"]["held"] is False
        and "submission" in graded.metadata["ftlib_review"]
    )
    assert _grades(root, "forged")["extra_credit"] == [None]


def test_feedback_waits_for_flagged_work_and_survives_marker_text(graded_class):
    root, outcomes, _ = graded_class
    assert outcomes["marker"].held
    status = write_feedback(LESSON, root)
    assert status["right"] == "written" and status["marker"] == "waiting for review"
    config = course_config(root)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", config.CourseDirectory.course_id) as book:
        book.find_submission_notebook(LESSON, LESSON, "marker").flagged = False  # reviewed
        book.db.commit()
    assert write_feedback(LESSON, root)["marker"] == "written"
    page = (root / "feedback/marker" / LESSON / f"{LESSON}.html").read_text()
    assert "BEGIN HIDDEN TESTS" in page, "the student's own text is shown as written"
    assert "double(21.0) should be 42.0" not in page, "the hidden test stays hidden"


def _autograded(root: Path, student: str) -> nbformat.NotebookNode:
    return nbformat.read(root / "autograded" / student / LESSON / f"{LESSON}.ipynb", as_version=4)


def _kinds(outcome) -> set[str]:
    return {flag.kind for flag in outcome.flags}


def _reviewed(root: Path, student: str) -> str:
    """The feedback page of `student` once an instructor has removed the flag."""
    config = course_config(root)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", config.CourseDirectory.course_id) as book:
        book.find_submission_notebook(LESSON, LESSON, student).flagged = False
        book.db.commit()
    assert write_feedback(LESSON, root)[student] == "written"
    return (root / "feedback" / student / LESSON / f"{LESSON}.html").read_text()


def test_active_content_is_held_and_made_inert_in_the_graded_copy(graded_class):
    root, outcomes, _ = graded_class
    outcome = outcomes["active"]
    assert outcome.held and outcome.score == 0
    assert {"static:active_content", "active-content"} <= _kinds(outcome)
    graded = _autograded(root, "active")
    markdown = [cell.source for cell in graded.cells if cell.cell_type == "markdown"]
    assert [markdown_active_parts(source) for source in markdown] == [[]]
    assert "&lt;img src=x onerror" in markdown2html_mistune(markdown[0]), "shown as text"
    data = [output.get("data", {}) for cell in graded.cells for output in cell.get("outputs", [])]
    assert data and not [item for item in data if "application/javascript" in item]
    assert not [item for item in data if active_parts(str(item.get("text/html", "")))]
    (comment,) = _grades(root, "active")["comments"]
    assert "&lt;script&gt;" in comment and "<script" not in comment, "the feedback renders it"


def test_a_scan_that_cannot_read_a_cell_holds_the_score(graded_class):
    root, outcomes, _ = graded_class
    outcome = outcomes["deep"]
    assert "static:unreadable" in _kinds(outcome) and outcome.held
    assert outcome.score == 0 and "test_double 1/1" in _grades(root, "deep")["comments"][0]


def test_a_review_that_fails_holds_the_score(graded_class):
    """Whatever goes wrong in the review (here a grading record it cannot read) holds the work."""
    root, outcomes, _ = graded_class
    assert outcomes["right"].score == 1
    notebook = _autograded(root, "right")
    notebook.metadata["ftlib_grading"]["evidence"] = ["not a record"]
    resources = {
        "nbgrader": {
            "db_url": f"sqlite:///{root / 'gradebook.db'}",
            "notebook": LESSON,
            "assignment": LESSON,
            "student": "right",
        }
    }
    try:
        FlagForReview().preprocess(notebook, resources)
        grades = _grades(root, "right")
        assert grades["score"] == 0 and grades["flagged"]
        assert "review-failed" in grades["comments"][0]
        assert "AttributeError" in grades["comments"][0]
    finally:
        (outcome,) = grade_class(LESSON, root=root, students=["right"], jobs=1, sandbox=SANDBOX)
        assert outcome.score == 1 and not outcome.flags, "a regrade restores the score"


def test_a_huge_cell_is_cut_flagged_and_its_feedback_stays_small(graded_class):
    root, outcomes, _ = graded_class
    outcome = outcomes["huge"]
    assert outcome.score == 1 and not outcome.held and _kinds(outcome) == {"oversized"}
    (cut,) = [cell for cell in _autograded(root, "huge").cells if cell.source.startswith("xxx")]
    assert len(cut.source) < CELL_LIMIT + 300 and "characters cut to" in cut.source
    (flag,) = outcome.flags
    assert f"11 cells past the first {CELL_COUNT_LIMIT:,}" in flag.detail, "1,010 and the huge one"
    assert len(_reviewed(root, "huge")) < CELL_LIMIT + 500_000


def test_an_output_quoting_a_hidden_test_is_held_and_hidden_in_feedback(graded_class):
    root, outcomes, _ = graded_class
    outcome = outcomes["quoted"]
    assert outcome.held and outcome.score == 0
    assert _kinds(outcome) == {"hidden-test-quoted"}
    page = _reviewed(root, "quoted")
    assert HIDDEN_MESSAGE not in page and HIDDEN_LINE in page


def test_honest_magics_and_late_scratch_bindings_are_not_flagged(graded_class):
    _, outcomes, _ = graded_class
    outcome = outcomes["honest_scratch"]
    assert (outcome.score, outcome.flags) == (1, [])


def test_unknown_lesson_no_submissions_and_unknown_students_are_refused(course: Path):
    with pytest.raises(GradingError, match=f"unknown lesson '01_warm_stat'.*{LESSON}"):
        grade_class("01_warm_stat", root=course, sandbox=SANDBOX)
    with pytest.raises(GradingError, match="no submissions of 00_probe.*course.py place"):
        grade_class(LESSON, root=course, sandbox=SANDBOX)
    _hand_in(course, "ada", _probe_source())
    with pytest.raises(GradingError, match="no submission of 00_probe by bob.*ada"):
        grade_class(LESSON, root=course, students=["bob"], sandbox=SANDBOX)


def test_the_command_exits_2_on_bad_input_and_1_when_a_submission_fails(course: Path, capsys):
    args = ["--root", str(course), "--no-sandbox"]
    assert autograde.main([LESSON, *args]) == 2
    assert "no submissions of 00_probe" in capsys.readouterr().err
    _hand_in(course, "ada", _with_answer(_release(course), CORRECT))
    (course / "submitted" / "bob" / LESSON).mkdir(parents=True)
    assert autograde.main([LESSON, *args, "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "student  score  max  flags" in out and "bob not graded" in out
    assert "Graded WITHOUT a sandbox" in out
    with pytest.raises(SystemExit):
        autograde.main([LESSON, *args, "--jobs", "0"])


def test_the_command_refuses_to_grade_without_a_sandbox_and_names_the_way_out(course: Path):
    _hand_in(course, "ada", _probe_source())
    run = subprocess.run(
        [sys.executable, "-m", "ftlib_course.autograde", LESSON, "--root", str(course)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": str(Path(sys.executable).parent)},  # no bwrap on PATH
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "cannot grade in a sandbox" in run.stderr and "bubblewrap" in run.stderr
    assert "--no-sandbox" in run.stderr
    assert not (course / "autograded").exists()


@pytest.fixture
def course_script(monkeypatch, course: Path):
    """course.py imported as a module, with its course root moved to `course`."""
    spec = importlib.util.spec_from_file_location("course", ROOT / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", course)
    return module


def test_place_puts_a_notebook_where_autograde_finds_it_and_says_so(course_script, course, capsys):
    received = course / "from_mail.ipynb"
    nbformat.write(_probe_source(), received)
    course_script.place([LESSON, "ada.lovelace", str(received)])
    course_script.place([LESSON, "ada.lovelace", str(received)])
    placed = course / "submitted" / "ada.lovelace" / LESSON / f"{LESSON}.ipynb"
    assert placed.read_bytes() == received.read_bytes()
    assert "(replacing the earlier one)" in capsys.readouterr().out.splitlines()[-1]


@pytest.mark.parametrize(
    ("student", "content", "message"),
    [
        ("../bob", None, "invalid student id '../bob'"),
        (".hidden", None, "invalid student id '.hidden'"),
        ("bob", b"not json", "is not a Jupyter notebook"),
        ("bob", b'{"metadata": {}}', "is not a Jupyter notebook"),
    ],
)
def test_place_refuses_bad_ids_and_files_that_are_not_notebooks(
    course_script, course, student, content, message
):
    received = course / "received.ipynb"
    if content is None:
        nbformat.write(_probe_source(), received)
    else:
        received.write_bytes(content)
    with pytest.raises(SystemExit, match=re.escape(message)):
        course_script.place([LESSON, student, str(received)])
    assert not (course / "submitted").exists()
