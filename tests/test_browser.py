"""The course as a learner meets it: `course.py lab` in Chromium, driven by Playwright.

Each test starts JupyterLab the way `course.py lab` does (`python -m ftlib_course.lab`, on
127.0.0.1 with a token and fresh per-user Jupyter folders) in a temporary copy of the lessons, and
opens it in headless Chromium with a fresh profile. They check that:

- the learner's lab shows the Validate button and none of nbgrader's instructor tools, the
  instructor's (`--instructor`) all of them, and neither asks about Jupyter news;
- every lesson, filled in with its solutions, runs from Run All to an idle kernel with no error
  output; every figure a headless run of it produces is shown as a decoded image; every progress
  bar has a bar and all of its text in view (a probe notebook shows the check fails on a bar
  whose text squeezes it out); moving any slider or drop-down of an `interact` redraws its figure;
- in the student version of lesson 1, a correct answer earns the pass line, a wrong one the hint,
  and the Validate button gives its verdict; on a finished lesson it says the lesson passes.

Screenshots (one per lesson; one per figure, progress bar and widget move; Validate's verdicts;
one of every failure) go to tests/artifacts/browser/. `pytest -s` prints each lesson's times
(opening, Run All, waiting for the headless reference, checks). The tests skip, saying why, where
Chromium or Playwright is missing. Select them with `-m browser`.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import pairwise

import nbformat
import pytest

from ftlib_course.checks import PASS_MARK
from ftlib_course.config import ROOT
from ftlib_course.notebooks import SOLUTION, lesson_names

pytest.importorskip(
    "playwright", reason="Playwright is missing: pip install -e '.[dev]' installs it"
)

from browser.lab_server import LabServer  # noqa: E402 (needs Playwright's skip first)
from browser.lessons import (  # noqa: E402
    answer_cells,
    copy_lesson,
    error_outputs,
    filled_in,
    run_headless,
)
from browser.notebook_page import CHROMIUM, NotebookPage, chromium, chromium_path  # noqa: E402

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
def background() -> Iterator[ThreadPoolExecutor]:
    """A thread for the headless reference runs, which take the other core meanwhile."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


