"""Grade many answers to a lesson's exercises in one real kernel, test cell by test cell.

A lesson's solution notebook runs once (without the cells the grader skips); then each answer is
graded the way the autograder grades it: the answer cell's source is replaced, the cells between
it and its test cell run again, and then the test cell with its hidden tests. Afterwards the
solution's answer is put back, so one answer never affects the next. Running whole notebooks
through nbgrader for each of dozens of answers would take minutes; this takes seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import TracebackType

import nbformat
from jupyter_client.manager import KernelManager

from ftlib_course.config import ROOT

SKIP_TAG = "grading-skip"
CELL_TIMEOUT_SECONDS = 120
_ANSI_COLOURS = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Graded:
    """What a test cell made of one answer: whether it passed, and what it printed or raised."""

    passed: bool
    message: str


class LessonKernel:
    """A kernel that has run `solutions/<lesson>`, ready to grade answers to its exercises."""

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
        self._manager.start_kernel(cwd=str(path.parent))
        self._client = self._manager.client()
        self._client.start_channels()
        self._client.wait_for_ready(timeout=60)
        for cell in self._cells:
            result = self._run(cell.source)
            if not result.passed:
                raise RuntimeError(f"{lesson}: the solution failed in a cell: {result.message}")

    def grade(self, answer_id: str, source: str) -> Graded:
        """Run `source` as the answer cell `answer_id`, then its test cell; restore the solution.

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
        graded = self._run(self._cells[test].source)
        for cell in self._cells[start:test]:
            self._run(cell.source)
        return graded

    def close(self) -> None:
        self._client.stop_channels()
        self._manager.shutdown_kernel(now=True)

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
