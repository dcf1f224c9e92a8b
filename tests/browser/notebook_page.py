"""A learner's hands and eyes on a notebook in JupyterLab, through Playwright and Chromium.

Everything goes through the page as a learner would use it: menus, the toolbar, typing into
cells, dragging sliders; what is checked is what the page shows (rendered images, their sizes,
the text of outputs), read from the DOM. JupyterLab skips the layout of cells outside the
viewport (`content-visibility`), so each element is scrolled into view before it is measured.
A `LabTab` keeps one browser tab on a lab and opens notebook after notebook in it; the
`NotebookPage` it gives is the notebook in front.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from playwright.sync_api import BrowserContext, Locator, Page, expect, sync_playwright

from browser.lab_server import LabServer

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# This machine has no network: nothing of Chromium may try to reach one.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}  # a laptop screen, with the file browser open
RUN_SECONDS = 300  # the slowest lesson runs in under a minute on a 2-core machine
KERNEL_READY = re.compile(r"\(ipykernel\) \| Idle")
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in front
PROGRESS_ROW = ".widget-hbox:has(> .widget-hprogress)"  # how tqdm draws a bar in a notebook


def chromium_path() -> str | None:
    """The Chromium executable the tests drive, or None where it is not installed."""
    return shutil.which(CHROMIUM)


@contextmanager
def chromium(profile: Path) -> Iterator[BrowserContext]:
    """Headless Chromium with a fresh profile in `profile`, closed on exit."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium_path(),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=VIEWPORT,
        )
        context.set_default_timeout(60_000)
        try:
            yield context
        finally:
            context.close()


@dataclass(frozen=True)
class Image:
    """One rendered image output: its cell, decoded size and size on the page (CSS pixels)."""

    cell: int
    natural: tuple[int, int]
    shown: tuple[float, float]
    element: Locator = field(repr=False, compare=False)

    @property
    def problem(self) -> str | None:
        """Why a learner does not see this image, or None when it is drawn."""
        if min(self.natural) <= 0:
            return f"cell {self.cell}: the image did not decode (natural size {self.natural})"
        if min(self.shown) <= 0:
            return f"cell {self.cell}: the image has no size on the page ({self.shown})"
        return None


@dataclass(frozen=True)
class ProgressBar:
    """One tqdm bar as the page lays it out: the row, the bar and the text beside it."""

    cell: int
    text: str
    bar_width: float
    row_width: float
    content_width: float  # what the row's children need; more than row_width means cut off
    clipped_texts: list[str]  # labels whose text is wider than the room they got
    element: Locator = field(repr=False, compare=False)

    @property
    def problem(self) -> str | None:
        """What a learner cannot see of this bar, or None when all of it is in view."""
        if self.bar_width <= 0:
            return f"cell {self.cell}: the bar has no width beside {self.text!r}"
        if self.content_width > self.row_width or self.clipped_texts:
            return (
                f"cell {self.cell}: the row needs {self.content_width} px but has "
                f"{self.row_width}; cut off: {self.clipped_texts or self.text!r}"
            )
        return None


def _menu(page: Page, *path: str) -> None:
    for label in path:
        exactly = re.compile(f"^{re.escape(label)}$")
        page.locator(".lm-MenuBar-itemLabel, .lm-Menu-itemLabel").filter(has_text=exactly).click()


