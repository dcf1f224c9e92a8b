"""Benchmark: how fast a class is graded, and what the sandbox costs per submission.

Every grading run is the instructor's: a fresh Python process that calls what `course.py
autograde` calls (`grade_class`), so its start-up counts (imports, the sandbox's fork server,
the workers, adding the lesson to the gradebook of a fresh course). Three measurements, each on
honest submissions (the solution typed into the release):

1. class throughput: `--students` submissions of one lesson graded with one worker, then with
   `--jobs` workers (`course.py autograde --jobs N`). Throughput is submissions per second once
   every worker is running: the time from each worker's first graded submission to the last
   one, per submission; the speed-up of that rate has the goal >= 1.7x with 2 jobs on a 2-core
   machine. The wall times of the whole commands, start-up included, are reported beside it.
   The two commands run in alternating order over `--rounds` pairs (1 then N workers, N then 1,
   ...), since the machine's speed may drift between commands minutes apart.
   Measured twice: as an instructor grades (cells the lesson marks skippable skipped: about a
   second per submission, so the start-up weighs on 16 of them) and with every cell run
   (seconds per submission, so the whole commands show what the second worker brings);
2. overhead: per submission, sandboxed autograding (one worker, cells the lesson marks as
   skippable still run, so the same code runs) minus executing the same notebook headless in a
   fresh kernel (nbclient); goal <= 3 s;
3. a class of 200 students x every lesson, extrapolated from `--sample` submissions of each
   lesson graded as an instructor would (skipping on, `--jobs` workers): per lesson, the
   command's start-up (until each worker has graded its first submission), the steady time per
   submission for the other students, and its close; goal < 1 hour.

    .venv/bin/python bench/autograde.py                              # full run, ~16 min
    .venv/bin/python bench/autograde.py --only throughput_every_cell # one part, merged in
    .venv/bin/python bench/autograde.py --students 4 --sample 3 --lessons 01_warm_start

Each measurement grades in a temporary course; nothing in the repository changes except the
result file, bench/results/autograde.json. Run nothing else meanwhile: timings on a shared
machine are not comparable.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from lesson_times import CELL_TIMEOUT_SECONDS
from machine import describe_machine, write_results
from nbclient import NotebookClient

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


_GRADING_RUN = """
import json, sys, time
start = time.perf_counter()
from pathlib import Path
from ftlib_course.autograde import grade_class
completions = []
outcomes = grade_class(
    sys.argv[2], root=Path(sys.argv[1]), jobs=int(sys.argv[3]), skipping=sys.argv[4] == "on",
    on_progress=lambda outcome: completions.append(time.perf_counter() - start),
)
print(json.dumps({
    "completions": completions,
    "seconds": [outcome.seconds for outcome in outcomes],
    "modes": sorted({outcome.mode for outcome in outcomes if outcome.mode}),
    "failed": {outcome.student: outcome.error for outcome in outcomes if outcome.error},
}))
"""


@dataclass
class GradingRun:
    """One grading command: its wall time and when each submission was done (seconds from its
    start, in order), with each submission's own grading time."""

    wall: float
    completions: list[float]
    seconds: list[float]
    modes: list[str]

    def steady_seconds(self, jobs: int) -> float:
        """Seconds per submission once every worker has graded its first one."""
        if len(self.completions) <= jobs:
            raise SystemExit(f"grade more than {jobs} submissions to see a steady rate")
        first, last = self.completions[jobs - 1], self.completions[-1]
        return (last - first) / (len(self.completions) - jobs)


