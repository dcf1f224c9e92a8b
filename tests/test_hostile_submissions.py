"""Hostile submissions earn nothing, harm no one and change nothing, and every one is flagged.

A class of each lesson in `LESSONS` (lesson 1, whose answers are numbers, and lesson 3, whose
answers are lists, optimizers, tuples and tensors) is graded the way an instructor grades it
(`course.py autograde --jobs 2`, in the sandbox): honest classmates before and after the
attackers, then every attack of `hostile/attacks.py` built from that lesson's release as it
ships (those that need the lesson's names take them from its answer and test cells). Then, for
each lesson:

- no attack scores more than the honest notebook it is built from (the untouched release, 0,
  for most; the solved notebook for those that answer honestly and harm others);
- classmates graded after the attacks score what those graded before them do, nobody has extra
  credit or a manual score, and a regrade of a classmate gives the same;
- the course root is byte-identical except the grading outputs; nothing is planted in
  site-packages and the library's sources hold nothing an attack wrote;
- the instructor's next command (feedback) runs as before, without anything planted in the
  course's configuration;
- every attack is flagged, with a kind that says what it reached for;
- skipping the cells the lesson marks `grading-skip` changes no test cell's score: the honest
  notebooks and one attack of each kind (see `PROVED`), graded again with every cell run,
  score the same.

Each class is graded once in a test run, however many `pytest -n` workers run its tests
(`hostile/once.py`). Without a sandbox the attacks would really read the solutions and write
the gradebook and the library, so these tests skip, saying why, where no sandbox can be made.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from hostile.attacks import ATTACKS, HONEST, PWNED, SABOTAGE, Attack
from hostile.course_state import GRADING_OUTPUTS, planted_files, sabotaged_sources, tree_digest
from hostile.once import once_per_run
from nbgrader.api import Gradebook

from ftlib_course.autograde import grade_class
from ftlib_course.config import ROOT
from ftlib_course.review import flags_of
from ftlib_course.sandbox import sandbox_problem

LESSONS = ("01_warm_start", "03_fine_tune")
CLASSMATES = {  # graded before the attackers (aa_) and after them (zz_)
    "aa_solved": "solved",
    "aa_partial": "partial",
    "aa_release": "release",
    "zz_solved": "solved",
    "zz_partial": "partial",
}
NOTEBOOK_TIMEOUT = 90
"""Seconds a notebook may run here (lessons 1 and 3 take 8-21 s with every cell run; the
default, 300 s, would make the hanging attack cost minutes)."""


EACH_LESSON = pytest.mark.parametrize(
    "class_run",
    LESSONS,
    indirect=True,
    scope="module",  # one lesson's tests, then the other's
)
EACH_ATTACK = pytest.mark.parametrize("attack", ATTACKS, ids=lambda attack: attack.name)


pytestmark = pytest.mark.skipif(
    sandbox_problem() is not None,
    reason=f"no grading sandbox here, so attacks would really run: {sandbox_problem()}",
)


@dataclass
class Graded:
    score: float
    max_score: float
    per_test: dict[str, float]  # the automatic score of each test cell, held or not
    flags: list[str]  # flag kinds
    held: bool
    extra: list[object]  # extra credit and manual scores: must all be None


@dataclass
class ClassRun:
    lesson: str
    root: Path
    students: dict[str, Graded]
    table: str
    course_changes: list[str]
    planted: set[str]
    sabotaged: list[str]
    feedback: subprocess.CompletedProcess
    regrade: subprocess.CompletedProcess

    def autograded(self, student: str) -> nbformat.NotebookNode:
        return nbformat.read(_autograded(self.root, self.lesson, student), as_version=4)


def _attacker(name: str) -> str:
    return f"h_{name}"


def _command(root: Path, module: str, *args: str) -> subprocess.CompletedProcess:
    """Run one of the course's commands as `course.py` runs it, from another folder."""
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
    }
    return subprocess.run(
        [sys.executable, "-m", module, *args, "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=1500,
        cwd=root.parent,
        env=env,
    )


def _changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def _autograded(root: Path, lesson: str, student: str) -> Path:
    return root / "autograded" / student / lesson / f"{lesson}.ipynb"


def _read_grades(root: Path, lesson: str, student: str) -> Graded:
    autograded = nbformat.read(_autograded(root, lesson, student), as_version=4)
    review = autograded.metadata.get("ftlib_review", {})
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as book:
        submission = book.find_submission_notebook(lesson, lesson, student)
        per_test = {grade.name: grade.auto_score for grade in submission.grades}
        per_test |= {name: got for name, (got, _) in review.get("withheld", {}).items()}
        extra = [value for g in submission.grades for value in (g.extra_credit, g.manual_score)]
        return Graded(
            submission.score,
            submission.max_score,
            per_test,
            [flag.kind for flag in flags_of(autograded)],
            review.get("held", False),
            extra,
        )


@pytest.fixture(scope="module")
def class_run(request, tmp_path_factory) -> ClassRun:
    """The class of lesson `request.param`, graded once in the whole test run."""
    lesson = request.param
    return once_per_run(
        tmp_path_factory, f"hostile_{lesson}", lambda folder: _run_class(lesson, folder)
    )


def _run_class(lesson: str, folder: Path) -> ClassRun:
    """Grade a class of `lesson` in a course at `folder`, then run the instructor's next two
    commands."""
    root = folder / "course"
    shutil.copytree(ROOT / "solutions" / lesson, root / "solutions" / lesson)
    shutil.copy(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    with open(root / "nbgrader_config.py", "a") as config:  # the hanging attack waits this long
        config.write(f"\nc.SandboxedExecute.notebook_timeout = {NOTEBOOK_TIMEOUT}\n")
    release = nbformat.read(ROOT / "lessons" / lesson / f"{lesson}.ipynb", as_version=4)
    solution = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    notebooks = {student: HONEST[kind](release, solution) for student, kind in CLASSMATES.items()}
    notebooks |= {_attacker(a.name): a.build(release, solution) for a in ATTACKS}
    for student, notebook in notebooks.items():
        target = root / "submitted" / student / lesson / f"{lesson}.ipynb"
        target.parent.mkdir(parents=True)
        nbformat.write(notebook, target)
    course_before, site_packages_before = tree_digest(root), planted_files()

    graded = _command(root, "ftlib_course.autograde", lesson, "--jobs", "2")
    assert graded.returncode == 0, f"grading failed:\n{graded.stdout}\n{graded.stderr[-3000:]}"
    print(graded.stdout)
    students = {student: _read_grades(root, lesson, student) for student in notebooks}
    feedback = _command(root, "ftlib_course.feedback", lesson)
    regrade = _command(root, "ftlib_course.autograde", lesson, "--student", "aa_solved")
    return ClassRun(
        lesson,
        root,
        students,
        graded.stdout,
        _changed(course_before, tree_digest(root, GRADING_OUTPUTS)),
        planted_files() - site_packages_before,
        sabotaged_sources(SABOTAGE),
        feedback,
        regrade,
    )


def _baseline(run: ClassRun, kind: str) -> float:
    return run.students[f"aa_{kind}"].score


@EACH_LESSON
@EACH_ATTACK
def test_no_attack_earns_more_than_the_honest_notebook_it_is_built_from(class_run, attack):
    graded = class_run.students[_attacker(attack.name)]
    baseline = _baseline(class_run, attack.baseline)
    assert graded.score <= baseline, (
        f"{attack.name} scored {graded.score} of {graded.max_score}, more than the "
        f"{attack.baseline} notebook it is built from ({baseline}); flags: {graded.flags}"
    )


@EACH_LESSON
@EACH_ATTACK
def test_every_attack_is_flagged_with_what_it_reached_for(class_run, attack):
    assert attack.flags, f"{attack.name} names no flag it must raise"
    flags = set(class_run.students[_attacker(attack.name)].flags)
    assert flags & attack.flags, f"{attack.name}: expected one of {set(attack.flags)}, got {flags}"


@EACH_LESSON
def test_a_forged_grading_record_is_replaced_by_the_graders(class_run):
    graded = class_run.autograded(_attacker("forged_record"))
    assert graded.metadata["ftlib_grading"]["mode"] == "sandbox"
    assert class_run.students[_attacker("forged_record")].score == 0


@EACH_LESSON
def test_classmates_graded_after_the_attacks_score_as_those_graded_before(class_run):
    students = class_run.students
    assert students["aa_solved"].score == students["aa_solved"].max_score
    assert students["aa_release"].score == 0
    assert 0 < students["aa_partial"].score < students["aa_partial"].max_score
    for kind in ("solved", "partial"):
        before, after = students[f"aa_{kind}"], students[f"zz_{kind}"]
        assert after.per_test == before.per_test, f"a {kind} classmate lost points"
        assert not before.flags and not after.flags
    everyone = [value for graded in students.values() for value in graded.extra]
    assert set(everyone) == {None}, "someone has extra credit or a manual score"


@EACH_LESSON
def test_the_course_and_the_library_are_unchanged_except_the_grading_outputs(class_run):
    assert class_run.course_changes == []
    assert class_run.planted == set(), "new files in site-packages"
    assert class_run.sabotaged == [], "library sources changed by an attack"
    assert not (class_run.root / PWNED).exists()


@EACH_LESSON
def test_the_instructors_next_commands_run_as_before(class_run):
    assert class_run.feedback.returncode == 0, class_run.feedback.stderr[-3000:]
    lesson = class_run.lesson
    assert f"{lesson} aa_solved: written" in class_run.feedback.stdout
    assert f"{lesson} {_attacker('input_transformer')}: waiting for review" in (
        class_run.feedback.stdout
    )
    assert class_run.regrade.returncode == 0, class_run.regrade.stderr[-3000:]
    regraded = _read_grades(class_run.root, lesson, "aa_solved")
    assert regraded.score == class_run.students["aa_solved"].max_score
    assert not (class_run.root / PWNED).exists()


@EACH_LESSON
def test_a_kernel_death_keeps_the_credit_earned_before_it(class_run):
    graded = class_run.students[_attacker("os_exit")]
    assert 0 < graded.score < graded.max_score
    assert "kernel_death" in graded.flags and not graded.held


@EACH_LESSON
def test_a_hung_kernel_is_stopped_at_the_deadline_and_keeps_its_credit(class_run):
    graded = class_run.students[_attacker("hang_grader")]
    assert 0 < sum(graded.per_test.values()) < class_run.students["aa_solved"].max_score
    death = class_run.autograded(_attacker("hang_grader")).metadata["ftlib_grading"]["kernel_death"]
    assert f"time limit of {NOTEBOOK_TIMEOUT} s" in death["reason"]


@EACH_LESSON
def test_a_huge_print_is_cut_and_costs_nothing(class_run):
    graded = class_run.students[_attacker("huge_print")]
    assert graded.score == graded.max_score and not graded.held
    notebook = _autograded(class_run.root, class_run.lesson, _attacker("huge_print"))
    assert notebook.stat().st_size < 5_000_000


def _one_attack_per_threat(attacks: list[Attack]) -> list[str]:
    first = {}
    for attack in attacks:
        first.setdefault(attack.threat, attack.name)
    return [_attacker(name) for name in first.values()]


_HONEST_KINDS = [student for student in CLASSMATES if student.startswith("aa_")]
PROVED = {
    "01_warm_start": _HONEST_KINDS + _one_attack_per_threat(ATTACKS),
    "03_fine_tune": _HONEST_KINDS
    + _one_attack_per_threat([attack for attack in ATTACKS if attack.baseline == "release"]),
}
"""Graded again without skipping, per lesson: every honest kind and the first attack of each
threat (all of them would double the corpus's time, most of it in the experiments that skipping
saves). In lesson 3, whose experiments train dozens of models, only threats with an attack built
on the release: its stubbed answers stop the experiments at their first call, while the attacks
built on the solved notebook would each run them in full and the hanging one waits out its
deadline; those are proved on lesson 1."""


@pytest.fixture(scope="module")
def every_cell_run(class_run, tmp_path_factory) -> dict[str, dict[str, float]]:
    """`PROVED` graded again with no cell skipped, once in the whole test run: student -> score
    per test."""
    return once_per_run(
        tmp_path_factory,
        f"every_cell_{class_run.lesson}",
        lambda folder: _grade_every_cell(class_run, folder / "course"),
    )


def _grade_every_cell(class_run: ClassRun, root: Path) -> dict[str, dict[str, float]]:
    proved = PROVED[class_run.lesson]
    shutil.copytree(class_run.root / "solutions", root / "solutions")
    shutil.copy(class_run.root / "nbgrader_config.py", root / "nbgrader_config.py")
    for student in proved:
        shutil.copytree(class_run.root / "submitted" / student, root / "submitted" / student)
    outcomes = grade_class(class_run.lesson, root=root, jobs=2, skipping=False)
    assert not [outcome.student for outcome in outcomes if outcome.error]
    return {student: _read_grades(root, class_run.lesson, student).per_test for student in proved}


@EACH_LESSON
def test_skipping_cells_changes_no_score_of_any_test_cell(class_run, every_cell_run):
    skipped = class_run.autograded("aa_solved").metadata["ftlib_grading"]["skipped"]
    assert skipped, "the lesson marks cells to skip, so the first run must have skipped some"
    differ = {
        student: (class_run.students[student].per_test, every_cell_run[student])
        for student in PROVED[class_run.lesson]
        if class_run.students[student].per_test != every_cell_run[student]
    }
    assert not differ, f"scores per test with and without skipping: {differ}"
