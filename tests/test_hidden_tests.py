"""Hidden test lines are found in outputs outside their own cell, and hidden in feedback."""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_output

from ftlib_course.hidden_tests import HIDDEN_LINE, hidden_test_lines, quoted_lines, redact

HIDDEN = 'assert abs(double(21.0) - 42.0) < 1e-12, "double(21.0) should be 42.0"'
TEST = (
    '"""double: doubles floats."""\n'
    'assert abs(double(0.5) - 1.0) < 1e-12, "double(0.5) should be 1.0"\n'
    "### BEGIN HIDDEN TESTS\n"
    f"{HIDDEN}\n"
    "else:\n"
    'assert abs(double(0.5) - 1.0) < 1e-12, "double(0.5) should be 1.0"\n'
    "### END HIDDEN TESTS"
)


def _printing(source: str, text: str):
    return new_code_cell(source, outputs=[new_output("stream", name="stdout", text=text)])


def test_only_telling_lines_of_hidden_parts_count():
    assert hidden_test_lines([TEST]) == {HIDDEN}, "short lines and visible lines are left out"


def test_an_output_quoting_a_hidden_line_is_found_and_its_own_source_is_not():
    lines = hidden_test_lines([TEST])
    leak = _printing("print(secret)", f"found it:\n  {HIDDEN}\n")
    own = new_code_cell(
        TEST,
        outputs=[new_output("error", ename="AssertionError", evalue="", traceback=[HIDDEN])],
    )
    coloured = new_code_cell(
        "x", outputs=[new_output("error", ename="E", evalue="", traceback=[f"\x1b[0;31m{HIDDEN}"])]
    )
    assert quoted_lines(leak, lines) == [HIDDEN]
    assert quoted_lines(own, lines) == [], "a traceback may quote its own cell"
    assert quoted_lines(coloured, lines) == [HIDDEN], "colour codes do not hide a line"
    assert quoted_lines(_printing("print(1)", "double(21.0) is 42.0"), lines) == []


def test_redact_replaces_the_quoting_lines_only():
    leak = _printing("print(secret)", f"before\n{HIDDEN}\nafter")
    assert redact(leak, hidden_test_lines([TEST]))
    assert leak.outputs[0].text == f"before\n{HIDDEN_LINE}\nafter"
    assert not redact(_printing("print(1)", "1"), hidden_test_lines([TEST]))
