"""Tamper evidence gathered inside the grading kernel, before and while any cell runs.

`install` adds an audit hook (`sys.addaudithook`: Python code cannot remove it) and takes a
`snapshot.Snapshot` of what the test cells rely on. From then on the kernel writes records to an
evidence channel, a socket whose other end only the grading process holds:

- ("parse", cell, digest) when IPython parses a cell and ("run", cell, digest) for each top-level
  statement it compiles, `cell` being the name ipykernel gives the cell's source (a hash of the
  text it received) and `digest` a fingerprint of the syntax tree. The grader compares them with
  the locked cells it sent: an input transformer, an AST transformer or any rewriting of a test
  cell shows as a digest that differs, a test cell that was never compiled as a missing one.
- ("state", kind, detail) when, at the start of a cell or at the end, the snapshot no longer
  holds.
- ("event", kind, detail) for audited actions of cell code: replacing the code or defaults of
  functions of the libraries the tests use, tracing and profiling hooks, ctypes, the garbage
  collector's object lists, other threads' frames, other audit hooks, opening or listing paths
  outside the scratch folder and the read-only roots, compiling or running code that is not a
  cell's; and, by any code at all, writing or reading a Python file in the scratch folder or
  /tmp (a module the submission brought or wrote: its code would run unscanned, and could act
  from a thread or an IPython callback, where no cell is on the stack).
- ("outcome", cell, "raised" | "ok") when a cell the grader sent has run, from IPython's
  `post_run_cell` event, so that the grader knows which test cells failed even when their
  error message never reaches it. The callbacks are registered before the snapshot (removing
  them is evidence) and only raise an audit event: the hook does the work.
- ("ready", "", "") once installed and ("end", nonce, "") when the grader's closing probe, which
  carries a nonce only the grader knows, is compiled.

Cell code must not read a test cell's text (its hidden checks, its expected values): once a cell
starts, the guard empties its text in the execution info and the request the kernel answers, and
once it is compiled, the input history, the `_i*` names and its `linecache` entry (so tracebacks
of graded cells show no source lines). The kernel keeps no history file. Reading the frame of a
calling test cell, or of an earlier cell, is reported as frame-inspection.

Every record carries a sequence number and an HMAC under a key that lives only in this module's
closures, and the module is removed from `sys.modules` once installed. Code in the kernel could
forge records only after reaching the key, through frames, the garbage collector or ctypes, and
the hook reports those routes as they are taken: a record, once written, cannot be taken back. A
kernel whose records stop early, carry a wrong MAC or never answer the closing probe is itself
evidence. The hook never runs code that cell code could have supplied or rebound: it takes the
builtins and functions it calls when the module loads (in the fork server, before any cell),
reads paths only of exact types (`str`, `bytes`, directory entries, pathlib paths through their
slots) and syntax trees only of the `ast` module's classes, and checks the snapshot before it
reads anything else.

Not caught here: changes made and undone within one cell (no snapshot sees them), names rebound
inside an answer's own module, and walking from one's own frame to older ones through `f_back`
and reading their `f_locals` (Python audits neither). The static scan of the submission
(`ftlib_course.tamper`) looks for those in the source.
"""

from __future__ import annotations

import _hashlib
import _thread
import ast
import contextvars
import functools
import os
import stat
import sys
import types

from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult

from ftlib_course.sandbox.digests import CLOSING_MARK, cell_file_name, tree_digest
from ftlib_course.sandbox.snapshot import Snapshot, member

_MAX_RECORDS = 50_000
_MAX_DETAIL = 300
_MAX_SYMLINKS = 40

