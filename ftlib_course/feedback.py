"""Feedback HTML without hidden tests, tracebacks included, whatever text students wrote.

nbgrader's feedback shows each test cell as the autograder ran it, hidden tests and all. Removing
the hidden lines from the cell (nbgrader's `ClearHiddenTests`) is not enough: when a hidden test
fails, the traceback quotes the failing line and its neighbours (jupyter/nbgrader#917, #1363).
`HideHiddenTests` removes the hidden lines and cuts the traceback of every cell that had hidden
tests down to the error's name and message, which is where the course puts its hints.

Only the autograded test cells hold real hidden tests: nbgrader restores them from the gradebook
before grading. Every other cell is the student's own text, shown as written, so a student
cell that contains the marker text (`### BEGIN HIDDEN TESTS` without its end) cannot make
feedback generation fail, as nbgrader's `ClearHiddenTests` would. Its outputs are shown too,
except any line that quotes a hidden test (a submission that read them may print them).

`python -m ftlib_course.feedback LESSON` (what `course.py feedback` runs) writes the pages of a
lesson and holds back those of submissions flagged for review.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from itertools import takewhile
from pathlib import Path

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.preprocessors import ClearHiddenTests

from ftlib_course.config import ROOT, course_config
from ftlib_course.hidden_tests import hidden_test_lines, redact

TRACEBACK_HIDDEN = "(the rest of the traceback is hidden because this cell has hidden tests)"
TESTS_HIDDEN = "# (hidden tests)"


class HideHiddenTests(ClearHiddenTests):
    """Remove hidden test lines from test cells and reduce their tracebacks to the error message.

    Add it to `GenerateFeedback.preprocessors` after `GetGrades`.
    """

    def preprocess(
        self, nb: NotebookNode, resources: ResourcesDict
    ) -> tuple[NotebookNode, ResourcesDict]:
        self._hidden_lines = hidden_test_lines(
            cell.source for cell in nb.cells if utils.is_grade(cell) and not utils.is_solution(cell)
        )
        return super().preprocess(nb, resources)

    def preprocess_cell(
        self, cell: NotebookNode, resources: ResourcesDict, cell_index: int
    ) -> tuple[NotebookNode, ResourcesDict]:
        if not (utils.is_grade(cell) and not utils.is_solution(cell)):
            redact(cell, self._hidden_lines)  # the student's own text, but not what it printed
            return cell, resources
        if cell.cell_type == "code" and self.begin_test_delimeter in cell.source:
            for output in cell.outputs:
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}", TRACEBACK_HIDDEN]
        try:
            self._remove_hidden_test_region(cell)
        except RuntimeError:
            # Unbalanced markers cannot come from the gradebook; hide everything from the first.
            lines = cell.source.splitlines()
            shown = takewhile(lambda line: self.begin_test_delimeter not in line, lines)
            cell.source = "\n".join([*shown, TESTS_HIDDEN])
        return cell, resources


def write_feedback(lesson: str, root: Path = ROOT) -> dict[str, str]:
    """Write the feedback pages of every graded submission of `lesson`, except held ones.

    A submission flagged for review waits until an instructor removes the flag in the
    formgrader (or a regrade finds nothing): its outputs may quote hidden tests it found a way
    to read, and its score may be withheld.

    Returns:
        student -> "written", "waiting for review" or "failed: REASON".
    """
    api = NbGraderAPI(config=course_config(root))
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
        flagged = {
            submission.student.id: any(notebook.flagged for notebook in submission.notebooks)
            for submission in gradebook.assignment_submissions(lesson)
        }
    status = {}
    for student in sorted(flagged):
        if flagged[student]:
            status[student] = "waiting for review"
            continue
        result = api.generate_feedback(lesson, student)
        failure = (result.get("error") or "").strip().splitlines()[-1:]
        status[student] = "written" if result["success"] else f"failed: {''.join(failure)}"
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ftlib_course.feedback LESSON`: exit 1 if a page could not be written."""
    parser = argparse.ArgumentParser(description=write_feedback.__doc__.splitlines()[0])
    parser.add_argument("lesson")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    status = write_feedback(args.lesson, args.root.resolve())
    for student, state in status.items():
        print(f"{args.lesson} {student}: {state}")
    if not status:
        print(f"{args.lesson}: no graded submissions; run `course.py autograde {args.lesson}`")
    return 1 if any(state.startswith("failed") for state in status.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
