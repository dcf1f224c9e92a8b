"""nbgrader's Execute preprocessor, made safe for grading a class.

`GradingExecute` (the learner's Validate uses it): skips the trusted `grading-skip` cells, caps
each cell's output, shows a graded cell's stderr as stdout (so a warning costs nothing) and its
results as plain displays (nbgrader would read a result as the cell's score), stops a
notebook at its deadline (`notebook_timeout`, enforced from outside by killing the kernel), and
survives a kernel death: the cells before it keep their outputs (and so their credit), the dying
cell and those after it get an error output, so they score 0 and the notebook is still saved and
graded. `SandboxedExecute` (autograding) adds the sandboxed kernel, or with `sandbox = False` a
local one, and the runtime tamper evidence. Each records what happened in the notebook's
metadata, `nb.metadata["ftlib_grading"]`:

    {
        "mode": "sandbox" | "no-sandbox" | "unguarded",  # unguarded: no evidence gathered
        "skipped": [grade_id, ...],                       # cells skipped, as trusted
        "kernel_death": None | {"cell": index, "grade_id": str | None, "reason": str},
        "evidence": [{"kind": str, "detail": str, "cell": index | None}, ...],
        "truncated": [index, ...],                        # cells whose output was cut
        "limits": [str, ...],                             # the sandbox's limits, as enforced
    }

Evidence kinds are listed in `ftlib_course.sandbox.evidence`; an empty list means no runtime
evidence of tampering. Cell indices count every cell of the notebook, from 0.
"""

from __future__ import annotations

import ast
import contextlib
import os
import secrets
import signal
import threading
from pathlib import Path

from IPython.core.inputtransformer2 import TransformerManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbconvert.preprocessors.execute import NotebookClient
from nbformat.notebooknode import NotebookNode, from_dict
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer

from ftlib_course.sandbox import layout
from ftlib_course.sandbox.availability import sandbox_problem
from ftlib_course.sandbox.digests import CLOSING_MARK
from ftlib_course.sandbox.evidence import FAILING_KINDS, EvidenceChannel, findings
from ftlib_course.sandbox.forkserver import SandboxError, shared_fork_server
from ftlib_course.sandbox.limits import Limits, describe
from ftlib_course.sandbox.manager import (
    CappedKernelManager,
    GuardedKernelManager,
    SandboxKernelManager,
)
from ftlib_course.sandbox.outputs import OUTPUT_LIMIT, CellOutputBudget, as_graded_output
from ftlib_course.sandbox.preload import notebook_imports
from ftlib_course.sandbox.skipping import (
    should_skip,
    skippable_cells,
    skippable_cells_of,
    skipped_output,
)

METADATA_KEY = "ftlib_grading"
DIED_HERE = "the kernel died while running this cell"
DIED_BEFORE = "not run: the kernel died earlier"
LINKED = "a symbolic link in the submission, left out of the grading kernel's folder"
LINKED_NOTEBOOK = (
    "not run: the submitted notebook is a symbolic link, so what it points to is not the "
    "student's work; ask for the notebook itself"
)
TEST_CELL_RESULT = (
    "a value was displayed as the result of this test cell, whose code ends with no value to "
    "show: shown as a plain output, for nbgrader would have read it as the cell's score"
)