class LabTab:
    """A browser tab on one lab, kept open from notebook to notebook as a learner keeps theirs.

    Loading JupyterLab costs the browser seconds of work, so the tab loads the lab once (and
    again only after `discard`) and opens each notebook from File > Open from Path.
    """

    def __init__(self, context: BrowserContext, lab: LabServer, workspace: str) -> None:
        self._context = context
        self._lab = lab
        self._workspace = workspace
        self._page: Page | None = None

    def open(self, path: str) -> NotebookPage:
        """Open the notebook at `path` (a lab path) and wait until it is all on the page and its
        kernel is idle."""
        if self._page is None:
            self._page = self._context.new_page()
            self._page.goto(self._lab.workspace_url(self._workspace))
        self.to_front()
        _menu(self._page, "File", "Open from Path…")
        dialog = self._page.locator(".jp-Dialog")
        dialog.locator("input").fill(path)
        dialog.get_by_role("button", name="Open").click()
        cells = len(nbformat.read(self._lab.folder / path, as_version=4).cells)
        return NotebookPage(self._page, cells)

    def to_front(self) -> None:
        """Bring the tab in front of the browser's others: Chromium draws a tab behind another
        one slowly, and clicks, scrolls and screenshots in it take seconds each."""
        self._page.bring_to_front()

    def close_all(self) -> None:
        """Close every document open in the lab, saved first (so that none asks what to do with
        unsaved changes): the lab is left as it was before `open`."""
        if self._page.locator(".lm-TabBar-tab.jp-mod-dirty").count():
            _menu(self._page, "File", "Save All")
            self._page.locator(".lm-TabBar-tab.jp-mod-dirty").first.wait_for(state="detached")
        _menu(self._page, "File", "Close All Tabs")
        expect(self._page.locator(".jp-NotebookPanel")).to_have_count(0)

    def screenshot(self, path: Path) -> Path | None:
        """A screenshot of the whole tab, where it has a page."""
        if self._page is None:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        self._page.screenshot(path=str(path))
        return path

    def discard(self) -> None:
        """Close the browser tab, in whatever state it is (a dialog left open, say): the next
        `open` loads the lab afresh."""
        if self._page is not None:
            self._page.close()
            self._page = None


