"""Tests that a lesson's graded tests grade what each exercise teaches.

A lesson's answer-test file lists correct answers written differently from the solution and
plausible wrong answers (most of them `mutant`s of a correct one), then calls `answer_tests`,
which gives it a module-wide kernel and two tests: every correct answer earns the points (its
test cell prints the pass line), and every wrong answer loses them with a message that says what
went wrong. Where a wrong answer breaks a rule the exercise states, the part of the message it
must give is also required to be in the visible test (the release's test cell, which `validate`
runs for the learner), so the mistake is caught before grading, not only by the hidden tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import nbformat
import pytest
from lesson_kernel import LessonKernel

from ftlib_course.checks import PASS_MARK
from ftlib_course.config import ROOT
from ftlib_course.notebooks import HIDDEN_TESTS


@dataclass(frozen=True)
class Answer:
    """An answer to one exercise, and what its test must make of it."""

    exercise: str  # grade_id of the answer cell
    why: str  # what the answer does differently, in a few words
    source: str
    message: str = ""  # for a wrong answer: part of the message its test must give
    visible: bool = True  # for a wrong answer: the visible test already catches it


def mutant(
    base: Answer, why: str, message: str, *edits: tuple[str, str], visible: bool = True
) -> Answer:
    """A wrong answer: the correct answer `base` with each `old` text replaced by `new`.

    Written this way, a wrong answer shows exactly where it departs from a right one.
    """
    source = base.source
    for old, new in edits:
        assert source.count(old) == 1, f"{old!r} is not in {base.why!r} exactly once"
        source = source.replace(old, new)
    return Answer(base.exercise, why, source, message, visible)


@cache
def visible_tests(lesson: str) -> dict[str, str]:
    """answer grade_id -> the source of its test cell as the learner sees it (no hidden tests)."""
    notebook = nbformat.read(ROOT / "lessons" / lesson / f"{lesson}.ipynb", as_version=4)
    tests = {}
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            assert HIDDEN_TESTS[0] not in cell.source, f"{meta['grade_id']} shows hidden tests"
            tests[meta["grade_id"].removeprefix("test_")] = cell.source
    return tests


def answer_tests(
    lesson: str, correct: list[Answer], wrong: list[Answer]
) -> tuple[Callable[..., object], ...]:
    """The module fixture `kernel` and the two tests of a lesson's answer-test file.

    Use: ``kernel, test_correct_answers_earn_the_points, test_wrong_answers_lose_them =
    answer_tests(LESSON, CORRECT, WRONG)`` at module level, so that pytest collects them.
    """

    @pytest.fixture(scope="module")
    def kernel():
        with LessonKernel(lesson) as running:
            yield running

    def label(answer: Answer) -> str:
        return f"{answer.exercise}: {answer.why}"

    @pytest.mark.parametrize("answer", correct, ids=label)
    def test_correct_answers_earn_the_points(kernel, answer):
        graded = kernel.grade(answer.exercise, answer.source)
        assert graded.passed, f"a correct answer ({answer.why}) failed: {graded.message}"
        assert PASS_MARK in graded.message, f"no pass line: {graded.message!r}"

    @pytest.mark.parametrize("answer", wrong, ids=label)
    def test_wrong_answers_lose_them(kernel, answer):
        graded = kernel.grade(answer.exercise, answer.source)
        assert not graded.passed, f"a wrong answer ({answer.why}) passed"
        assert answer.message in graded.message, f"unhelpful message: {graded.message}"
        if answer.visible:
            assert answer.message in visible_tests(lesson)[answer.exercise], (
                "only the hidden tests catch this mistake; the visible test should show the rule"
            )

    return (
        kernel,
        test_correct_answers_earn_the_points,
        test_wrong_answers_lose_them,
    )
