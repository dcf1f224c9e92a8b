"""nbgrader settings of the ftlib course. The course root is the folder of this file.

The nbgrader command line reads this file from its working directory (`course.py` always runs
nbgrader from here); code that runs nbgrader in-process loads it with
`ftlib_course.config.course_config()`.
"""

from pathlib import Path

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
)

from ftlib_course.feedback import HideHiddenTests
from ftlib_course.inert import MakeInert
from ftlib_course.review import CheckSubmission, FlagForReview
from ftlib_course.sandbox import SandboxedExecute

ROOT = Path(__file__).resolve().parent

c = get_config()  # noqa: F821 (defined by traitlets when it loads this file)

c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.course_id = "ftlib-course"
c.CourseDirectory.source_directory = "solutions"  # lessons with solutions and hidden tests
c.CourseDirectory.release_directory = "lessons"  # the student versions, generated

# Never copied between solutions/, lessons/ and grading: what running a lesson writes beside it
# (lesson 7's project folders), besides nbgrader's own defaults.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "projects"]

# Where release_assignment puts lessons and collect finds submissions (ignored by git).
c.Exchange.root = str(ROOT / "exchange")

# Grade with the kernel of the environment that runs nbgrader, whatever kernel a notebook names,
# and give every cell enough time on a slow 2-core machine (the default is 30 s).
c.Execute.kernel_name = "python3"
c.Execute.timeout = 120

# Feedback must not reveal hidden tests, not even in tracebacks (jupyter/nbgrader#917, #1363).
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]

# The formgrader and the feedback pages show submissions in a browser: nbconvert leaves out
# JavaScript outputs and cleans HTML outputs (MakeInert below has already made them inert).
c.HTMLExporter.sanitize_html = True

# Submissions are checked against the release before nbgrader restores its cells, and flagged (or
# held, for tampering) in the gradebook right after their grades are saved: see ftlib_course.review.
# The other steps are nbgrader's own, in nbgrader's order.
c.Autograde.sanitize_preprocessors = [
    CheckSubmission,
    ClearOutput,
    DeduplicateIds,
    OverwriteKernelspec,
    OverwriteCells,
    CheckCellMetadata,
]
# Each notebook runs in its own sandboxed kernel (SandboxedExecute.sandbox = False for trusted
# work only), which records kernel deaths, cut outputs and tamper evidence in the notebook.
# What the formgrader and the feedback page show of it is then made inert (no script runs).
c.Autograde.autograde_preprocessors = [
    SandboxedExecute,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    MakeInert,
    SaveAutoGrades,
    FlagForReview,
    AssignLatePenalties,
    CheckCellMetadata,
]
