"""Grade a whole class: `python -m ftlib_course.autograde LESSON [--student ID ...] [--jobs N]`.

`course.py autograde` runs this. It works on a fresh clone (a lesson missing from the gradebook is
added from `solutions/`, generated into a temporary folder so that the committed `lessons/` stay
as they are), refuses to grade without the grading sandbox unless `--no-sandbox` says the
submissions are trusted, and grades students side by side: N worker processes (default: one per
core), each with one `NbGraderAPI` (nbgrader's start-up costs seconds per command), all writing
one SQLite gradebook and forking their kernels from one fork server, started first so that its
imports overlap the rest of the start. It shows a progress bar with the time left, then a table
of every student with score, flags and seconds, and says which mode graded. It exits 1 when a
submission could not be graded, 2 when the command itself cannot run (unknown lesson, no
submissions, no sandbox).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from tqdm import tqdm

from ftlib_course.config import ROOT, course_config
from ftlib_course.notebooks import lesson_names
from ftlib_course.review import Flag, flags_of, grading_mode
from ftlib_course.sandbox import SandboxedExecute, sandbox_problem
from ftlib_course.sandbox.forkserver import ForkServer, attach
from ftlib_course.sandbox.preload import notebook_imports


class GradingError(Exception):
    """The class cannot be graded as asked; the message says why and what to do."""


@dataclass
class Outcome:
    """How one student's submission fared; `error` is set when it could not be graded."""

    student: str
    score: float | None = None
    max_score: float | None = None
    flags: list[Flag] = field(default_factory=list)
    seconds: float = 0.0
    mode: str | None = None
    error: str | None = None

    @property
    def held(self) -> bool:
        return any(flag.holds for flag in self.flags)


def default_jobs() -> int:
    """The number of cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def check_lesson(root: Path, lesson: str) -> None:
    """Raise GradingError naming the lessons if `lesson` is not one of them."""
    known = lesson_names(root)
    if lesson not in known:
        raise GradingError(f"unknown lesson {lesson!r}; the lessons are: {', '.join(known)}")


def submissions(root: Path, lesson: str, students: Sequence[str] = ()) -> dict[str, str | None]:
    """student -> None for a submission that can be graded, else what is wrong with it.

    Raises:
        GradingError: when there is nothing to grade, or a named student handed nothing in.
    """
    folders = {path.parent.name: path for path in sorted(root.glob(f"submitted/*/{lesson}"))}
    if not folders:
        raise GradingError(
            f"no submissions of {lesson} in {root / 'submitted'}: put each one there with "
            f"`course.py place {lesson} STUDENT NOTEBOOK`, or `course.py collect {lesson}`"
        )
    missing = [student for student in students if student not in folders]
    if missing:
        raise GradingError(
            f"no submission of {lesson} by {', '.join(missing)}: expected "
            f"submitted/{missing[0]}/{lesson}/{lesson}.ipynb (students with one: "
            f"{', '.join(sorted(folders))})"
        )
    return {student: _problem(folders[student], lesson) for student in students or folders}


def _problem(folder: Path, lesson: str) -> str | None:
    notebook = folder / f"{lesson}.ipynb"
    if not notebook.is_file():
        others = sorted(path.name for path in folder.glob("*.ipynb"))
        found = f"it holds {', '.join(others)}" if others else "it holds no notebook"
        return (
            f"no {notebook.name} in {folder}: {found}. The grader finds work by its file "
            f"name: place the notebook again with `course.py place {lesson} "
            f"{folder.parent.name} NOTEBOOK`"
        )
    try:
        nbformat.read(notebook, as_version=4)
    except Exception as error:  # nbformat raises many kinds for a damaged file
        return f"{notebook} is not a readable notebook ({type(error).__name__}: {error})"
    return None


def ensure_in_gradebook(root: Path, lesson: str) -> str | None:
    """Add `lesson` to the gradebook from solutions/ if it is not there; say what was done.

    The student version is generated into a temporary folder, so `lessons/` is not touched.

    Returns:
        A sentence describing what was done, or None when the lesson was already there.

    Raises:
        GradingError: if nbgrader cannot generate the lesson.
    """
    config = course_config(root)
    course = CourseDirectory(config=config)
    with Gradebook(course.db_url, course.course_id) as book:
        try:
            book.find_assignment(lesson)
            return None
        except MissingEntry:
            pass
    with tempfile.TemporaryDirectory(prefix="ftlib-release-") as scratch:
        config.CourseDirectory.release_directory = scratch
        result = NbGraderAPI(config=config).generate_assignment(lesson)
    if not result["success"]:
        raise GradingError(f"could not add {lesson} to the gradebook: {_reason(result)}")
    return f"{lesson} was not in the gradebook: added it from solutions/ (lessons/ unchanged)"


def _put_alembic_on_path() -> None:
    # nbgrader runs the `alembic` command of this environment when it creates a gradebook.
    tools = str(Path(sys.executable).parent)
    if tools not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([tools, os.environ.get("PATH", "")])


def _reason(result: dict) -> str:
    """The most telling line of a failed nbgrader API call."""
    log_errors = [line for line in result.get("log", "").splitlines() if line.startswith("[ERROR]")]
    traceback_end = (result.get("error") or "").strip().splitlines()[-1:]
    return "; ".join(log_errors[-2:] + traceback_end) or "nbgrader gave no reason"


class ExecuteEveryCell(SandboxedExecute):
    """SandboxedExecute that skips no cell: to show that skipping changes no score, and to time
    grading against a headless run of the same code."""

    def trusted_skips(self, nb, resources) -> dict[str, str]:
        return {}


def grading_config(root: Path, *, sandbox: bool = True, skipping: bool = True):
    """The course's nbgrader settings, grading in the sandbox or not, skipping cells or not."""
    config = course_config(root)
    config.SandboxedExecute.sandbox = sandbox
    if not skipping:
        steps = list(config.Autograde.autograde_preprocessors)
        steps[steps.index(SandboxedExecute)] = ExecuteEveryCell
        config.Autograde.autograde_preprocessors = steps
    return config