class GradingExecute(Execute):
    """Execute that skips trusted cells, caps output and keeps what ran before a kernel death.

    The trusted cells are the notebook's own `grading-skip` cells: right for a learner checking
    their own work, where nothing is at stake. `SandboxedExecute` trusts only the course's
    source notebook. A notebook that runs past `notebook_timeout` has its kernel stopped, as a
    kernel death. A graded cell's stderr shows as stdout: nbgrader would score any stderr 0,
    and an honest answer may warn; only errors decide.
    """

    output_limit = Integer(OUTPUT_LIMIT, help="bytes of output kept per cell").tag(config=True)
    notebook_timeout = Integer(
        300, help="seconds a whole notebook may run; then its kernel is stopped"
    ).tag(config=True)

    mode = "unguarded"

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("kernel_manager_class", CappedKernelManager)
        super().__init__(**kwargs)
        self._budget = CellOutputBudget(self.output_limit)
        self.results_in_graded_cells: set[int] = set()

    def preprocess(self, nb: NotebookNode, resources=None, km=None):
        NotebookClient.__init__(self, nb, km)  # (which applies the configuration again)
        # nbclient's own skipping trusts the notebook's tags: a configured
        # `Execute.skip_cells_with_tag` must never let a submission skip its test cells, so it
        # is set to a tag nobody can guess.
        self.skip_cells_with_tag = secrets.token_hex(16)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self.results_in_graded_cells = set()
        self.summary = {
            "mode": self.mode,
            "skipped": [],
            "kernel_death": None,
            "evidence": [],
            "truncated": [],
            "limits": [],
        }
        trusted = self.trusted_skips(nb, self.resources)
        self.prepare(nb, self.resources)
        self._past_deadline = False
        try:
            with self.setup_kernel():
                watchdog = threading.Timer(self.notebook_timeout, self._stop_at_deadline)
                watchdog.daemon = True
                watchdog.start()
                try:
                    self._run_notebook(trusted)
                finally:
                    watchdog.cancel()
            self.set_widgets_metadata()
        finally:
            self.after_shutdown()
        self.nb.metadata[METADATA_KEY] = self.summary
        return self.nb, self.resources

    # What subclasses change.

    def trusted_skips(self, nb: NotebookNode, resources: dict) -> dict[str, str]:
        """grade_id -> source of the cells that may be skipped."""
        return skippable_cells(nb)

    def prepare(self, nb: NotebookNode, resources: dict) -> None:
        """Called before the kernel starts."""

    def before_cell(self, index: int) -> None:
        """Called before each executed cell."""

    def before_shutdown(self) -> None:
        """Called after the last cell, while the kernel still runs (if it does)."""

    def after_shutdown(self) -> None:
        """Called once the kernel is gone, even after an error."""

    # The cell loop.

    def _run_notebook(self, trusted: dict[str, str]) -> None:
        assert self.kc is not None
        try:
            info = self.wait_for_reply(self.kc.kernel_info())
        except (DeadKernelError, CellTimeoutError):
            info = None  # the cells then report the death
        if info is not None:
            self.nb.metadata["language_info"] = info["content"]["language_info"]
        self._run_cells(trusted)
        self.before_shutdown()

    def _stop_at_deadline(self) -> None:
        """Kill the kernel (from the watchdog's thread): nbclient then sees it dead."""
        self._past_deadline = True
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is not None:
            with contextlib.suppress(OSError):
                process.kill()

    def _run_cells(self, trusted: dict[str, str]) -> None:
        for index, cell in enumerate(self.nb.cells):
            if cell.cell_type != "code":
                continue
            if self.summary["kernel_death"] is not None:
                _fail(cell, DIED_BEFORE)
            elif should_skip(cell, trusted):
                cell.outputs = [skipped_output()]
                self.summary["skipped"].append(cell.metadata["nbgrader"]["grade_id"])
            elif not self.kernel_alive():
                self._record_death(index, cell, DIED_BEFORE)
            else:
                self._run_cell(index, cell)

    def _run_cell(self, index: int, cell: NotebookNode) -> None:
        self._budget = CellOutputBudget(self.output_limit)
        self.before_cell(index)
        try:
            self.preprocess_cell(cell, self.resources, index)
        except DeadKernelError:
            self._record_death(index, cell, DIED_HERE)
        except CellTimeoutError as error:
            # Outputs that never came (a message refused as too large, a kernel too busy to
            # send them): the cell fails, grading goes on.
            _fail(cell, f"the cell's output did not arrive: {error}".splitlines()[0])
        if self._budget.exceeded:
            self.summary["truncated"].append(index)

    def kernel_alive(self) -> bool:
        return self.km is not None and run_sync(self.km.is_alive)()

    def _record_death(self, index: int, cell: NotebookNode, message: str) -> None:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        reason = exit_reason(process)
        if self._past_deadline:
            reason = f"it ran past the notebook's time limit of {self.notebook_timeout} s"
        self.summary["kernel_death"] = {
            "cell": index,
            "grade_id": cell.metadata.get("nbgrader", {}).get("grade_id"),
            "reason": reason,
        }
        _fail(cell, message)

    def output(self, outs, msg, display_id, cell_index):
        count = len(outs)
        out = super().output(outs, msg, display_id, cell_index)
        if out is not None and len(outs) > count:
            kept = self._budget.admit(outs[-1])
            if kept is None:
                outs.pop()
            elif self.nb.cells[cell_index].metadata.get("nbgrader", {}).get("grade"):
                if kept.get("output_type") == "execute_result":
                    self.results_in_graded_cells.add(cell_index)
                outs[-1] = as_graded_output(kept)
            else:
                outs[-1] = kept
        return out


