"""How the grader and the kernel name a cell and fingerprint the code compiled from it.

Both sides must compute the same values: the kernel (`guard`) for what IPython really compiled,
the grader (`evidence`) for what it sent.
"""

from __future__ import annotations

import ast
import hashlib

from ipykernel.compiler import get_tmp_hash_seed, murmur2_x86

CLOSING_MARK = "ftlib-grading-end"
"""Marks the grader's closing probe, `pass  # ftlib-grading-end NONCE`."""


def tree_digest(node: ast.AST) -> str:
    """A fingerprint of a syntax tree (positions left out, so layout does not matter)."""
    return hashlib.sha256(ast.dump(node).encode()).hexdigest()[:32]


def cell_file_name(source: str) -> str:
    """The file name ipykernel gives a cell's code: a hash of the text it received."""
    return f"{murmur2_x86(source, get_tmp_hash_seed())}.py"
