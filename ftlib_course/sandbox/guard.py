"""Tamper evidence gathered inside the grading kernel, before and while any cell runs.

`install` adds an audit hook (`sys.addaudithook`: Python code cannot remove it) and takes a
snapshot of what the test cells rely on. From then on the kernel writes records to an evidence
channel, a socket whose other end only the grading process holds:

- ("parse", cell, digest) when IPython parses a cell and ("run", cell, digest) for each top-level
  statement it compiles, `cell` being the name ipykernel gives the cell's source (a hash of the
  text it received) and `digest` a hash of the syntax tree. The grader compares them with the
  test cells it sent: an input transformer, an AST transformer or any rewriting of a test cell
  shows as a digest that differs, a test cell that was never compiled as a missing one.
- ("state", kind, detail) when, at the start of a cell or at the end, the snapshot no longer
  holds: see `_state_probes` for what is compared.
- ("event", kind, detail) for audited actions of cell code: writing attributes of the types or
  functions of the libraries the tests use, tracing and profiling hooks, ctypes, the garbage
  collector's object lists, other audit hooks, reading paths outside the scratch folder and the
  read-only roots.
- ("ready", "", "") once installed and ("end", nonce, "") when the grader's closing probe, which
  carries a nonce only the grader knows, is compiled.

Every record carries a sequence number and an HMAC under a key that lives only in this module's
closures. Code in the kernel could still forge records once it has read the key, but it can only
reach the key through frame, garbage-collector or ctypes access, which the hook has reported
before they return: a record, once written, cannot be taken back. A kernel whose records stop
early, carry a wrong MAC or never answer the closing probe is itself evidence.

Not caught here: changes made and undone within one cell (no snapshot sees them), rebinding
names inside an answer's own module, attribute writes on plain modules between snapshots that
are undone before the next one. The static scan of the submission (`ftlib_course.tamper`) looks
for those in the source.
"""

from __future__ import annotations

import _hashlib
import _thread
import ast
import builtins
import math
import operator
import os
import sys
import types

from ftlib_course.sandbox.digests import CLOSING_MARK, tree_digest

_MAX_RECORDS = 50_000
_MAX_DETAIL = 300