class NotebookPage:
    """The notebook open in a lab's tab, the one in front."""

    def __init__(self, page: Page, cells: int) -> None:
        """Wait until the notebook in front shows all its `cells` and its kernel is idle."""
        self.page = page
        self.notebook = self.page.locator(NOTEBOOK)
        self._first_prompt_before_run = ""
        # The lab adds a notebook's cells to the page a batch at a time after it opens; until
        # all are there, a run could look finished while cells not yet shown wait for theirs.
        self.page.wait_for_function(
            "([notebook, cells]) => document.querySelectorAll(`${notebook} .jp-Cell`).length"
            " === cells",
            arg=[NOTEBOOK, cells],
            timeout=RUN_SECONDS * 1000,
            polling=100,
        )
        # The toolbar's indicator reads idle before a kernel is connected; the status bar names
        # the kernel once it is.
        self.page.locator("#jp-main-statusbar").get_by_text(KERNEL_READY).wait_for(
            timeout=RUN_SECONDS * 1000
        )
        self.wait_until_idle()

    # -- what the learner does ---------------------------------------------------------------

    def menu(self, *path: str) -> None:
        """Click through the main menu, e.g. `menu("Run", "Run All Cells")`."""
        _menu(self.page, *path)

    def run(self, command: str = "Run All Cells") -> None:
        """Run > `command` (one that runs the first cell, such as "Run All Above Selected Cell"),
        and wait until no cell is left to run and the kernel is idle.

        JupyterLab queues every cell at once ([*]); a cell that raises unqueues the rest.
        """
        self.start_run(command)
        self.wait_for_run()

    def start_run(self, command: str = "Run All Cells") -> None:
        """Run > `command`, as `run` does, without waiting for it: `wait_for_run` waits."""
        self._first_prompt_before_run = self._prompt(self._first_code_cell())
        self.menu("Run", command)

    def wait_for_run(self) -> None:
        """Wait until the run begun by `start_run` has ended: no cell left, the kernel idle."""
        self._wait_for_new_count(self._first_code_cell(), self._first_prompt_before_run)
        self.wait_until_idle()

    def run_cell(self, index: int) -> None:
        """Select cell `index`, press Shift+Enter and wait until it has run."""
        cell = self.cell(index)
        before = self._prompt(cell)
        cell.locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Shift+Enter")
        self._wait_for_new_count(cell, before)
        self.wait_until_idle()

    def replace_source(self, index: int, text: str) -> None:
        """Replace the code of cell `index` with `text`, as if pasted (no auto-indent)."""
        self.cell(index).locator(".cm-content").click()
        self.page.keyboard.press("ControlOrMeta+A")
        self.page.keyboard.insert_text(text)
        self.page.keyboard.press("Escape")

    def validate(self, screenshot: Path | None = None) -> str:
        """Press the toolbar's Validate button and return the text of the verdict it shows
        (after saving a screenshot of it to `screenshot`, if given)."""
        self.notebook.locator(".validate-button").click()
        dialog = self.page.locator(".jp-Dialog", has_text="Validation Results")
        dialog.wait_for(timeout=RUN_SECONDS * 1000)
        if screenshot is not None:
            self.screenshot(screenshot, dialog.locator(".jp-Dialog-content"))
        verdict = dialog.locator(".jp-Dialog-body").text_content() or ""
        dialog.get_by_role("button", name="Ok").click()
        return verdict.strip()

    def select(self, index: int) -> None:
        """Click cell `index` beside its code, so that it is the selected cell."""
        self.cell(index).locator(".jp-InputPrompt").click()

    def change(self, control: Locator) -> str:
        """Move a slider a fifth of its length to the right (or back, where it is near its end),
        or pick the next option of a drop-down; returns the control's label."""
        control.scroll_into_view_if_needed()
        label = (control.locator(".widget-label").first.text_content() or "").strip()
        select = control.locator("select")
        if select.count():
            options = select.locator("option").all_text_contents()
            current = select.evaluate("select => select.selectedIndex")
            select.select_option(index=(current + 1) % len(options))
            return label
        handle = control.locator(".noUi-handle")
        track = control.locator(".noUi-target").bounding_box()
        box = handle.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        step = 0.2 * track["width"] * (1 if x < track["x"] + 0.7 * track["width"] else -1)
        self.page.mouse.move(x, y)
        self.page.mouse.down()
        self.page.mouse.move(x + step, y, steps=5)
        self.page.mouse.up()
        return label

    # -- what the learner sees ---------------------------------------------------------------

    def cell(self, index: int) -> Locator:
        return self.notebook.locator(".jp-Cell").nth(index)

    def save(self) -> None:
        """File > Save Notebook, and wait until the tab no longer shows unsaved changes."""
        self.menu("File", "Save Notebook")
        self.page.locator(".lm-TabBar-tab.lm-mod-current.jp-mod-dirty").wait_for(state="detached")

    def output_text(self, index: int) -> str:
        return self.cell(index).locator(".jp-OutputArea").text_content() or ""

    def execution_counts(self) -> list[int | None]:
        """The number in each cell's prompt, [N]; None for a cell not run (or not code)."""
        prompts = self._evaluate(
            "cells => cells.map(cell => cell.querySelector('.jp-InputPrompt')?.textContent ?? '')"
        )
        digits = ["".join(ch for ch in prompt if ch.isdigit()) for prompt in prompts]
        return [int(number) if number else None for number in digits]

    def images(self) -> list[Image]:
        """Every image in an output, widget outputs included, after it has been scrolled to."""
        found = []
        for index in self._cells_with(".jp-OutputArea-output img"):
            for image in self.cell(index).locator(".jp-OutputArea-output img").all():
                image.scroll_into_view_if_needed()
                facts = image.evaluate(
                    """img => img.decode().catch(() => null).then(() => {
                        const box = img.getBoundingClientRect();
                        return [img.naturalWidth, img.naturalHeight, box.width, box.height];
                    })"""
                )
                found.append(Image(index, (facts[0], facts[1]), (facts[2], facts[3]), image))
        return found

    def figure_sources(self, index: int) -> list[str]:
        """The data URLs of the images in cell `index`: they change when a figure is redrawn."""
        return (
            self.cell(index)
            .locator(".jp-OutputArea-output img")
            .evaluate_all("images => images.map(image => image.src)")
        )

    def wait_for_new_figure(self, index: int, before: list[str], seconds: float = 60) -> bool:
        """Wait until cell `index` shows images other than `before`; False if it never does."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            now = self.figure_sources(index)
            if now and now != before:
                self.wait_until_idle()
                return True
            self.page.wait_for_timeout(200)
        return False

    def progress_bars(self) -> list[ProgressBar]:
        """Every tqdm bar still shown (closed inner bars are hidden by tqdm), measured in view."""
        bars = []
        for index in self._cells_with(".widget-hprogress"):
            for row in self.cell(index).locator(PROGRESS_ROW).all():
                if row.evaluate("row => row.closest('.lm-mod-hidden') !== null"):
                    continue
                row.scroll_into_view_if_needed()
                facts = row.evaluate(
                    """row => {
                        const bar = row.querySelector(':scope > .widget-hprogress');
                        const labels = [...row.querySelectorAll(':scope > .widget-html')];
                        return {
                            text: row.textContent,
                            bar: bar.getBoundingClientRect().width,
                            row: row.clientWidth,
                            content: row.scrollWidth,
                            clipped: labels.filter(label => label.scrollWidth > label.clientWidth)
                                           .map(label => label.textContent),
                        };
                    }"""
                )
                bars.append(
                    ProgressBar(
                        index,
                        facts["text"],
                        facts["bar"],
                        facts["row"],
                        facts["content"],
                        facts["clipped"],
                        row,
                    )
                )
        return bars

    def interact_controls(self) -> list[tuple[int, Locator]]:
        """(cell, control) for every slider and drop-down of an `interact` in the notebook."""
        controls = []
        for index in self._cells_with(".widget-interact"):
            interact = self.cell(index).locator(".widget-interact")
            for control in interact.locator(".widget-slider, .widget-dropdown").all():
                controls.append((index, control))
        return controls

    def texts(self, selector: str) -> list[str]:
        """The text of every element of the whole page matching `selector`."""
        return [text.strip() for text in self.page.locator(selector).all_text_contents()]

    def show(self, element: Locator) -> None:
        """Scroll the notebook so that `element` is in view, and wait until it is drawn there
        (JupyterLab renders only the cells in view, a moment after the scroll)."""
        element.scroll_into_view_if_needed()
        expect(element).to_be_in_viewport()
        element.evaluate("e => e.decode ? e.decode().catch(() => null) : null")
        self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => setTimeout(r)))")

    def screenshot(self, path: Path, element: Locator | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        (element or self.page).screenshot(path=str(path))
        return path

    # -- waiting ---------------------------------------------------------------------------

    def wait_until_idle(self) -> None:
        """Wait until no cell is queued or running and the kernel says it is idle."""
        self.page.wait_for_function(
            """notebook => {
                const panel = document.querySelector(notebook);
                const kernel = panel?.querySelector('.jp-Notebook-ExecutionIndicator');
                const prompts = [...panel?.querySelectorAll('.jp-InputPrompt') ?? []];
                return kernel?.dataset.status === 'idle'
                    && !prompts.some(prompt => prompt.textContent.includes('*'));
            }""",
            arg=NOTEBOOK,
            timeout=RUN_SECONDS * 1000,
            polling=250,
        )

    def _wait_for_new_count(self, cell: Locator, before: str) -> None:
        # Waiting for idle alone could end at once, on the page still idle from before: first
        # wait until the cell's prompt shows a new execution count, [N] with N never seen there.
        prompt = cell.locator(".jp-InputPrompt").element_handle()
        self.page.wait_for_function(
            """([prompt, before]) => /\\d/.test(prompt.textContent)
                && prompt.textContent !== before""",
            arg=[prompt, before],
            timeout=RUN_SECONDS * 1000,
            polling=100,
        )

    def _first_code_cell(self) -> Locator:
        return self.notebook.locator(".jp-CodeCell").first

    @staticmethod
    def _prompt(cell: Locator) -> str:
        return cell.locator(".jp-InputPrompt").text_content() or ""

    def _cells_with(self, selector: str) -> list[int]:
        return self._evaluate(
            f"""cells => cells.flatMap((cell, index) =>
                cell.querySelector('{selector}') ? [index] : [])"""
        )

    def _evaluate(self, script: str):
        return self.notebook.locator(".jp-Cell").evaluate_all(script)