class SandboxedExecute(GradingExecute):
    """The autograder's Execute: each notebook in its own sandboxed kernel, with tamper evidence.

    The kernel's scratch folder holds the notebook as the student submitted it (never the copy
    with hidden tests restored) and the other files of the graded folder. Cells are skipped only
    if the course's source notebook marks them (`CourseDirectory.source_directory`).
    """

    sandbox = Bool(
        True, help="grade in the sandbox; False only for trusted work (--no-sandbox)"
    ).tag(config=True)
    memory_mb = Integer(Limits.memory_bytes >> 20, help="memory per kernel, MiB").tag(config=True)
    max_tasks = Integer(Limits.tasks, help="processes and threads per kernel").tag(config=True)
    cpu_seconds = Integer(Limits.cpu_seconds, help="CPU time per kernel, s").tag(config=True)

    @property
    def limits(self) -> Limits:
        return Limits(
            memory_bytes=self.memory_mb << 20, tasks=self.max_tasks, cpu_seconds=self.cpu_seconds
        )

    @property
    def mode(self) -> str:  # type: ignore[override]
        return "sandbox" if self.sandbox else "no-sandbox"

    def trusted_skips(self, nb: NotebookNode, resources: dict) -> dict[str, str]:
        return skippable_cells_of(self._course_path("source", resources))

    def prepare(self, nb: NotebookNode, resources: dict) -> None:
        self._find_links(resources)
        self._channel = EvidenceChannel()
        self._nonce: str | None = None
        self._closed_early = False
        self._locked_cells = {
            index: cell.source
            for index, cell in enumerate(nb.cells)
            if cell.cell_type == "code"
            and cell.metadata.get("nbgrader", {}).get("locked")
            and cell.source.strip()
        }
        if self.sandbox:
            problem = sandbox_problem()
            if problem:
                raise SandboxError(f"cannot grade in a sandbox: {problem}")
            self._server = shared_fork_server(
                notebook_imports(self._course_path("source", resources))
            )
            self.summary["limits"] = describe(self.limits)

    def create_kernel_manager(self):
        common = {"kernel_name": self.kernel_name or "python3", "config": self.config}
        if self.sandbox:
            self.km = SandboxKernelManager(
                server=self._server,
                channel=self._channel,
                files=self._scratch_files(),
                env=layout.kernel_environment(),
                limits=self.limits,
                **common,
            )
        else:
            self.km = GuardedKernelManager(channel=self._channel, **common)
        return self.km

    def before_cell(self, index: int) -> None:
        self._channel.begin_cell(index)

    def _run_cells(self, trusted: dict[str, str]) -> None:
        if self._linked_notebook:
            for cell in self.nb.cells:
                if cell.cell_type == "code":
                    _fail(cell, LINKED_NOTEBOOK, "NotGraded")
            self._locked_cells.clear()
            return
        super()._run_cells(trusted)
        skipped = set(self.summary["skipped"])
        for index in list(self._locked_cells):
            grade_id = self.nb.cells[index].metadata.get("nbgrader", {}).get("grade_id")
            died = self.summary["kernel_death"]
            if grade_id in skipped or (died is not None and index >= died["cell"]):
                del self._locked_cells[index]  # never sent, or cut short: nothing to compare

    def before_shutdown(self) -> None:
        self._channel.begin_cell(None)
        if self.summary["kernel_death"] is not None or not self.kernel_alive():
            return
        nonce = secrets.token_hex(16)
        try:
            self.wait_for_reply(
                self.kc.execute(f"pass  # {CLOSING_MARK} {nonce}", silent=True, store_history=False)
            )
        except DeadKernelError:
            if not self._past_deadline:
                return  # it died after the last cell: the probe could not be answered
        except CellTimeoutError:
            pass  # a kernel that never answers: the probe got no answer, which is evidence
        self._channel.drain()
        self._nonce = nonce
        self._closed_early = self._channel.closed

    def after_shutdown(self) -> None:
        channel = getattr(self, "_channel", None)
        if channel is None:
            return
        channel.drain()
        locked = {
            index: (source, any(out.output_type == "error" for out in self.nb.cells[index].outputs))
            for index, source in self._locked_cells.items()
        }
        self.summary["evidence"] = findings(
            channel,
            locked,
            nonce=self._nonce,
            closed_early=self._closed_early,
        )
        self.summary["evidence"] += self._link_evidence
        self.summary["evidence"] += [
            {"kind": "test-cell-result", "detail": TEST_CELL_RESULT, "cell": index}
            for index in sorted(self.results_in_graded_cells)
            if not self.nb.cells[index].metadata["nbgrader"].get("solution")
            and not ends_with_a_value(self.nb.cells[index].source)
        ]
        for item in self.summary["evidence"]:
            if item["kind"] in FAILING_KINDS:
                _fail(self.nb.cells[item["cell"]], FAILING_KINDS[item["kind"]], "NotReported")
        channel.close()

    def _course_path(self, step: str, resources: dict) -> Path:
        coursedir = CourseDirectory(config=self.config)
        grading = resources["nbgrader"]
        folder = {"source": coursedir.source_directory, "submitted": coursedir.submitted_directory}
        student = "." if step == "source" else grading["student"]
        base = coursedir.format_path(folder[step], student, grading["assignment"])
        return Path(base) / f"{grading['notebook']}.ipynb"

    def _scratch_files(self) -> dict[str, Path]:
        """The graded folder's files, with the notebook as it was submitted; never what a link
        in the submission points to (nbgrader copied that into the graded folder: it may be
        the solutions or the gradebook)."""
        folder = Path(self.resources.get("metadata", {}).get("path") or ".")
        files = {
            str(path.relative_to(folder)): path
            for path in folder.rglob("*")
            if path.is_file()
            and path.suffix != ".ipynb"
            and not _under_any(path.relative_to(folder), self._links)
        }
        submitted = self._course_path("submitted", self.resources)
        if submitted.is_file() and not submitted.is_symlink():
            files[submitted.name] = submitted
        return files

    def _find_links(self, resources: dict) -> None:
        submitted = self._course_path("submitted", resources)
        self._links = links_in(submitted.parent)
        self._linked_notebook = _under_any(Path(submitted.name), self._links)
        self._link_evidence = [
            {"kind": "linked-file", "detail": f"{link}: {LINKED}", "cell": None}
            for link in self._links
        ]