# Names IPython itself puts into builtins around each cell, or the display hook updates.
_MANAGED_BUILTINS = frozenset(
    [
        "_",
        "__",
        "___",
        "exit",
        "quit",
        "get_ipython",
        "display",
        "input",
        "raw_input",
        "__IPYTHON__",
        "__builtins__",
    ]
)
# Built-in names a test cell may read from the notebook's namespace.
_TEST_NAMES = [
    "abs",
    "all",
    "any",
    "bool",
    "callable",
    "dict",
    "enumerate",
    "float",
    "getattr",
    "hasattr",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "print",
    "range",
    "repr",
    "round",
    "set",
    "sorted",
    "str",
    "sum",
    "tuple",
    "type",
    "zip",
    "AssertionError",
    "Exception",
]
_SHELL_METHODS = [
    "run_cell",
    "run_cell_async",
    "run_ast_nodes",
    "run_code",
    "transform_cell",
    "transform_ast",
    "showtraceback",
    "_showtraceback",
    "showsyntaxerror",
    "set_custom_exc",
    "should_run_async",
]
_SHELL_PARTS = [
    "compile",
    "displayhook",
    "display_pub",
    "input_transformer_manager",
    "prefilter_manager",
    "InteractiveTB",
    "SyntaxTB",
    "CustomTB",
    "custom_exceptions",
    "kernel",
    "events",
]
_KERNEL_METHODS = ["do_execute", "execute_request", "send_response", "_publish_execute_input"]
_WATCHED_PACKAGES = ("builtins", "torch", "numpy", "math", "IPython", "ipykernel", "ftlib_course")
_FILE_EVENTS = frozenset(["open", "os.listdir", "os.scandir", "glob.glob", "os.symlink"])
_CELL_EVENTS = frozenset(["gc.get_objects", "gc.get_referrers", "gc.get_referents"])
_TRACE_EVENTS = frozenset(["sys.settrace", "sys.setprofile"])
_CTYPES_EVENTS = frozenset(
    [
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.dlsym/handle",
        "ctypes.addressof",
        "ctypes.call_function",
        "ctypes.cdata",
        "ctypes.cdata/buffer",
        "ctypes.create_string_buffer",
        "ctypes.create_unicode_buffer",
        "ctypes.string_at",
        "ctypes.wstring_at",
        "ctypes.PyObj_FromPtr",
        "ctypes.get_errno",
        "ctypes.set_errno",
    ]
)
_WATCHED_EVENTS = (
    frozenset(["compile", "object.__setattr__", "sys.addaudithook"])
    | _FILE_EVENTS
    | _CELL_EVENTS
    | _TRACE_EVENTS
    | _CTYPES_EVENTS
)


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
    probes = _state_probes(shell)
    reported: set[tuple[str, str]] = set()
    roots = _allowed_roots(allowed_roots)
    # References captured now, so that rebinding the originals later changes nothing here.
    isinstance_, str_, bytes_, type_ = isinstance, str, bytes, type
    getframe, realpath, fsdecode = sys._getframe, os.path.realpath, os.fsdecode
    parse, digest, get_ident = ast.parse, tree_digest, _thread.get_ident
    busy: set[int] = set()

    def report(record_type: str, kind: str, detail: str) -> None:
        if (kind, detail) not in reported:
            reported.add((kind, detail))
            write(record_type, kind, detail)

    def check_state() -> None:
        for kind, detail in _changed(probes):
            report("state", kind, detail)

    def from_cell() -> bool:
        """Whether code of a notebook cell is on the stack (else: a library acting alone)."""
        frame = getframe(1)
        while frame is not None:
            if frame.f_code.co_filename.startswith(cell_folder):
                return True
            frame = frame.f_back
        return False

    parsed = {"cell": ""}  # the cell IPython parsed last

    def on_compile(source, filename) -> None:
        if isinstance_(source, ast.AST):
            # Compiling a syntax tree names no file: the statements are those of the cell
            # parsed last, which IPython compiles one by one right after parsing it.
            if filename is None and parsed["cell"]:
                for node in getattr(source, "body", ()):
                    write("run", parsed["cell"], digest(node))
            return
        if not isinstance_(filename, str_) or not filename.startswith(cell_folder):
            return
        if isinstance_(source, bytes_):
            source = source.decode("utf-8", "replace")
        check_state()
        if CLOSING_MARK in source:
            parsed["cell"] = ""
            write("end", source.split(CLOSING_MARK, 1)[1].strip(), "")
            return
        parsed["cell"] = filename[len(cell_folder) :]
        write("parse", parsed["cell"], digest(parse(source)))

    def on_file(path) -> None:
        if isinstance_(path, (str_, bytes_)) and not _inside(realpath(fsdecode(path)), roots):
            report("event", "outside-file", fsdecode(path))

    def on_setattr(target, name) -> None:
        # Audited: a function's __code__, __defaults__ or __kwdefaults__ being replaced. (Writes
        # to classes are not audited; the snapshot compares the watched classes instead.)
        if not isinstance_(target, types.FunctionType):
            return
        owner = str_(target.__module__ or "")
        if owner.split(".")[0] in _WATCHED_PACKAGES and from_cell():
            report("event", "attribute-write", f"{owner}.{target.__qualname__}.{name}")

    def hook(event: str, args: tuple) -> None:
        if event not in _WATCHED_EVENTS:
            return
        thread = get_ident()
        if thread in busy:
            return  # an event raised by this hook's own work
        busy.add(thread)
        try:
            if event == "compile":
                on_compile(args[0], args[1])
            elif event == "object.__setattr__":
                on_setattr(args[0], args[1])
            elif event == "sys.addaudithook":
                report("event", "audit-hook", "another audit hook was added")
            elif event in _TRACE_EVENTS:
                if from_cell():
                    report("event", "trace-hook", event)
            elif not from_cell():
                return
            elif event in _FILE_EVENTS:
                on_file(args[0])  # for os.symlink: where the link points
            elif event in _CELL_EVENTS:
                report("event", "gc-inspection", event)
            else:
                report("event", "ctypes", event)
        except Exception as error:  # the hook must never break the kernel's own work
            report("event", "guard-error", f"{event}: {type_(error).__name__}: {error}")
        finally:
            busy.discard(thread)

    sys.addaudithook(hook)
    write("ready", "", "")