def _grade(root: Path, lesson: str, jobs: int, *, skipping: bool = True) -> GradingRun:
    """Grade every submission of `lesson` in `root` with a fresh process, as the instructor's
    command does."""
    command = [sys.executable, "-c", _GRADING_RUN, str(root), lesson, str(jobs)]
    start = time.perf_counter()
    done = subprocess.run(
        [*command, "on" if skipping else "off"], capture_output=True, text=True, cwd=ROOT
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{lesson}: the grading run failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["failed"]:
        raise SystemExit(f"{lesson}: grading failed for {result['failed']}")
    return GradingRun(wall, sorted(result["completions"]), result["seconds"], result["modes"])


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


def throughput(
    scratch: Path, lesson: str, students: int, jobs: int, *, skipping: bool, rounds: int
) -> dict:
    """`rounds` pairs of commands, 1 worker and `jobs` workers, the order alternating (1, jobs,
    jobs, 1, ...) so that a machine slowing down or speeding up favours neither; the figures
    add up the pairs, and each pair is listed."""
    pairs = []
    for round_ in range(rounds):
        order = [1, jobs] if round_ % 2 == 0 else [jobs, 1]
        first, second = (
            _grade(_course(scratch, lesson, students), lesson, workers, skipping=skipping)
            for workers in order
        )
        pairs.append((first, second) if round_ % 2 == 0 else (second, first))
    one = sum(sequential.steady_seconds(1) for sequential, _ in pairs) / rounds
    many = sum(parallel.steady_seconds(jobs) for _, parallel in pairs) / rounds
    walls = [(sequential.wall, parallel.wall) for sequential, parallel in pairs]
    return {
        "lesson": lesson,
        "students": students,
        "jobs": jobs,
        "skipping": skipping,
        "rounds": rounds,
        "sequential_seconds_per_submission": round(one, 2),
        "parallel_seconds_per_submission": round(many, 2),
        "speed_up": round(one / many, 2),
        "goal": ">= 1.7",
        "sequential_wall_seconds": round(sum(s for s, _ in walls) / rounds, 1),
        "parallel_wall_seconds": round(sum(p for _, p in walls) / rounds, 1),
        "wall_speed_up": round(sum(s for s, _ in walls) / sum(p for _, p in walls), 2),
        "pairs": [
            {
                "speed_up": round(s.steady_seconds(1) / p.steady_seconds(jobs), 2),
                "wall_speed_up": round(s.wall / p.wall, 2),
                "sequential_wall_seconds": round(s.wall, 1),
                "parallel_wall_seconds": round(p.wall, 1),
            }
            for s, p in pairs
        ],
        "start_up_seconds": {
            "sequential": round(statistics.median(s.completions[0] for s, _ in pairs), 1),
            "parallel": round(statistics.median(p.completions[jobs - 1] for _, p in pairs), 1),
        },
    }


def overhead(scratch: Path, lesson: str, repeats: int) -> dict:
    headless = [_headless_seconds(lesson) for _ in range(repeats)]
    graded = _grade(_course(scratch, lesson, repeats), lesson, 1, skipping=False)
    return {
        "lesson": lesson,
        "submissions": repeats,
        "headless_seconds": round(statistics.median(headless), 2),
        "sandboxed_autograde_seconds": round(statistics.median(graded.seconds), 2),
        "overhead_seconds": round(
            statistics.median(graded.seconds) - statistics.median(headless), 2
        ),
        "mode": graded.modes,
        "goal": "<= 3 s",
    }


def class_estimate(scratch: Path, lessons: list[str], sample: int, jobs: int) -> dict:
    """Per lesson: the command's start-up (imports, the fork server, each worker's first
    submission), the steady cost per further student and the close, from which a class of
    CLASS_SIZE follows."""
    per_lesson = {}
    for lesson in lessons:
        run = _grade(_course(scratch, lesson, sample), lesson, jobs)
        start_up, steady = run.completions[jobs - 1], run.steady_seconds(jobs)
        closing = run.wall - run.completions[-1]
        per_lesson[lesson] = {
            "sample": sample,
            "wall_seconds": round(run.wall, 1),
            "start_up_seconds": round(start_up, 1),
            "seconds_per_student": round(steady, 2),
            "closing_seconds": round(closing, 1),
            "class_seconds": round(start_up + (CLASS_SIZE - jobs) * steady + closing),
            "mode": run.modes,
        }
        print(f"  {lesson}: {steady:.2f} s per student, {start_up:.0f} s to start", flush=True)
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
    parser.add_argument("--sample", type=int, default=8, help="submissions per lesson")
    parser.add_argument("--repeats", type=int, default=3, help="for the overhead")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--rounds", type=int, default=2, help="pairs of throughput commands, order alternating"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(PARTS),
        default=list(PARTS),
        help="measure only these (the others stay as the result file has them)",
    )
    args = parser.parse_args()
    known = lesson_names()
    lessons = args.lessons or known
    unknown = sorted({args.lesson, *lessons} - set(known))
    if unknown:
        parser.error(f"unknown lesson(s) {', '.join(unknown)}; the lessons are: {', '.join(known)}")

    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    earlier = results.pop("date", None)  # a file from before each part had its own date
    for part in set(PARTS) & set(results):
        results[part].setdefault("date", earlier)
    results.update(benchmark="autograde", machine=describe_machine())
    with tempfile.TemporaryDirectory(prefix="ftlib-bench-") as folder:
        scratch = Path(folder)
        for part in args.only:
            results[part] = PARTS[part](scratch, args, lessons)
            results[part]["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_results(args.out, results)


def _throughput(scratch: Path, args: argparse.Namespace, _: list[str], skipping: bool) -> dict:
    cells = "with skipping" if skipping else "every cell run"
    print(f"throughput, {cells}: {args.students} of {args.lesson}, 1 vs {args.jobs} jobs")
    speed = throughput(
        scratch, args.lesson, args.students, args.jobs, skipping=skipping, rounds=args.rounds
    )
    print(
        f"  {speed['sequential_seconds_per_submission']} s vs "
        f"{speed['parallel_seconds_per_submission']} s per submission once started: "
        f"{speed['speed_up']}x (whole commands {speed['sequential_wall_seconds']} s vs "
        f"{speed['parallel_wall_seconds']} s: {speed['wall_speed_up']}x)"
    )
    return speed


def _overhead(scratch: Path, args: argparse.Namespace, _: list[str]) -> dict:
    print(f"overhead: {args.lesson}, sandboxed autograde vs headless, {args.repeats} runs")
    cost = overhead(scratch, args.lesson, args.repeats)
    print(
        f"  {cost['sandboxed_autograde_seconds']} s vs {cost['headless_seconds']} s: "
        f"{cost['overhead_seconds']:+} s per submission"
    )
    return cost


def _class(scratch: Path, args: argparse.Namespace, lessons: list[str]) -> dict:
    print(f"class: {CLASS_SIZE} students x {len(lessons)} lessons, from {args.sample} each")
    estimate = class_estimate(scratch, lessons, args.sample, args.jobs)
    print(f"  about {estimate['estimated_hours']} hours")
    return estimate


PARTS = {
    "throughput": lambda *a: _throughput(*a, skipping=True),
    "throughput_every_cell": lambda *a: _throughput(*a, skipping=False),
    "overhead": _overhead,
    "class": _class,
}


if __name__ == "__main__":
    main()
