"""Flags and holds: submissions that need an instructor's eyes before their score counts.

Two nbgrader preprocessors, run by the trusted grading process (never in the kernel), so plain
`nbgrader autograde` and the formgrader's autograde button apply them too:

- `CheckSubmission` runs first, on the notebook as the student handed it in. It notes locked
  cells that were deleted, edited or moved, cells that claim ids the release does not have or
  claim one id twice, cells whose grading role (graded, points, answer, locked) was changed,
  code added before the lesson's first locked cell, and grading records the submission
  carries. It gives every cell the role the release gives it, puts deleted locked cells back
  where they belong (test cells and setup cells alike; nbgrader's own `add_missing_cells`
  restores test cells only), strips the ids nbgrader would otherwise fail on, and drops the
  records, which only the grader writes.
  Cells over `CELL_LIMIT` characters, and those past `NOTEBOOK_LIMIT` in all, are cut with a
  note (`oversized`): every page that shows the submission would carry them.
- `FlagForReview` runs after `SaveAutoGrades`. It adds the static scan of `ftlib_course.tamper`,
  the grading kernel's runtime record (`nb.metadata["ftlib_grading"]`: evidence, kernel
  death, truncated output), the active content `ftlib_course.inert.MakeInert` removed
  (`active-content`) and outputs that quote a line of a hidden test outside its own cell
  (`hidden-test-quoted`) to those notes. A review that fails for any reason (`review-failed`)
  holds the work: a score must never stand because its review could not run. A flagged
  submission gets, in the gradebook, `needs_manual_grade` on every test cell, the formgrader's
  flag, and the reasons as the automatic comment of every answer cell (the formgrader shows
  them beside the answers; their text is escaped, for the feedback page renders it).
  Tampering (a static finding other than a path, or runtime evidence) also *holds* the score:
  every test cell's automatic score is set to 0 and the withheld scores are written in the
  comment. The instructor accepts the work by entering manual scores and removing the flag;
  a regrade without findings lifts the hold by itself.

Both write their notes to `nb.metadata["ftlib_review"]` of the autograded notebook:
`{"submission": {...}, "flags": [{"kind", "detail", "cell", "holds"}...], "held": bool,
"withheld": {grade_id: [score, max_score]}}`.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode, from_dict
from nbgrader.api import Gradebook
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor

from ftlib_course.hidden_tests import hidden_test_lines, quoted_lines
from ftlib_course.inert import INERT_KEY
from ftlib_course.tamper import LockedCell, scan_notebook

REVIEW_KEY = "ftlib_review"
GRADING_KEY = "ftlib_grading"  # written by the grading kernel's executor
COMMENT_HEADER = "ftlib autograder:"
_DETAIL_LIMIT = 300
CELL_LIMIT = 1_000_000
"""Characters of source (attachments included) a submitted cell may hold; the rest is cut."""
NOTEBOOK_LIMIT = 5_000_000
"""Characters of source a whole submission may hold; cells past it are cut."""
CELL_COUNT_LIMIT = 1_000
"""Cells of its own (no nbgrader id) a submission may add; the others are dropped."""


@dataclass(frozen=True)
class Flag:
    """One reason to review a submission; `holds` means its score is withheld until then."""

    kind: str
    detail: str
    holds: bool
    cell: int | None = None

    def describe(self) -> str:
        where = "" if self.cell is None else f" (cell {self.cell})"
        return f"{self.kind}: {self.detail}{where}"


def flags_of(notebook: NotebookNode) -> list[Flag]:
    """The flags `FlagForReview` wrote into an autograded notebook ([] when clean)."""
    return [Flag(**flag) for flag in notebook.metadata.get(REVIEW_KEY, {}).get("flags", [])]


def grading_mode(notebook: NotebookNode) -> str:
    """The mode the grading kernel recorded, "sandbox" or "no-sandbox" (the latter if none)."""
    return notebook.metadata.get(GRADING_KEY, {}).get("mode", "no-sandbox")


@dataclass(frozen=True)
class _ReleaseCell:
    grade_id: str
    cell_type: str
    source: str
    locked: bool
    graded: bool
    solution: bool
    points: float
    checksum: str

    def released_sources(self) -> set[str]:
        """The texts a student may hand in unchanged: with hidden tests and without them."""
        cell = from_dict({"cell_type": self.cell_type, "source": self.source, "metadata": {}})
        ClearHiddenTests()._remove_hidden_test_region(cell)
        return {self.source, cell.source}

    def restored(self) -> NotebookNode:
        """The cell as the release has it, for a submission that lost it."""
        meta = {
            "schema_version": 3,
            "grade": self.graded,
            "solution": self.solution,
            "locked": True,
            "grade_id": self.grade_id,
            "checksum": self.checksum,
        }
        if self.graded:
            meta["points"] = self.points
        cell = {"cell_type": self.cell_type, "metadata": {"nbgrader": meta}, "source": self.source}
        if self.cell_type == "code":
            cell.update(outputs=[], execution_count=None)
        cell["metadata"].update(deletable=False, editable=False)
        return from_dict(cell)


def _release_cells(resources: ResourcesDict) -> list[_ReleaseCell]:
    """The cells of the release with ids, in order, as the gradebook holds them."""
    info = resources["nbgrader"]
    with Gradebook(info["db_url"]) as gradebook:
        notebook = gradebook.find_notebook(info["notebook"], info["assignment"])
        points = {cell.name: cell.max_score for cell in notebook.grade_cells}
        solutions = {cell.name for cell in notebook.solution_cells}
        return [
            _ReleaseCell(
                cell.name,
                cell.cell_type,
                cell.source,
                cell.locked,
                cell.name in points,
                cell.name in solutions,
                points.get(cell.name, 0.0),
                cell.checksum,
            )
            for cell in notebook.source_cells
        ]


def _grade_id(cell: NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


class CheckSubmission(NbGraderPreprocessor):
    """Note and repair what a submission did to the release's cells (runs before nbgrader's)."""

    def preprocess(
        self, nb: NotebookNode, resources: ResourcesDict
    ) -> tuple[NotebookNode, ResourcesDict]:
        release = _release_cells(resources)
        known = {cell.grade_id: cell for cell in release}
        forged = [key for key in (GRADING_KEY, REVIEW_KEY) if nb.metadata.pop(key, None)]
        notes: dict[str, list[str]] = {
            "forged": forged,
            "unknown": self._drop_ids(nb, lambda grade_id, _: grade_id not in known),
            "duplicated": self._drop_duplicates(nb),
        }
        present = {_grade_id(cell): cell for cell in nb.cells if _grade_id(cell)}
        notes["retagged"] = self._restore_roles(present, known)
        notes["edited"] = [
            gid
            for gid, cell in present.items()
            if known[gid].locked
            and (
                cell.cell_type != known[gid].cell_type
                or cell.source not in known[gid].released_sources()
            )
        ]
        order = [_grade_id(cell) for cell in nb.cells if _grade_id(cell)]
        expected = [cell.grade_id for cell in release if cell.grade_id in present]
        notes["moved"] = [got for got, want in zip(order, expected, strict=True) if got != want]
        notes["code_before_setup"] = self._code_before_setup(nb, known)
        notes["restored"] = self._restore_missing(nb, release, present)
        notes["oversized"] = _cut_oversized(nb)
        nb.metadata[REVIEW_KEY] = {"submission": notes}
        return nb, resources

    @staticmethod
    def _drop_ids(nb: NotebookNode, unwanted) -> list[str]:
        """Make plain cells of those whose id is `unwanted(grade_id, ids seen after it)`."""
        dropped, seen = [], set()
        for cell in reversed(nb.cells):
            grade_id = _grade_id(cell)
            if grade_id is not None and unwanted(grade_id, seen):
                del cell.metadata["nbgrader"]
                dropped.append(grade_id)
            seen.add(grade_id)
        return dropped[::-1]

    def _drop_duplicates(self, nb: NotebookNode) -> list[str]:
        # Like nbgrader, keep the last copy of a duplicated id; but remove the others' metadata
        # instead of leaving it empty, which fails validation (jupyter/nbgrader#1083).
        return self._drop_ids(nb, lambda grade_id, seen: grade_id in seen)

    @staticmethod
    def _restore_roles(
        present: dict[str, NotebookNode], known: dict[str, _ReleaseCell]
    ) -> list[str]:
        """Give every cell with a known id the role the release gives it (graded or not, its
        points, answer or not, locked or not): the metadata is the student's to write, and a
        role the gradebook does not know makes nbgrader fail on the whole submission."""
        keys = ("grade", "solution", "locked", "points")
        changed = []
        for grade_id, cell in present.items():
            meta, release = cell.metadata["nbgrader"], known[grade_id]
            before = {key: meta.get(key) for key in keys}
            meta.update(grade=release.graded, solution=release.solution, locked=release.locked)
            meta.pop("points", None)
            if release.graded:
                meta["points"] = release.points
            if {key: meta.get(key) for key in keys} != before:
                changed.append(grade_id)
        return changed

    @staticmethod
    def _code_before_setup(nb: NotebookNode, known: dict[str, _ReleaseCell]) -> list[str]:
        # Code that runs before the first locked code cell runs before the lesson's setup
        # (the checks helpers among it) has captured what the tests compare with.
        added = []
        for index, cell in enumerate(nb.cells):
            grade_id = _grade_id(cell)
            if grade_id in known and known[grade_id].locked and cell.cell_type == "code":
                return added
            if grade_id is None and cell.cell_type == "code" and cell.source.strip():
                added.append(f"cell {index}")
        return []

    @staticmethod
    def _restore_missing(
        nb: NotebookNode, release: list[_ReleaseCell], present: dict[str, NotebookNode]
    ) -> list[str]:
        restored = []
        for position, cell in enumerate(release):
            if cell.grade_id in present or not cell.locked:
                continue
            before = [c.grade_id for c in release[:position] if c.grade_id in present]
            ids = [_grade_id(c) for c in nb.cells]
            index = ids.index(before[-1]) + 1 if before else 0
            nb.cells.insert(index, cell.restored())
            present[cell.grade_id] = nb.cells[index]
            restored.append(cell.grade_id)
        return restored


def _cut_oversized(nb: NotebookNode) -> list[str]:
    """Cut cells past `CELL_LIMIT`, and the notebook past `NOTEBOOK_LIMIT`, with a note in each
    cut cell, and drop added cells past `CELL_COUNT_LIMIT`: a huge cell, or a million small
    ones, would make every page that shows the submission huge."""
    cut, budget = [], NOTEBOOK_LIMIT
    extra = [i for i, cell in enumerate(nb.cells) if _grade_id(cell) is None][CELL_COUNT_LIMIT:]
    if extra:
        dropped = set(extra)
        nb.cells = [cell for i, cell in enumerate(nb.cells) if i not in dropped]
        cut.append(f"{len(extra):,} cells past the first {CELL_COUNT_LIMIT:,} of the student's own")
    for index, cell in enumerate(nb.cells):
        size = len(cell.source) + sum(
            len(str(part)) for part in cell.get("attachments", {}).values()
        )
        limit = max(0, min(CELL_LIMIT, budget))
        if size > limit:
            cell.pop("attachments", None)
            comment = "# " if cell.cell_type == "code" else ""
            cell.source = (
                f"{cell.source[:limit]}\n{comment}({COMMENT_HEADER} {size:,} characters cut to "
                f"{limit:,}: a cell may hold {CELL_LIMIT:,}, a notebook {NOTEBOOK_LIMIT:,})"
            )
            cut.append(f"cell {index} ({size:,} characters)")
        budget -= min(size, limit)
    return cut


_SUBMISSION_FLAGS = {
    "restored": "deleted locked cell(s) put back: {}",
    "edited": "edited locked cell(s), graded as released: {}",
    "moved": "locked or answer cell(s) moved: {}",
    "retagged": "cell(s) whose grading role was changed, given the release's again: {}",
    "unknown": "cell(s) claiming ids the release does not have: {}",
    "duplicated": "copies of cells with the same id (graded as plain cells): {}",
    "code_before_setup": "code added before the lesson's first locked cell: {}",
    "forged": "grading records in the submission, replaced by the grader's: {}",
    "oversized": "more than a submission may hold, cut in the graded copy: {}",
}


def _flags(nb: NotebookNode, release: list[_ReleaseCell]) -> list[Flag]:
    notes = nb.metadata.get(REVIEW_KEY, {}).get("submission", {})
    flags = [
        Flag(kind, template.format(", ".join(notes[kind])), holds=False)
        for kind, template in _SUBMISSION_FLAGS.items()
        if notes.get(kind)
    ]
    locked = [LockedCell(c.grade_id, c.source, c.graded) for c in release if c.locked]
    flags += [
        Flag(f"static:{finding.kind}", finding.detail, finding.holds, finding.cell)
        for finding in scan_notebook(nb, locked)
    ]
    flags += [
        Flag("active-content", f"made inert for viewing: {', '.join(found)}", True, int(cell))
        for cell, found in nb.metadata.get(INERT_KEY, {}).items()
    ]
    flags += _hidden_tests_quoted(nb, release)
    runtime = nb.metadata.get(GRADING_KEY, {})
    flags += [
        Flag(
            f"runtime:{item.get('kind')}",
            str(item.get("detail"))[:_DETAIL_LIMIT],
            True,
            item.get("cell"),
        )
        for item in runtime.get("evidence", [])
    ]
    if runtime.get("kernel_death"):
        death = str(runtime["kernel_death"])[:_DETAIL_LIMIT]
        flags.append(Flag("kernel_death", f"the kernel died: {death}", holds=False))
    if runtime.get("truncated"):
        cells = ", ".join(str(cell) for cell in runtime["truncated"])
        flags.append(Flag("truncated_output", f"output cut in cell(s) {cells}", holds=False))
    return flags


def _hidden_tests_quoted(nb: NotebookNode, release: list[_ReleaseCell]) -> list[Flag]:
    lines = hidden_test_lines(cell.source for cell in release if cell.graded)
    return [
        Flag(
            "hidden-test-quoted",
            f"the outputs quote {len(quoted)} line(s) of hidden tests",
            True,
            index,
        )
        for index, cell in enumerate(nb.cells)
        if (quoted := quoted_lines(cell, lines))
    ]


def _plain(text: str) -> str:
    """`text` as it reads, whatever the markdown renderer of the feedback page makes of it."""
    return html.escape(" ".join(text.split()), quote=False).replace("](", "] (")


def _comment(flags: list[Flag], withheld: dict[str, list[float]]) -> str:
    reasons = "\n".join(f"- {_plain(flag.describe())}" for flag in flags)
    if not withheld:
        return f"{COMMENT_HEADER} flagged for review (score kept).\n{reasons}"
    score = sum(got for got, _ in withheld.values())
    total = sum(best for _, best in withheld.values())
    per_test = ", ".join(f"{name} {got:g}/{best:g}" for name, (got, best) in withheld.items())
    return (
        f"{COMMENT_HEADER} held for review: the automatic score {score:g} of {total:g} is "
        f"withheld (0 until an instructor reviews).\n{reasons}\nWithheld per test: {per_test}.\n"
        "To accept the work, enter these scores in the formgrader and remove the flag."
    )


class FlagForReview(NbGraderPreprocessor):
    """Flag, and for tampering hold, a graded submission in the gradebook (after SaveAutoGrades)."""

    def preprocess(
        self, nb: NotebookNode, resources: ResourcesDict
    ) -> tuple[NotebookNode, ResourcesDict]:
        info = resources["nbgrader"]
        try:
            flags = _flags(nb, _release_cells(resources))
        except Exception as error:  # a review that fails, whatever the reason, holds the work
            flags = [
                Flag(
                    "review-failed",
                    f"the review could not read this submission ({type(error).__name__}: "
                    f"{str(error)[:_DETAIL_LIMIT]}): held until an instructor reads it",
                    holds=True,
                )
            ]
        held = any(flag.holds for flag in flags)
        withheld: dict[str, list[float]] = {}
        with Gradebook(info["db_url"]) as gradebook:
            submission = gradebook.find_submission_notebook(
                info["notebook"], info["assignment"], info["student"]
            )
            for grade in submission.grades:
                if held:
                    withheld[grade.name] = [grade.auto_score or 0.0, grade.max_score]
                    grade.auto_score = 0.0
                grade.needs_manual_grade = grade.needs_manual_grade or bool(flags)
            if flags:
                for comment in submission.comments:
                    comment.auto_comment = _comment(flags, withheld)
            submission.flagged = bool(flags)
            gradebook.db.commit()
        review = nb.metadata.setdefault(REVIEW_KEY, {})
        review.update(flags=[asdict(flag) for flag in flags], held=held, withheld=withheld)
        return nb, resources