def _record_writer(fd: int, key: bytes):
    """A function that signs and writes one record; it holds the key and the sequence number.

    Once the channel fails (closed or replaced by cell code) it writes nothing more: the grader
    sees the channel end before the closing probe, which is itself the evidence.
    """
    write_fd, hmac_digest, repr_ = os.write, _hashlib.hmac_digest, repr
    state = {"seq": 0, "broken": False}

    def write(record_type: str, kind: str, detail: str) -> None:
        if state["broken"] or state["seq"] >= _MAX_RECORDS:
            return
        state["seq"] += 1
        if state["seq"] == _MAX_RECORDS:
            record_type, kind, detail = "state", "too-many-records", f"stopped at {_MAX_RECORDS}"
        body = repr_((state["seq"], record_type, kind, detail[:_MAX_DETAIL])).encode()
        line = body + b"\t" + hmac_digest(key, body, "sha256").hex().encode() + b"\n"
        try:
            while line:
                line = line[write_fd(fd, line) :]
        except OSError:
            state["broken"] = True

    return write


def _allowed_roots(extra: list[str]) -> tuple[str, ...]:
    import tempfile

    roots = [os.getcwd(), tempfile.gettempdir(), "/dev", "/sys/devices/system", *extra]
    return tuple(os.path.realpath(root) for root in roots)


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    if path.startswith("/proc/"):
        # /proc/cpuinfo and this process's own entries; never another process's (its root
        # folder would show that process's files).
        part = path.split("/")[2]
        return not part.isdigit() or int(part) == os.getpid()
    return any(path == root or path.startswith(root + os.sep) for root in roots)


def _state_probes(shell) -> list[tuple]:
    """(kind, label, how to read it now, its value now) for everything the snapshot compares;
    a probe of many names has a tuple of labels and reads a tuple of values."""
    from ftlib_course import checks

    probes: list[tuple] = []

    def add(kind: str, label: str | tuple[str, ...], read) -> None:
        probes.append((kind, label, read, read()))

    def add_names(kind: str, prefix: str, namespace, names: list[str]) -> None:
        # One probe for many names, compared in C: a check must take milliseconds, per cell.
        labels = tuple(f"{prefix}.{name}" for name in names)
        add(kind, labels, lambda: tuple(map(namespace.get, names)))

    for name in _SHELL_METHODS:
        add("shell-replaced", f"shell.{name}", lambda n=name: _attribute(shell, n))
    for name in _SHELL_PARTS:
        add("shell-replaced", f"shell.{name}", lambda n=name: getattr(shell, n, None))
    for name in _KERNEL_METHODS:
        add("shell-replaced", f"kernel.{name}", lambda n=name: _attribute(shell.kernel, n))
    # While a cell runs, IPython puts its own display hook in sys; any other one is not ours.
    hooks = (sys.displayhook, shell.displayhook)
    add("shell-replaced", "sys.displayhook", lambda: _one_of(sys.displayhook, hooks))
    add("shell-replaced", "sys.excepthook", lambda: sys.excepthook)
    manager = shell.input_transformer_manager
    for name in ("cleanup_transforms", "line_transforms", "token_transformers"):
        add("input-transformer", name, lambda n=name: tuple(getattr(manager, n)))
    add("input-transformer", "post", lambda: tuple(shell.input_transformers_post))
    add("input-transformer", "prefilter", lambda: tuple(shell.prefilter_manager.transformers))
    add("ast-transformer", "ast_transformers", lambda: tuple(shell.ast_transformers))
    for event in shell.events.callbacks:
        add("event-hook", event, lambda e=event: tuple(shell.events.callbacks.get(e, ())))
    add("trace-hook", "sys.settrace", sys.gettrace)
    add("trace-hook", "sys.setprofile", sys.getprofile)
    names = [name for name in vars(builtins) if name not in _MANAGED_BUILTINS]
    add_names("builtin-rebound", "builtins", vars(builtins), names)
    for name in _TEST_NAMES:
        original = getattr(builtins, name)
        add(
            "builtin-rebound",
            f"{name} in the notebook",
            lambda n=name, o=original: shell.user_ns.get(n, o),
        )
    for module in _watched_modules(checks):
        add("library-rebound", f"sys.modules[{module.__name__!r}]", _module_reader(module))
        every = module in (math, checks)
        names = [name for name, value in vars(module).items() if every or callable(value)]
        add_names("library-rebound", module.__name__, vars(module), names)
    for cls in [*_watched_types(), type(checks.check)]:
        label = f"{cls.__module__}.{cls.__qualname__}"
        add("attribute-write", f"{label}: attributes added or removed", lambda c=cls: _own_names(c))
        add_names("library-rebound", label, vars(cls), list(vars(cls)))
    for label, cell in _closure_cells(type(checks.check)):
        add("library-rebound", label, lambda c=cell: _contents(c))
    add("library-rebound", "check in the notebook", _check_reader(shell, checks.check))
    return probes


