"""The grader's end of the evidence channel, and what its records mean.

`EvidenceChannel` is a socket pair: the kernel gets one end (after the grader has written the
HMAC key into it), the grader reads the other in a thread, checks every record's MAC and sequence
number, and notes during which cell it arrived. `findings` turns the records into evidence items
`{"kind", "detail", "cell"}`, `cell` being the index of the notebook cell it concerns (None: the
kernel as a whole). The kinds:

- test-cell-altered: a locked cell (test or read-only) whose compiled code differs from the
  text the grader sent, or that was never compiled (input or AST transformers, a replaced
  `run_cell`).
- input-transformer, ast-transformer: IPython's input or AST transformer lists changed.
- event-hook: a callback added to or removed from IPython's events (`pre_run_cell`, ...).
- shell-replaced: `run_cell`, `run_code`, `showtraceback`, the display hook, the compiler, the
  custom exception handler, `sys.displayhook`/`excepthook` or the kernel's execute handlers
  replaced, the shell's `ast_node_interactivity` changed, or a class the shell, the kernel or
  their parts are made of (traitlets' included) changed.
- test-cell-result: a test cell whose code ends with no value showed a result (the display
  hook called by an answer, or every expression shown): nbgrader reads a test cell's result as
  its score, so the grader shows it as a plain output and the cell is scored by its errors.
- linked-file: a symbolic link in the submitted folder (to the solutions or the gradebook,
  say): left out of the kernel's folder; a linked notebook is not run at all, and scores 0.
- submission-code: a Python file (source, bytecode, extension, `.pth`, archive) in the scratch
  folder or /tmp was written or read, by any code: a module the submission brought or wrote,
  whose code the static scan never saw. dynamic-code: cell code itself compiled or ran code
  that is not a cell's (`exec`, `eval`, `compile`, a pickle that calls them).
- builtin-rebound: a name of `builtins` rebound, or a built-in name a test reads (`abs`,
  `isinstance`, ...) rebound in the notebook's namespace.
- library-rebound: a function of `torch`, `torch.nn.functional`, `numpy`, `scipy.stats`, `math`,
  `statistics` or `ftlib_course.checks` replaced; an attribute of `torch.Tensor`, `nn.Module`,
  `nn.Parameter` or the test helper's class changed; a reference captured by `check` changed;
  `check` rebound in the notebook; one of those modules replaced in `sys.modules`.
- attribute-write: cell code replaced the code or defaults of a function of torch, numpy, scipy,
  math, statistics, builtins, IPython, ipykernel or ftlib_course, or attributes were added to or
  removed from one of the classes above.
- trace-hook: `sys.settrace`/`sys.setprofile` from cell code, or a trace function left set.
- output-suppressed: the kernel reports that a locked cell raised, but no error output came
  (the message or the reply was dropped or rewritten); the cell gets an error output, so it
  scores 0. outcome-missing: the kernel never reported how a locked cell it ran ended (the
  guard's callback was removed or emptied); the cell fails too.
- ctypes: cell code used ctypes. gc-inspection: cell code called `gc.get_objects`,
  `get_referrers` or `get_referents`. frame-inspection: cell code read other threads' frames
  (`sys._current_frames`), or obtained or read (`sys._getframe`, `f_code`, `tb_frame`,
  `gi_frame`, ...) the frame of a caller of the innermost cell frame (the test cell running the
  answer) or the top level of an earlier cell (through a kept traceback).
  audit-hook: another audit hook was added.
- outside-file: cell code opened or listed a path (`str`, `bytes`, a directory entry or a
  pathlib path) outside the scratch folder, /tmp and the read-only roots.
- integrity-check-missing: the checks never started, or the closing check, sent with a nonce
  only the grader knows, got no answer.
- channel-closed: the kernel closed the evidence channel while it kept running.
- forged-record, records-missing, unreadable-record, too-many-records, guard-error: a record
  with a wrong MAC, a gap in the sequence, garbage, a flood of records, an error in the checks.

A kernel death is not evidence (it is reported as `kernel_death`): the channel closes with it.
"""

