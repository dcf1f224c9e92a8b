"""Lines of hidden tests, and outputs that quote them.

A submission that found a way to read the hidden tests may print them. The grading kernel
keeps them out of reach; this is the check behind it: `FlagForReview` holds a submission whose
outputs quote a hidden test (outside the cell whose source holds the line: a traceback may quote
its own cell), and the feedback page never shows such a line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests

BEGIN = ClearHiddenTests.begin_test_delimeter.default_value
END = ClearHiddenTests.end_test_delimeter.default_value
HIDDEN_LINE = "(a line of a hidden test, hidden)"
_MIN_LENGTH = 20  # shorter lines (`else:`, `x = 1`) are too common to tell anything
_MIN_LETTERS = 8
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LETTER = re.compile(r"[A-Za-z0-9]")


def hidden_test_lines(test_sources: Iterable[str]) -> frozenset[str]:
    """The telling lines between the hidden-test markers of `test_sources`, stripped.

    Lines that the visible part of a test also has, and short or mostly-punctuation lines, are
    left out: quoting them reveals nothing.
    """
    hidden, visible = set(), set()
    for source in test_sources:
        inside = False
        for line in source.splitlines():
            if BEGIN in line or END in line:
                inside = BEGIN in line
                continue
            (hidden if inside else visible).add(line.strip())
    return frozenset(
        line
        for line in hidden - visible
        if len(line) >= _MIN_LENGTH and len(_LETTER.findall(line)) >= _MIN_LETTERS
    )


def output_texts(cell: NotebookNode) -> list[str]:
    """Every text a code cell's outputs show: streams, text data, errors and tracebacks."""
    texts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            texts.append(output.get("text", ""))
        elif output.get("output_type") == "error":
            texts += [output.get("evalue", ""), *output.get("traceback", [])]
        else:
            data = output.get("data", {})
            texts += [value for key, value in data.items() if key.startswith("text/")]
    return [_ANSI.sub("", text) for text in texts]


def quoted_lines(cell: NotebookNode, lines: frozenset[str]) -> list[str]:
    """The `lines` that `cell`'s outputs quote, less those of its own source."""
    own = {line.strip() for line in cell.get("source", "").splitlines()}
    wanted = lines - own
    if not wanted or cell.get("cell_type") != "code":
        return []
    shown = "\n".join(output_texts(cell))
    return sorted(line for line in wanted if line in shown)


def redact(cell: NotebookNode, lines: frozenset[str]) -> bool:
    """Replace each output line of `cell` that quotes one of `lines` (less its own source's);
    returns whether anything was replaced."""
    quoted = quoted_lines(cell, lines)
    if not quoted:
        return False
    for output in cell.outputs:
        if output.output_type == "stream":
            output.text = _without(output.text, quoted)
        elif output.output_type == "error":
            output.evalue = _without(output.evalue, quoted)
            output.traceback = [_without(line, quoted) for line in output.traceback]
        else:
            for key, value in output.get("data", {}).items():
                if key.startswith("text/"):
                    output.data[key] = _without(value, quoted)
    return True


def _without(text: str, quoted: list[str]) -> str:
    return "\n".join(
        HIDDEN_LINE if any(line in _ANSI.sub("", row) for line in quoted) else row
        for row in text.split("\n")
    )
