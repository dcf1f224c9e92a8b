"""lessons/ is exactly what nbgrader generates from solutions/, and gives nothing away.

`python course.py release` regenerates lessons/ from solutions/; these tests catch a lesson edited
in solutions/ without being released again, a hand-edited release, solution code or hidden tests
that reach learners, and graded cells the gradebook cannot track.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from fnmatch import fnmatch
from pathlib import Path

import nbformat
import pytest
from nbgrader.apps import NbGraderAPI
from nbgrader.nbgraderformat import MetadataValidator

from ftlib_course.config import ROOT, course_config
from ftlib_course.notebooks import HIDDEN_TESTS, SOLUTION, lesson_names, secret_lines

LESSONS = lesson_names()
GRADE_ID = re.compile(r"[a-z][a-z0-9_]*")  # descriptive, not nbgrader's generated "cell-8f3a..."
# Written by nbgrader or Jupyter, not by the author: they may differ between two generations.
VOLATILE_CELL_KEYS = {"execution", "collapsed", "scrolled", "trusted"}


def _notebook(folder: str, lesson: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / folder / lesson / f"{lesson}.ipynb", as_version=4)


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory, monkeypatch_module) -> Path:
    """lessons/ as `generate_assignment` writes it now, in a temporary course."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "solutions", root / "solutions")
    api = NbGraderAPI(config=course_config(root))
    for lesson in LESSONS:
        result = api.generate_assignment(lesson)
        assert result["success"], f"generate_assignment {lesson}:\n{result.get('error')}"
    return root / "lessons"


@pytest.fixture(scope="module")
def monkeypatch_module():
    # nbgrader runs the `alembic` command to create a gradebook: put this environment's on PATH.
    with pytest.MonkeyPatch.context() as patch:
        bin_dir = str(Path(sys.executable).parent)
        patch.setenv("PATH", os.pathsep.join([bin_dir, os.environ.get("PATH", "")]))
        yield patch


def _comparable(notebook: nbformat.NotebookNode) -> list[tuple]:
    return [
        (
            cell.cell_type,
            cell.source,
            {key: value for key, value in cell.metadata.items() if key not in VOLATILE_CELL_KEYS},
        )
        for cell in notebook.cells
    ]


def test_every_lesson_is_released_and_nothing_else():
    released = sorted(path.name for path in (ROOT / "lessons").iterdir() if path.is_dir())
    assert released == LESSONS, "run `python course.py release` to regenerate lessons/"


@pytest.mark.parametrize("lesson", LESSONS)
def test_release_equals_a_fresh_generate_assignment(lesson: str, fresh_release: Path):
    committed_folder, fresh_folder = ROOT / "lessons" / lesson, fresh_release / lesson
    committed_files, fresh_files = _released_files(committed_folder), _released_files(fresh_folder)
    assert committed_files == fresh_files
    committed = _notebook("lessons", lesson)
    fresh = nbformat.read(fresh_folder / f"{lesson}.ipynb", as_version=4)
    old, new = _comparable(committed), _comparable(fresh)
    differing = [index for index, (a, b) in enumerate(zip(old, new, strict=False)) if a != b]
    assert len(old) == len(new) and not differing, (
        f"lessons/{lesson} is out of date or was edited by hand (cells {differing[:5]} differ; "
        f"{len(old)} cells, {len(new)} expected): run `python course.py release {lesson}`"
    )
    assert committed.metadata == fresh.metadata


def _released_files(folder: Path) -> list[Path]:
    """Files under `folder`, but for what nbgrader never copies (a learner's project outputs)."""
    ignore = course_config().CourseDirectory.ignore
    files = (path.relative_to(folder) for path in folder.rglob("*"))
    return sorted(
        path
        for path in files
        if not any(fnmatch(part, pattern) for part in path.parts for pattern in ignore)
    )


@pytest.mark.parametrize("lesson", LESSONS)
def test_release_contains_no_solution_code_or_hidden_tests(lesson: str):
    secrets = secret_lines(_notebook("solutions", lesson), SOLUTION, HIDDEN_TESTS)
    for path in (ROOT / "lessons" / lesson).rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        release = nbformat.reads(text, as_version=4) if path.suffix == ".ipynb" else None
        # Search the cells' text, not the JSON (where quotes and newlines are escaped).
        content = "\n".join(cell.source for cell in release.cells) if release else text
        leaked = sorted(line for line in secrets if line in content)
        assert not leaked, (
            f"{path.relative_to(ROOT)} contains solution or hidden lines: {leaked[:3]}"
        )
        for marker in (*SOLUTION, *HIDDEN_TESTS):
            assert marker not in content, f"{path.relative_to(ROOT)} contains {marker!r}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_metadata_is_valid_nbgrader_schema(lesson: str):
    MetadataValidator().validate_nb(_notebook("solutions", lesson))


@pytest.mark.parametrize("lesson", LESSONS)
def test_graded_cells_have_descriptive_ids_points_and_a_one_line_summary(lesson: str):
    for cell in _notebook("solutions", lesson).cells:
        meta = cell.metadata.get("nbgrader", {})
        if not (meta.get("grade") or meta.get("solution") or meta.get("locked")):
            continue
        grade_id = meta.get("grade_id", "")
        assert GRADE_ID.fullmatch(grade_id), f"grade_id {grade_id!r}: use lower_snake_case words"
        if meta.get("grade") and cell.cell_type == "code":
            assert meta.get("points", 0) > 0, f"test cell {grade_id} has no points"
            first = cell.source.lstrip().splitlines()[0]
            assert first.startswith(('"""', "'''", "#")), (
                f"test cell {grade_id} should open with a one-line summary of what it checks"
            )


@pytest.mark.parametrize("lesson", LESSONS)
def test_solutions_are_saved_without_outputs(lesson: str):
    for index, cell in enumerate(_notebook("solutions", lesson).cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"solutions/{lesson}: cell {index} has outputs; clear them before saving"
            )