_WATCHED_PACKAGES = (
    "builtins",
    "torch",
    "numpy",
    "scipy",
    "math",
    "statistics",
    "IPython",
    "ipykernel",
    "ftlib_course",
)
_FILE_EVENTS = frozenset(["open", "os.listdir", "os.scandir", "glob.glob", "os.symlink"])
# Files Python runs code from (an import opens them; so does writing one).
_CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyw", ".pth", ".so", ".zip", ".egg", ".whl")
_INSPECTION_EVENTS = {
    "gc.get_objects": "gc-inspection",
    "gc.get_referrers": "gc-inspection",
    "gc.get_referents": "gc-inspection",
    "sys._current_frames": "frame-inspection",
}
# Raised by the guard's own IPython callbacks, through `sys.audit`, so that the hook (which no
# cell code can reach) does the work: the callbacks themselves hold nothing worth stealing.
_CELL_STARTS = "ftlib.grading.cell-starts"
_CELL_ENDED = "ftlib.grading.cell-ended"
_CELL_EVENTS = frozenset([_CELL_STARTS, _CELL_ENDED])
# Reads Python audits that reach a frame: the attribute, and where the frame is (None: the object
# is the frame; else the attribute of the object holding it).
_FRAME_READS = {
    "f_code": None,
    "tb_frame": "tb_frame",
    "gi_frame": "gi_frame",
    "gi_code": "gi_frame",
    "cr_frame": "cr_frame",
    "cr_code": "cr_frame",
    "ag_frame": "ag_frame",
    "ag_code": "ag_frame",
}
_TRACE_EVENTS = frozenset(["sys.settrace", "sys.setprofile"])
_CTYPES_EVENTS = frozenset(
    "ctypes.dlopen ctypes.dlsym ctypes.dlsym/handle ctypes.addressof ctypes.call_function "  # noqa: SIM905
    "ctypes.cdata ctypes.cdata/buffer ctypes.create_string_buffer ctypes.create_unicode_buffer "
    "ctypes.string_at ctypes.wstring_at ctypes.PyObj_FromPtr ctypes.get_errno "
    "ctypes.set_errno".split()
)
_WATCHED_EVENTS = (
    frozenset(["compile", "exec", "import", "object.__setattr__", "object.__getattr__"])
    | frozenset(["sys._getframe", "sys.addaudithook"])
    | _CELL_EVENTS
    | _FILE_EVENTS
    | _INSPECTION_EVENTS.keys()
    | _TRACE_EVENTS
    | _CTYPES_EVENTS
)

# Builtins and functions the hook calls, taken now: rebinding the originals changes nothing here.
_type, _str, _bytes, _repr, _list, _vars = type, str, bytes, repr, list, vars
_any, _int, _tuple, _Exception = any, int, tuple, Exception
_compile, _only_ast = compile, ast.PyCF_ONLY_AST
_getframe, _get_ident = sys._getframe, _thread.get_ident
_write, _readlink, _lstat, _getcwd, _getpid = os.write, os.readlink, os.lstat, os.getcwd, os.getpid
_is_link, _hmac_digest, _function = stat.S_ISLNK, _hashlib.hmac_digest, types.FunctionType
_tree_types = (ast.Module, ast.Interactive)
_DirEntry = os.DirEntry
_dict, _range, _len, _getattr = dict, range, len, getattr
_audit, _partial, _list_clear = sys.audit, functools.partial, list.clear
_Frame = types.FrameType
_frame_holders = frozenset([types.TracebackType, types.GeneratorType, types.CoroutineType])
_frame_holders |= {types.AsyncGeneratorType}
_ExecutionInfo, _ExecutionResult = ExecutionInfo, ExecutionResult
_Code, _endswith, _startswith = types.CodeType, str.endswith, str.startswith
_ContextVar, _context_get = contextvars.ContextVar, contextvars.ContextVar.get


def _frame_tool_files() -> frozenset[str]:
    """The files whose frames read frames for the code that calls them: this module (the hook
    runs right above cell code that reads a frame itself) and the standard library's tools."""
    import bdb
    import inspect
    import logging
    import pdb
    import pydoc
    import traceback

    modules = (bdb, inspect, logging, pdb, pydoc, traceback)
    return frozenset([_frame_tool_files.__code__.co_filename, *(m.__file__ for m in modules)])


_FRAME_TOOL_FILES = _frame_tool_files()
_GUARD_FILE = _frame_tool_files.__code__.co_filename


def _pathlib_text():
    """A function giving the text of an exact pathlib path from its slots (read in C, so no
    pathlib code runs), or None where pathlib keeps its parts otherwise (Python 3.12+)."""
    import pathlib

    slots = vars(pathlib.PurePath)
    if not all(name in slots for name in ("_drv", "_root", "_parts")):
        return None
    drive, root, parts = (slots[name].__get__ for name in ("_drv", "_root", "_parts"))
    classes = {pathlib.PurePosixPath, pathlib.PosixPath}

    def text(path) -> str | None:
        if _type(path) not in classes or _type(parts(path)) is not _list:
            return None
        anchor = drive(path) + root(path)
        return anchor + "/".join(parts(path)[1:] if anchor else parts(path))

    return text


_pathlib_path = _pathlib_text()


