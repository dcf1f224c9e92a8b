"""The lessons as the browser tests open them: filled in with the solutions, and run headless for
a reference of what a run produces."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from ftlib_course.config import ROOT

PNG = "image/png"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def answer_cells(notebook: nbformat.NotebookNode) -> dict[str, int]:
    """grade_id -> index of each autograded answer cell (a solution cell not graded by hand)."""
    return {
        cell.metadata["nbgrader"]["grade_id"]: index
        for index, cell in enumerate(notebook.cells)
        if cell.metadata.get("nbgrader", {}).get("solution")
        and not cell.metadata["nbgrader"].get("grade")
    }


def filled_in(lesson: str) -> nbformat.NotebookNode:
    """The student version of `lesson` with every answer cell holding the solution's code."""
    release = nbformat.read(ROOT / "lessons" / lesson / f"{lesson}.ipynb", as_version=4)
    solution = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    solved, answers = answer_cells(solution), answer_cells(release)
    if answers.keys() != solved.keys():
        raise LookupError(
            f"the answer cells of lessons/{lesson} ({', '.join(answers)}) are not those of "
            f"solutions/{lesson} ({', '.join(solved)}): regenerate the student version with "
            f"`python3 course.py release {lesson}`"
        )
    for grade_id, index in answers.items():
        release.cells[index].source = solution.cells[solved[grade_id]].source
    return release


def copy_lesson(lesson: str, folder: Path, notebook: nbformat.NotebookNode | None = None) -> Path:
    """Copy lessons/<lesson>/ into `folder`, optionally with another notebook; returns its path."""
    target = folder / lesson
    shutil.copytree(ROOT / "lessons" / lesson, target)
    path = target / f"{lesson}.ipynb"
    if notebook is not None:
        nbformat.write(notebook, path)
    return path


# tqdm's last word on a bar it leaves: finished, or stopped short; a bar it closes keeps ''.
LEFT_ON_SCREEN = {"success", "danger"}
CONTROLS = {"IntSliderModel", "FloatSliderModel", "FloatLogSliderModel", "DropdownModel"}


@dataclass(frozen=True)
class HeadlessRun:
    """What one run of a notebook without a browser produced, as the page should show it."""

    notebook: nbformat.NotebookNode  # executed, not written back
    images_in_cells: int  # PNG outputs of code cells
    images_in_widgets: int  # PNG outputs inside output widgets (what `interact` draws)
    progress_bars: int  # tqdm bars left on screen (tqdm closes those made with leave=False)
    interact_controls: int  # sliders and drop-downs of `interact`

    @property
    def images(self) -> int:
        return self.images_in_cells + self.images_in_widgets


def run_headless(path: Path) -> HeadlessRun:
    """Run the notebook at `path` top to bottom without a browser, as the grader does."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        store_widget_state=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    models = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})

    def children(model: dict) -> list[dict]:
        ids = (child.removeprefix("IPY_MODEL_") for child in model["state"].get("children", []))
        return [models[id_] for id_ in ids if id_ in models]

    return HeadlessRun(
        notebook,
        images_in_cells=sum(
            PNG in output.get("data", {})
            for cell in notebook.cells
            if cell.cell_type == "code"
            for output in cell.outputs
        ),
        images_in_widgets=sum(
            PNG in output.get("data", {})
            for model in models.values()
            if model["model_name"] == "OutputModel"
            for output in model["state"].get("outputs", [])
        ),
        progress_bars=sum(
            any(
                child["model_name"] == "FloatProgressModel"
                and child["state"].get("bar_style") in LEFT_ON_SCREEN
                for child in children(model)
            )
            for model in models.values()
            if model["model_name"] == "HBoxModel"
        ),
        interact_controls=sum(
            child["model_name"] in CONTROLS
            for model in models.values()
            if "widget-interact" in model["state"].get("_dom_classes", [])
            for child in children(model)
        ),
    )


def error_outputs(path: Path) -> list[str]:
    """'cell N: Name: message' for each error output in the notebook saved at `path`."""
    notebook = nbformat.read(path, as_version=4)
    return [
        f"cell {index}: {output.ename}: {output.evalue}"
        for index, cell in enumerate(notebook.cells)
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]
