"""Which names the tests rely on, and where in a submission rebinding one of them matters.

A submission may reuse any name for its own scratch work; a binding is tampering only when it
changes what a test reads: a builtin, a setup cell's name or an import that a test reads, bound
where a later reader sees it before a locked cell binds it again.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable, Sequence
from functools import lru_cache

import nbformat

from ftlib_course.tamper.bindings import (
    defined_names,
    eager_reads,
    first_uses,
    global_reads,
    module_level_bindings,
)
from ftlib_course.tamper.findings import LockedCell
from ftlib_course.tamper.syntax import parse, readable


def protected_names(locked: Iterable[LockedCell]) -> dict[str, str | None]:
    """See `_protected_names`; the same for every submission of a lesson, so kept."""
    return dict(_protected_names(tuple(locked)))


@lru_cache(maxsize=32)
def _protected_names(locked: tuple[LockedCell, ...]) -> dict[str, str | None]:
    """Names that the graded cells rely on, mapped to what an import binds them to (else None).

    A name is protected when a test cell reads it, directly or through a statement of a locked
    cell that binds something a test cell needs (a constant computed from another constant),
    and it is a builtin, a name a locked setup cell defines, or a name a locked cell imports.
    Names that only display code reads (`fig, ax`, a loop's results) are not protected: a
    learner's scratch cell that reuses them changes nothing the tests see, and must not be
    flagged.
    """
    needed: set[str] = set()
    defined: dict[str, str | None] = {}
    sources: dict[str, list[set[str]]] = {}  # name -> what each statement binding it reads
    for cell in locked:
        tree = parse(cell.source)
        if tree is None:
            continue
        if cell.graded:
            needed |= global_reads(tree)
        for name, target, _ in module_level_bindings(tree):
            if target is not None:
                defined[name] = target
        if cell.graded:
            continue
        defined.update(dict.fromkeys(defined_names(tree) - defined.keys()))
        for statement in tree.body:
            reads = global_reads(statement)
            for name in defined_names(ast.Module(body=[statement], type_ignores=[])):
                sources.setdefault(name, []).append(reads)
    frontier = list(needed)
    while frontier:
        for reads in sources.get(frontier.pop(), []):
            for name in reads - needed:
                needed.add(name)
                frontier.append(name)
    names = {name: None for name in needed if hasattr(builtins, name)}
    names.update({name: defined[name] for name in needed if name in defined})
    return names


def trusted_places(
    locked: Sequence[LockedCell], places: dict[str | None, int], notebook: nbformat.NotebookNode
) -> list[tuple[float, LockedCell]]:
    """Each locked cell with its released text at its place in the submission; one missing from
    it where the release has it (just after the locked cell before it), as grading restores it."""
    trusted, last = [], -1.0
    for cell in locked:
        index = places.get(cell.grade_id)
        if index is None:
            trusted.append((last + 0.5, cell))
            continue
        last = index
        if notebook.cells[index].source == cell.source:
            trusted.append((index, cell))
    return trusted


class ReadWindows:
    """Where in a submission rebinding a protected name changes what the tests read.

    The trusted cells are the locked cells with their released text, at their places in the
    submission. A cell reads a name when it uses it before binding it (test cells: anywhere);
    a name a locked cell reads inside a function it defines is read wherever that function is.
    Rebinding a name at position p matters when a cell after p reads it before a trusted cell
    binds it again: a scratch `model = None` above the lesson's own `model = ...` does not.
    """

    def __init__(self, trusted: list[tuple[float, LockedCell]]) -> None:
        self.readers: dict[str, set[float]] = {}
        self.binders: dict[str, list[float]] = {}
        later: dict[str, set[str]] = {}  # name -> names whose functions read it when called
        for index, cell in trusted:
            for binds, read_when_called, read_first in _statement_uses(cell.source, cell.graded):
                for name in read_when_called:
                    later.setdefault(name, set()).update(binds)
                for name in binds:
                    self.binders.setdefault(name, []).append(index)
                for name in read_first:
                    self.readers.setdefault(name, set()).add(index)
        for name in list(later):
            self.readers.setdefault(name, set()).update(self._called_at(name, later, set()))

    def _called_at(self, name: str, later: dict[str, set[str]], seen: set[str]) -> set[float]:
        seen.add(name)
        places: set[float] = set()
        for function in later.get(name, ()):
            places |= self.readers.get(function, set())
            if function not in seen:
                places |= self._called_at(function, later, seen)
        return places

    def protected_at(
        self, position: int, protected: dict[str, str | None]
    ) -> tuple[dict[str, str | None], frozenset[str]]:
        """The protected names a cell at `position` could change for a later reader, and those
        of them that a trusted cell binds again before any reader (`settled`)."""
        names = {
            name: target
            for name, target in protected.items()
            if any(reader > position for reader in self.readers.get(name, ()))
        }
        settled = frozenset(name for name in names if not self._matters(name, position))
        return names, settled

    def _matters(self, name: str, position: int) -> bool:
        rebound = min((b for b in self.binders.get(name, []) if b > position), default=None)
        return any(
            position < reader and (rebound is None or reader <= rebound)
            for reader in self.readers.get(name, ())
        )


_Uses = tuple[frozenset[str], frozenset[str], frozenset[str]]


@lru_cache(maxsize=256)  # every submission of a lesson holds the same locked cells
def _statement_uses(source: str, graded: bool) -> tuple[_Uses, ...]:
    """Per statement of a cell: the names it binds, those it reads only when a function it
    defines is called, and those it reads when it runs before binding them."""
    tree = readable(source)
    if tree is None:
        return ()
    found = []
    uses: dict[str, str] = {}  # name -> "read" or "bound", whichever comes first
    for statement in tree.body:
        module = ast.Module(body=[statement], type_ignores=[])
        reads = global_reads(statement)
        first_uses(statement, uses)
        binds = frozenset(name for name, _, _ in module_level_bindings(module))
        eager = reads if graded else eager_reads(module) & reads
        read_first = frozenset(name for name in eager if uses.get(name, "read") == "read")
        found.append((binds, frozenset(reads - eager), read_first))
    return tuple(found)
