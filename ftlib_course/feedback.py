"""Feedback HTML without hidden tests, tracebacks included.

nbgrader's feedback shows each test cell as the autograder ran it, hidden tests and all. Removing
the hidden lines from the cell (nbgrader's `ClearHiddenTests`) is not enough: when a hidden test
fails, the traceback quotes the failing line and its neighbours (jupyter/nbgrader#917, #1363).
`HideHiddenTests` removes the hidden lines and cuts the traceback of every cell that had hidden
tests down to the error's name and message, which is where the course puts its hints.
"""

from __future__ import annotations

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests

TRACEBACK_HIDDEN = "(the rest of the traceback is hidden because this cell has hidden tests)"


class HideHiddenTests(ClearHiddenTests):
    """Remove hidden test lines from test cells and reduce their tracebacks to the error message.

    Add it to `GenerateFeedback.preprocessors` after `GetGrades`.
    """

    def preprocess_cell(
        self, cell: NotebookNode, resources: ResourcesDict, cell_index: int
    ) -> tuple[NotebookNode, ResourcesDict]:
        if cell.cell_type == "code" and self.begin_test_delimeter in cell.source:
            for output in cell.outputs:
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}", TRACEBACK_HIDDEN]
        return super().preprocess_cell(cell, resources, cell_index)
