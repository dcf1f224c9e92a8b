"""What the grading kernel's guard compares at the start of every cell and at the end.

A `Snapshot` holds, for everything the test cells rely on, how to read it and what it was when the
kernel started: IPython's transformer lists, event callbacks, the shell's and the kernel's execution
methods, the display hook, the path an error message takes out (the session, its methods, the iopub
socket and thread, the display publisher, `sys.stdout`/`stderr`), where IPython keeps cell texts
(history lists, `linecache`), trace and profile functions, every name of `builtins`, the functions
of torch, torch.nn.functional, numpy, scipy.stats, math, statistics and `ftlib_course.checks` (what
tests compute their expected values with), the attributes of `torch.Tensor`, `nn.Module`,
`nn.Parameter` and of the test helper's class, the references the helper captured in its closures,
the built-in names and `check` as the notebook sees them.

It runs inside the audit hook, while cell code may have rebound anything: so it never calls code
of the objects it reads. Attributes are read from instance and class dictionaries (traitlets'
values from `_trait_values`), never through descriptors; lists only when they are exact lists;
builtins are those taken when this module was loaded, in the fork server. The classes and
metaclasses whose dictionaries those reads go through are compared first ("gates"): when one
changed, `changes` reports it and reads nothing else.
"""

from __future__ import annotations

import builtins
import functools
import math
import operator
import sys
import types

_type, _vars, _tuple, _list, _dict, _len, _int = type, vars, tuple, list, dict, len, int
_map, _zip, _all = map, zip, all
_Exception, _ValueError = Exception, ValueError
_is = operator.is_
_gettrace, _getprofile = sys.gettrace, sys.getprofile
_partial = functools.partial
_EMPTY = object()

# Names IPython itself puts into builtins around each cell, or the display hook updates.
_MANAGED_BUILTINS = frozenset(
    "_ __ ___ exit quit get_ipython display input raw_input __IPYTHON__ __builtins__".split()  # noqa: SIM905
)
# Built-in names a test cell may read from the notebook's namespace.
_TEST_NAMES = (  # noqa: SIM905 - a list of words reads best as words
    "abs all any bool callable dict enumerate float getattr hasattr int isinstance issubclass "
    "iter len list map max min next print range repr round set sorted str sum tuple type zip "
    "AssertionError Exception"
).split()
_SHELL_METHODS = (  # noqa: SIM905 - a list of words reads best as words
    "run_cell run_cell_async run_ast_nodes run_code transform_cell transform_ast "
    "showtraceback _showtraceback showsyntaxerror set_custom_exc should_run_async"
).split()
_SHELL_PARTS = (  # noqa: SIM905 - a list of words reads best as words
    "compile displayhook display_pub input_transformer_manager prefilter_manager "
    "InteractiveTB SyntaxTB CustomTB custom_exceptions kernel events _user_ns "
    "ast_node_interactivity"
).split()
_KERNEL_METHODS = ("do_execute", "execute_request", "send_response", "_publish_execute_input")
# What an error message travels through on its way out: the session that signs and sends it,
# the iopub socket and thread, the display hook and publisher, the output streams.
_KERNEL_PARTS = ("session", "iopub_socket", "iopub_thread")
_SENDER_PARTS = ("session", "pub_socket", "pub_thread")
_SESSION_METHODS = (  # noqa: SIM905 - a list of words reads best as words
    "send serialize deserialize pack unpack sign msg msg_header feed_identities send_raw"
).split()
# Where IPython keeps the text of the cells; the guard empties them before a cell runs.
_HISTORY_PARTS = ("input_hist_parsed", "input_hist_raw", "db_input_cache")
_TRANSFORM_LISTS = ("cleanup_transforms", "line_transforms", "token_transformers")
# Set on a class by Python itself: pickling caches the names of its slots there.
_CACHED_CLASS_ATTRIBUTES = frozenset(["__slotnames__"])