def _path_text(path) -> str | None:
    """The text of a path given as str, bytes, directory entry or pathlib path, else None."""
    kind = _type(path)
    if kind is _str:
        return path
    if kind is _bytes:
        return path.decode("utf-8", "surrogateescape")
    if kind is _DirEntry:
        return path.path
    return _pathlib_path(path) if _pathlib_path is not None else None


def install(shell, *, fd: int, key: bytes, allowed_roots: list[str]) -> None:
    """Start gathering evidence in this kernel; call it after the shell exists, before any cell.

    Args:
        shell: the kernel's InteractiveShell.
        fd: the evidence channel (written only, never closed).
        key: the HMAC key the records are signed with.
        allowed_roots: folders cell code may read besides the working folder and /tmp.
    """
    from ipykernel.compiler import get_tmp_directory

    cell_folder = get_tmp_directory() + os.sep
    write = _record_writer(fd, key)
    # Registered before the snapshot, so that removing them is itself evidence.
    events = member(shell, "events")
    events.register("pre_run_cell", _partial(_audit, _CELL_STARTS))
    events.register("post_run_cell", _partial(_audit, _CELL_ENDED))
    snapshot = Snapshot(shell)
    erase_sources = _source_eraser(shell)
    erase_request = _request_eraser(member(shell, "kernel"))
    running: dict = {"info": None, "cell": ""}  # the cell the grader sent, while it runs
    roots = _allowed_roots(allowed_roots)
    writable = _writable_roots()
    read_only = _tuple(_resolved(root) for root in allowed_roots)  # some may lie under /tmp
    reported: set[tuple[str, str]] = set()
    parsed = {"cell": ""}  # the cell IPython parsed last
    busy: set[int] = set()

    def report(record_type: str, kind: str, detail: str) -> None:
        if (kind, detail) not in reported:
            reported.add((kind, detail))
            write(record_type, kind, detail)

    def check_state() -> None:
        for kind, detail in snapshot.changes():
            report("state", kind, detail)

    def in_cell(frame) -> bool:
        return _str.startswith(frame.f_code.co_filename, cell_folder)

    def from_cell() -> bool:
        """Whether code of a notebook cell is on the stack (else: a library acting alone)."""
        frame = _getframe(1)
        while frame is not None:
            if in_cell(frame):
                return True
            frame = frame.f_back
        return False

    def called_by_cell() -> bool:
        """Whether the code that raised the event (the first frame outside this module) is
        a cell's own: not a library or IPython acting for it."""
        frame = _getframe(1)
        while frame is not None and frame.f_code.co_filename == _GUARD_FILE:
            frame = frame.f_back
        return frame is not None and in_cell(frame)

    def on_code_file(event: str, args: tuple) -> None:
        # By any code, a cell's or not: a module the submission wrote can run from a thread or
        # an IPython callback, with no cell on the stack.
        text = _path_text(args[1] if event == "import" else args[0])
        if text is None or not _endswith(text, _CODE_SUFFIXES):
            return
        resolved = _resolved(text)
        if _startswith(resolved, cell_folder) or _inside(resolved, read_only):
            return
        if _inside(resolved, writable):
            report("event", "submission-code", text)

    def on_dynamic_code(event: str, args: tuple) -> None:
        if event == "exec":
            code = args[0]
            name = code.co_filename if _type(code) is _Code else None
        else:
            name = args[1]
        if _type(name) is _str and _startswith(name, cell_folder):
            return  # a cell being compiled or run
        if called_by_cell():
            report("event", "dynamic-code", f"{event} of {_repr(name)[:80]}")

    def hidden_frame(target) -> bool:
        """Whether cell code reaching frame `target` reaches one it must not: a caller of the
        innermost cell frame (the test cell that runs the answer) or the top level of a cell
        that no longer runs (an earlier cell, through a kept traceback). Its own frame, and the
        frames of what it calls, are its own business; so are frames a library reads for its
        own purposes (torch records the stack where it defers work): only reads by cell code
        itself or by the standard library's frame tools (`inspect`, `traceback`, ...) count."""
        if _type(target) is not _Frame:
            return False
        frame, called, past_cell = _getframe(1), None, False
        while frame is not None:
            if frame is target:
                return past_cell and called.f_code.co_filename in _FRAME_TOOL_FILES
            if not past_cell and in_cell(frame):
                past_cell = True
            elif not past_cell:
                called = frame  # at the end: the frame the innermost cell frame called
            frame = frame.f_back
        if not past_cell or called.f_code.co_filename not in _FRAME_TOOL_FILES:
            return False
        return in_cell(target) and target.f_code.co_name == "<module>"

    def on_frame_read(event: str, args: tuple) -> None:
        if event == "sys._getframe":
            target, what = args[0], "sys._getframe"
        else:
            holder, name = args[0], args[1]
            if _type(name) is not _str or name not in _FRAME_READS:
                return
            where = _FRAME_READS[name]
            if where is not None and _type(holder) not in _frame_holders:
                return
            target, what = (holder if where is None else _getattr(holder, where)), name
        if hidden_frame(target):
            report("event", "frame-inspection", f"{what}: a frame of a calling or earlier cell")

    def on_cell_event(event: str, argument) -> None:
        # The guard's callbacks, from IPython's events; not when cell code runs a cell itself.
        if from_cell():
            return
        if event == _CELL_STARTS:
            if _type(argument) is not _ExecutionInfo:
                return
            fields = _vars(argument)
            if _type(fields.get("raw_cell")) is _str:
                running["info"], running["cell"] = argument, cell_file_name(fields["raw_cell"])
                fields["raw_cell"] = fields["transformed_cell"] = ""
                erase_request()
            return
        if _type(argument) is not _ExecutionResult:
            return
        fields = _vars(argument)
        if running["info"] is None or fields.get("info") is not running["info"]:
            return
        raised = fields.get("error_before_exec") is not None
        raised = raised or fields.get("error_in_exec") is not None
        running["info"] = None
        write("outcome", running["cell"], "raised" if raised else "ok")

    def on_compile(source, filename) -> None:
        if _type(source) in _tree_types:
            # Compiling a syntax tree names no file: the statements are those of the cell
            # parsed last, which IPython compiles one by one right after parsing it.
            body = _vars(source).get("body")
            if filename is None and parsed["cell"] and _type(body) is _list:
                for node in body:
                    write("run", parsed["cell"], tree_digest(node))
            return
        if _type(filename) is not _str or not filename.startswith(cell_folder):
            return
        if _type(source) is _bytes:
            source = source.decode("utf-8", "replace")
        if _type(source) is not _str:
            return
        check_state()
        if CLOSING_MARK in source:
            parsed["cell"] = ""
            write("end", source.split(CLOSING_MARK, 1)[1].strip(), "")
            return
        parsed["cell"] = filename[len(cell_folder) :]
        write("parse", parsed["cell"], tree_digest(_compile(source, filename, "exec", _only_ast)))
        erase_sources(filename)

    def on_file(path) -> None:
        text = _path_text(path)
        if text is not None and not _inside(_resolved(text), roots):
            report("event", "outside-file", text)

    def on_setattr(target, name) -> None:
        # Audited: a function's __code__, __defaults__ or __kwdefaults__ being replaced. (Writes
        # to classes are not audited; the snapshot compares the watched classes instead.)
        if _type(target) is not _function:
            return
        owner = target.__module__
        if _type(owner) is _str and owner.split(".")[0] in _WATCHED_PACKAGES and from_cell():
            report("event", "attribute-write", f"{owner}.{target.__qualname__}.{name}")

    def hook(event: str, args: tuple) -> None:
        if event not in _WATCHED_EVENTS:
            return
        thread = _get_ident()
        if thread in busy:
            return  # an event raised by this hook's own work
        busy.add(thread)
        try:
            dispatch(event, args)
        except _Exception as error:  # the hook must never break the kernel's own work
            report("event", "guard-error", f"{event}: {_type(error).__name__}")
        finally:
            busy.discard(thread)

    def dispatch(event: str, args: tuple) -> None:
        if event == "open" or event == "import":
            on_code_file(event, args)
        if event == "compile" or event == "exec":
            on_dynamic_code(event, args)
        if event == "object.__getattr__" or event == "sys._getframe":
            on_frame_read(event, args)
        elif event == "compile":
            on_compile(args[0], args[1])
        elif event == "exec" or event == "import":
            return
        elif event == "object.__setattr__":
            on_setattr(args[0], args[1])
        elif event in _CELL_EVENTS:
            on_cell_event(event, args[0])
        elif event == "sys.addaudithook":
            report("event", "audit-hook", "another audit hook was added")
        elif not from_cell():
            return
        elif event in _TRACE_EVENTS:
            report("event", "trace-hook", event)
        elif event in _FILE_EVENTS:
            on_file(args[0])  # for os.symlink: where the link points
        elif event in _INSPECTION_EVENTS:
            report("event", _INSPECTION_EVENTS[event], event)
        else:
            report("event", "ctypes", event)

    sys.addaudithook(hook)
    write("ready", "", "")


