"""The course as a learner meets it: `course.py lab` in Chromium, driven by Playwright.

The tests start JupyterLab the way `course.py lab` does (`python -m ftlib_course.lab`, on
127.0.0.1 with a token and fresh per-user Jupyter folders) in a temporary copy of the lessons, a
learner's lab and an instructor's, and open them in one headless Chromium with a fresh profile.
As a learner keeps a tab on the lab, each lab's tab stays open: a test opens its notebook from
the File menu and closes it after. The learner's lab saves widget state and cell timing with a
notebook (two settings a learner may choose), so the saved file says what the page must show.
While one lesson is checked, the next one already runs in a second tab. They check that:

- the learner's lab shows the Validate button and none of nbgrader's instructor tools, the
  instructor's (`--instructor`) all of them, and neither asks about Jupyter news;
- every lesson, filled in with its solutions, runs from Run All to an idle kernel with no error
  output; every figure the saved notebook holds (those drawn into an `interact`'s output widget
  included, as the lab saves widget state) is shown in its cell as a decoded image, and every
  cell that calls `plt.show()` has one; every progress bar has a bar and all of its text in
  view; moving any slider or drop-down of an `interact` redraws its figure;
- a probe notebook shows that these checks fail on a bar whose text squeezes it out, on a PNG
  that does not decode, on one the page shows as something else, and on a cell that plots
  nothing;
- in the student version of lesson 1, a correct answer earns the pass line, a wrong one the hint,
  and the Validate button gives its verdict; on a finished lesson it says the lesson passes.

Screenshots (one per lesson; one per figure, progress bar and widget move; Validate's verdicts;
one of every failure) go to tests/artifacts/browser/. `pytest -s` prints each lesson's Run All
in its kernel and the test's phases (beginning it, waiting for it, the checks). The tests skip,
saying why, where Chromium or Playwright is missing. Select them with `-m browser`.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise

import nbformat
import PIL.Image
import pytest

from ftlib_course.checks import PASS_MARK
from ftlib_course.config import ROOT
from ftlib_course.notebooks import SOLUTION, lesson_names

pytest.importorskip(
    "playwright", reason="Playwright is missing: pip install -e '.[dev]' installs it"
)

from browser.lab_server import LabServer  # noqa: E402 (needs Playwright's skip first)
from browser.lesson_runs import LessonRuns  # noqa: E402
from browser.lessons import (  # noqa: E402
    answer_cells,
    copy_lesson,
    error_outputs,
    filled_in_copy,
)
from browser.notebook_page import (  # noqa: E402
    CHROMIUM,
    LabTab,
    NotebookPage,
    chromium,
    chromium_path,
)
from browser.saved_outputs import SAVE_WIDGETS_AND_TIMING, saved_outputs  # noqa: E402

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        chromium_path() is None,
        reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; or set CHROMIUM)",
    ),
]

LESSONS = lesson_names()
FIRST = LESSONS[0]
ARTEFACTS = ROOT / "tests" / "artifacts" / "browser"
NEWS_PROMPT = "Jupyter news"
WRONG_ANSWER = """def loss(w, x=X, y=Y):
    return (w * x - y) ** 2
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


