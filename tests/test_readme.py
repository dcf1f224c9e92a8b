"""The README shows ftlib as it works, and its lesson table as the lessons and benchmarks are."""

import json
import re

import nbformat
import pytest

from ftlib_course.config import ROOT
from ftlib_course.notebooks import lesson_names, points

README = (ROOT / "README.md").read_text()
LESSON_ROW = re.compile(
    r"^\| (\d+) \| \[[^\]]+\]\(lessons/(\w+)/\2\.ipynb\) \| [^|]+ \| (\d+) \| (\d+) min[^|]* "
    r"\| (\d+) s \|$",
    re.M,
)
TIMES = json.loads((ROOT / "bench" / "results" / "lesson_times.json").read_text())["lessons"]


def test_readme_python_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks, "README.md should show how to use ftlib"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert "target accuracy" in capsys.readouterr().out


def _rows() -> dict[str, tuple[int, int, int, int]]:
    """lesson -> (number, points, study minutes, seconds to run) from the README's table."""
    return {
        lesson: (int(number), int(score), int(minutes), int(seconds))
        for number, lesson, score, minutes, seconds in LESSON_ROW.findall(README)
    }


def test_lesson_table_lists_every_lesson_once_in_course_order():
    rows = _rows()
    assert list(rows) == lesson_names(), "README's lesson table should list lessons/ in order"
    assert [number for number, *_ in rows.values()] == list(range(1, len(rows) + 1))


@pytest.mark.parametrize("lesson", lesson_names())
def test_lesson_table_quotes_the_points_and_times_of_the_lesson(lesson: str):
    _, score, minutes, seconds = _rows()[lesson]
    notebook = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    assert score == points(notebook), f"README gives {lesson} {score} points"
    stated = re.search(r"\*\*Time:\*\* about (\d+) minutes", notebook.cells[0].source)
    assert stated and int(stated.group(1)) == minutes, f"{lesson} states another study time"
    measured = TIMES[lesson]["seconds"]
    assert seconds == round(measured), (
        f"README says {lesson} runs in {seconds} s; bench/results/lesson_times.json measured "
        f"{measured} s: run bench/lesson_times.py and update the table"
    )
    assert measured < 60, f"{lesson} takes {measured} s to run; every lesson must run in a minute"
