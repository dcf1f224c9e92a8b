"""Grading kernels that a submission can neither escape nor silently rig.

Every notebook is executed by a kernel that a fork server (`zygote`) forks inside a bubblewrap
sandbox (`layout`): it sees a scratch copy of the notebook's folder, the Python environment and
the lessons' data read-only, and nothing else of the machine; it has no network, its own pid,
mount and IPC namespaces, limits on memory, processes, CPU time, file sizes and output
(`limits`, `outputs`), and no privileges. Inside, an audit hook and a snapshot (`guard`) record
tampering with the interpreter the tests run in; the grader checks the records (`evidence`).
`SandboxedExecute` (`execute`) puts all this where nbgrader executes notebooks, and writes what
happened into each autograded notebook's metadata (schema in `execute`).

    from ftlib_course.sandbox import SandboxedExecute, sandbox_problem
"""

from __future__ import annotations

from ftlib_course.sandbox.availability import sandbox_problem

__all__ = ["GradingExecute", "SandboxedExecute", "sandbox_problem"]


def __getattr__(name: str):
    # The preprocessors import nbgrader; a grading kernel, which imports this package, must not.
    if name in ("GradingExecute", "SandboxedExecute"):
        from ftlib_course.sandbox import execute

        return getattr(execute, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
