"""How the grader and the kernel name a cell and fingerprint the code compiled from it.

Both sides must compute the same values: the kernel (`guard`) for what IPython really compiled,
the grader (`evidence`) for what it sent. In the kernel this runs inside the audit hook, while
cell code may have rebound builtins or defined odd subclasses: so it reads syntax trees only
through their instance dictionaries, never calls a method of theirs, and uses builtins taken
when the module was loaded.
"""

from __future__ import annotations

import ast
import hashlib

from ipykernel.compiler import get_tmp_hash_seed, murmur2_x86

CLOSING_MARK = "ftlib-grading-end"
"""Marks the grader's closing probe, `pass  # ftlib-grading-end NONCE`."""

_type, _vars, _repr, _list = type, vars, repr, list
_sha256 = hashlib.sha256
# Each node class with its name and fields, as they are now.
_NODE_TYPES = {
    value: (value.__name__, tuple(value._fields))
    for value in vars(ast).values()
    if isinstance(value, type) and issubclass(value, ast.AST)
}
_SCALARS = frozenset([str, bytes, int, float, complex, bool, type(None), type(Ellipsis)])


def tree_digest(node: ast.AST) -> str:
    """A fingerprint of a syntax tree (positions left out, so layout does not matter).

    Anything but the `ast` module's own node classes, lists and plain constants counts as one
    unknown value: a tree built from other objects never matches one parsed from a cell.
    """
    parts: list[str] = []
    _dump(node, parts)
    return _sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _dump(value: object, parts: list[str]) -> None:
    kind = _type(value)
    if kind in _NODE_TYPES:
        name, field_names = _NODE_TYPES[kind]
        parts.append(name)
        fields = _vars(value)
        for field in field_names:
            parts.append(field)
            _dump(fields.get(field), parts)
    elif kind is _list:
        parts.append("[")
        for item in value:
            _dump(item, parts)
        parts.append("]")
    elif kind in _SCALARS:
        parts.append(_repr(value))
    else:
        parts.append("?")


def cell_file_name(source: str) -> str:
    """The file name ipykernel gives a cell's code: a hash of the text it received."""
    return f"{murmur2_x86(source, get_tmp_hash_seed())}.py"
