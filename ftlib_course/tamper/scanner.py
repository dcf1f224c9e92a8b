"""Static tamper evidence: what a submission's editable cells reach for that no honest answer needs.

The grading sandbox keeps a submission away from the course's files, but the tests run in the
student's own interpreter: a cell that rewrites test cells as they are compiled, rebinds `abs`
or returns a `float` subclass whose comparisons always succeed attacks the tests from inside.
This module reads every cell a student can edit (solution cells, free cells, cells they added;
every cell that is not a locked cell of the release with its released text) with `ast`, after
IPython's own input transformations (so `!cmd` and `%magic` are seen as the calls they become),
and reports findings of these kinds:

- `ipython`: IPython's machinery: `get_ipython`, `In`/`Out`/`_ih`/`_oh`/`_i1`/`_1`... (as
  names, attributes or strings), shell and kernel attributes (`input_transformers_cleanup`,
  `ast_transformers`, `events`, `user_ns`, `run_cell`, `showtraceback`, `history_manager`,
  `sys.stdout.session`, ...), imports of IPython (other than `IPython.display`), ipykernel,
  jupyter_client, zmq, traitlets, and magics and shell escapes other than those an honest
  lesson uses: `%matplotlib`, `?` help, `%time`, `%timeit` and `%%capture` (whose code is
  checked too), `%load_ext autoreload`, `%autoreload`, `%config InlineBackend.x = literal`,
  `%pip`/`!pip` with packages named plainly, and `!ls`, `!nvidia-smi`, `!nproc`, `!df`... with
  plain arguments (none of `{}$;|&<>` and quotes: IPython evaluates what braces hold).
- `builtins`: the `builtins` module, `__builtins__`.
- `rebinding`: binding at module level (assignment, `def`, `class`, `import`, `for`, `with`,
  `global`, walrus, `del`, `match`) a name the tests rely on: a builtin, a name a locked setup
  cell defines or a name a locked cell imports (`torch`, `math`, the checks helpers), when a
  test cell reads it from the module (not a parameter or local of its functions) directly or
  through a locked cell it depends on, and a locked cell after the binding reads it before a
  locked cell binds it again. Importing the same thing again (`import torch`) is fine, and so
  are reusing a name only display cells read (`fig`), a scratch `model = None` above the
  lesson's own `model = ...` and bindings after the last test that reads the name.
- `patching`: assigning or deleting attributes of modules or of anything imported
  (`torch.allclose = ...`, `nn.Linear.forward = ...`), `setattr`/`delattr` on them, assigning
  any special attribute (`x.__class__ = ...`, `Tensor.__eq__ = ...`).
- `subclass`: classes derived from built-in types (`float`, `int`, `bool`, `str`, `list`,
  `dict`, `tuple`, ...), `torch.Tensor`, `nn.Parameter`, NumPy arrays and scalars or the
  `numbers` ABCs, also under another name (`F = float`); classes with a computed base
  (`class X(type(0.5))`); a `metaclass=`; classes made by `type(name, bases, namespace)`.
- `special_method`: defining special methods other than construction, display, container and
  context-manager ones (`__init__`, `__repr__`, `__str__`, `__len__`, `__getitem__`,
  `__setitem__`, `__iter__`, `__next__`, `__contains__`, `__call__`, `__enter__`, `__exit__`,
  `__post_init__`): comparisons, arithmetic, conversions (`__float__`, `__bool__`,
  `__index__`), `__instancecheck__`, `__getattribute__`, ...
- `torch_function`: `__torch_function__`, `__torch_dispatch__`, `torch.overrides`,
  `torch.library`, `torch._C`, Python dispatch modes.
- `introspection`: frames and code objects (`sys._getframe`, `inspect`, `traceback`,
  `linecache`, `f_back`, `f_locals`, `tb_frame`, `co_code`, ...), `globals()`, `vars()`,
  `locals()`, `gc` (other than `gc.collect`), `sys.modules`, `sys.settrace`, `sys.exc_info`
  and other interpreter hooks, special attributes that lead to them (`__globals__`,
  `__self__`, `__code__`, `__subclasses__`, `__dict__`, `__file__`, ...), `__main__`,
  `currentframe` and `linecache` of any module (`logging.currentframe`, `doctest.linecache`),
  and the same names given as strings (`getattr(f, "__globals__")`, `attrgetter("gi_frame.
  f_back")`), also put together from literals (`"__buil" + "tins__"`, `"_" * 2 + ...`,
  `"".join([...])`, `"..."[::-1]`, `"__%s__" % ...`) or from pieces that start or end a special
  name (`f"__{name}__"`).
- `dynamic_code`: `exec`, `eval`, `compile`, `__import__`, `breakpoint`, `importlib`,
  `runpy`, `code`, `marshal`, `pickle.loads`/`load`/`Unpickler`, `shelve`, `dill`, `pydoc`
  (`pydoc.locate`), `doctest`, `types.CodeType`/`FunctionType`/...
- `native`: `ctypes`, `cffi`, `mmap`.
- `exit` (`REVIEW_ONLY`): `os._exit`, `os.abort`: the kernel dies, the tests after it score 0
  and the grading kernel keeps the credit of those before it; a look tells an accident from a
  deliberate attempt to stop the grader.
- `process`: `os.kill`, `os.fork`, `os.system`, `os.exec*`, `os.spawn*`,
  `os.chdir`, `subprocess`, `signal`, `threading`, `multiprocessing`, `concurrent`, `asyncio`,
  `atexit`, `faulthandler`, `socket`, modules reached as attributes of others (`tempfile._os`).
- `grader`: imports of the grading tools (`ftlib_course`, `nbgrader`, `nbformat`, `nbclient`,
  `nbconvert`, `sqlite3`, `sqlalchemy`).
- `markers`: nbgrader's marker text (`BEGIN SOLUTION`, `BEGIN HIDDEN TESTS`, ...) in any cell.
- `active_content`: what would run in the browser of whoever views the submission (see
  `ftlib_course.inert`): markdown whose HTML has scripts, event handlers, iframes, script
  addresses...; the same in string literals of code (`HTML("<img onerror=...>")`);
  `Javascript`, `display_javascript`, the `application/javascript` type.
- `unreadable`: a cell the scan could not read (an expression nested too deep for it): it is
  held, since what it holds is unknown.
- `path` (`REVIEW_ONLY`): string literals that name places outside the notebook's folder
  (absolute paths, `~`, a `..` component), `os.getcwd`, `Path.cwd`, `Path.home` and the
  places of the Python installation (`sys.prefix`, `sys.executable`, `site`, `sysconfig`).
  In the sandbox such places are missing or read-only, so these ask for a look without
  holding the score.

What it does not catch, and why: code that builds names at run time from values it computes
(`getattr(obj, name)` with `name` read from a file, a module outside the lists above),
objects reached through libraries that hand them out (a callback receiving a frame), attacks
inside `pickle`/`torch.load` payloads or files the submission writes and imports, and any
behaviour of honest-looking code (an answer that special-cases the visible test's inputs).
The runtime evidence of the grading kernel and the hardened test cells cover part of this;
the rest is what manual review is for. A cell that does not parse is not scanned (it fails in
the kernel as well); markdown and raw cells are checked for marker text and active content.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import nbformat
from IPython.core.inputtransformer2 import TransformerManager
from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, ClearSolutions

from ftlib_course.inert import active_parts, markdown_active_parts

REVIEW_ONLY = frozenset({"path", "exit"})
"""Kinds that ask for a review without holding the automatic score."""

MARKERS = tuple(
    trait.default_value
    for trait in (
        ClearSolutions.begin_solution_delimeter,
        ClearSolutions.end_solution_delimeter,
        ClearHiddenTests.begin_test_delimeter,
        ClearHiddenTests.end_test_delimeter,
        ClearMarkScheme.begin_mark_scheme_delimeter,
        ClearMarkScheme.end_mark_scheme_delimeter,
    )
)

_TRANSFORMER = TransformerManager()


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Magics an honest lesson may use, with the arguments they may take. No `{` or `$`: IPython
# evaluates what they enclose. For %time, %timeit and %%capture the code they run is scanned.
_ANY_ARGUMENT = re.compile(r"[^{}$]*")
_HARMLESS_MAGICS: dict[str, re.Pattern[str]] = {
    "matplotlib": _ANY_ARGUMENT,
    "pinfo": _ANY_ARGUMENT,
    "pinfo2": _ANY_ARGUMENT,
    "load_ext": re.compile(r"\s*autoreload\s*"),
    "autoreload": re.compile(r"\s*(\d|now|off|on|all|complete|explicit|-p|-l|--print|--log)?\s*"),
    "config": re.compile(
        r"\s*InlineBackend\.\w+\s*=\s*('[\w.-]*'|\"[\w.-]*\"|[\d.]+|True|False)\s*"
    ),
}
_CODE_MAGICS = {"time", "timeit", "capture"}
_MAGIC_OPTION = re.compile(r"^\s*-[a-zA-Z]+(?:\s*\d+)?(?=\s|$)")
# Shell commands that only report on the machine or the notebook's folder, with plain arguments.
_SHELL_COMMAND = re.compile(
    r"\s*(ls|nvidia-smi|nproc|free|df|du|pwd|uname|lscpu|date|hostname)((?:\s+[\w./=:,+@%*-]+)*)\s*"
)
_PIP_OPTIONS = _words("-q --quiet -U --upgrade --no-deps --user -v --verbose")
_PIP_PACKAGE = re.compile(r"[A-Za-z0-9][\w.\-\[\],=<>!~]*")

_IPYTHON_NAMES = re.compile(r"^(get_ipython|In|Out|_ih|_oh|_dh|_i{1,3}|_i\d+|_\d+|__|___)$")

# module -> (kind, attributes that are fine or None when all are flagged)
_MODULES: dict[str, tuple[str, frozenset[str] | None]] = {
    "builtins": ("builtins", None),
    "__builtin__": ("builtins", None),
    "IPython": ("ipython", frozenset({"display"})),
    "ipykernel": ("ipython", None),
    "jupyter_client": ("ipython", None),
    "jupyter_core": ("ipython", None),
    "zmq": ("ipython", None),
    "traitlets": ("ipython", None),
    "comm": ("ipython", None),
    "inspect": (
        "introspection",
        frozenset({"signature", "Signature", "Parameter", "isclass", "isfunction", "getdoc"}),
    ),
    "traceback": ("introspection", None),
    "linecache": ("introspection", None),
    "dis": ("introspection", None),
    "gc": ("introspection", frozenset({"collect", "isenabled", "enable", "disable"})),
    "importlib": ("dynamic_code", None),
    "runpy": ("dynamic_code", None),
    "code": ("dynamic_code", None),
    "codeop": ("dynamic_code", None),
    "marshal": ("dynamic_code", None),
    "_pickle": ("dynamic_code", None),
    "shelve": ("dynamic_code", None),
    "copyreg": ("dynamic_code", None),
    "dill": ("dynamic_code", None),
    "cloudpickle": ("dynamic_code", None),
    "pydoc": ("dynamic_code", None),
    "doctest": ("dynamic_code", None),
    "__main__": ("introspection", None),
    "zipimport": ("dynamic_code", None),
    "pkgutil": ("dynamic_code", None),
    "ctypes": ("native", None),
    "_ctypes": ("native", None),
    "cffi": ("native", None),
    "mmap": ("native", None),
    "subprocess": ("process", None),
    "signal": ("process", None),
    "threading": ("process", None),
    "_thread": ("process", None),
    "multiprocessing": ("process", None),
    "concurrent": ("process", None),
    "asyncio": ("process", None),
    "atexit": ("process", None),
    "faulthandler": ("process", None),
    "pty": ("process", None),
    "socket": ("process", None),
    "ftlib_course": ("grader", None),
    "nbgrader": ("grader", None),
    "nbformat": ("grader", None),
    "nbclient": ("grader", None),
    "nbconvert": ("grader", None),
    "sqlite3": ("grader", None),
    "sqlalchemy": ("grader", None),
    "torch.overrides": ("torch_function", None),
    "torch.library": ("torch_function", None),
    "torch._C": ("torch_function", None),
    "torch.utils._python_dispatch": ("torch_function", None),
}

# module -> (kind, attributes that are flagged); the module's other attributes are fine.
_MODULE_ATTRIBUTES: dict[str, tuple[str, frozenset[str]]] = {
    "sys": (
        "introspection",
        _words(
            "_getframe _current_frames _current_exceptions settrace setprofile gettrace "
            "getprofile addaudithook audit modules meta_path path_hooks path_importer_cache "
            "displayhook excepthook __displayhook__ __excepthook__ breakpointhook unraisablehook "
            "exc_info exception last_traceback last_value last_type last_exc monitoring "
            "remote_exec _xoptions"
        ),
    ),
    "os": (
        "process",
        _words(
            "kill killpg fork forkpty system popen posix_spawn posix_spawnp setsid "
            "register_at_fork chdir fchdir chroot getppid pidfd_open"
        ),
    ),
    "pickle": ("dynamic_code", _words("load loads Unpickler _load _loads _Unpickler")),
    "types": (
        "dynamic_code",
        _words("CodeType FunctionType FrameType TracebackType ModuleType MethodType CellType"),
    ),
    "torch": ("torch_function", frozenset({"_C", "overrides", "library"})),
    "torch.utils": ("torch_function", frozenset({"_python_dispatch"})),
}
_PROCESS_PREFIXES = ("os.exec", "os.spawn")
_EXITS = {"os._exit", "os.abort"}
_PATH_CALLS = {
    "os.getcwd",
    "os.getcwdb",
    "pathlib.Path.cwd",
    "pathlib.Path.home",
    "sys.prefix",
    "sys.exec_prefix",
    "sys.base_prefix",
    "sys.base_exec_prefix",
    "sys.executable",
    "site.getsitepackages",
    "site.getusersitepackages",
    "sysconfig.get_paths",
    "sysconfig.get_path",
}

# Attribute names that mean the same whatever object they are read from.
_ANY_ATTRIBUTE: dict[str, str] = {
    **dict.fromkeys(
        _words(
            "input_transformers_cleanup input_transformers_post input_transformer_manager "
            "ast_transformers user_ns user_global_ns user_ns_hidden run_cell run_cell_async "
            "run_ast_nodes run_code showtraceback showsyntaxerror _showtraceback display_pub "
            "set_custom_exc events shell get_ipython history_manager session pub_thread "
            "parent_header _parent_header get_parent iopub_socket iopub_thread comm_manager"
        ),
        "ipython",
    ),
    **dict.fromkeys(
        _words(
            "_getframe _current_frames settrace setprofile addaudithook f_back f_locals "
            "f_globals f_builtins f_code f_trace tb_frame tb_next gi_frame cr_frame ag_frame "
            "co_code co_consts get_referrers get_referents get_objects meta_path path_hooks "
            "currentframe linecache"
        ),
        "introspection",
    ),
    "_exit": "exit",
    **dict.fromkeys(_words("killpg forkpty"), "process"),
    **dict.fromkeys(
        _words("os _os sys _sys builtins ctypes gc inspect subprocess signal threading _thread"),
        "process",
    ),
    "__torch_function__": "torch_function",
    "__torch_dispatch__": "torch_function",
    "TorchFunctionMode": "torch_function",
    "TorchDispatchMode": "torch_function",
    "Javascript": "active_content",
    "display_javascript": "active_content",
}

# Of those, the names too common as plain words to flag when they appear as strings.
_COMMON_WORDS = _words("os sys gc inspect subprocess signal threading ctypes shell events session")

_NAMES: dict[str, str] = {
    "__builtins__": "builtins",
    "exec": "dynamic_code",
    "eval": "dynamic_code",
    "compile": "dynamic_code",
    "__import__": "dynamic_code",
    "breakpoint": "dynamic_code",
    "globals": "introspection",
    "vars": "introspection",
    "locals": "introspection",
}
_HARMLESS_DUNDER_NAMES = {"__name__", "__doc__", "__debug__"}

_HARMLESS_SPECIAL_METHODS = _words(
    "__init__ __repr__ __str__ __len__ __getitem__ __setitem__ __iter__ __next__ __contains__ "
    "__call__ __enter__ __exit__ __post_init__"
)
_HARMLESS_DUNDER_ATTRIBUTES = _HARMLESS_SPECIAL_METHODS | _words(
    "__name__ __qualname__ __doc__ __module__ __version__ __class__ __annotations__"
)

_SUSPECT_BASES = frozenset(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and not issubclass(value, BaseException) and value is not object
) | _words(
    "Tensor Parameter ndarray generic number floating integer float64 float32 float16 int64 "
    "int32 bool_ Number Real Integral Complex Rational Decimal Fraction"
)

_IPYTHON_STRINGS = re.compile(r"^(_ih|_oh|_dh|_ii|_iii|_i\d+)$")
_SCRIPT_TYPE = re.compile(r"\b(application|text)/(javascript|ecmascript)\b", re.IGNORECASE)

_OUTSIDE_FOLDER = re.compile(r"^(?:/[\w.~-]|~[\w.-]*(?:[/\\]|$)|[A-Za-z]:[\\/]|\\\\)")


@dataclass(frozen=True)
class Finding:
    """One thing a submission reaches for: its kind (see the module docstring), what and where.

    `cell` is the index of the cell in the notebook (None when scanning one source).
    """

    kind: str
    detail: str
    line: int
    cell: int | None = None

    @property
    def holds(self) -> bool:
        """Whether this finding holds the automatic score until an instructor reviews it."""
        return self.kind not in REVIEW_ONLY

    def describe(self) -> str:
        where = f"line {self.line}" if self.cell is None else f"cell {self.cell}, line {self.line}"
        return f"{self.kind}: {self.detail} ({where})"


@dataclass(frozen=True)
class LockedCell:
    """A locked cell of the release as the instructor wrote it (hidden tests included)."""

    grade_id: str
    source: str
    graded: bool


def locked_cells(notebook: nbformat.NotebookNode) -> list[LockedCell]:
    """The locked cells of a lesson in nbgrader's source format (solutions/), in order."""
    cells = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("locked") and meta.get("grade_id"):
            cells.append(LockedCell(meta["grade_id"], cell.source, bool(meta.get("grade"))))
    return cells


