"""Run All of the filled-in lessons in a learner's lab, the next lesson run while one is checked.

A lesson's Run All keeps about one of two cores busy (its kernel runs one thread) and its checks
little more, so while one lesson is waited for and checked, the next one of the order runs in a
second tab on the same lab: at most two kernels at once, each lesson in a tab of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from playwright.sync_api import BrowserContext

from browser.lab_server import LabServer
from browser.lessons import filled_in_copy
from browser.notebook_page import LabTab, NotebookPage


class LessonRuns:
    """The lessons' runs in `lab`; `order` is the lessons in the order they will be asked for
    (empty: none is begun ahead of its turn)."""

    def __init__(self, context: BrowserContext, lab: LabServer, order: Sequence[str]) -> None:
        self._lab = lab
        self._order = list(order)
        self._tabs = [LabTab(context, lab, f"lessons-{number}") for number in range(2)]
        self._running: dict[str, tuple[LabTab, NotebookPage]] = {}

    def running(self, lesson: str) -> tuple[LabTab, NotebookPage]:
        """The tab and page of `lesson` (its notebook at `filled_in_copy`), with its Run All
        begun now if it was not before, and the next lesson of the order begun in the other tab;
        `wait_for_run` waits for it, `LabTab.close_all` frees the tab for a later lesson."""
        self._start(lesson)
        if lesson in self._order[:-1]:
            self._start(self._order[self._order.index(lesson) + 1])
        tab, page = self._running.pop(lesson)
        tab.to_front()
        return tab, page

    def close(self) -> None:
        """Close both tabs, and end the kernels of runs begun but never asked for."""
        for lesson in self._running:
            self._lab.shut_down_kernel(filled_in_copy(self._lab.folder, lesson))
        self._running.clear()
        for tab in self._tabs:
            tab.discard()

    def _start(self, lesson: str) -> None:
        if lesson in self._running:
            return
        busy = [tab for tab, _ in self._running.values()]
        tab = next(tab for tab in self._tabs if tab not in busy)
        try:
            page = tab.open(filled_in_copy(self._lab.folder, lesson))
            page.start_run()
        except BaseException:
            tab.discard()
            raise
        self._running[lesson] = tab, page
