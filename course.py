"""One entry point for learners, instructors and CI: set up, open the lessons, test, grade.

It needs only Python 3.10+ and pip: the first command creates `.venv/` in the repository and
installs ftlib with everything the course uses, then hands over to the tool the command names.

    python3 course.py lab              set up, then open the lessons in JupyterLab
    python3 course.py test             set up, then run the whole test suite
    python3 course.py validate NB      check your own notebook before handing it in

Instructors (run from anywhere; the nbgrader course root is this folder):

    python3 course.py lab --instructor         JupyterLab on the course root, with nbgrader's tools
    python3 course.py release [LESSON ...]     regenerate lessons/ from solutions/
    python3 course.py students add ID [--first-name F --last-name L]
    python3 course.py students import FILE.csv
    python3 course.py place LESSON STUDENT NOTEBOOK   put a received notebook in submitted/
    python3 course.py publish LESSON           put a release in nbgrader's exchange
    python3 course.py collect LESSON           collect submissions from the exchange
    python3 course.py autograde LESSON [--student ID ...] [--jobs N] [--no-sandbox]
    python3 course.py export [grades.csv]      grades of every student, as CSV
    python3 course.py feedback [LESSON ...]    HTML feedback in feedback/
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".ftlib-installed"
STUDENT_ID = re.compile(r"[A-Za-z0-9_@-][A-Za-z0-9_.@-]*")


def _requirements_digest() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def setup() -> None:
    """Create .venv and install ftlib with its extras, unless pyproject.toml is unchanged."""
    if STAMP.exists() and STAMP.read_text() == _requirements_digest():
        return
    if not PYTHON.exists():
        print(f"Creating a virtual environment in {VENV} ...", flush=True)
        venv.create(VENV, with_pip=True)
    print("Installing ftlib, PyTorch, torchvision, JupyterLab and nbgrader ...", flush=True)
    _run([PYTHON, "-m", "pip", "install", "--upgrade", "pip"])
    _run([PYTHON, "-m", "pip", "install", "-e", f"{ROOT}[dev]"])
    _run([PYTHON, "-c", "import torch, torchvision, nbgrader, ftlib"])
    STAMP.write_text(_requirements_digest())


def _run(command: list[str | Path], *, cwd: Path = ROOT) -> None:
    # With .venv's bin first on PATH, as if activated: nbgrader runs the `alembic` command when it
    # creates a gradebook, and fails with FileNotFoundError where it cannot find it.
    env = {**os.environ, "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])}
    completed = subprocess.run([str(part) for part in command], cwd=cwd, env=env)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def _tool(name: str) -> Path:
    return BIN / (f"{name}.exe" if os.name == "nt" else name)


def _nbgrader(*args: str) -> None:
    # nbgrader finds nbgrader_config.py only in the working directory: always run from ROOT.
    _run([_tool("nbgrader"), *args])


def _from_caller(path: str) -> str:
    # Tools run from ROOT: a relative path the user typed must be resolved where they typed it.
    return str(Path(path).resolve())


def _lessons(names: list[str]) -> list[str]:
    known = sorted(
        p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name
    )
    unknown = [name for name in names if name not in known]
    if unknown:
        sys.exit(f"unknown lesson(s) {', '.join(unknown)}; the lessons are: {', '.join(known)}")
    return names or known


def lab(args: list[str]) -> None:
    """Open lessons/ in JupyterLab as a learner (--instructor: the course root, with nbgrader's
    tools); other arguments go to `jupyter lab`."""
    # In this process, not a child: Ctrl-C must reach JupyterLab's own shutdown prompt, and
    # ftlib_course.lab needs only the standard library, so it runs before .venv is active.
    from ftlib_course.lab import main as open_lab

    sys.exit(open_lab(args, python=str(PYTHON)))


def test(args: list[str]) -> None:
    """Run the whole test suite; extra arguments go to pytest."""
    # One worker per core: the lesson notebooks, graded through nbgrader, dominate the time.
    _run([PYTHON, "-m", "pytest", "-n", "auto", *args])


def validate(args: list[str]) -> None:
    """Check one notebook as the grader will; exit 1 if a test fails."""
    # `nbgrader validate` exits 0 even when a notebook fails (jupyter/nbgrader#1908), so the
    # check runs through nbgrader's Validator, whose result says what failed.
    if len(args) != 1:
        sys.exit("usage: python3 course.py validate path/to/lesson.ipynb")
    _run([PYTHON, "-m", "ftlib_course.validate", _from_caller(args[0])])


def release(args: list[str]) -> None:
    """Regenerate lessons/ from solutions/ (all lessons, or those named)."""
    for lesson in _lessons(args):
        _nbgrader("generate_assignment", lesson, "--force")


def students(args: list[str]) -> None:
    """Add one student to the gradebook, or import a CSV of them."""
    if args[:1] == ["add"] and len(args) >= 2:
        _nbgrader("db", "student", "add", *args[1:])
    elif args[:1] == ["import"] and len(args) == 2:
        _nbgrader("db", "student", "import", _from_caller(args[1]))
    else:
        sys.exit(
            "usage: python3 course.py students add ID [--first-name F --last-name L]\n"
            "       python3 course.py students import FILE.csv (columns: id,first_name,...)"
        )


def place(args: list[str]) -> None:
    """Put a notebook received outside nbgrader where autograde finds it."""
    if len(args) != 3:
        sys.exit("usage: python3 course.py place LESSON STUDENT NOTEBOOK")
    lesson, student, notebook = _lessons(args[:1])[0], args[1], Path(args[2])
    if not STUDENT_ID.fullmatch(student):
        sys.exit(
            f"invalid student id {student!r}: use letters, digits and . _ @ - only "
            "(it becomes a folder name), not starting with a dot"
        )
    if not notebook.is_file():
        sys.exit(f"no notebook at {notebook}")
    try:
        cells = json.loads(notebook.read_bytes())["cells"]
    except (ValueError, KeyError, TypeError) as error:
        sys.exit(f"{notebook} is not a Jupyter notebook ({type(error).__name__}: {error})")
    target = ROOT / "submitted" / student / lesson / f"{lesson}.ipynb"
    replaced = " (replacing the earlier one)" if target.exists() else ""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(notebook, target)
    print(f"placed {notebook} ({len(cells)} cells) as {target.relative_to(ROOT)}{replaced}")


def publish(args: list[str]) -> None:
    """Release lessons through nbgrader's exchange, for JupyterHub courses."""
    for lesson in _lessons(args):
        _nbgrader("release_assignment", lesson, "--force")