def protected_names(locked: Iterable[LockedCell]) -> dict[str, str | None]:
    """Names that the graded cells rely on, mapped to what an import binds them to (else None).

    A name is protected when a test cell reads it, directly or through a statement of a locked
    cell that binds something a test cell needs (a constant computed from another constant),
    and it is a builtin, a name a locked setup cell defines, or a name a locked cell imports.
    Names that only display code reads (`fig, ax`, a loop's results) are not protected: a
    learner's scratch cell that reuses them changes nothing the tests see, and must not be
    flagged.
    """
    needed: set[str] = set()
    defined: dict[str, str | None] = {}
    sources: dict[str, list[set[str]]] = {}  # name -> what each statement binding it reads
    for cell in locked:
        tree = _parse(cell.source)
        if tree is None:
            continue
        if cell.graded:
            needed |= _global_reads(tree)
        for name, target, _ in _module_level_bindings(tree):
            if target is not None:
                defined[name] = target
        if cell.graded:
            continue
        defined.update(dict.fromkeys(_defined_names(tree) - defined.keys()))
        for statement in tree.body:
            reads = _global_reads(statement)
            for name in _defined_names(ast.Module(body=[statement], type_ignores=[])):
                sources.setdefault(name, []).append(reads)
    frontier = list(needed)
    while frontier:
        for reads in sources.get(frontier.pop(), []):
            for name in reads - needed:
                needed.add(name)
                frontier.append(name)
    names = {name: None for name in needed if hasattr(builtins, name)}
    names.update({name: defined[name] for name in needed if name in defined})
    return names


