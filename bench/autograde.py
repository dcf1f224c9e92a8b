"""Benchmark: how fast a class is graded, and what the sandbox costs per submission.

Three measurements, each on honest submissions (the solution typed into the release):

1. class throughput: `--students` submissions of one lesson graded with one worker, then with
   `--jobs` workers (`course.py autograde --jobs N`); the speed-up, goal >= 1.7x with 2 jobs on a
   2-core machine;
2. overhead: per submission, sandboxed autograding (one worker, cells the lesson marks as
   skippable still run, so the same code runs) minus executing the same notebook headless in a
   fresh kernel (nbclient); goal <= 3 s;
3. a class of 200 students x every lesson, extrapolated from `--sample` submissions of each
   lesson graded as an instructor would (skipping on, `--jobs` workers): the workers' one-off
   start plus 200 times the steady time per student (autograde seconds / jobs); goal < 1 hour.

    .venv/bin/python bench/autograde.py                              # full run, ~30 min
    .venv/bin/python bench/autograde.py --students 4 --sample 2 --lessons 01_warm_start

Each measurement grades in a temporary course; nothing in the repository changes except the
result file, bench/results/autograde.json. Run nothing else meanwhile: timings on a shared
machine are not comparable.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from lesson_times import CELL_TIMEOUT_SECONDS
from machine import describe_machine, write_results
from nbclient import NotebookClient

from ftlib_course.autograde import grade_class
from ftlib_course.config import ROOT
from ftlib_course.notebooks import lesson_names

sys.path.insert(0, str(ROOT / "tests"))
from submissions import solved  # noqa: E402 (the tests' submission builder)

RESULTS = Path(__file__).parent / "results" / "autograde.json"
CLASS_SIZE = 200


def _course(scratch: Path, lesson: str, students: int) -> Path:
    """A course in `scratch` with `students` honest submissions of `lesson`."""
    root = scratch / f"course-{lesson}-{students}-{time.monotonic_ns()}"
    shutil.copytree(ROOT / "solutions" / lesson, root / "solutions" / lesson)
    shutil.copy(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    notebook = _honest(lesson)
    for number in range(students):
        target = root / "submitted" / f"student{number:03d}" / lesson / f"{lesson}.ipynb"
        target.parent.mkdir(parents=True)
        nbformat.write(notebook, target)
    return root


def _honest(lesson: str) -> nbformat.NotebookNode:
    read = lambda folder: nbformat.read(ROOT / folder / lesson / f"{lesson}.ipynb", as_version=4)  # noqa: E731
    return solved(read("lessons"), read("solutions"))


def _grade(root: Path, lesson: str, jobs: int, *, skipping: bool = True) -> tuple[float, list]:
    start = time.perf_counter()
    outcomes = grade_class(lesson, root=root, jobs=jobs, skipping=skipping)
    wall = time.perf_counter() - start
    failed = [outcome.student for outcome in outcomes if outcome.error]
    if failed:
        raise SystemExit(f"{lesson}: grading failed for {failed}: {outcomes[0].error}")
    return wall, outcomes


def _headless_seconds(lesson: str) -> float:
    """Wall time of the honest submission run top to bottom in a fresh kernel, no grading."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / lesson
        shutil.copytree(ROOT / "solutions" / lesson, folder)
        client = NotebookClient(
            _honest(lesson),
            timeout=CELL_TIMEOUT_SECONDS,
            kernel_name="python3",
            resources={"metadata": {"path": str(folder)}},
        )
        start = time.perf_counter()
        client.execute()
        return time.perf_counter() - start


def throughput(scratch: Path, lesson: str, students: int, jobs: int) -> dict:
    sequential, _ = _grade(_course(scratch, lesson, students), lesson, 1)
    parallel, _ = _grade(_course(scratch, lesson, students), lesson, jobs)
    return {
        "lesson": lesson,
        "students": students,
        "jobs": jobs,
        "sequential_seconds": round(sequential, 1),
        "parallel_seconds": round(parallel, 1),
        "speed_up": round(sequential / parallel, 2),
        "goal": ">= 1.7",
    }