# Set on a class by Python itself: pickling caches the names of its slots there.
_CACHED_CLASS_ATTRIBUTES = frozenset(["__slotnames__"])


def _own_names(cls: type) -> int:
    """How many attributes a class defines itself, Python's own caches left out."""
    return len(vars(cls).keys() - _CACHED_CLASS_ATTRIBUTES)


def _check_reader(shell, original):
    """`check` as the notebook's test cells see it, once a locked cell has imported it.

    Before the import the name is the lesson's own business (a lesson may use it for another
    value); after it, anything but the original is a rebinding.
    """
    imported = [False]

    def read():
        value = shell.user_ns.get("check", _EMPTY)
        imported[0] = imported[0] or value is original
        return value if imported[0] else original

    return read


def _changed(probes) -> list[tuple[str, str]]:
    changed = []
    for kind, label, read, original in probes:
        try:
            now = read()
        except Exception:  # a deleted attribute or a broken object: changed either way
            now = None
        if _same(now, original):
            continue
        if isinstance(label, tuple):  # a probe of many names: which of them changed
            values = now if isinstance(now, tuple) else (None,) * len(label)
            changed += [
                (kind, one) for one, a, b in zip(label, values, original, strict=True) if a is not b
            ]
        else:
            changed.append((kind, label))
    return changed


def _same(now, original) -> bool:
    if type(original) is int:
        return type(now) is int and now == original
    if isinstance(original, tuple) and isinstance(now, tuple):
        return len(now) == len(original) and all(map(operator.is_, now, original))
    return now is original


def _one_of(value, allowed: tuple):
    """None if `value` is one of `allowed` (by identity), else `value`."""
    return None if any(value is candidate for candidate in allowed) else value


def _attribute(obj, name: str):
    """The function behind `obj.name`, wherever it is defined (instance, class or base)."""
    if name in vars(obj):
        return vars(obj)[name]
    for cls in type(obj).__mro__:
        if name in vars(cls):
            return vars(cls)[name]
    return None


_EMPTY = object()


def _contents(cell: types.CellType) -> object:
    try:
        return cell.cell_contents
    except ValueError:  # a cell not yet (or no longer) bound
        return _EMPTY


def _module_reader(module):
    name = module.__name__
    return lambda: sys.modules.get(name)


def _watched_modules(checks) -> list[types.ModuleType]:
    import numpy
    import torch
    import torch.nn.functional

    return [math, numpy, torch, torch.nn.functional, checks]


def _watched_types() -> list[type]:
    import torch

    return [torch.Tensor, torch.nn.Module, torch.nn.Parameter]


def _closure_cells(cls: type) -> list[tuple[str, types.CellType]]:
    """The closure cells of every function a class's methods reach, with a label each.

    The test helpers keep their references in closures; assigning `cell_contents` is not an
    audited event, so the snapshot compares what every cell holds.
    """
    found: list[tuple[str, types.CellType]] = []
    seen: set[int] = set()
    pending = [value for value in vars(cls).values() if isinstance(value, types.FunctionType)]
    while pending:
        function = pending.pop()
        if id(function) in seen:
            continue
        seen.add(id(function))
        names = function.__code__.co_freevars
        for name, cell in zip(names, function.__closure__ or (), strict=True):
            found.append((f"{function.__qualname__}: {name}", cell))
            value = _contents(cell)
            if isinstance(value, types.FunctionType):
                pending.append(value)
            elif isinstance(value, type) and value.__module__ == cls.__module__:
                pending.extend(v for v in vars(value).values() if isinstance(v, types.FunctionType))
    return found