@pytest.fixture(scope="module")
def learner_lab(tmp_path_factory) -> Iterator[LabServer]:
    """A learner's lab on a folder with lesson 1 as released; `filled_in_copy` adds lessons.
    It saves widget state and cell timing with a notebook: the file tells what widgets drew."""
    folder = tmp_path_factory.mktemp("course")
    copy_lesson(FIRST, folder / "student")
    home = tmp_path_factory.mktemp("learner-home")
    server = LabServer(folder, home, settings=SAVE_WIDGETS_AND_TIMING)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def instructor_lab(tmp_path_factory) -> Iterator[LabServer]:
    folder = tmp_path_factory.mktemp("instructor-course")
    copy_lesson(FIRST, folder)
    server = LabServer(folder, tmp_path_factory.mktemp("instructor-home"), instructor=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def learner_tab(browser, learner_lab) -> Iterator[LabTab]:
    """One tab on the learner's lab for all the tests (each opens its notebook and closes it)."""
    tab = LabTab(browser, learner_lab, "learner")
    yield tab
    tab.discard()


@pytest.fixture(scope="module")
def instructor_tab(browser, instructor_lab) -> Iterator[LabTab]:
    tab = LabTab(browser, instructor_lab, "instructor")
    yield tab
    tab.discard()


@pytest.fixture(scope="module")
def lesson_runs(request, browser, learner_lab) -> Iterator[LessonRuns]:
    """The lessons' Run Alls in the learner's lab, each begun while the one before it is checked.
    Under pytest-xdist, whose workers share the tests (and the cores) out, none is begun ahead."""
    lesson_test = test_filled_in_lesson_runs_and_shows_every_figure_and_progress_bar
    order = [
        item.callspec.params["lesson"]
        for item in request.session.items
        if getattr(item, "function", None) is lesson_test
    ]
    runs = LessonRuns(browser, learner_lab, [] if "PYTEST_XDIST_WORKER" in os.environ else order)
    yield runs
    runs.close()


@contextmanager
def opened(tab: LabTab, lab: LabServer, notebook: str, name: str) -> Iterator[NotebookPage]:
    """`notebook` open in `tab` for the block; see `watched`."""
    with watched(tab, lab, notebook, name):
        yield tab.open(notebook)


@contextmanager
def watched(tab: LabTab, lab: LabServer, notebook: str, name: str) -> Iterator[None]:
    """The tab's notebooks closed after the block and the kernel of `notebook` ended; if the
    block fails, a screenshot of the tab, which is then discarded (so that the next test loads
    the lab anew, whatever state this one left it in)."""
    _clear_artefacts(name)
    try:
        yield
        tab.close_all()
    except BaseException:
        print(f"screenshot of the failure: {tab.screenshot(ARTEFACTS / f'{name}-failure.png')}")
        tab.discard()
        raise
    finally:
        lab.shut_down_kernel(notebook)


def _instructor_tools(page: NotebookPage) -> dict[str, list[str]]:
    return {
        "menus": [m for m in page.texts(".lm-MenuBar-itemLabel") if m == "Nbgrader"],
        "sidebar": [
            title
            for title in page.page.locator(".jp-SideBar .lm-TabBar-tab").evaluate_all(
                "tabs => tabs.map(tab => tab.title)"
            )
            if "Create Assignment" in title
        ],
    }


def test_learner_lab_shows_validate_but_no_instructor_tool_or_news_prompt(learner_tab, learner_lab):
    with opened(learner_tab, learner_lab, f"student/{FIRST}/{FIRST}.ipynb", "learner-lab") as page:
        # Where it is not turned off, the news prompt is up by now (and the lesson tests look
        # for it again after their runs).
        page.page.wait_for_timeout(2000)
        assert page.texts(".validate-button") == ["Validate"]
        assert _instructor_tools(page) == {"menus": [], "sidebar": []}
        assert not _news_prompts(page)
    for path in ["formgrader", "formgrader/api/courses", "assignments", "courses"]:
        assert learner_lab.status(path) == 404, f"a learner's lab serves /{path}"
    notification = "@jupyterlab/apputils-extension:notification"
    assert learner_lab.setting_default(notification, "fetchNews") == "false"


def test_instructor_lab_shows_nbgrader_tools(instructor_tab, instructor_lab):
    with opened(instructor_tab, instructor_lab, f"{FIRST}/{FIRST}.ipynb", "instructor-lab") as page:
        tools = _instructor_tools(page)
        assert tools["menus"] == ["Nbgrader"]
        assert len(tools["sidebar"]) == 1
        assert page.texts(".validate-button") == ["Validate"]
    assert instructor_lab.status("formgrader") == 200


@pytest.mark.parametrize("lesson", LESSONS)
def test_filled_in_lesson_runs_and_shows_every_figure_and_progress_bar(
    lesson, learner_lab, lesson_runs, record_property
):
    times = {"start": time.perf_counter()}
    notebook = filled_in_copy(learner_lab.folder, lesson)
    tab, page = lesson_runs.running(lesson)
    times["begun"] = time.perf_counter()
    with watched(tab, learner_lab, notebook, lesson):
        page.wait_for_run()
        times["ran"] = time.perf_counter()
        page.save()
        assert error_outputs(learner_lab.folder / notebook) == []
        saved = saved_outputs(learner_lab.folder / notebook)
        record_property("browser_run_seconds", saved.run_seconds)
        counts = page.execution_counts()
        not_run = [
            index
            for index, cell in enumerate(saved.notebook.cells)
            if cell.cell_type == "code" and counts[index] is None
        ]
        assert not_run == [], f"Run All did not reach cells {not_run}"

        images = page.images()
        assert saved.figure_problems(images) == {}
        for number, image in enumerate(images, start=1):
            figure = ARTEFACTS / lesson / f"figure-{number:02d}-cell-{image.cell}.png"
            page.screenshot(figure, image.element)

        bars = page.progress_bars()
        assert Counter(bar.cell for bar in bars) == saved.progress_bars
        for number, bar in enumerate(bars, start=1):
            page.screenshot(ARTEFACTS / lesson / f"progress-{number:02d}.png", bar.element)
        assert [bar.problem for bar in bars if bar.problem] == []

        controls = page.interact_controls()
        assert Counter(cell for cell, _ in controls) == saved.interact_controls
        for number, (cell, control) in enumerate(controls, start=1):
            before = page.figure_sources(cell)
            label = page.change(control)
            assert page.wait_for_new_figure(cell, before), f"changing {label} did not redraw"
            name = re.sub(r"\W+", "_", label).strip("_") or "control"
            shot = ARTEFACTS / lesson / f"widget-{number:02d}-{name}.png"
            page.screenshot(shot, page.cell(cell).locator(".widget-interact"))

        assert not _news_prompts(page)
        if images:
            page.show(images[0].element)
        record_property("screenshot", str(page.screenshot(ARTEFACTS / f"{lesson}.png")))
    times["checked"] = time.perf_counter()
    phases = ", ".join(f"{b}: {tb - ta:.1f} s" for (_, ta), (b, tb) in pairwise(times.items()))
    print(f"{lesson} Run All: {saved.run_seconds:.1f} s in the kernel; {phases}")


def test_checks_see_a_squeezed_bar_and_figures_the_page_does_not_show(learner_tab, learner_lab):
    """The checks behind the lessons, on a probe: a bar that fits and one whose text does not;
    a figure that is drawn, a PNG that does not decode, one the page shows as HTML instead, and
    a cell that calls plt.show() with no figure to show; and ftlib's `fit` bar with validation
    on (a lesson may run with its bars off), which must fit."""
    png = base64.b64encode(_small_png()).decode()
    cells = [
        f"from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc={desc!r}, postfix={text!r}):\n"
        "    pass"
        for desc, text in [("fits", "loss=0.1"), ("squeezed", "val_top5=1.000, " * 60)]
    ] + [
        f"display({{'image/png': {png!r}}}, raw=True)",
        f"display({{'image/png': {base64.b64encode(b'not a PNG').decode()!r}}}, raw=True)",
        f"display({{'text/html': '<p>a table</p>', 'image/png': {png!r}}}, raw=True)",
        "import matplotlib.pyplot as plt\nplt.show()",
        # ftlib's own bar, with the longest text it shows (validation on).
        "import torch\nfrom torch.utils.data import DataLoader, TensorDataset\n"
        "from ftlib.models import SmallCNN\nfrom ftlib.training import fit\n"
        "data = DataLoader(TensorDataset(torch.randn(32, 1, 8, 8), torch.arange(32) % 5), "
        "batch_size=8)\nfit(SmallCNN(num_classes=5), data, val_loader=data, epochs=2, "
        "device='cpu')\nNone",
    ]
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in cells],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    (learner_lab.folder / "probe").mkdir(exist_ok=True)
    nbformat.write(notebook, learner_lab.folder / "probe" / "probe.ipynb")
    with opened(learner_tab, learner_lab, "probe/probe.ipynb", "probe") as page:
        page.run()
        page.save()
        saved = saved_outputs(learner_lab.folder / "probe" / "probe.ipynb")
        bars = page.progress_bars()
        for number, bar in enumerate(bars, start=1):
            page.screenshot(
                ARTEFACTS / "probe" / f"progress-{number:02d}-cell-{bar.cell}.png", bar.element
            )
        problems = saved.figure_problems(page.images())
    assert Counter(bar.cell for bar in bars) == saved.progress_bars
    assert Counter(bar.cell for bar in bars if bar.cell < 2) == Counter({0: 1, 1: 1})
    fits, squeezed, *fit_bars = bars
    assert fits.problem is None, fits.problem
    assert fit_bars and {bar.cell for bar in fit_bars} == {6}, fit_bars
    assert [bar.problem for bar in fit_bars if bar.problem] == []
    assert squeezed.problem is not None and squeezed.cell == 1, squeezed
    assert list(problems) == [3, 4, 5], problems
    assert "did not decode" in problems[3], problems
    assert "shows 0 images, the notebook holds 1" in problems[4], problems