def overhead(scratch: Path, lesson: str, repeats: int) -> dict:
    headless = [_headless_seconds(lesson) for _ in range(repeats)]
    _, outcomes = _grade(_course(scratch, lesson, repeats), lesson, 1, skipping=False)
    graded = [outcome.seconds for outcome in outcomes]
    return {
        "lesson": lesson,
        "submissions": repeats,
        "headless_seconds": round(statistics.median(headless), 2),
        "sandboxed_autograde_seconds": round(statistics.median(graded), 2),
        "overhead_seconds": round(statistics.median(graded) - statistics.median(headless), 2),
        "mode": sorted({outcome.mode for outcome in outcomes}),
        "goal": "<= 3 s",
    }


def class_estimate(scratch: Path, lessons: list[str], sample: int, jobs: int) -> dict:
    """Per lesson: the one-off start of the workers (their fork servers import torch and the
    rest once) and the steady cost per student, from which a class of CLASS_SIZE follows."""
    per_lesson = {}
    for lesson in lessons:
        wall, outcomes = _grade(_course(scratch, lesson, sample), lesson, jobs)
        per_student = sum(outcome.seconds for outcome in outcomes) / (len(outcomes) * jobs)
        start_up = max(0.0, wall - per_student * len(outcomes))
        per_lesson[lesson] = {
            "sample": sample,
            "wall_seconds": round(wall, 1),
            "start_up_seconds": round(start_up, 1),
            "seconds_per_student": round(per_student, 2),
            "class_seconds": round(start_up + CLASS_SIZE * per_student),
            "mode": sorted({outcome.mode for outcome in outcomes}),
        }
        print(f"  {lesson}: {per_student:.1f} s per student, {start_up:.0f} s to start", flush=True)
    total = sum(entry["class_seconds"] for entry in per_lesson.values())
    return {
        "students": CLASS_SIZE,
        "jobs": jobs,
        "lessons": per_lesson,
        "estimated_seconds": round(total),
        "estimated_hours": round(total / 3600, 2),
        "goal": "< 1 hour",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesson", default="01_warm_start", help="for throughput and overhead")
    parser.add_argument("--lessons", nargs="*", default=None, help="for the class estimate")
    parser.add_argument("--students", type=int, default=16)
    parser.add_argument("--sample", type=int, default=6, help="submissions per lesson")
    parser.add_argument("--repeats", type=int, default=3, help="for the overhead")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    known = lesson_names()
    lessons = args.lessons or known
    unknown = sorted({args.lesson, *lessons} - set(known))
    if unknown:
        parser.error(f"unknown lesson(s) {', '.join(unknown)}; the lessons are: {', '.join(known)}")

    with tempfile.TemporaryDirectory(prefix="ftlib-bench-") as folder:
        scratch = Path(folder)
        print(f"throughput: {args.students} submissions of {args.lesson}, 1 vs {args.jobs} jobs")
        speed = throughput(scratch, args.lesson, args.students, args.jobs)
        print(
            f"  {speed['sequential_seconds']} s vs {speed['parallel_seconds']} s: "
            f"{speed['speed_up']}x"
        )
        print(f"overhead: {args.lesson}, sandboxed autograde vs headless, {args.repeats} runs")
        cost = overhead(scratch, args.lesson, args.repeats)
        print(
            f"  {cost['sandboxed_autograde_seconds']} s vs {cost['headless_seconds']} s: "
            f"{cost['overhead_seconds']:+} s per submission"
        )
        print(f"class: {CLASS_SIZE} students x {len(lessons)} lessons, from {args.sample} each")
        estimate = class_estimate(scratch, lessons, args.sample, args.jobs)
        print(f"  about {estimate['estimated_hours']} hours")

    results = {
        "benchmark": "autograde",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "throughput": speed,
        "overhead": cost,
        "class": estimate,
    }
    write_results(args.out, results)


if __name__ == "__main__":
    main()
