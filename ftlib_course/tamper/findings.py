"""What the scan takes in and gives back: the release's locked cells, and its findings.

Every other module of the scan works on these two records, so they live apart from all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import nbformat

REVIEW_ONLY = frozenset({"path", "exit"})
"""Kinds that ask for a review without holding the automatic score."""


@dataclass(frozen=True)
class Finding:
    """One thing a submission reaches for: its kind (see `ftlib_course.tamper`), what and where.

    `cell` is the index of the cell in the notebook (None when scanning one source).
    """

    kind: str
    detail: str
    line: int
    cell: int | None = None

    @property
    def holds(self) -> bool:
        """Whether this finding holds the automatic score until an instructor reviews it."""
        return self.kind not in REVIEW_ONLY

    def describe(self) -> str:
        where = f"line {self.line}" if self.cell is None else f"cell {self.cell}, line {self.line}"
        return f"{self.kind}: {self.detail} ({where})"


@dataclass(frozen=True)
class LockedCell:
    """A locked cell of the release as the instructor wrote it (hidden tests included)."""

    grade_id: str
    source: str
    graded: bool


def locked_cells(notebook: nbformat.NotebookNode) -> list[LockedCell]:
    """The locked cells of a lesson in nbgrader's source format (solutions/), in order."""
    cells = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("locked") and meta.get("grade_id"):
            cells.append(LockedCell(meta["grade_id"], cell.source, bool(meta.get("grade"))))
    return cells