@pytest.fixture(scope="module")
def learner_lab(tmp_path_factory) -> Iterator[LabServer]:
    """A learner's lab on a folder with lesson 1 as released; `filled_in_copy` adds lessons."""
    folder = tmp_path_factory.mktemp("course")
    copy_lesson(FIRST, folder / "student")
    server = LabServer(folder, tmp_path_factory.mktemp("learner-home"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def instructor_lab(tmp_path_factory) -> Iterator[LabServer]:
    folder = tmp_path_factory.mktemp("instructor-course")
    copy_lesson(FIRST, folder)
    server = LabServer(folder, tmp_path_factory.mktemp("instructor-home"), instructor=True)
    yield server
    server.stop()


def filled_in_copy(lab: LabServer, lesson: str) -> str:
    """Put `lesson` filled in with its solutions into the lab's folder; returns its lab path."""
    path = lab.folder / "filled_in" / lesson / f"{lesson}.ipynb"
    if not path.exists():
        copy_lesson(lesson, path.parents[1], filled_in(lesson))
    return path.relative_to(lab.folder).as_posix()


@contextmanager
def opened(browser, lab: LabServer, notebook: str, name: str) -> Iterator[NotebookPage]:
    """`notebook` open in a new tab, alone in a workspace of its own (so that the lab restores no
    tab of an earlier test); a screenshot of the page if the block fails."""
    _clear_artefacts(name)
    page = NotebookPage(browser, lab.url(f"lab/workspaces/{name}/tree/{notebook}?reset"))
    try:
        yield page
    except BaseException:
        path = page.screenshot(ARTEFACTS / f"{name}-failure.png")
        print(f"screenshot of the failure: {path}")
        raise
    finally:
        page.close()
        lab.shut_down_kernels()


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


def test_learner_lab_shows_validate_but_no_instructor_tool_or_news_prompt(browser, learner_lab):
    with opened(browser, learner_lab, f"student/{FIRST}/{FIRST}.ipynb", "learner-lab") as page:
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


def test_instructor_lab_shows_nbgrader_tools(browser, instructor_lab):
    with opened(browser, instructor_lab, f"{FIRST}/{FIRST}.ipynb", "instructor-lab") as page:
        tools = _instructor_tools(page)
        assert tools["menus"] == ["Nbgrader"]
        assert len(tools["sidebar"]) == 1
        assert page.texts(".validate-button") == ["Validate"]
    assert instructor_lab.status("formgrader") == 200


@pytest.mark.parametrize("lesson", LESSONS)
def test_filled_in_lesson_runs_and_shows_every_figure_and_progress_bar(
    lesson, browser, learner_lab, background, record_property
):
    notebook = filled_in_copy(learner_lab, lesson)
    headless_run = background.submit(run_headless, learner_lab.folder / notebook)
    times = {"start": time.perf_counter()}
    with opened(browser, learner_lab, notebook, lesson) as page:
        times["opened"] = time.perf_counter()
        page.run()
        times["ran"] = time.perf_counter()
        record_property("browser_run_seconds", round(times["ran"] - times["opened"], 1))
        page.save()
        assert error_outputs(learner_lab.folder / notebook) == []
        reference = headless_run.result()
        times["reference"] = time.perf_counter()
        not_run = [
            index
            for index, cell in enumerate(reference.notebook.cells)
            if cell.cell_type == "code" and page.execution_count(index) is None
        ]
        assert not_run == [], f"Run All did not reach cells {not_run}"

        images = page.images()
        assert len(images) == reference.images, (
            f"the page shows {len(images)} images; a headless run draws {reference.images} "
            f"({reference.images_in_cells} in cells, {reference.images_in_widgets} in widgets)"
        )
        for number, image in enumerate(images, start=1):
            assert min(image.natural) > 0 and min(image.shown) > 0, f"image {number}: {image}"
            figure = ARTEFACTS / lesson / f"figure-{number:02d}-cell-{image.cell}.png"
            page.screenshot(figure, image.element)

        bars = page.progress_bars()
        assert len(bars) == reference.progress_bars
        for number, bar in enumerate(bars, start=1):
            page.screenshot(ARTEFACTS / lesson / f"progress-{number:02d}.png", bar.element)
        assert [bar.problem for bar in bars if bar.problem] == []

        controls = page.interact_controls()
        assert len(controls) == reference.interact_controls
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
    print(
        lesson, ", ".join(f"{b}: {tb - ta:.1f} s" for (_, ta), (b, tb) in pairwise(times.items()))
    )


def test_progress_check_sees_a_bar_squeezed_out_by_its_text(browser, learner_lab):
    """The check behind the lessons' bars, on one bar that fits and one whose text does not."""
    cells = [
        f"from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc={desc!r}, postfix={text!r}):\n"
        "    pass"
        for desc, text in [("fits", "loss=0.1"), ("squeezed", "val_top5=1.000, " * 60)]
    ]
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in cells],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    (learner_lab.folder / "probe").mkdir(exist_ok=True)
    nbformat.write(notebook, learner_lab.folder / "probe" / "progress.ipynb")
    with opened(browser, learner_lab, "probe/progress.ipynb", "progress-probe") as page:
        page.run()
        fits, squeezed = page.progress_bars()
    assert fits.problem is None, fits.problem
    assert squeezed.problem is not None and squeezed.cell == 1, squeezed


def test_student_sees_pass_line_hint_and_validate_verdict(browser, learner_lab):
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
    with opened(browser, learner_lab, notebook, "student") as page:
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


def test_validate_button_passes_a_finished_lesson(browser, learner_lab):
    with opened(browser, learner_lab, filled_in_copy(learner_lab, FIRST), "validate") as page:
        verdict = page.validate(ARTEFACTS / "validate-finished-lesson.png")
    assert "success" in verdict.lower() and "fail" not in verdict.lower(), verdict


def _clear_artefacts(name: str) -> None:
    shutil.rmtree(ARTEFACTS / name, ignore_errors=True)
    for stale in [f"{name}.png", f"{name}-failure.png"]:
        (ARTEFACTS / stale).unlink(missing_ok=True)


def _without_markers(source: str) -> str:
    """Solution code as a learner would type it: without nbgrader's BEGIN/END lines."""
    return "\n".join(line for line in source.splitlines() if not any(m in line for m in SOLUTION))


def _news_prompts(page: NotebookPage) -> list[str]:
    return [text for text in page.texts(".Toastify__toast") if NEWS_PROMPT in text]