class Snapshot:
    """The state of a kernel's shell and libraries, to compare again later."""

    def __init__(self, shell) -> None:
        from ftlib_course import checks

        self._gates: list[tuple] = []
        self._probes: list[tuple] = []
        # traitlets creates a default value on first access: have them all created now, so
        # that what IPython reads later is what the snapshot holds.
        for name in [*_SHELL_METHODS, *_SHELL_PARTS, "input_transformers_post", "ast_transformers"]:
            getattr(shell, name, None)
        events = member(shell, "events")
        parts = [shell, member(shell, "kernel"), events, member(shell, "prefilter_manager")]
        parts.append(member(shell, "input_transformer_manager"))
        parts += [member(shell, "history_manager"), *_senders(shell).values()]
        for cls in _classes_behind(parts):
            self._watch_class(cls, "shell-replaced", self._gates)
        self._watch_shell(shell, events)
        self._watch_output_path(shell)
        self._watch_sources(shell)
        self._watch_names(shell, checks)
        classes = [*_watched_types(), _type(checks.check)]
        for meta in _classes_behind(classes):
            self._watch_class(meta, "library-rebound", self._gates)
        for cls in classes:
            self._watch_class(cls, "library-rebound", self._probes)
        for label, cell in _closure_cells(_type(checks.check)):
            self._add("library-rebound", label, lambda c=cell: _contents(c))
        self._add("library-rebound", "check in the notebook", _check_reader(shell, checks.check))

    def changes(self) -> list[tuple[str, str]]:
        """(kind, what) for everything that is no longer as it was."""
        return _changed(self._gates) or _changed(self._probes)

    def _add(self, kind: str, label, read, into: list | None = None) -> None:
        (self._probes if into is None else into).append((kind, label, read, read()))

    def _add_names(self, kind: str, prefix: str, namespace, names, into=None) -> None:
        # One probe for many names, compared in C: a check must take a fraction of a millisecond.
        names = _tuple(names)
        labels = _tuple(f"{prefix}.{name}" for name in names)
        self._add(kind, labels, lambda: _tuple(_map(namespace.get, names)), into)

    def _watch_class(self, cls: type, kind: str, into: list) -> None:
        label = f"{cls.__module__}.{cls.__qualname__}"
        added = f"{label}: attributes added or removed"
        self._add("attribute-write", added, lambda: _own_names(cls), into)
        self._add_names(kind, label, _vars(cls), _list(_vars(cls)), into)

    def _watch_shell(self, shell, events) -> None:
        kernel = member(shell, "kernel")
        for name in _SHELL_METHODS + _SHELL_PARTS:
            self._add("shell-replaced", f"shell.{name}", lambda n=name: member(shell, n))
        for name in _KERNEL_METHODS:
            self._add("shell-replaced", f"kernel.{name}", lambda n=name: member(kernel, n))
        # While a cell runs, IPython puts its own display hook in sys; any other is not ours.
        hooks = (_vars(sys)["displayhook"], member(shell, "displayhook"))
        self._add("shell-replaced", "sys.displayhook", lambda: _one_of("displayhook", hooks))
        self._add("shell-replaced", "sys.excepthook", lambda: _vars(sys).get("excepthook"))
        manager = member(shell, "input_transformer_manager")
        for name in _TRANSFORM_LISTS:
            read = _items_reader(manager, name)
            self._add("input-transformer", name, read)
        self._add("input-transformer", "post", _items_reader(shell, "input_transformers_post"))
        prefilter = member(shell, "prefilter_manager")
        self._add("input-transformer", "prefilter", _items_reader(prefilter, "_transformers"))
        self._add("ast-transformer", "ast_transformers", _items_reader(shell, "ast_transformers"))
        callbacks = member(events, "callbacks")
        for event in _list(callbacks):
            self._add("event-hook", event, lambda e=event: _callbacks(callbacks.get(e), e))
        for cls in _AUTORELOAD_CLASSES:
            self._watch_class(cls, "event-hook", self._probes)
            for callback in _items(callbacks.get(event)):
                if _type(callback) is _partial:  # the guard's own: what it calls, with what
                    read = lambda c=callback: (c.func, c.args, c.keywords)  # noqa: E731
                    self._add("event-hook", f"{event}: the guard's callback", read)
        self._add("trace-hook", "sys.settrace", _gettrace)
        self._add("trace-hook", "sys.setprofile", _getprofile)

    def _watch_output_path(self, shell) -> None:
        """Everything an error message passes on its way to the grader, and the streams."""
        for label, part in _senders(shell).items():
            for name in _SENDER_PARTS:
                if member(part, name) is not None:
                    read = lambda p=part, n=name: member(p, n)  # noqa: E731
                    self._add("shell-replaced", f"{label}.{name}", read)
        session = member(member(shell, "kernel"), "session")
        for name in _SESSION_METHODS:
            self._add("shell-replaced", f"session.{name}", lambda n=name: member(session, n))
        kernel = member(shell, "kernel")
        for name in _KERNEL_PARTS:
            self._add("shell-replaced", f"kernel.{name}", lambda n=name: member(kernel, n))
        for name in ("stdout", "stderr"):
            self._add("shell-replaced", f"sys.{name}", lambda n=name: _vars(sys).get(n))

    def _watch_sources(self, shell) -> None:
        """Where IPython keeps cell texts: replaced, they would keep what the guard empties."""
        history = member(shell, "history_manager")
        read_history = lambda: member(shell, "history_manager")  # noqa: E731
        self._add("shell-replaced", "shell.history_manager", read_history)
        for name in _HISTORY_PARTS:
            getattr(history, name)  # created now, as the shell's traits are
            self._add("shell-replaced", f"history.{name}", lambda n=name: member(history, n))
        linecache = _vars(sys)["modules"]["linecache"]
        for name in ("cache", "_ipython_cache"):
            self._add("shell-replaced", f"linecache.{name}", lambda n=name: _vars(linecache).get(n))
        user_ns = member(shell, "_user_ns")
        for name in ("In", "_ih"):
            self._add("shell-replaced", f"{name} in the notebook", lambda n=name: user_ns.get(n))

    def _watch_names(self, shell, checks) -> None:
        names = [name for name in _vars(builtins) if name not in _MANAGED_BUILTINS]
        self._add_names("builtin-rebound", "builtins", _vars(builtins), names)
        user_ns = member(shell, "_user_ns")  # behind the `user_ns` property
        for name in _TEST_NAMES:
            original = _vars(builtins)[name]
            label = f"{name} in the notebook"
            self._add("builtin-rebound", label, lambda n=name, o=original: user_ns.get(n, o))
        modules = _vars(sys)["modules"]
        for module in _watched_modules(checks):
            name = module.__name__
            self._add("library-rebound", f"sys.modules[{name!r}]", lambda n=name: modules.get(n))
            every = module in (math, checks)
            names = [key for key, value in _vars(module).items() if every or callable(value)]
            self._add_names("library-rebound", name, _vars(module), names)