def _source_eraser(shell):
    """A function that empties every place IPython keeps a cell's text (its input history, the
    `_i*` names, the pending history, `linecache`) once the cell is compiled, so that cell code
    cannot read a test cell's text, neither while it runs nor later."""
    import linecache

    history = member(shell, "history_manager")
    user_ns = member(shell, "_user_ns")
    caches = (linecache.cache, _getattr(linecache, "_ipython_cache", None))

    def erase(filename: str) -> None:
        for name in ("input_hist_parsed", "input_hist_raw"):
            entries = member(history, name)
            if _type(entries) is _list:
                for index in _range(_len(entries)):
                    entries[index] = ""
        pending = member(history, "db_input_cache")
        if _type(pending) is _list:
            _list_clear(pending)
        traits = _vars(history).get("_trait_values")
        for names in (traits, user_ns):
            if _type(names) is _dict:
                for name in _list(names):
                    if _type(name) is _str and _is_input_name(name):
                        names[name] = ""
        for cache in caches:
            if _type(cache) is _dict:
                cache.pop(filename, None)

    return erase


def _request_eraser(kernel):
    """A function that empties the code of the execute request the kernel is answering (which
    `kernel.get_parent()` hands to anyone), once the cell has started."""
    parent = member(kernel, "_shell_parent")

    def erase() -> None:
        if _type(parent) is not _ContextVar:
            return
        request = _context_get(parent, None)
        content = request.get("content") if _type(request) is _dict else None
        if _type(content) is _dict and "code" in content:
            content["code"] = ""

    return erase