# One NbGraderAPI per worker process, made once: nbgrader's start-up costs seconds.
_worker: dict[str, object] = {}


def _start_worker(
    root: str, sandbox: bool, skipping: bool, quiet: bool, server: tuple[Path, int] | None
) -> None:
    if server is not None:
        attach(*server)
    if quiet:  # nbgrader and the kernels log to the terminal; results come back as data
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    config = grading_config(Path(root), sandbox=sandbox, skipping=skipping)
    _worker.update(api=NbGraderAPI(config=config), root=Path(root), sandbox=sandbox)


def _grade_one(lesson: str, student: str) -> Outcome:
    api, root = _worker["api"], _worker["root"]
    start = time.perf_counter()
    result = api.autograde(lesson, student, force=True, create=True)
    seconds = time.perf_counter() - start
    if not result["success"]:
        return Outcome(student, seconds=seconds, error=_reason(result))
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as book:
        graded = book.find_submission(lesson, student)
        score, max_score = graded.score, graded.max_score
    autograded = nbformat.read(
        root / "autograded" / student / lesson / f"{lesson}.ipynb", as_version=4
    )
    mode = grading_mode(autograded)
    if _worker["sandbox"] and mode != "sandbox":
        return Outcome(student, seconds=seconds, error=f"graded in {mode} mode, not the sandbox")
    return Outcome(student, score, max_score, flags_of(autograded), seconds, mode)


def grade_class(
    lesson: str,
    *,
    students: Sequence[str] = (),
    jobs: int | None = None,
    root: Path = ROOT,
    sandbox: bool = True,
    skipping: bool = True,
    say: Callable[[str], None] | None = None,
    on_progress: Callable[[Outcome], None] | None = None,
    quiet_workers: bool = True,
) -> list[Outcome]:
    """Autograde the submissions of `lesson` (all, or `students`) with `jobs` processes.

    Args:
        lesson: a lesson folder name in `root / "solutions"`.
        students: grade only these (default: everyone with a submission).
        jobs: worker processes (default: one per core).
        root: the course root.
        sandbox: grade in the sandbox (False: trusted work only; `sandbox_problem()` says
            whether one can be made here).
        skipping: skip the cells the lesson marks `grading-skip` (False: run every cell).
        say: called with a sentence for each set-up step taken (adding the lesson to the
            gradebook).
        on_progress: called with each outcome as soon as it is known.
        quiet_workers: silence nbgrader's and the kernels' logging in the workers.

    Returns:
        One outcome per student, in student order; submissions that cannot be graded (a missing
        or renamed notebook, a damaged file, a failure in nbgrader) have `error` set.

    Raises:
        GradingError: for an unknown lesson, no submissions, or a named student without one.
    """
    check_lesson(root, lesson)
    found = submissions(root, lesson, students)
    _put_alembic_on_path()
    outcomes: dict[str, Outcome] = {}

    def record(outcome: Outcome) -> None:
        outcomes[outcome.student] = outcome
        if on_progress:
            on_progress(outcome)

    for student, problem in found.items():
        if problem:
            record(Outcome(student, error=problem))
    gradable = [student for student, problem in found.items() if not problem]
    # One fork server for every worker; its imports overlap the set-up and the workers' start.
    # (Where no sandbox can be made, each submission's grading says why.)
    server = None
    if sandbox and gradable and sandbox_problem() is None:
        source = course_config(root).CourseDirectory.source_directory
        imports = notebook_imports(root / source / lesson / f"{lesson}.ipynb")
        server = ForkServer(preload=imports, wait=False)
    try:
        done = ensure_in_gradebook(root, lesson)
        if done and say:
            say(done)
        if gradable:
            workers = min(jobs or default_jobs(), len(gradable))
            setup = (str(root), sandbox, skipping, quiet_workers, server and server.address)
            _grade_in_workers(lesson, gradable, workers, setup, record)
    finally:
        if server is not None:
            server.close()
    return [outcomes[student] for student in sorted(outcomes)]


