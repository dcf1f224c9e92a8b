"""Feedback HTML without hidden tests, tracebacks included, whatever text students wrote.

nbgrader's feedback shows each test cell as the autograder ran it, hidden tests and all. Removing
the hidden lines from the cell (nbgrader's `ClearHiddenTests`) is not enough: when a hidden test
fails, the traceback quotes the failing line and its neighbours (jupyter/nbgrader#917, #1363).
`HideHiddenTests` removes the hidden lines and cuts the traceback of every cell that had hidden
tests down to the error's name and message, which is where the course puts its hints.

Only the autograded test cells hold real hidden tests: nbgrader restores them from the gradebook
before grading. Every other cell is the student's own text, shown as written, so a student
cell that contains the marker text (`### BEGIN HIDDEN TESTS` without its end) cannot make
feedback generation fail, as nbgrader's `ClearHiddenTests` would.
"""

from __future__ import annotations

from itertools import takewhile

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests

TRACEBACK_HIDDEN = "(the rest of the traceback is hidden because this cell has hidden tests)"
TESTS_HIDDEN = "# (hidden tests)"


class HideHiddenTests(ClearHiddenTests):
    """Remove hidden test lines from test cells and reduce their tracebacks to the error message.

    Add it to `GenerateFeedback.preprocessors` after `GetGrades`.
    """

    def preprocess_cell(
        self, cell: NotebookNode, resources: ResourcesDict, cell_index: int
    ) -> tuple[NotebookNode, ResourcesDict]:
        if not (utils.is_grade(cell) and not utils.is_solution(cell)):
            return cell, resources  # the student's own text: nothing hidden in it
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
