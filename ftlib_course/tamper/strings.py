"""Strings put together from literals: `"__buil" + "tins__"`, `"_" * 2`, `"".join([...])`.

A name the scan flags may be spelled in pieces so that no literal holds it whole. Folding the
pieces back, as far as literals allow, lets the whole be checked like a literal; a piece known
only at run time stays unknown (None).
"""

from __future__ import annotations

import ast
import re

from ftlib_course.tamper.syntax import dotted_name


def is_string_join(node: ast.AST) -> bool:
    """A call `"sep".join(one_argument)`."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "join"
        and isinstance(node.func.value, ast.Constant)
        and isinstance(node.func.value.value, str)
        and len(node.args) == 1
    )


def string_pieces(node: ast.AST) -> list[str | None] | None:
    """The pieces of a string put together from literals (None for a piece only known at run
    time), or None when `node` does not build a string: `"__buil" + "tins__"`, `"_" * 2`,
    f-strings, `"".join([...])`, `"%s" % "x"`, `"abc"[::-1]`."""
    if isinstance(node, ast.Constant):
        return [node.value] if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        pieces: list[str | None] = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                inner = None if value.format_spec else string_pieces(value.value)
                pieces += inner if inner is not None and value.conversion == -1 else [None]
            else:
                pieces += string_pieces(value) or [None]
        return pieces
    if is_string_join(node):
        separator, items = node.func.value.value, node.args[0]
        if not isinstance(items, (ast.List, ast.Tuple)):
            return [_folded(items)]
        pieces = []
        for number, item in enumerate(items.elts):
            pieces += ([separator] if number and separator else []) + (
                string_pieces(item) or [None]
            )
        return pieces
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = string_pieces(node.left), string_pieces(node.right)
        if left is None and right is None:
            return None
        return (left or [None]) + (right or [None])
    folded = _folded(node)
    return None if folded is None else [folded]


def _folded(node: ast.AST) -> str | None:
    """The value of a string expression made of literals only (repeats, slices, % and
    reversal), or None."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        value = None
    if isinstance(value, str):
        return value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Mod)):
        left = _folded(node.left)
        if left is None or (isinstance(node.op, ast.Mod) and re.search(r"%[^s%(]", left)):
            return None  # only %s: a width could make the string as long as it likes
        try:
            right = ast.literal_eval(node.right)
            if isinstance(node.op, ast.Mult):
                return left * right if isinstance(right, int) and 0 <= right <= 64 else None
            return left % right
        except (ValueError, TypeError, KeyError, SyntaxError):
            return None
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        text = _folded(node.value)
        try:
            bounds = [
                None if part is None else ast.literal_eval(part)
                for part in (node.slice.lower, node.slice.upper, node.slice.step)
            ]
            return None if text is None else text[slice(*bounds)]
        except (ValueError, TypeError, SyntaxError):
            return None
    if isinstance(node, ast.Call) and dotted_name(node.func) == "reversed" and len(node.args) == 1:
        text = _folded(node.args[0])
        return None if text is None else text[::-1]
    return None