def collect(args: list[str]) -> None:
    """Collect submissions of lessons from nbgrader's exchange."""
    for lesson in _lessons(args):
        _nbgrader("collect", lesson)


def autograde(args: list[str]) -> None:
    """Grade the submissions of one lesson in parallel; see ftlib_course/autograde.py."""
    if not args or args[0].startswith("-"):
        sys.exit(
            "usage: python3 course.py autograde LESSON [--student ID ...] [--jobs N] [--no-sandbox]"
        )
    _run([PYTHON, "-m", "ftlib_course.autograde", *args, "--root", str(ROOT)])


def export(args: list[str]) -> None:
    """Write every grade of every student to a CSV file."""
    _nbgrader("export", "--to", _from_caller(args[0]) if args else "grades.csv")


def feedback(args: list[str]) -> None:
    """Write HTML feedback for the graded submissions into feedback/ (held ones wait)."""
    for lesson in _lessons(args):
        _run([PYTHON, "-m", "ftlib_course.feedback", lesson, "--root", str(ROOT)])


COMMANDS = {
    "setup": lambda args: None,
    "lab": lab,
    "test": test,
    "validate": validate,
    "release": release,
    "students": students,
    "place": place,
    "publish": publish,
    "collect": collect,
    "autograde": autograde,
    "export": export,
    "feedback": feedback,
}


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in COMMANDS:
        sys.exit(__doc__)
    setup()
    COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
