"""Names only the tests bind: a test's reference values, which no answer needs to read.

A test cell computes what it compares with (`_welch = ...`, `expected = ...`) in the notebook's
namespace, often before it calls the answer; an answer that reads that name from the module
returns the test's own value. Names a read-only cell of the lesson binds too are the lesson's,
free to use. A test's private name (one starting with `_`) is never an answer's business; a plain
one (`expected`, `x`) is reported only where the submission does not bind it itself, since an
honest answer may well use the same word for its own value.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from ftlib_course.tamper.bindings import global_reads, module_level_bindings
from ftlib_course.tamper.findings import Finding, LockedCell
from ftlib_course.tamper.syntax import readable

_IPYTHON_NAMES = frozenset({"_", "__", "___"})
"""Bound by IPython after every cell, whatever the tests do."""


def test_only_names(locked: Sequence[LockedCell]) -> frozenset[str]:
    """Names the release's test cells bind in the module and no other locked cell binds."""
    tests: set[str] = set()
    lesson: set[str] = set()
    for cell in locked:
        tree = readable(cell.source)
        if tree is not None:
            bound = {name for name, _, _ in module_level_bindings(tree)}
            (tests if cell.graded else lesson).update(bound)
    return frozenset(tests - lesson - _IPYTHON_NAMES)


def watched_names(trees: Sequence[ast.Module], test_names: frozenset[str]) -> frozenset[str]:
    """Of `test_names`, those the submission (its editable cells' trees) may not read."""
    own = {name for tree in trees for name, _, _ in module_level_bindings(tree)}
    return frozenset(name for name in test_names if name.startswith("_") or name not in own)


def test_name_reads(tree: ast.Module, watched: frozenset[str]) -> list[Finding]:
    """Findings for one editable cell that reads a name of `watched`."""
    findings = []
    for name in sorted(global_reads(tree) & watched):
        line = min(
            node.lineno for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == name
        )
        detail = f"reads {name!r}, which only a test cell binds: the test's own value"
        findings.append(Finding("test_name", detail, line))
    return findings
