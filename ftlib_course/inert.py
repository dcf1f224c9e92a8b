"""What the instructor and the students view of a submission, made inert.

The formgrader shows an autograded notebook in the instructor's browser, logged in to a server
that can write the whole course; the feedback page shows it to the student. Both pages put the
notebook's HTML in the page as it is: a markdown cell with `<img src=x onerror=...>`, an output
of `display(HTML("<script>..."))` or `display(Javascript(...))`, an SVG with a script, an
`<iframe srcdoc=...>` run in the viewer's session. `MakeInert` runs in autograding, after the
kernel, on the copy both pages are made from:

- a markdown or raw cell whose rendered HTML holds active content is shown as text, in a code
  block, under a note;
- an HTML or markdown output with active content is shown as text in the same way, an SVG output
  with active content and every JavaScript output are removed (a note says what was), and
  outputs only a browser extension could show (widget views, vendor types) are removed;
- the notebook's saved widget state is dropped.

Each cell it changed for active content is listed in `nb.metadata["ftlib_inert"]` (cell index ->
what it found), for `FlagForReview`. `active_parts` is the test for active content,
which the static scan (`ftlib_course.tamper`) uses as well.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from html.parser import HTMLParser

from nbconvert.exporters.exporter import ResourcesDict
from nbconvert.filters.markdown_mistune import markdown2html_mistune
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

INERT_KEY = "ftlib_inert"
NOTE = "**ftlib autograder:** this held active content ({}); it is shown as text."

# Elements that run code, load a document or change where the page's links and forms go.
_ACTIVE_TAGS = frozenset(
    [
        "script",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "base",
        "meta",
        "link",
        "form",
        "portal",
        "foreignobject",
        "template",
        "noscript",
    ]
)
_URL_ATTRIBUTES = frozenset(
    [
        "href",
        "src",
        "action",
        "formaction",
        "xlink:href",
        "data",
        "background",
        "poster",
        "lowsrc",
        "dynsrc",
        "ping",
        "codebase",
        "cite",
        "longdesc",
        "manifest",
    ]
)
_SAFE_DATA_URL = re.compile(r"^data:image/(png|jpeg|gif|webp|svg\+xml);")  # inert in <img>
_SCRIPT_URL = re.compile(r"(javascript|vbscript|livescript):")
_INVISIBLE = re.compile(r"[\s\x00-\x1f]+")
# A second look at the raw text, for what a browser reads differently from Python's parser.
_RAW_ACTIVE = re.compile(
    rf"<\s*/?\s*({'|'.join(sorted(_ACTIVE_TAGS))})\b|<[^>]*[\s/\"']on[a-z]+\s*=|<[^>]*\bsrcdoc\s*=",
    re.IGNORECASE,
)

SAFE_OUTPUT_TYPES = frozenset(
    [
        "text/plain",
        "text/html",
        "text/markdown",
        "text/latex",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/svg+xml",
        "application/json",
    ]
)
"""Output types a page shows as data; the others need code of their own to be shown."""


class _ActiveContent(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _ACTIVE_TAGS:
            self.found.append(f"a {tag} element")
        for name, value in attrs:
            plain = _INVISIBLE.sub("", value or "").lower()
            if name.startswith("on"):
                self.found.append(f"{name}= handler")
            elif name == "srcdoc":
                self.found.append("srcdoc=")
            elif _SCRIPT_URL.search(plain) or (
                name in _URL_ATTRIBUTES
                and plain.startswith("data:")
                and not _SAFE_DATA_URL.match(plain)
            ):
                self.found.append(f"{name}={plain[:30]}")
            elif name == "style" and ("expression(" in plain or "url(" in plain):
                self.found.append("style= with a URL or expression")

    handle_startendtag = handle_starttag


def active_parts(markup: str) -> list[str]:
    """What in `markup` (HTML or SVG) would run code or load a page in a browser; [] if nothing.

    Elements such as `<script>` and `<iframe>`, event handlers (`onerror=`), `srcdoc`, and
    `javascript:` or non-image `data:` addresses count.
    """
    parser = _ActiveContent()
    parser.feed(markup)
    parser.close()
    found = parser.found
    if not found:
        found = [match.group(0)[:30] for match in _RAW_ACTIVE.finditer(markup)]
    return list(dict.fromkeys(found))


def markdown_active_parts(source: str) -> list[str]:
    """`active_parts` of markdown as the formgrader and the feedback page render it."""
    if len(source) > _KEPT_TEXT_CHARS:
        return active_parts(markdown2html_mistune(source))
    return list(_kept_markdown_active_parts(source))


_KEPT_TEXT_CHARS = 20_000


@lru_cache(maxsize=512)  # every submission of a lesson holds the lesson's text cells
def _kept_markdown_active_parts(source: str) -> tuple[str, ...]:
    return tuple(active_parts(markdown2html_mistune(source)))


def as_text(source: str, found: list[str]) -> str:
    """Markdown that shows `source` as text (an indented code block) under a note."""
    block = "\n".join(f"    {line}" for line in source.splitlines())
    return f"{NOTE.format(html.escape(', '.join(found)))}\n\n{block}\n"


def _html_as_text(markup: str, found: list[str]) -> str:
    return (
        f"<p><b>ftlib autograder:</b> this output held active content "
        f"({html.escape(', '.join(found))}); it is shown as text.</p>"
        f"<pre>{html.escape(markup)}</pre>"
    )


def inert_outputs(outputs: list[NotebookNode]) -> list[str]:
    """Make `outputs` inert in place; returns the active content found (removed types aside)."""
    found: list[str] = []
    for output in outputs:
        data = output.get("data")
        if output.get("output_type") not in ("display_data", "execute_result") or not data:
            continue
        removed = sorted(key for key in data if key not in SAFE_OUTPUT_TYPES)
        if "application/javascript" in removed:
            found.append("JavaScript output")
        for key in removed:
            del data[key]
        if "text/html" in data:
            markup = data["text/html"]
            if parts := active_parts(markup):
                data["text/html"] = _html_as_text(markup, parts)
                found += parts
        if "text/markdown" in data:
            source = data["text/markdown"]
            if parts := markdown_active_parts(source):
                data["text/markdown"] = as_text(source, parts)
                found += parts
        if "image/svg+xml" in data and (parts := active_parts(data["image/svg+xml"])):
            del data["image/svg+xml"]
            removed.append("image/svg+xml")
            found += parts
        if not data:
            data["text/plain"] = f"(output removed by the autograder: {', '.join(removed)})"
    return list(dict.fromkeys(found))


class MakeInert(NbGraderPreprocessor):
    """Make the autograded notebook safe to view (see the module docstring); after the kernel."""

    def preprocess(
        self, nb: NotebookNode, resources: ResourcesDict
    ) -> tuple[NotebookNode, ResourcesDict]:
        changed: dict[str, list[str]] = {}
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                found = inert_outputs(cell.get("outputs", []))
            else:
                found = markdown_active_parts(cell.source)
                if found:
                    cell.source = as_text(cell.source, found)
            if found:
                changed[str(index)] = found
        nb.metadata.pop("widgets", None)
        nb.metadata[INERT_KEY] = changed
        return nb, resources