from __future__ import annotations

import ast
import contextlib
import hmac
import secrets
import select
import socket
import threading
from dataclasses import dataclass

from IPython.core.inputtransformer2 import TransformerManager

from ftlib_course.sandbox.digests import cell_file_name, tree_digest
from ftlib_course.sandbox.kernel import KEY_BYTES

_MAX_LINE = 4096
_MAX_BYTES = 16 << 20


@dataclass(frozen=True)
class Record:
    """One record from the kernel, with the cell during which it arrived and the cell before."""

    seq: int
    type: str
    kind: str
    detail: str
    cell: int | None
    previous_cell: int | None


class EvidenceChannel:
    """The grader's end of one kernel's evidence channel."""

    def __init__(self) -> None:
        self._ours, self._theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._key = secrets.token_bytes(KEY_BYTES)
        self._ours.sendall(self._key)
        self._ours.setblocking(False)
        self.records: list[Record] = []
        self.problems: list[dict] = []
        self.closed = False
        self.cell: int | None = None
        self._previous: int | None = None
        self._buffer = b""
        self._read_bytes = 0
        self._seq = 1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="evidence", daemon=True)
        self._thread.start()

    @property
    def kernel_fd(self) -> int:
        """The kernel's end, to hand to the kernel process."""
        return self._theirs.fileno()

    def kernel_started(self) -> None:
        """Close our copy of the kernel's end, so that the channel closes when the kernel does."""
        self._theirs.close()

    def begin_cell(self, index: int | None) -> None:
        """Records from now on arrived while cell `index` ran (None: after the last cell)."""
        self.drain()
        with self._lock:
            self._previous, self.cell = self.cell, index

    def drain(self) -> None:
        """Read everything the kernel has written so far."""
        with self._lock:
            self._read_available()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._ours.close()
        with contextlib.suppress(OSError):
            self._theirs.close()

    def _pump(self) -> None:
        # Keep reading while cells run, so that a kernel writing many records never blocks.
        while not self._stop.is_set() and not self.closed:
            with contextlib.suppress(OSError, ValueError):
                readable, _, _ = select.select([self._ours], [], [], 0.2)
                if readable:
                    self.drain()

    def _read_available(self) -> None:
        while not self.closed:
            try:
                data = self._ours.recv(1 << 16)
            except (BlockingIOError, OSError):
                return
            if not data:
                self.closed = True
                return
            self._read_bytes += len(data)
            if self._read_bytes > _MAX_BYTES:
                continue  # a flood: keep the kernel unblocked, read no more of it
            self._buffer += data
            *lines, self._buffer = self._buffer.split(b"\n")
            if len(self._buffer) > _MAX_LINE:
                self._problem("unreadable-record", "a record longer than any the checks write")
                self._buffer = b""
            for line in lines:
                self._accept(line)

    def _accept(self, line: bytes) -> None:
        body, _, mac = line.rpartition(b"\t")
        expected = hmac.new(self._key, body, "sha256").hexdigest().encode()
        if not hmac.compare_digest(expected, mac):
            self._problem("forged-record", body.decode(errors="replace")[:200])
            return
        seq, record_type, kind, detail = ast.literal_eval(body.decode())
        if seq != self._seq:
            self._problem("records-missing", f"record {seq} arrived where {self._seq} was due")
        self._seq = seq + 1
        self.records.append(Record(seq, record_type, kind, detail, self.cell, self._previous))

    def _problem(self, kind: str, detail: str) -> None:
        self.problems.append({"kind": kind, "detail": detail, "cell": self.cell})


SUPPRESSED = "the kernel reports that this cell raised an error, but no error output arrived"
UNREPORTED = "the kernel never reported how this cell ended"
FAILING_KINDS = {"output-suppressed": SUPPRESSED, "outcome-missing": UNREPORTED}
"""Evidence kinds that also fail their cell: nothing shows that it passed."""


