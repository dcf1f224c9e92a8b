"""Grade many answers to a lesson's exercises in one real kernel, test cell by test cell.

A lesson's solution notebook runs once (without the cells the grader skips); then each answer is
graded the way the autograder grades it: the answer cell's source is replaced, the cells between
it and its test cell run again, and then the test cell with its hidden tests. Afterwards the
solution's answer is put back, so one answer never affects the next. Running whole notebooks
through nbgrader for each of dozens of answers would take minutes; this takes seconds.
A wrong answer that breaks a rule the exercise states must already fail the visible part of the
test (what `validate` shows the learner), not only the hidden tests.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import nbformat
import pytest
from jupyter_client.manager import KernelManager

from ftlib_course.checks import PASS_MARK
from ftlib_course.config import ROOT

SKIP_TAG = "grading-skip"
CELL_TIMEOUT_SECONDS = 120
_ANSI_COLOURS = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Graded:
    """What a test cell made of one answer: whether it passed, and what it printed or raised."""

    passed: bool
    message: str


@dataclass(frozen=True)
class Answer:
    """An answer to one exercise, written differently from the solution (right or wrong)."""

    exercise: str  # grade_id of the answer cell
    why: str  # what the answer does differently
    source: str
    message: str = ""  # for a wrong answer: part of the message its test must give
    visible: bool = True  # for a wrong answer: the visible test alone already fails on it

    def __str__(self) -> str:
        return f"{self.exercise}: {self.why}"


class LessonKernel:
    """A kernel that has run `solutions/<lesson>`, ready to grade answers to its exercises.

    It runs in a scratch copy of the lesson's folder, so that what a lesson writes (a project
    folder, say) never lands in `solutions/`.
    """

    def __init__(self, lesson: str) -> None:
        self.lesson = lesson
        path = ROOT / "solutions" / lesson / f"{lesson}.ipynb"
        notebook = nbformat.read(path, as_version=4)
        self._cells = [
            cell
            for cell in notebook.cells
            if cell.cell_type == "code" and SKIP_TAG not in cell.metadata.get("tags", [])
        ]
        self._manager = KernelManager(kernel_name="python3")
        self._scratch = tempfile.TemporaryDirectory(prefix=f"{lesson}_")
        folder = Path(self._scratch.name) / lesson
        shutil.copytree(path.parent, folder)
        self._manager.start_kernel(cwd=str(folder))
        self._client = self._manager.client()
        self._client.start_channels()
        self._client.wait_for_ready(timeout=60)
        for cell in self._cells:
            result = self._run(cell.source)
            if not result.passed:
                raise RuntimeError(f"{lesson}: the solution failed in a cell: {result.message}")

    def grade(self, answer_id: str, source: str, *, visible_only: bool = False) -> Graded:
        """Run `source` as the answer cell `answer_id`, then its test cell; restore the solution.

        With `visible_only`, the test cell runs as learners see it, without its hidden tests.

        Raises:
            KeyError: `answer_id` names no answer cell of the lesson.
        """
        start = self._index(answer_id)
        test = next(
            index
            for index in range(start + 1, len(self._cells))
            if self._cells[index].metadata.get("nbgrader", {}).get("grade")
        )
        self._run(source)
        for cell in self._cells[start + 1 : test]:
            self._run(cell.source)
        test_source = self.visible_test(answer_id) if visible_only else self._cells[test].source
        graded = self._run(test_source)
        for cell in self._cells[start:test]:
            self._run(cell.source)
        return graded

    def assert_earns_the_points(self, answer: Answer) -> None:
        """A right answer passes its test cell, hidden tests included, and says so."""
        graded = self.grade(answer.exercise, answer.source)
        assert graded.passed, f"a right answer ({answer.why}) failed: {graded.message}"
        assert graded.message.startswith(PASS_MARK), f"no confirmation line: {graded.message!r}"

    def assert_loses_the_points(self, answer: Answer) -> None:
        """A wrong answer fails with its message, and where it breaks a visible rule, visibly."""
        graded = self.grade(answer.exercise, answer.source)
        assert not graded.passed, f"a wrong answer ({answer.why}) passed"
        assert answer.message in graded.message, f"unhelpful message: {graded.message!r}"
        if answer.visible:
            seen = self.grade(answer.exercise, answer.source, visible_only=True)
            assert not seen.passed, f"only the hidden tests catch it ({answer.why})"

    def visible_test(self, answer_id: str) -> str:
        """The source of the test cell of `answer_id` as learners see it (hidden tests removed)."""
        start = self._index(answer_id)
        test_id = next(
            cell.metadata["nbgrader"]["grade_id"]
            for cell in self._cells[start + 1 :]
            if cell.metadata.get("nbgrader", {}).get("grade")
        )
        release = nbformat.read(
            ROOT / "lessons" / self.lesson / f"{self.lesson}.ipynb", as_version=4
        )
        return next(
            cell.source
            for cell in release.cells
            if cell.metadata.get("nbgrader", {}).get("grade_id") == test_id
        )

    def close(self) -> None:
        self._client.stop_channels()
        self._manager.shutdown_kernel(now=True)
        self._scratch.cleanup()

    def __enter__(self) -> LessonKernel:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _index(self, answer_id: str) -> int:
        for index, cell in enumerate(self._cells):
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade_id") == answer_id and meta.get("solution"):
                return index
        raise KeyError(f"{self.lesson} has no answer cell {answer_id!r}")

    def _run(self, source: str) -> Graded:
        printed: list[str] = []

        def keep(message: dict) -> None:
            if message["msg_type"] == "stream":
                printed.append(message["content"]["text"])

        reply = self._client.execute_interactive(
            source, output_hook=keep, timeout=CELL_TIMEOUT_SECONDS
        )
        content = reply["content"]
        if content["status"] == "error":
            message = _ANSI_COLOURS.sub("", f"{content['ename']}: {content['evalue']}")
            return Graded(False, message)
        return Graded(True, "".join(printed))


def answer_tests(lesson: str, right: list[Answer], wrong: list[Answer]) -> tuple[Callable, ...]:
    """A lesson's kernel fixture and its two tests, for a test module to bind at top level:

    kernel, test_right_answers_earn_the_points, test_wrong_answers_lose_them = answer_tests(
        "01_warm_start", RIGHT, WRONG
    )
    """

    @pytest.fixture(scope="module")
    def kernel():
        with LessonKernel(lesson) as started:
            yield started

    @pytest.mark.parametrize("answer", right, ids=str)
    def test_right_answers_earn_the_points(kernel: LessonKernel, answer: Answer) -> None:
        kernel.assert_earns_the_points(answer)

    @pytest.mark.parametrize("answer", wrong, ids=str)
    def test_wrong_answers_lose_them(kernel: LessonKernel, answer: Answer) -> None:
        kernel.assert_loses_the_points(answer)

    return kernel, test_right_answers_earn_the_points, test_wrong_answers_lose_them