def member(obj, name: str):
    """`obj.name` without running code of `obj`'s classes: from its own dictionary, its
    traitlets values, or the first class of its MRO that defines it."""
    own = _vars(obj)
    if name in own:
        return own[name]
    traits = own.get("_trait_values")
    if _type(traits) is _dict and name in traits:
        return traits[name]
    for cls in _type(obj).__mro__:
        if name in _vars(cls):
            return _vars(cls)[name]
    return None


def _senders(shell) -> dict:
    """label -> the objects an output or error message is sent through."""
    kernel = member(shell, "kernel")
    found = {name: member(shell, name) for name in ("displayhook", "display_pub")}
    found |= {f"kernel.{name}": member(kernel, name) for name in _KERNEL_PARTS}
    found |= {f"sys.{name}": _vars(sys).get(name) for name in ("stdout", "stderr")}
    return {label: part for label, part in found.items() if part is not None}


def _items(value):
    """The items of an exact list or tuple; anything else stands for itself."""
    return _tuple(value) if _type(value) in (_list, _tuple) else value


def _autoreload_parts() -> tuple[tuple[type, ...], dict[str, types.FunctionType]]:
    """IPython's autoreload extension: its classes, and the callback it registers per event."""
    from IPython.extensions.autoreload import AutoreloadMagics, ModuleReloader

    hooks = {"pre_run_cell": "pre_run_cell", "post_execute": "post_execute_hook"}
    methods = _vars(AutoreloadMagics)
    return (AutoreloadMagics, ModuleReloader), {e: methods[m] for e, m in hooks.items()}


