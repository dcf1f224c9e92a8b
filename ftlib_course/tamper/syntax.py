"""A cell's source as Python: what IPython runs, and the dotted names the scan reads from it.

The scan reads a cell after IPython's own input transformations, so that `!cmd` and `%magic`
are seen as the `get_ipython()` calls they become.
"""

from __future__ import annotations

import ast
from functools import lru_cache

from IPython.core.inputtransformer2 import TransformerManager

_TRANSFORMER = TransformerManager()


def parse(source: str) -> ast.Module | None:
    """The tree of what IPython runs for `source`, or None when it does not parse.

    Trees of short cells are kept and shared by every caller that parses the same text (every
    submission of a lesson holds its locked cells): read them, never change them.
    """
    return _kept_parse(source) if len(source) <= _KEPT_SOURCE_CHARS else _parse(source)


_KEPT_SOURCE_CHARS = 20_000


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(_TRANSFORMER.transform_cell(source))
    except (SyntaxError, ValueError):
        return None


_kept_parse = lru_cache(maxsize=512)(_parse)


def readable(source: str) -> ast.Module | None:
    """`parse`, or None for a source whose tree is too deep or too large to build."""
    try:
        return parse(source)
    except (RecursionError, MemoryError):
        return None


def dotted_name(node: ast.AST) -> str | None:
    """`a.b.c` for a name or a chain of attributes on a name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None
