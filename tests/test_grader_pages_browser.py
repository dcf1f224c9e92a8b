"""The formgrader's submission page and the feedback page of a hostile submission run no script.

A submission whose markdown and outputs carry scripts (an `<img onerror>`, a `<script>` in an
HTML output, a JavaScript output, an `<iframe srcdoc>`) is graded by the real nbgrader in the
sandbox. Its autograded copy is rendered exactly as the formgrader's submission handler renders
it (nbgrader's `formgrade` template, the exporter built from the course's settings, the
handler's resources, with the formgrader's own scripts loaded) and its feedback page as
`course.py feedback` writes it; both are opened in headless Chromium, where every payload would
log `PWNED:<vector>` to the console. None may. The same notebook with its outputs left as the
kernel made them, rendered without the course's settings, logs every vector: the check sees a
script that runs. Select with `-m browser`.
"""

from __future__ import annotations

import nbformat
import pytest
from grading_course import GradingCourse, answer_cell, graded_cell, lesson, needs_sandbox
from nbconvert.exporters import HTMLExporter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output
from nbgrader.server_extensions.formgrader import handlers
from nbgrader.server_extensions.formgrader.formgrader import FormgradeExtension
from traitlets.config import Config

from ftlib_course.config import course_config

pytest.importorskip(
    "playwright", reason="Playwright is missing: pip install -e '.[dev]' installs it"
)

from browser.notebook_page import CHROMIUM, chromium, chromium_path  # noqa: E402

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        chromium_path() is None,
        reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; or set CHROMIUM)",
    ),
]

STUDENT = "mallory"
VECTORS = ("img-onerror", "html-script", "javascript", "iframe-srcdoc")


def _log(vector: str) -> str:
    return f"console.log(`PWNED:{vector}`)"


MARKDOWN = f'My answer, as a picture: <img src="missing.png" onerror="{_log("img-onerror")}">'
HTML_SCRIPT = f"<b>result</b><script>{_log('html-script')}</script>"
IFRAME = f'<iframe srcdoc="<script>{_log("iframe-srcdoc")}</script>"></iframe>'
CODE = f"""from IPython.display import HTML, Javascript, display

display(HTML({HTML_SCRIPT!r}))
display(Javascript({_log("javascript")!r}))
display(HTML({IFRAME!r}))"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> GradingCourse:
    needs_sandbox()
    course = GradingCourse(
        tmp_path_factory.mktemp("pages"),
        lesson(
            answer_cell("### BEGIN SOLUTION\nanswer = 1\n### END SOLUTION"),
            graded_cell('assert answer == 1, "answer should be 1"'),
        ),
    )
    submission = course.submission("answer = 1")
    submission.cells += [new_code_cell(CODE), new_markdown_cell(MARKDOWN)]
    result = course.grade(STUDENT, submission)
    assert result.notebook.metadata["ftlib_review"]["held"], "the active content is held"
    return course


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


def _formgrader_page(course: GradingCourse, config: Config, notebook_file) -> str:
    """The HTML the formgrader's SubmissionHandler writes for `notebook_file`."""
    config.merge(FormgradeExtension().build_extra_config())
    exporter = HTMLExporter(config=config)
    static = handlers.static_path.rsplit("/formgrader/static", 1)[0]  # scripts load from here
    resources = {
        "assignment_id": "tiny",
        "notebook_id": "tiny",
        "submission_id": "1",
        "index": 0,
        "total": 1,
        "base_url": f"file://{static}",
        "student": STUDENT,
        "last_name": None,
        "first_name": None,
        "notebook_path": f"autograded/{STUDENT}/tiny/tiny.ipynb",
    }
    html, _ = exporter.from_filename(str(notebook_file), resources=resources)
    return html


def _ran(browser, page_file) -> tuple[list[str], str]:
    """The payloads that ran when `page_file` was opened, and the page's visible text."""
    logged: list[str] = []
    page = browser.new_page()
    page.on("console", lambda message: logged.append(message.text))
    page.on("dialog", lambda dialog: dialog.dismiss())
    try:
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        page.wait_for_timeout(1500)  # error events of images and frames' scripts
        text = page.inner_text("body")
    finally:
        page.close()
    return sorted({line.split(":", 1)[1] for line in logged if line.startswith("PWNED:")}), text


def _autograded_file(course: GradingCourse):
    return course.root / "autograded" / STUDENT / "tiny" / "tiny.ipynb"


def test_the_formgrader_page_runs_no_script_of_the_submission(graded, browser, tmp_path):
    page = tmp_path / "formgrade.html"
    page.write_text(_formgrader_page(graded, course_config(graded.root), _autograded_file(graded)))
    ran, text = _ran(browser, page)
    assert ran == []
    assert "PWNED:html-script" in text and "PWNED:img-onerror" in text, "shown, as text"


def test_the_feedback_page_runs_no_script_of_the_submission(graded, browser):
    result = graded.api.generate_feedback("tiny", STUDENT)
    assert result["success"], result.get("error")
    ran, text = _ran(browser, graded.root / "feedback" / STUDENT / "tiny" / "tiny.html")
    assert ran == []
    assert "PWNED:img-onerror" in text, "the markdown is shown, as text"


def test_the_same_notebook_unguarded_runs_every_script(graded, browser, tmp_path):
    """The control: outputs as the kernel makes them, and nbgrader's own settings."""
    notebook = nbformat.read(_autograded_file(graded), as_version=4)
    code = next(cell for cell in notebook.cells if cell.source == CODE)
    code.outputs = [
        new_output("display_data", data={"text/html": HTML_SCRIPT, "text/plain": "<HTML>"}),
        new_output("display_data", data={"application/javascript": _log("javascript")}),
        new_output("display_data", data={"text/html": IFRAME, "text/plain": "<HTML>"}),
    ]
    next(cell for cell in notebook.cells if cell.cell_type == "markdown").source = MARKDOWN
    unguarded = tmp_path / "unguarded.ipynb"
    nbformat.write(notebook, unguarded)
    page = tmp_path / "unguarded.html"
    page.write_text(_formgrader_page(graded, Config(), unguarded))
    ran, _ = _ran(browser, page)
    assert ran == sorted(VECTORS)