def links_in(folder: Path) -> list[Path]:
    """The symbolic links in a submitted folder, relative to it (the folders below a link are
    not walked)."""
    found: list[Path] = []
    for place, folders, names in os.walk(folder):
        for name in [*folders, *names]:
            if os.path.islink(os.path.join(place, name)):
                found.append(Path(place, name).relative_to(folder))
    return sorted(found)


def _under_any(path: Path, links: list[Path]) -> bool:
    return any(path == link or link in path.parents for link in links)


def ends_with_a_value(source: str) -> bool:
    """Whether a test cell's code may show a result: it ends with an expression other than
    `check.passed(...)` (which returns None)."""
    try:
        body = ast.parse(TransformerManager().transform_cell(source)).body
    except SyntaxError:
        return False
    last = body[-1] if body else None
    if not isinstance(last, ast.Expr):
        return False
    call = last.value
    return not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "passed"
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == "check"
    )


def exit_reason(process) -> str:
    """Why a kernel process ended, in words."""
    code = getattr(process, "returncode", None)
    if code is None:
        return "the kernel stopped answering"
    if code >= 0:
        return f"it exited with status {code}"
    name = signal.Signals(-code).name
    if getattr(process, "out_of_memory", False):
        return f"it was killed ({name}) for using more memory than a kernel may"
    causes = {"SIGSEGV": "a crash in native code", "SIGXCPU": "out of CPU time"}
    return f"it ended by {name}" + (f" ({causes[name]})" if name in causes else "")


def _fail(cell: NotebookNode, message: str, name: str | None = None) -> None:
    cell.outputs.append(
        from_dict(
            {
                "output_type": "error",
                "ename": name or ("KernelDied" if "died" in message else "OutputLost"),
                "evalue": message,
                "traceback": [message],
            }
        )
    )
