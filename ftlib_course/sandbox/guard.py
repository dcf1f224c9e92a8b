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
  outside the scratch folder and the read-only roots.
- ("ready", "", "") once installed and ("end", nonce, "") when the grader's closing probe, which
  carries a nonce only the grader knows, is compiled.

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

Not caught here: changes made and undone within one cell (no snapshot sees them), and names
rebound inside an answer's own module. The static scan of the submission
(`ftlib_course.tamper`) looks for those in the source.
"""

from __future__ import annotations

import _hashlib
import _thread
import ast
import os
import stat
import sys
import types

from ftlib_course.sandbox.digests import CLOSING_MARK, tree_digest
from ftlib_course.sandbox.snapshot import Snapshot

_MAX_RECORDS = 50_000
_MAX_DETAIL = 300
_MAX_SYMLINKS = 40

_WATCHED_PACKAGES = ("builtins", "torch", "numpy", "math", "IPython", "ipykernel", "ftlib_course")
_FILE_EVENTS = frozenset(["open", "os.listdir", "os.scandir", "glob.glob", "os.symlink"])
_INSPECTION_EVENTS = {
    "gc.get_objects": "gc-inspection",
    "gc.get_referrers": "gc-inspection",
    "gc.get_referents": "gc-inspection",
    "sys._current_frames": "frame-inspection",
}
_TRACE_EVENTS = frozenset(["sys.settrace", "sys.setprofile"])
_CTYPES_EVENTS = frozenset(
    "ctypes.dlopen ctypes.dlsym ctypes.dlsym/handle ctypes.addressof ctypes.call_function "  # noqa: SIM905
    "ctypes.cdata ctypes.cdata/buffer ctypes.create_string_buffer ctypes.create_unicode_buffer "
    "ctypes.string_at ctypes.wstring_at ctypes.PyObj_FromPtr ctypes.get_errno "
    "ctypes.set_errno".split()
)
_WATCHED_EVENTS = (
    frozenset(["compile", "object.__setattr__", "sys.addaudithook"])
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
    snapshot = Snapshot(shell)
    roots = _allowed_roots(allowed_roots)
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

    def from_cell() -> bool:
        """Whether code of a notebook cell is on the stack (else: a library acting alone)."""
        frame = _getframe(1)
        while frame is not None:
            if _str.startswith(frame.f_code.co_filename, cell_folder):
                return True
            frame = frame.f_back
        return False

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
        if event == "compile":
            on_compile(args[0], args[1])
        elif event == "object.__setattr__":
            on_setattr(args[0], args[1])
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
    import tempfile

    roots = [_getcwd(), tempfile.gettempdir(), "/dev", "/sys/devices/system", *extra]
    return _tuple(_resolved(root) for root in roots)


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