def _is_input_name(name: str) -> bool:
    """`_i`, `_ii`, `_iii`, `_i00`, `_i1`, ...: the names IPython gives earlier inputs."""
    rest = name[2:]
    return name[:2] == "_i" and (rest in ("", "i", "ii") or rest.isdigit())


def _record_writer(fd: int, key: bytes):
    """A function that signs and writes one record; it holds the key and the sequence number.

    Once the channel fails (closed or replaced by cell code) it writes nothing more: the grader
    sees the channel end before the closing probe, which is itself the evidence.
    """
    state = {"seq": 0, "broken": False}

    def write(record_type: str, kind: str, detail: str) -> None:
        if state["broken"] or state["seq"] >= _MAX_RECORDS:
            return
        state["seq"] += 1
        if state["seq"] == _MAX_RECORDS:
            record_type, kind, detail = "state", "too-many-records", f"stopped at {_MAX_RECORDS}"
        body = _repr((state["seq"], record_type, kind, detail[:_MAX_DETAIL])).encode()
        line = body + b"\t" + _hmac_digest(key, body, "sha256").hex().encode() + b"\n"
        try:
            while line:
                line = line[_write(fd, line) :]
        except OSError:
            state["broken"] = True

    return write


def _allowed_roots(extra: list[str]) -> tuple[str, ...]:
    return (
        *_writable_roots(),
        *(_resolved(root) for root in ["/dev", "/sys/devices/system", *extra]),
    )


def _writable_roots() -> tuple[str, ...]:
    """The folders a grading kernel can write: its scratch folder and /tmp."""
    import tempfile

    return (_resolved(_getcwd()), _resolved(tempfile.gettempdir()))


def _resolved(path: str) -> str:
    """`path` made absolute, with `.`, `..` and symbolic links resolved (like realpath), using
    only the operating system's calls: no library code that cell code could have changed."""
    pending = (path if path.startswith("/") else _getcwd() + "/" + path).split("/")
    done: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = "/" + "/".join([*done, part])
        try:
            is_link = _is_link(_lstat(candidate).st_mode)
        except OSError:
            is_link = False
        if is_link and links < _MAX_SYMLINKS:
            links += 1
            target = _readlink(candidate)
            pending = target.split("/") + pending
            if target.startswith("/"):
                done = []
            continue
        done.append(part)
    return "/" + "/".join(done)


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    if path.startswith("/proc/"):
        # /proc/cpuinfo and this process's own entries; never another process's (its root
        # folder would show that process's files).
        part = path.split("/")[2]
        return not part.isdigit() or _int(part) == _getpid()
    return _any(path == root or path.startswith(root + "/") for root in roots)
