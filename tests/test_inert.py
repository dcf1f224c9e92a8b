"""What the formgrader and the feedback page show of a submission runs no script.

`MakeInert` on notebooks with every kind of active content, and on every lesson as it ships
(whose pages must not change). The same pages in a real browser: test_grader_pages_browser.py.
"""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from ftlib_course.config import ROOT
from ftlib_course.inert import (
    INERT_KEY,
    MakeInert,
    active_parts,
    inert_outputs,
    markdown_active_parts,
)
from ftlib_course.notebooks import lesson_names

ACTIVE_MARKUP = {
    "script": "<script>document.title = 'pwned'</script>",
    "event handler": "<img src=x onerror=\"document.title='pwned'\">",
    "handler in upper case": "<IMG SRC=x OnError=alert(1)>",
    "iframe srcdoc": "<iframe srcdoc=\"<script>parent.document.title='pwned'</script>\"></iframe>",
    "svg with a script": "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
    "svg animation to a script address": "<svg><a><animate attributeName=href "
    "values=javascript:alert(1) /><text y=20>x</text></a></svg>",
    "script address with entities": "<a href='jav&#x61;script:alert(1)'>x</a>",
    "script address with a tab": "<a href='java\tscript:alert(1)'>x</a>",
    "data page": "<a href='data:text/html;base64,PHNjcmlwdD4='>x</a>",
    "object": "<object data='x.html'></object>",
    "base address": "<base href='https://example.org/'>",
    "form": "<form action='/api/contents'><button>go</button></form>",
    "meta refresh": "<meta http-equiv=refresh content='0;url=javascript:alert(1)'>",
}
ACTIVE_MARKDOWN = {
    "script link": "[click me](javascript:alert(1))",
    "inline handler": "Some text <img src=x onerror=alert(1)> more",
    "html block": "<div>\n<script>alert(1)</script>\n</div>",
}
HONEST_MARKUP = {
    "plain markdown": "# Notes\n\nThe loss *falls*, `x < y` and a < b > c.\n\n> quoted",
    "code about scripts": "Never write `<script>` in a page:\n\n    <img onerror=x>",
    "a link and an image": "[docs](https://pytorch.org) ![plot](plot.png) <b>bold</b>",
    "an embedded png": "<img src='data:image/png;base64,iVBORw0KGgo=' alt='a figure'>",
    "a table": "| a | b |\n|---|---|\n| 1 | 2 |",
    "maths": "$\\frac{\\partial L}{\\partial w} = 2(w - 3)$",
}


@pytest.mark.parametrize("name", ACTIVE_MARKUP)
def test_active_markup_is_found(name: str):
    assert active_parts(ACTIVE_MARKUP[name]), name


@pytest.mark.parametrize("name", ACTIVE_MARKDOWN)
def test_active_markdown_is_found_as_it_renders(name: str):
    assert markdown_active_parts(ACTIVE_MARKDOWN[name]), name


@pytest.mark.parametrize("name", HONEST_MARKUP)
def test_honest_markdown_is_not_active(name: str):
    assert markdown_active_parts(HONEST_MARKUP[name]) == []


def _display(data: dict) -> nbformat.NotebookNode:
    return new_output("display_data", data=data)


def test_outputs_lose_scripts_and_keep_what_they_show():
    outputs = [
        _display({"text/html": ACTIVE_MARKUP["event handler"], "text/plain": "<HTML>"}),
        _display({"application/javascript": "document.title = 'pwned'"}),
        _display({"image/svg+xml": ACTIVE_MARKUP["svg with a script"], "text/plain": "<SVG>"}),
        _display({"text/markdown": ACTIVE_MARKDOWN["script link"]}),
        _display(
            {"application/vnd.jupyter.widget-view+json": {"model_id": "1"}, "text/plain": "w"}
        ),
        _display({"text/html": "<table><tr><td>1</td></tr></table>", "image/png": "iVBOR"}),
        new_output("stream", name="stdout", text="<script>x</script> printed as text"),
    ]
    found = inert_outputs(outputs)
    assert "onerror= handler" in found and "JavaScript output" in found
    html, script, svg, markdown, widget, table, stream = outputs
    assert active_parts(html.data["text/html"]) == []
    assert "&lt;img src=x onerror=" in html.data["text/html"], "shown as text"
    assert script.data == {
        "text/plain": "(output removed by the autograder: application/javascript)"
    }
    assert svg.data == {"text/plain": "<SVG>"}
    assert "    [click me](javascript:alert(1))" in markdown.data["text/markdown"], "a code block"
    assert widget.data == {"text/plain": "w"}
    assert table.data["text/html"] == "<table><tr><td>1</td></tr></table>", "honest HTML kept"
    assert stream.text == "<script>x</script> printed as text", "streams are escaped by the page"


def test_make_inert_shows_active_markdown_as_text_and_records_each_cell():
    notebook = new_notebook(
        cells=[
            new_markdown_cell(HONEST_MARKUP["a link and an image"]),
            new_markdown_cell(ACTIVE_MARKUP["iframe srcdoc"]),
            new_code_cell("display(HTML(...))", outputs=[_display({"text/html": "<script>1"})]),
        ],
        metadata={"widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}}},
    )
    honest_text = notebook.cells[0].source
    notebook, _ = MakeInert().preprocess(notebook, {})
    assert notebook.cells[0].source == honest_text
    assert notebook.cells[1].source.startswith("**ftlib autograder:** this held active content")
    assert set(notebook.metadata[INERT_KEY]) == {"1", "2"}
    assert "widgets" not in notebook.metadata, "saved widget state would render in the page"
    assert markdown_active_parts(notebook.cells[1].source) == []


@pytest.mark.parametrize("lesson", lesson_names())
def test_every_lesson_is_shown_as_written(lesson: str):
    solution = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    before = [cell.source for cell in solution.cells]
    notebook, _ = MakeInert().preprocess(solution, {})
    assert notebook.metadata[INERT_KEY] == {}
    assert [cell.source for cell in notebook.cells] == before