def findings(
    channel: EvidenceChannel,
    locked_cells: dict[int, tuple[str, bool]],
    *,
    nonce: str | None,
    closed_early: bool,
) -> list[dict]:
    """The evidence items of one graded notebook.

    Args:
        channel: the drained channel of its kernel.
        locked_cells: index -> (source, whether it has an error output) of every locked code
            cell that was sent to the kernel and ran to its end.
        nonce: the closing probe's nonce, or None if no probe was sent (the kernel had died).
        closed_early: whether the channel was closed when the kernel answered the probe.
    """
    items: list[dict] = list(channel.problems)
    compiled = _compiled(channel.records)
    outcomes = _outcomes(channel.records)
    for index, (source, shown) in locked_cells.items():
        name = cell_file_name(source)
        outcome = outcomes.get((index, name))
        if outcome == "raised" and not shown:
            items.append({"kind": "output-suppressed", "detail": SUPPRESSED, "cell": index})
        elif outcome is None:
            items.append({"kind": "outcome-missing", "detail": UNREPORTED, "cell": index})
        problem = _compare(source, compiled.get(name, []), failed=shown or outcome != "ok")
        if problem:
            items.append({"kind": "test-cell-altered", "detail": problem, "cell": index})
    for record in channel.records:
        if record.type == "state":
            # Found at the start of a cell: made by the cells before it.
            items.append(_item(record, record.previous_cell))
        elif record.type == "event":
            items.append(_item(record, record.cell))
    types = {record.type for record in channel.records}
    if "ready" not in types:
        items.append(_whole("integrity-check-missing", "the tamper checks never started"))
    elif nonce is not None and not any(
        record.type == "end" and record.kind == nonce for record in channel.records
    ):
        items.append(_whole("integrity-check-missing", "the closing check got no answer"))
    if closed_early:
        items.append(_whole("channel-closed", "the kernel closed its evidence channel early"))
    return items


def _item(record: Record, cell: int | None) -> dict:
    return {"kind": record.kind, "detail": record.detail, "cell": cell}


def _whole(kind: str, detail: str) -> dict:
    return {"kind": kind, "detail": detail, "cell": None}


def _outcomes(records: list[Record]) -> dict[tuple[int | None, str], str]:
    """(cell index, cell name) -> "raised" if the kernel said the cell raised, else "ok"."""
    outcomes: dict[tuple[int | None, str], str] = {}
    for record in records:
        if record.type == "outcome":
            key = (record.cell, record.kind)
            outcomes[key] = "raised" if "raised" in (record.detail, outcomes.get(key)) else "ok"
    return outcomes


@dataclass
class _Execution:
    """What the kernel compiled for one execution of a cell: its parse, then its statements."""

    parsed: str
    statements: list[str]


def _compiled(records: list[Record]) -> dict[str, list[_Execution]]:
    compiled: dict[str, list[_Execution]] = {}
    for record in records:
        if record.type == "parse":
            compiled.setdefault(record.kind, []).append(_Execution(record.detail, []))
        elif record.type == "run" and compiled.get(record.kind):
            compiled[record.kind][-1].statements.append(record.detail)
    return compiled


def _compare(source: str, executions: list[_Execution], *, failed: bool) -> str | None:
    """Why the compiled code of a locked cell is not its source, or None if it is.

    A cell that raised stops after the failing statement, so its statements need only be the
    first ones of the cell, in order.
    """
    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None  # IPython cannot compile it either; the cell fails on its own
    expected = [tree_digest(node) for node in tree.body]
    if not executions:
        return "the cell was never compiled as sent"
    for execution in executions:
        if execution.parsed != tree_digest(tree):
            return "the code compiled from the cell differs from its text (input transformer?)"
        run = execution.statements
        if run != expected and not (failed and run == expected[: len(run)]):
            return "the statements run differ from the cell's text (AST transformer?)"
    return None