_AUTORELOAD_CLASSES, _AUTORELOAD_HOOKS = _autoreload_parts()
_Method = types.MethodType


def _callbacks(value, event: str):
    """The callbacks of one event, without those `%load_ext autoreload` registers: an honest
    habit, recognised only as the extension's own methods of its own, unchanged objects."""
    items = _items(value)
    if _type(items) is not _tuple:
        return items
    return _tuple([item for item in items if not _is_autoreload(item, event)])


def _is_autoreload(callback, event: str) -> bool:
    if _type(callback) is not _Method or callback.__func__ is not _AUTORELOAD_HOOKS.get(event):
        return False
    magics, reloader = _AUTORELOAD_CLASSES
    owner = callback.__self__
    return _type(owner) is magics and _type(member(owner, "_reloader")) is reloader


def _items_reader(obj, name: str):
    return lambda: _items(member(obj, name))


def _one_of(name: str, allowed: tuple):
    """None if sys.`name` is one of `allowed` (by identity), else its value."""
    value = _vars(sys).get(name)
    return None if value is allowed[0] or value is allowed[1] else value


def _own_names(cls: type) -> int:
    """How many attributes a class defines itself, Python's own caches left out."""
    return _len(_vars(cls).keys() - _CACHED_CLASS_ATTRIBUTES)


def _contents(cell: types.CellType) -> object:
    try:
        return cell.cell_contents
    except _ValueError:  # a cell not yet (or no longer) bound
        return _EMPTY


def _check_reader(shell, original):
    """`check` as the notebook's test cells see it, once a locked cell has imported it.

    Before the import the name is the lesson's own business (a lesson may use it for another
    value); after it, anything but the original is a rebinding.
    """
    user_ns = member(shell, "_user_ns")
    imported = [False]

    def read():
        value = user_ns.get("check", _EMPTY)
        imported[0] = imported[0] or value is original
        return value if imported[0] else original

    return read


def _changed(probes: list[tuple]) -> list[tuple[str, str]]:
    changed = []
    for kind, label, read, original in probes:
        try:
            now = read()
        except _Exception:  # a deleted attribute or a broken object: changed either way
            now = None
        if _same(now, original):
            continue
        if _type(label) is _tuple:  # a probe of many names: which of them changed
            values = now if _type(now) is _tuple else (None,) * _len(label)
            pairs = _zip(label, values, original, strict=True)
            changed += [(kind, one) for one, a, b in pairs if a is not b]
        else:
            changed.append((kind, label))
    return changed


def _same(now, original) -> bool:
    if _type(original) is _int:
        return _type(now) is _int and now == original
    if _type(original) is _tuple and _type(now) is _tuple:
        return _len(now) == _len(original) and _all(_map(_is, now, original))
    return now is original


def _classes_behind(objects) -> list[type]:
    """The classes through which attributes of `objects` are read, metaclasses first."""
    found: list[type] = []
    for obj in objects:
        for cls in [*_type(_type(obj)).__mro__, *_type(obj).__mro__]:
            if cls is not object and cls is not type and cls not in found:
                found.append(cls)
    return found


def _watched_modules(checks) -> list[types.ModuleType]:
    import statistics

    import numpy
    import scipy.stats
    import torch
    import torch.nn.functional

    return [math, statistics, numpy, scipy.stats, torch, torch.nn.functional, checks]


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
