"""What a notebook saved by the lab says its page must show, cell by cell.

After Run All the lab saves the notebook with every output the kernel sent and, because the
learner's lab of the tests saves widget state, what each widget holds: the figures an `interact`
drew into its output widget, the tqdm bars, the sliders. The page is then held to that record:
each PNG output shown as a decoded image, each bar and control drawn. A cell whose code calls
`plt.show()` must have a figure in the record at all, so a lesson whose figures the kernel never
sent fails too. The lab also records when each cell ran, which gives the time of the run.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

if TYPE_CHECKING:
    from browser.notebook_page import Image

PNG = "image/png"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# The lab's settings (a learner finds both in Settings) that save with the notebook the state of
# its widgets and, in each cell's metadata, when its run began and ended.
SAVE_WIDGETS_AND_TIMING = {
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True},
    "@jupyterlab/notebook-extension:tracker": {"recordTiming": True},
}
# tqdm's last word on a bar it leaves: finished, or stopped short; a bar it closes is gone.
LEFT_ON_SCREEN = {"success", "danger"}
CONTROLS = {"IntSliderModel", "FloatSliderModel", "FloatLogSliderModel", "DropdownModel"}
SHOWS_A_FIGURE = re.compile(r"\bplt\.show\(")


@dataclass(frozen=True)
class SavedOutputs:
    """Per cell, what the saved notebook holds that its page must show."""

    notebook: nbformat.NotebookNode
    images: Counter[int]  # PNG outputs, those of the cell's output widgets included
    progress_bars: Counter[int]  # tqdm bars left on screen
    interact_controls: Counter[int]  # sliders and drop-downs of `interact`
    plotting_cells: list[int]  # cells whose code calls plt.show()
    run_seconds: float | None  # from the first cell's start to the last one's end, if recorded

    def figure_problems(self, images: Iterable[Image]) -> dict[int, str]:
        """cell -> what is wrong with its figures in the page: fewer or more images than the
        notebook holds, an image not decoded or of no size, or no figure where one is drawn."""
        images = list(images)
        shown = Counter(image.cell for image in images)
        problems = {
            cell: f"the page shows {shown[cell]} images, the notebook holds {self.images[cell]}"
            for cell in sorted(shown.keys() | self.images.keys())
            if shown[cell] != self.images[cell]
        }
        for cell in self.plotting_cells:
            if not self.images[cell]:
                problems.setdefault(cell, "it calls plt.show() but the notebook holds no figure")
        for image in images:
            if image.problem:
                problems.setdefault(image.cell, image.problem)
        return dict(sorted(problems.items()))


def saved_outputs(path: Path) -> SavedOutputs:
    """Read what the notebook saved at `path` holds for its page, cell by cell.

    Raises:
        LookupError: a cell shows a widget and the notebook holds no widget state (the lab did
            not save it, so what the widgets drew cannot be known).
    """
    notebook = nbformat.read(path, as_version=4)
    models = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    images, bars, controls = Counter(), Counter(), Counter()
    plotting = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        if SHOWS_A_FIGURE.search(cell.source):
            plotting.append(index)
        images[index] += _pngs(cell.outputs)
        for model in _widgets_shown(cell, models, f"cell {index} of {path}"):
            state = model["state"]
            children = [models[child] for child in _children(state)]
            if model["model_name"] == "OutputModel":
                images[index] += _pngs(state.get("outputs", []))
            bars[index] += model["model_name"] == "HBoxModel" and any(
                child["model_name"] == "FloatProgressModel"
                and child["state"].get("bar_style") in LEFT_ON_SCREEN
                for child in children
            )
            if "widget-interact" in state.get("_dom_classes", []):
                controls[index] += sum(child["model_name"] in CONTROLS for child in children)
    return SavedOutputs(notebook, +images, +bars, +controls, plotting, _run_seconds(notebook))


def _run_seconds(notebook: nbformat.NotebookNode) -> float | None:
    times = [
        datetime.fromisoformat(cell.metadata["execution"][moment])
        for cell in notebook.cells
        for moment in ["iopub.status.busy", "iopub.status.idle"]
        if moment in cell.metadata.get("execution", {})
    ]
    return (max(times) - min(times)).total_seconds() if times else None


def _pngs(outputs: list[dict]) -> int:
    return sum(PNG in output.get("data", {}) for output in outputs)


def _widgets_shown(cell: nbformat.NotebookNode, models: dict, where: str) -> list[dict]:
    """Every widget model that the outputs of `cell` show, and all their children, once each.

    A shown widget missing from a saved state was closed before the save (tqdm closes a bar it
    does not leave, as `fit` does with each epoch's), so the page shows nothing of it."""
    found = {}
    shown = [
        output["data"][WIDGET_VIEW]["model_id"]
        for output in cell.outputs
        if WIDGET_VIEW in output.get("data", {})
    ]
    waiting = [model_id for model_id in shown if model_id in models or not models]
    while waiting:
        model_id = waiting.pop()
        if model_id in found:
            continue
        if model_id not in models:
            raise LookupError(
                f"{where} shows widget {model_id}, which the notebook's saved widget state does "
                f"not hold: save it from a lab with the settings {SAVE_WIDGETS_AND_TIMING}"
            )
        found[model_id] = models[model_id]
        waiting.extend(_children(found[model_id]["state"]))
    return list(found.values())


def _children(state: dict) -> list[str]:
    """The model ids of a container's children (`IPY_MODEL_<id>` in the state)."""
    return [child.removeprefix("IPY_MODEL_") for child in state.get("children", [])]
