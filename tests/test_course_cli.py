"""The learner's self-check (`course.py validate`) and course.py's argument handling.

`nbgrader validate` exits 0 even when a test fails (jupyter/nbgrader#1908); our wrapper must exit 1
and say which test failed and why.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from tiny_lesson import one_exercise

from ftlib_course import validate as validate_module
from ftlib_course.config import ROOT


def _lesson_with_answer(path: Path, answer: int) -> Path:
    """A tiny graded notebook: the learner sets `answer`; the test wants 42."""
    test = '"""answer: is 42."""\nassert answer == 42, f"expected 42, got {answer}"'
    nbformat.write(one_exercise(f"answer = {answer}", test), path)
    return path


def _validate(notebook: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ftlib_course.validate", str(notebook)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_validate_exits_0_for_a_notebook_whose_tests_pass(tmp_path: Path):
    run = _validate(_lesson_with_answer(tmp_path / "good.ipynb", 42))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("OK")


def test_validate_exits_1_and_shows_the_failing_test_and_its_hint(tmp_path: Path):
    run = _validate(_lesson_with_answer(tmp_path / "bad.ipynb", 41))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED: 1 test cell(s) fail" in run.stdout
    assert "expected 42, got 41" in run.stdout


def test_validate_exits_2_for_a_missing_notebook(tmp_path: Path, capsys):
    assert validate_module.main([str(tmp_path / "missing.ipynb")]) == 2
    assert "no notebook at" in capsys.readouterr().err


def test_report_names_edited_read_only_cells():
    text = validate_module.report({"changed": [{"source": "assert answer == 42"}]})
    assert text.startswith("FAILED: 1 read-only cell(s) were edited")
    assert "assert answer == 42" in text


@pytest.fixture(scope="module")
def course():
    """course.py imported as a module (it is a script at the repository root)."""
    spec = importlib.util.spec_from_file_location("course", ROOT / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_course_rejects_an_unknown_lesson_and_lists_the_real_ones(course):
    with pytest.raises(SystemExit, match="unknown lesson.*01_warm_start"):
        course.release(["01_warm_stat"])


def test_course_validate_needs_exactly_one_notebook(course):
    with pytest.raises(SystemExit, match="usage"):
        course.validate([])


def test_instructor_commands_grade_a_class_from_the_command_line(tmp_path: Path):
    """release, students add, place, autograde, export and feedback, as an instructor types them.

    A copy of course.py in a temporary course folder runs with this environment as its `.venv`.
    """
    venv = Path(sys.prefix)
    stamp = venv / ".ftlib-installed"
    if not stamp.is_file():
        pytest.skip("needs the .venv that `python3 course.py` creates")
    # The copied course.py would reinstall ftlib from the temporary folder (which has no ftlib)
    # into this very environment if the stamp did not match pyproject.toml.
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    assert stamp.read_text() == digest, "the .venv is older than pyproject.toml: run setup"
    course_root = tmp_path / "course"
    lesson = "00_probe"
    (course_root / "solutions" / lesson).mkdir(parents=True)
    for name in ("course.py", "nbgrader_config.py", "pyproject.toml"):
        (course_root / name).write_bytes((ROOT / name).read_bytes())
    (course_root / ".venv").symlink_to(venv, target_is_directory=True)
    answer = "answer = 41\n### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION"
    test = '"""answer: is 42."""\nassert answer == 42, f"expected 42, got {answer}"'
    nbformat.write(
        one_exercise(answer, test), course_root / "solutions" / lesson / "00_probe.ipynb"
    )
    inbox = tmp_path / "inbox"  # the instructor works from here: relative paths start here
    inbox.mkdir()
    released = course_root / "lessons" / lesson / f"{lesson}.ipynb"

    def course(*args: str) -> str:
        run = subprocess.run(
            [sys.executable, str(course_root / "course.py"), *args],
            cwd=inbox,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, f"course.py {' '.join(args)}:\n{run.stdout}\n{run.stderr}"
        return run.stdout

    course("release", lesson)
    assert "answer = 42" not in released.read_text()
    for student, answer in (("ada", 42), ("bob", 7)):
        course("students", "add", student, "--first-name", student.title())
        notebook = nbformat.read(released, as_version=4)
        notebook.cells[0].source = f"answer = {answer}"
        nbformat.write(notebook, inbox / f"{student}.ipynb")
        course("place", lesson, student, f"{student}.ipynb")
    course("autograde", lesson, "--no-sandbox")  # the test's own, trusted submissions
    course("export", "grades.csv")
    rows = (inbox / "grades.csv").read_text().splitlines()
    header = rows[0].split(",")
    scores = {
        row.split(",")[header.index("student_id")]: float(row.split(",")[header.index("score")])
        for row in rows[1:]
    }
    assert scores == {"ada": 1.0, "bob": 0.0}
    course("feedback", lesson)
    assert (
        "expected 42, got 7"
        in (course_root / "feedback/bob" / lesson / f"{lesson}.html").read_text()
    )