def test_student_sees_pass_line_hint_and_validate_verdict(learner_tab, learner_lab):
    """Lesson 1's first exercise is `loss`, half the squared error; the classic slip is to
    forget the half."""
    notebook = f"student/{FIRST}/{FIRST}.ipynb"
    release = nbformat.read(learner_lab.folder / notebook, as_version=4)
    solution = nbformat.read(ROOT / "solutions" / FIRST / f"{FIRST}.ipynb", as_version=4)
    grade_id, answer = next(iter(answer_cells(release).items()))
    correct = _without_markers(solution.cells[answer_cells(solution)[grade_id]].source)
    assert correct.startswith(WRONG_ANSWER.splitlines()[0]), "lesson 1 no longer starts with loss"
    test = next(
        index
        for index, cell in enumerate(release.cells)
        if index > answer and cell.metadata.get("nbgrader", {}).get("grade")
    )
    with opened(learner_tab, learner_lab, notebook, "student") as page:
        page.replace_source(answer, correct)
        page.select(test)
        page.run("Run All Above Selected Cell")
        page.run_cell(test)
        page.save()
        assert error_outputs(learner_lab.folder / notebook) == []
        assert page.output_text(test).startswith(PASS_MARK), page.output_text(test)

        page.replace_source(answer, WRONG_ANSWER)
        page.run_cell(answer)
        page.run_cell(test)
        page.save()
        errors = error_outputs(learner_lab.folder / notebook)
        assert len(errors) == 1 and errors[0].startswith(f"cell {test}: AssertionError"), errors
        hint = errors[0].split(": ", 2)[2]
        assert "0.32" in hint and "0.64" in hint, f"the hint does not say what was expected: {hint}"
        assert hint in page.output_text(test), "the page does not show the hint"

        verdict = page.validate(ARTEFACTS / "validate-unfinished-lesson.png")
    assert "failed" in verdict.lower() and hint in verdict, verdict


def test_validate_button_passes_a_finished_lesson(learner_tab, learner_lab):
    notebook = filled_in_copy(learner_lab.folder, FIRST)
    with opened(learner_tab, learner_lab, notebook, "validate") as page:
        verdict = page.validate(ARTEFACTS / "validate-finished-lesson.png")
    assert "success" in verdict.lower() and "fail" not in verdict.lower(), verdict


def _clear_artefacts(name: str) -> None:
    shutil.rmtree(ARTEFACTS / name, ignore_errors=True)
    for stale in [f"{name}.png", f"{name}-failure.png"]:
        (ARTEFACTS / stale).unlink(missing_ok=True)


def _without_markers(source: str) -> str:
    """Solution code as a learner would type it: without nbgrader's BEGIN/END lines."""
    return "\n".join(line for line in source.splitlines() if not any(m in line for m in SOLUTION))


def _small_png() -> bytes:
    buffer = io.BytesIO()
    PIL.Image.new("RGB", (8, 8), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


def _news_prompts(page: NotebookPage) -> list[str]:
    return [text for text in page.texts(".Toastify__toast") if NEWS_PROMPT in text]
