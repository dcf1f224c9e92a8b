"""The scan's entry points: one code cell's source, or every editable cell of a submission.

A cell is trusted only when it is a locked cell of the release with its released text; every
other cell is scanned, code with the visitor and markdown and raw cells for nbgrader's marker
text and active content. What each cell may not rebind depends on where it stands (`rebinding`).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

import nbformat
from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, ClearSolutions

from ftlib_course.inert import markdown_active_parts
from ftlib_course.tamper.bindings import imports
from ftlib_course.tamper.findings import Finding, LockedCell
from ftlib_course.tamper.rebinding import ReadWindows, protected_names, trusted_places
from ftlib_course.tamper.scanner import Scanner, type_aliases
from ftlib_course.tamper.syntax import parse, readable
from ftlib_course.tamper.test_names import test_name_reads, test_only_names, watched_names

MARKERS = tuple(
    trait.default_value
    for trait in (
        ClearSolutions.begin_solution_delimeter,
        ClearSolutions.end_solution_delimeter,
        ClearHiddenTests.begin_test_delimeter,
        ClearHiddenTests.end_test_delimeter,
        ClearMarkScheme.begin_mark_scheme_delimeter,
        ClearMarkScheme.end_mark_scheme_delimeter,
    )
)


def scan_source(
    source: str,
    protected: dict[str, str | None] | None = None,
    modules: dict[str, str] | None = None,
    *,
    settled: frozenset[str] = frozenset(),
) -> list[Finding]:
    """Findings in the source of one code cell.

    Args:
        source: the cell's text, as in the notebook (magics included).
        protected: the result of `protected_names` (None: nothing is protected).
        modules: alias -> dotted module path for names imported anywhere in the notebook, so
            that `np.x` is read as `numpy.x` in a cell that does not import numpy itself.
        settled: protected names that a locked cell binds again before any test reads them:
            binding them in this cell's own statements changes nothing the tests see.

    Returns:
        The findings in source order, markers included.
    """
    findings = _markers(source)
    tree = parse(source)
    if tree is not None:
        imported = {name: target for name, target in (protected or {}).items() if target}
        aliases = {**imported, **(modules or {}), **imports(tree), **type_aliases(tree)}
        findings += Scanner(protected or {}, aliases, settled).run(tree)
    return sorted(findings, key=lambda finding: finding.line)


def scan_notebook(notebook: nbformat.NotebookNode, locked: Sequence[LockedCell]) -> list[Finding]:
    """Findings in every cell of a submission that is not a locked cell with its released text.

    A cell counts as locked only when its grade_id names a locked cell of the release and its
    text is that cell's text: metadata alone cannot make a cell trusted, since a student can
    write it. Markdown and raw cells are checked for nbgrader's markers and active content.
    """
    by_id = {cell.grade_id: cell for cell in locked}
    protected = protected_names(locked)
    places, editable = {}, []
    for index, cell in enumerate(notebook.cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        places.setdefault(grade_id, index)
        if grade_id not in by_id or by_id[grade_id].source != cell.source:
            editable.append((index, cell))
    windows = ReadWindows(trusted_places(locked, places, notebook))
    trees = {index: readable(cell.source) for index, cell in editable if cell.cell_type == "code"}
    modules: dict[str, str] = {}
    for tree in [readable(cell.source) for cell in locked] + list(trees.values()):
        if tree is not None:
            modules.update({**imports(tree), **type_aliases(tree)})
    watched = watched_names([t for t in trees.values() if t is not None], test_only_names(locked))
    findings = []
    for index, cell in editable:
        try:
            names = windows.protected_at(index, protected)
            found = _scan_cell(cell, names, modules, trees.get(index), watched)
        except Exception as error:  # a cell the scan cannot read is held, not passed
            found = [
                Finding(
                    "unreadable",
                    f"the scan could not read this cell ({type(error).__name__}): it is "
                    "held until an instructor reads it",
                    0,
                )
            ]
        findings += [
            Finding(finding.kind, finding.detail, finding.line, index) for finding in found
        ]
    return findings


def _scan_cell(
    cell: nbformat.NotebookNode,
    protected: tuple[dict[str, str | None], frozenset[str]],
    modules,
    tree: ast.Module | None,
    watched: frozenset[str],
) -> list[Finding]:
    if cell.cell_type == "code":
        names, settled = protected
        reads = test_name_reads(tree, watched) if tree is not None else []
        return sorted(
            scan_source(cell.source, names, modules, settled=settled) + reads,
            key=lambda finding: finding.line,
        )
    found = _markers(cell.source)
    parts = markdown_active_parts(cell.source)
    if parts:
        detail = f"markup that runs in the viewer's browser: {', '.join(parts)}"
        found.append(Finding("active_content", detail, 1))
    return found


def _markers(source: str) -> list[Finding]:
    return [
        Finding("markers", f"nbgrader's marker text {marker!r}", number)
        for number, line in enumerate(source.splitlines(), start=1)
        for marker in MARKERS
        if marker in line
    ]