def _grade_in_workers(
    lesson: str,
    students: Sequence[str],
    workers: int,
    setup: tuple,
    record: Callable[[Outcome], None],
) -> None:
    """Grade `students` in `workers` processes, each started by `_start_worker(*setup)`."""
    with ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=setup,
    ) as pool:
        futures = {pool.submit(_grade_one, lesson, student): student for student in students}
        for future in as_completed(futures):
            try:
                record(future.result())
            except Exception as error:  # a worker that died takes its submission with it
                record(Outcome(futures[future], error=f"{type(error).__name__}: {error}"))


def table(outcomes: Sequence[Outcome]) -> str:
    """The closing table: student | score | max | flags | seconds; reasons for failures below."""
    rows = [("student", "score", "max", "flags", "seconds")]
    for outcome in outcomes:
        if outcome.error:
            score = maximum = "-"
            flags = "NOT GRADED (see below)"
        else:
            score, maximum = f"{outcome.score:g}", f"{outcome.max_score:g}"
            flags = _flag_summary(outcome.flags)
        rows.append((outcome.student, score, maximum, flags, f"{outcome.seconds:.1f}"))
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    lines = [
        "  ".join(
            [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2])]
            + [row[3].ljust(widths[3]), row[4].rjust(widths[4])]
        )
        for row in rows
    ]
    lines += [f"{o.student} not graded: {o.error}" for o in outcomes if o.error]
    return "\n".join(lines)


def _flag_summary(flags: Sequence[Flag]) -> str:
    if not flags:
        return "-"
    kinds = ", ".join(dict.fromkeys(flag.kind for flag in flags))
    return f"HELD for review: {kinds}" if any(f.holds for f in flags) else f"review: {kinds}"


def mode_line(outcomes: Sequence[Outcome]) -> str:
    """Which mode graded, as the grading kernels recorded it."""
    modes = {outcome.mode for outcome in outcomes if outcome.mode}
    if modes == {"sandbox"}:
        return "Graded in the sandbox: submissions saw only their own scratch copy."
    if not modes:
        return "Nothing was graded."
    return (
        "Graded WITHOUT a sandbox: submissions could read and change the course. "
        "Use this only for trusted work."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status (0 graded, 1 failures, 2 cannot run)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lesson", help="e.g. 01_warm_start")
    parser.add_argument("--student", action="append", default=[], metavar="ID")
    parser.add_argument("--jobs", type=int, default=None, metavar="N")
    parser.add_argument("--no-sandbox", action="store_true", help="only for trusted work")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    root = args.root.resolve()
    sandbox = not args.no_sandbox
    try:
        problem = sandbox_problem() if sandbox else None
        if problem:
            raise GradingError(
                f"cannot grade in a sandbox: {problem}.\nWithout one, submissions can read the "
                "solutions and change the gradebook: pass --no-sandbox only for trusted work."
            )
        check_lesson(root, args.lesson)
        total = len(submissions(root, args.lesson, args.student))
        with tqdm(total=total, desc=f"grading {args.lesson}", unit="student") as progress:
            outcomes = grade_class(
                args.lesson,
                students=args.student,
                jobs=args.jobs,
                root=root,
                sandbox=sandbox,
                say=progress.write,
                on_progress=lambda _: progress.update(),
            )
    except GradingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(table(outcomes))
    print(mode_line(outcomes))
    held = sum(outcome.held for outcome in outcomes if not outcome.error)
    failed = sum(bool(outcome.error) for outcome in outcomes)
    if held:
        print(f"{held} submission(s) held for review: scores withheld, reasons in the formgrader.")
    if failed:
        print(f"{failed} submission(s) could not be graded.", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