def _global_reads(tree: ast.AST, local: frozenset[str] = frozenset()) -> set[str]:
    """Names `tree` reads from the module namespace: not a function's parameters or locals, not
    comprehension variables (`def f(model): return model` reads no `model`)."""
    if isinstance(tree, ast.Name):
        return {tree.id} if isinstance(tree.ctx, ast.Load) and tree.id not in local else set()
    if isinstance(tree, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        outer: list[ast.AST] = [*tree.args.defaults, *tree.args.kw_defaults]
        outer += getattr(tree, "decorator_list", [])
        inner = local | _local_names(tree)
        body = tree.body if isinstance(tree.body, list) else [tree.body]
        return _reads_of(outer, local) | _reads_of(body, inner)
    if isinstance(tree, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        inner = local | {
            name.id
            for generator in tree.generators
            for name in ast.walk(generator.target)
            if isinstance(name, ast.Name)
        }
        return _reads_of(list(ast.iter_child_nodes(tree)), inner)
    return _reads_of(list(ast.iter_child_nodes(tree)), local)


def _reads_of(nodes: list[ast.AST], local: frozenset[str]) -> set[str]:
    return set().union(*(_global_reads(node, local) for node in nodes if node is not None))


def _local_names(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> frozenset[str]:
    """A function's parameters and the names its body binds, less those it declares global."""
    arguments = function.args
    names = {
        argument.arg
        for argument in [
            *arguments.posonlyargs,
            *arguments.args,
            *arguments.kwonlyargs,
            *filter(None, [arguments.vararg, arguments.kwarg]),
        ]
    }
    declared: set[str] = set()
    body = function.body if isinstance(function.body, list) else [function.body]
    pending = list(body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Global):
            declared.update(node.names)
        names.update(_bound_names(node))
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(_imports(node))
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            pending += list(ast.iter_child_nodes(node))
    return frozenset(names - declared)


def _defined_names(tree: ast.Module) -> set[str]:
    """Names a cell defines on purpose: top-level assignments, functions and classes.

    Loop and `with` variables of a setup cell are incidental; a student reusing them is fine.
    """
    names = set()
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(statement.name)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in getattr(statement, "targets", None) or [statement.target]:
                names |= _target_names(target)
    return names


def _target_names(target: ast.AST) -> set[str]:
    """Names an assignment target binds: `a`, `a, (b, *c)`; not `d` in `d[k] = v`."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return set().union(*map(_target_names, target.elts))
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return set()


def scan_source(
    source: str,
    protected: dict[str, str | None] | None = None,
    modules: dict[str, str] | None = None,
    *,
    settled: frozenset[str] = frozenset(),
) -> list[Finding]:
    """Findings in the source of one code cell.

    Args:
        source: the cell's text, as in the notebook (magics included).
        protected: the result of `protected_names` (None: nothing is protected).
        modules: alias -> dotted module path for names imported anywhere in the notebook, so
            that `np.x` is read as `numpy.x` in a cell that does not import numpy itself.
        settled: protected names that a locked cell binds again before any test reads them:
            binding them in this cell's own statements changes nothing the tests see.

    Returns:
        The findings in source order, markers included.
    """
    findings = _markers(source)
    tree = _parse(source)
    if tree is not None:
        imported = {name: target for name, target in (protected or {}).items() if target}
        aliases = {**imported, **(modules or {}), **_imports(tree), **_type_aliases(tree)}
        findings += _Scanner(protected or {}, aliases, settled).run(tree)
    return sorted(findings, key=lambda finding: finding.line)


def scan_notebook(notebook: nbformat.NotebookNode, locked: Sequence[LockedCell]) -> list[Finding]:
    """Findings in every cell of a submission that is not a locked cell with its released text.

    A cell counts as locked only when its grade_id names a locked cell of the release and its
    text is that cell's text: metadata alone cannot make a cell trusted, since a student can
    write it. Markdown and raw cells are checked for nbgrader's markers only.
    """
    by_id = {cell.grade_id: cell for cell in locked}
    protected = protected_names(locked)
    places, editable = {}, []
    for index, cell in enumerate(notebook.cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        places.setdefault(grade_id, index)
        if grade_id not in by_id or by_id[grade_id].source != cell.source:
            editable.append((index, cell))
    windows = _ReadWindows(_trusted_places(locked, places, notebook))
    modules: dict[str, str] = {}
    for source in [cell.source for cell in locked] + [
        cell.source for _, cell in editable if cell.cell_type == "code"
    ]:
        tree = _readable(source)
        if tree is not None:
            modules.update({**_imports(tree), **_type_aliases(tree)})
    findings = []
    for index, cell in editable:
        try:
            found = _scan_cell(cell, windows.protected_at(index, protected), modules)
        except Exception as error:  # a cell the scan cannot read is held, not passed
            found = [
                Finding(
                    "unreadable",
                    f"the scan could not read this cell ({type(error).__name__}): it is "
                    "held until an instructor reads it",
                    0,
                )
            ]
        findings += [
            Finding(finding.kind, finding.detail, finding.line, index) for finding in found
        ]
    return findings


def _trusted_places(
    locked: Sequence[LockedCell], places: dict[str | None, int], notebook: nbformat.NotebookNode
) -> list[tuple[float, LockedCell]]:
    """Each locked cell with its released text at its place in the submission; one missing from
    it where the release has it (just after the locked cell before it), as grading restores it."""
    trusted, last = [], -1.0
    for cell in locked:
        index = places.get(cell.grade_id)
        if index is None:
            trusted.append((last + 0.5, cell))
            continue
        last = index
        if notebook.cells[index].source == cell.source:
            trusted.append((index, cell))
    return trusted


def _scan_cell(
    cell: nbformat.NotebookNode, protected: tuple[dict[str, str | None], frozenset[str]], modules
) -> list[Finding]:
    if cell.cell_type == "code":
        names, settled = protected
        return scan_source(cell.source, names, modules, settled=settled)
    found = _markers(cell.source)
    parts = markdown_active_parts(cell.source)
    if parts:
        detail = f"markup that runs in the viewer's browser: {', '.join(parts)}"
        found.append(Finding("active_content", detail, 1))
    return found


def _readable(source: str) -> ast.Module | None:
    """`_parse`, or None for a source whose tree is too deep or too large to build."""
    try:
        return _parse(source)
    except (RecursionError, MemoryError):
        return None


class _ReadWindows:
    """Where in a submission rebinding a protected name changes what the tests read.

    The trusted cells are the locked cells with their released text, at their places in the
    submission. A cell reads a name when it uses it before binding it (test cells: anywhere);
    a name a locked cell reads inside a function it defines is read wherever that function is.
    Rebinding a name at position p matters when a cell after p reads it before a trusted cell
    binds it again: a scratch `model = None` above the lesson's own `model = ...` does not.
    """

    def __init__(self, trusted: list[tuple[float, LockedCell]]) -> None:
        self.readers: dict[str, set[float]] = {}
        self.binders: dict[str, list[float]] = {}
        later: dict[str, set[str]] = {}  # name -> names whose functions read it when called
        for index, cell in trusted:
            tree = _readable(cell.source)
            if tree is None:
                continue
            uses: dict[str, str] = {}  # name -> "read" or "bound", whichever comes first
            for statement in tree.body:
                module = ast.Module(body=[statement], type_ignores=[])
                reads = _global_reads(statement)
                _first_uses(statement, uses)
                binds = {name for name, _, _ in _module_level_bindings(module)}
                eager = reads if cell.graded else _eager_reads(module) & reads
                for name in reads - eager:
                    later.setdefault(name, set()).update(binds)
                for name in binds:
                    self.binders.setdefault(name, []).append(index)
                for name in eager:
                    if uses.get(name, "read") == "read":
                        self.readers.setdefault(name, set()).add(index)
        for name in list(later):
            self.readers.setdefault(name, set()).update(self._called_at(name, later, set()))

    def _called_at(self, name: str, later: dict[str, set[str]], seen: set[str]) -> set[float]:
        seen.add(name)
        places: set[float] = set()
        for function in later.get(name, ()):
            places |= self.readers.get(function, set())
            if function not in seen:
                places |= self._called_at(function, later, seen)
        return places

    def protected_at(
        self, position: int, protected: dict[str, str | None]
    ) -> tuple[dict[str, str | None], frozenset[str]]:
        """The protected names a cell at `position` could change for a later reader, and those
        of them that a trusted cell binds again before any reader (`settled`)."""
        names = {
            name: target
            for name, target in protected.items()
            if any(reader > position for reader in self.readers.get(name, ()))
        }
        settled = frozenset(name for name in names if not self._matters(name, position))
        return names, settled

    def _matters(self, name: str, position: int) -> bool:
        rebound = min((b for b in self.binders.get(name, []) if b > position), default=None)
        return any(
            position < reader and (rebound is None or reader <= rebound)
            for reader in self.readers.get(name, ())
        )


# Fields in the order Python runs them, where it differs from the order of the fields.
_EVALUATION_ORDER: dict[type, tuple[str, ...]] = {
    ast.Assign: ("value", "targets"),
    ast.AnnAssign: ("value", "target"),
    ast.NamedExpr: ("value", "target"),
    ast.For: ("iter", "target", "body", "orelse"),
    ast.AsyncFor: ("iter", "target", "body", "orelse"),
    ast.comprehension: ("iter", "target", "ifs"),
    ast.ListComp: ("generators", "elt"),
    ast.SetComp: ("generators", "elt"),
    ast.GeneratorExp: ("generators", "elt"),
    ast.DictComp: ("generators", "key", "value"),
}


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def _first_uses(node: ast.AST, uses: dict[str, str]) -> None:
    """Record in `uses` whether each name `node` uses at module level is first read or bound,
    in the order Python runs it (the value of an assignment before its targets)."""
    if isinstance(node, ast.Name):
        uses.setdefault(node.id, "read" if isinstance(node.ctx, ast.Load) else "bound")
        return
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        for name in _imports(node):
            uses.setdefault(name, "bound")
        return
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        uses.setdefault(node.name, "bound")  # what their bodies read is read when called
        return
    if isinstance(node, ast.Lambda):
        return
    if isinstance(node, ast.AugAssign):
        for name in _target_names(node.target):
            uses.setdefault(name, "read")
    order = _EVALUATION_ORDER.get(type(node))
    children = (
        list(ast.iter_child_nodes(node))
        if order is None
        else [child for field in order for child in _as_list(getattr(node, field, None))]
    )
    for child in children:
        if child is not None:
            _first_uses(child, uses)


def _eager_reads(module: ast.Module) -> set[str]:
    """Names a statement reads when it runs (not inside the functions it defines)."""
    return {
        node.id
        for node in _module_scope(module)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }


def _markers(source: str) -> list[Finding]:
    return [
        Finding("markers", f"nbgrader's marker text {marker!r}", number)
        for number, line in enumerate(source.splitlines(), start=1)
        for marker in MARKERS
        if marker in line
    ]


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(_TRANSFORMER.transform_cell(source))
    except (SyntaxError, ValueError):
        return None


def _imports(tree: ast.AST) -> dict[str, str]:
    """alias -> dotted path of what it names, for every import in `tree`."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    aliases[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _module_level_bindings(tree: ast.Module) -> Iterator[tuple[str, str | None, ast.AST]]:
    """(name, import target or None, node) for every name `tree` binds in the module namespace.

    Comprehension variables are left out (they are local to the comprehension); names a
    function declares `global` are in.
    """
    comprehension_variables = _comprehension_targets(tree)
    for node in _module_scope(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for name, target in _imports(node).items():
                yield name, target, node
        elif id(node) not in comprehension_variables:
            for name in _bound_names(node):
                yield name, None, node
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            for name in node.names:
                yield name, None, node


def _module_scope(tree: ast.Module) -> Iterator[ast.AST]:
    """Nodes of `tree` outside functions, lambdas and class bodies (walrus targets included)."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            pending += [*node.decorator_list, *getattr(node, "bases", [])]
            if not isinstance(node, ast.ClassDef):
                pending += [*node.args.defaults, *node.args.kw_defaults]
            continue
        if isinstance(node, ast.Lambda):
            continue
        pending += [child for child in ast.iter_child_nodes(node) if child is not None]


def _bound_names(node: ast.AST) -> Iterator[str]:
    """Names that `node` binds in the scope it runs in (comprehension variables excluded)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
    elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
        yield node.id
    elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
        yield node.name
    elif isinstance(node, ast.MatchMapping) and node.rest:
        yield node.rest


def _comprehension_targets(tree: ast.AST) -> set[int]:
    """ids of Name nodes that are comprehension variables (local to the comprehension)."""
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.comprehension):
            targets |= {id(name) for name in ast.walk(node.target) if isinstance(name, ast.Name)}
    return targets


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of string constants that are statements of their own (docstrings and the like)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


class _Scanner(ast.NodeVisitor):
    """One pass over a cell's tree, collecting findings."""

    def __init__(
        self,
        protected: dict[str, str | None],
        aliases: dict[str, str],
        settled: frozenset[str] = frozenset(),
    ) -> None:
        self.protected, self.aliases, self.settled = protected, aliases, settled
        self.findings: list[Finding] = []

    def run(self, tree: ast.Module) -> list[Finding]:
        self._check_rebinding(tree)
        self._skip_strings = _docstrings(tree)
        self.visit(tree)
        unique = {(finding.kind, finding.line): finding for finding in reversed(self.findings)}
        return list(unique.values())

    def _flag(self, kind: str, detail: str, node: ast.AST) -> None:
        self.findings.append(Finding(kind, detail, getattr(node, "lineno", 0)))

    def _resolve(self, dotted: str) -> str:
        root, _, rest = dotted.partition(".")
        target = self.aliases.get(root, root)
        return f"{target}.{rest}" if rest else target

    # rebinding -----------------------------------------------------------------------------

    def _check_rebinding(self, tree: ast.Module) -> None:
        for name, target, node in _module_level_bindings(tree):
            if name not in self.protected or (name in self.settled and not _is_global(node)):
                continue
            if target is None:
                self._flag("rebinding", f"rebinds {name!r}, which the tests use", node)
            elif target != self.protected[name]:
                self._flag("rebinding", f"import rebinds {name!r}, which the tests use", node)

    # names, attributes, strings ------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if _IPYTHON_NAMES.match(name):
            self._flag("ipython", f"IPython's {name}", node)
        elif name in _NAMES:
            self._flag(_NAMES[name], f"{name}", node)
        elif name.startswith("__") and name.endswith("__") and name not in _HARMLESS_DUNDER_NAMES:
            self._flag("introspection", f"the special name {name}", node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        storing = isinstance(node.ctx, (ast.Store, ast.Del))
        dotted = _dotted(node)
        module_path = None if dotted is None else self._resolve(dotted)
        if storing:
            self._check_store(node, dotted)
        if attr in _ANY_ATTRIBUTE:
            self._flag(_ANY_ATTRIBUTE[attr], f".{attr}", node)
        elif _IPYTHON_NAMES.match(attr) and not attr.startswith("__"):
            self._flag("ipython", f"IPython's {attr}, read as an attribute", node)
        elif _is_dunder(attr) and attr not in _HARMLESS_DUNDER_ATTRIBUTES and not storing:
            self._flag("introspection", f"the special attribute .{attr}", node)
        elif module_path is not None:
            self._check_module_path(module_path, node)
        self.generic_visit(node)

    def _check_store(self, node: ast.Attribute, dotted: str | None) -> None:
        root = None if dotted is None else dotted.split(".")[0]
        if _is_dunder(node.attr) and node.attr != "__doc__":
            self._flag("patching", f"assigns the special attribute .{node.attr}", node)
        elif root is not None and root in self.aliases and not dotted.startswith("torch.backends."):
            self._flag("patching", f"assigns {dotted}, an attribute of an import", node)

    def _check_module_path(self, path: str, node: ast.AST) -> None:
        if path in _EXITS:
            self._flag("exit", f"{path} ends the kernel: later tests score 0", node)
            return
        if path in _PATH_CALLS:
            self._flag("path", f"{path}: a place outside the notebook's folder", node)
            return
        if path.startswith(_PROCESS_PREFIXES):
            self._flag("process", path, node)
            return
        module, _, attr = path.rpartition(".")
        if module in _MODULE_ATTRIBUTES and attr in _MODULE_ATTRIBUTES[module][1]:
            self._flag(_MODULE_ATTRIBUTES[module][0], path, node)
            return
        for prefix, (kind, allowed) in _MODULES.items():
            if path == prefix and allowed is not None:
                return  # importing it is fine; what it is used for is checked where it is
            if path == prefix or path.startswith(prefix + "."):
                first = path[len(prefix) + 1 :].split(".")[0]
                if allowed is None or first not in allowed:
                    self._flag(kind, path, node)
                return

    def visit_Constant(self, node: ast.Constant) -> None:
        if not isinstance(node.value, str) or id(node) in self._skip_strings:
            return
        self._check_string(node.value, node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        self._check_built_string(node)
        # Only the leading literal of an f-string can make it an absolute path.
        first = node.values[0] if node.values else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            self._check_string(first.value, node)
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                self.visit(value)

    def _check_string(self, text: str, node: ast.AST) -> None:
        if self._check_name_string(text, node):
            return
        parts = text.split(".")
        if len(parts) > 1 and all(part.isidentifier() for part in parts):  # attrgetter("a.b")
            for part in parts:
                self._check_name_string(part, node)
        elif _OUTSIDE_FOLDER.match(text) or ".." in re.split(r"[/\\]", text):
            self._flag("path", f"{text[:60]!r}: a place outside the notebook's folder", node)
        elif _SCRIPT_TYPE.search(text) or ("<" in text and active_parts(text)):
            self._flag("active_content", f"{text[:60]!r}: runs in the viewer's browser", node)

    def _check_name_string(self, text: str, node: ast.AST) -> bool:
        if text in _ANY_ATTRIBUTE and text not in _COMMON_WORDS:
            self._flag(_ANY_ATTRIBUTE[text], f"the name {text!r} as a string", node)
        elif _is_dunder(text) and text not in _HARMLESS_DUNDER_ATTRIBUTES:
            self._flag("introspection", f"the name {text!r} as a string", node)
        elif _IPYTHON_STRINGS.match(text):
            self._flag("ipython", f"IPython's {text} as a string", node)
        else:
            return False
        return True

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self._check_built_string(node)
        self.generic_visit(node)

    def _check_built_string(self, node: ast.AST) -> None:
        """Strings put together from pieces: the whole is checked like a literal."""
        pieces = _string_pieces(node)
        if pieces is None or isinstance(node, ast.Constant):
            return
        if all(piece is not None for piece in pieces):
            self._check_string("".join(pieces), node)
        elif (pieces[0] or "").startswith("__") or (pieces[-1] or "").endswith("__"):
            self._flag("introspection", "a special name put together at run time", node)

    # imports ------------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module_path(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return
        for alias in node.names:
            if alias.name in _ANY_ATTRIBUTE:
                self._flag(
                    _ANY_ATTRIBUTE[alias.name], f"from {node.module} import {alias.name}", node
                )
            elif alias.name == "*":
                self._check_module_path(node.module, node)
            else:
                self._check_module_path(f"{node.module}.{alias.name}", node)

    # definitions and calls -----------------------------------------------------------------

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            dotted = _dotted(base.value if isinstance(base, ast.Subscript) else base)
            if dotted is None:
                self._flag("subclass", f"class {node.name} derives from a computed base", node)
            elif {dotted.split(".")[-1], self._resolve(dotted).split(".")[-1]} & _SUSPECT_BASES:
                self._flag("subclass", f"class {node.name} derives from {dotted}", node)
        for keyword in node.keywords:
            if keyword.arg == "metaclass":
                self._flag("subclass", f"class {node.name} sets a metaclass", node)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if node.name in ("__torch_function__", "__torch_dispatch__"):
            self._flag("torch_function", f"defines {node.name}", node)
        elif _is_dunder(node.name) and node.name not in _HARMLESS_SPECIAL_METHODS:
            self._flag("special_method", f"defines {node.name}", node)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        function = _dotted(node.func)
        if function == "type" and len(node.args) == 3:
            self._flag("subclass", "type(name, bases, namespace) makes a class", node)
        elif _is_string_join(node):
            self._check_built_string(node)
        if function in ("setattr", "delattr") and node.args:
            target = _dotted(node.args[0])
            if target is not None and target.split(".")[0] in self.aliases:
                self._flag("patching", f"{function} on {target}, an import", node)
        call = _ipython_call(node)
        if call is not None and self._is_harmless_ipython_call(node, *call):
            return
        self.generic_visit(node)

    def _is_harmless_ipython_call(self, node: ast.Call, method: str, args: list[str]) -> bool:
        """Whether a magic or shell escape is one an honest lesson uses (its code is scanned)."""
        if method in ("system", "getoutput"):
            return self._is_harmless_command(node, args[0])
        if method not in ("run_line_magic", "run_cell_magic") or len(args) < 2:
            return False
        magic, line = args[0], args[1]
        if magic in _CODE_MAGICS:
            self._scan_magic_code(node, args[1:])
            return True
        if magic == "pip":
            return _is_plain_pip(line)
        return magic in _HARMLESS_MAGICS and _HARMLESS_MAGICS[magic].fullmatch(line) is not None

    def _is_harmless_command(self, node: ast.Call, command: str) -> bool:
        if command.split()[:1] == ["pip"]:
            return _is_plain_pip(command.split(None, 1)[1] if " " in command.strip() else "")
        match = _SHELL_COMMAND.fullmatch(command)
        if match is None:
            return False
        for argument in match.group(2).split():
            if _OUTSIDE_FOLDER.match(argument) or ".." in argument.split("/"):
                self._flag("path", f"!{command[:60]}: a place outside the notebook's folder", node)
        return True

    def _scan_magic_code(self, node: ast.Call, pieces: list[str]) -> None:
        for code in pieces:
            while _MAGIC_OPTION.match(code):
                code = _MAGIC_OPTION.sub("", code, count=1)
            tree = _parse(code)
            if tree is None and code.strip():
                self._flag("ipython", "a magic whose code cannot be read", node)
            elif tree is not None:
                for finding in _Scanner(self.protected, self.aliases, self.settled).run(tree):
                    self._flag(finding.kind, finding.detail, node)


def _ipython_call(node: ast.Call) -> tuple[str, list[str]] | None:
    """(method, string arguments) of `get_ipython().method("...", ...)`, what IPython makes of
    `%magic`, `%%magic` and `!command`; None for any other call."""
    func = node.func
    if not (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Call)
        and _dotted(func.value.func) == "get_ipython"
        and node.args
        and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)
    ):
        return None
    return func.attr, [argument.value for argument in node.args]


def _is_plain_pip(arguments: str) -> bool:
    """`pip list`, `pip show NAME`, `pip install NAME==1.0 -q`: packages by name, no paths."""
    words = arguments.split()
    if words[:1] in (["list"], ["freeze"], ["--version"]):
        return len(words) == 1
    if words[:1] not in (["install"], ["show"]) or len(words) < 2:
        return False
    return all(w in _PIP_OPTIONS or _PIP_PACKAGE.fullmatch(w) for w in words[1:])


def _is_global(node: ast.AST) -> bool:
    """A `global` statement: its name is bound when the function runs, wherever that is."""
    return isinstance(node, ast.Global)


def _is_string_join(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "join"
        and isinstance(node.func.value, ast.Constant)
        and isinstance(node.func.value.value, str)
        and len(node.args) == 1
    )


def _string_pieces(node: ast.AST) -> list[str | None] | None:
    """The pieces of a string put together from literals (None for a piece only known at run
    time), or None when `node` does not build a string: `"__buil" + "tins__"`, `"_" * 2`,
    f-strings, `"".join([...])`, `"%s" % "x"`, `"abc"[::-1]`."""
    if isinstance(node, ast.Constant):
        return [node.value] if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        pieces: list[str | None] = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                inner = None if value.format_spec else _string_pieces(value.value)
                pieces += inner if inner is not None and value.conversion == -1 else [None]
            else:
                pieces += _string_pieces(value) or [None]
        return pieces
    if _is_string_join(node):
        separator, items = node.func.value.value, node.args[0]
        if not isinstance(items, (ast.List, ast.Tuple)):
            return [_folded(items)]
        pieces = []
        for number, item in enumerate(items.elts):
            pieces += ([separator] if number and separator else []) + (
                _string_pieces(item) or [None]
            )
        return pieces
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _string_pieces(node.left), _string_pieces(node.right)
        if left is None and right is None:
            return None
        return (left or [None]) + (right or [None])
    folded = _folded(node)
    return None if folded is None else [folded]


def _folded(node: ast.AST) -> str | None:
    """The value of a string expression made of literals only (repeats, slices, % and
    reversal), or None."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        value = None
    if isinstance(value, str):
        return value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Mod)):
        left = _folded(node.left)
        if left is None or (isinstance(node.op, ast.Mod) and re.search(r"%[^s%(]", left)):
            return None  # only %s: a width could make the string as long as it likes
        try:
            right = ast.literal_eval(node.right)
            if isinstance(node.op, ast.Mult):
                return left * right if isinstance(right, int) and 0 <= right <= 64 else None
            return left % right
        except (ValueError, TypeError, KeyError, SyntaxError):
            return None
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        text = _folded(node.value)
        try:
            bounds = [
                None if part is None else ast.literal_eval(part)
                for part in (node.slice.lower, node.slice.upper, node.slice.step)
            ]
            return None if text is None else text[slice(*bounds)]
        except (ValueError, TypeError, SyntaxError):
            return None
    if isinstance(node, ast.Call) and _dotted(node.func) == "reversed" and len(node.args) == 1:
        text = _folded(node.args[0])
        return None if text is None else text[::-1]
    return None


def _type_aliases(tree: ast.AST) -> dict[str, str]:
    """name -> the type it names, for module-level `F = float` of the types classes must not
    derive from: a class derived from `F` derives from `float`."""
    aliases = {}
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], _dotted(node.value)
            if isinstance(target, ast.Name) and value and value.split(".")[-1] in _SUSPECT_BASES:
                aliases[target.id] = value
    return aliases


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")
