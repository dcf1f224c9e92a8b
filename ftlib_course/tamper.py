"""Static tamper evidence: what a submission's editable cells reach for that no honest answer needs.

The grading sandbox keeps a submission away from the course's files, but the tests run in the
student's own interpreter: a cell that rewrites test cells as they are compiled, rebinds `abs`
or returns a `float` subclass whose comparisons always succeed attacks the tests from inside.
This module reads every cell a student can edit (solution cells, free cells, cells they added;
every cell that is not a locked cell of the release with its released text) with `ast`, after
IPython's own input transformations (so `!cmd` and `%magic` are seen as the calls they become),
and reports findings of these kinds:

- `ipython`: IPython's machinery: `get_ipython`, `In`/`Out`/`_ih`/`_oh`/`_i1`/`_1`...,
  shell attributes (`input_transformers_cleanup`, `ast_transformers`, `events`, `user_ns`,
  `run_cell`, `showtraceback`, ...), shell escapes and magics other than `%matplotlib`,
  `%time`, `%timeit` and `?` help (whose code is checked too), imports of IPython (other
  than `IPython.display`), ipykernel, jupyter_client, zmq, traitlets.
- `builtins`: the `builtins` module, `__builtins__`.
- `rebinding`: binding at module level (assignment, `def`, `class`, `import`, `for`, `with`,
  `global`, walrus, `del`, `match`) a name the tests rely on: a builtin, a name a locked setup
  cell defines or a name a locked cell imports (`torch`, `math`, the checks helpers), when a
  test cell reads it directly or through a locked cell it depends on. Importing the same thing
  again (`import torch`) is fine, and so is reusing a name only display cells read (`fig`).
- `patching`: assigning or deleting attributes of modules or of anything imported
  (`torch.allclose = ...`, `nn.Linear.forward = ...`), `setattr`/`delattr` on them, assigning
  any special attribute (`x.__class__ = ...`, `Tensor.__eq__ = ...`).
- `subclass`: classes derived from built-in types (`float`, `int`, `bool`, `str`, `list`,
  `dict`, `tuple`, ...), `torch.Tensor`, `nn.Parameter`, NumPy arrays and scalars or the
  `numbers` ABCs; a `metaclass=`; classes made by `type(name, bases, namespace)`.
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
  `__self__`, `__code__`, `__subclasses__`, `__dict__`, `__file__`, ...), and the same names
  given as strings (`getattr(f, "__globals__")`).
- `dynamic_code`: `exec`, `eval`, `compile`, `__import__`, `breakpoint`, `importlib`,
  `runpy`, `code`, `marshal`, `types.CodeType`/`FunctionType`/...
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
- `path` (`REVIEW_ONLY`): string literals that name places outside the notebook's folder
  (absolute paths, `~`, a `..` component), `os.getcwd`, `Path.cwd`, `Path.home` and the
  places of the Python installation (`sys.prefix`, `sys.executable`, `site`, `sysconfig`).
  In the sandbox such places are missing or read-only, so these ask for a look without
  holding the score.

What it does not catch, and why: code that builds names at run time from pieces
(`getattr(obj, "_ex" + "it")`, `getattr(module, name)` on a module outside the lists above),
objects reached through libraries that hand them out (a callback receiving a frame), attacks
inside `pickle`/`torch.load` payloads or files the submission writes and imports, and any
behaviour of honest-looking code (an answer that special-cases the visible test's inputs).
The runtime evidence of the grading kernel and the hardened test cells cover part of this;
the rest is what manual review is for. A cell that does not parse is not scanned (it fails in
the kernel as well).
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


# Magics an honest lesson may use; for %time and %timeit the timed code is scanned as well.
_HARMLESS_MAGICS = {"matplotlib", "pinfo", "pinfo2"}
_TIMING_MAGICS = {"time", "timeit"}
_MAGIC_OPTION = re.compile(r"^\s*-[a-zA-Z]+(?:\s+\d+)?")

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
            "set_custom_exc events shell get_ipython"
        ),
        "ipython",
    ),
    **dict.fromkeys(
        _words(
            "_getframe _current_frames settrace setprofile addaudithook f_back f_locals "
            "f_globals f_builtins f_code f_trace tb_frame tb_next gi_frame cr_frame ag_frame "
            "co_code co_consts get_referrers get_referents get_objects meta_path path_hooks"
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
}

# Of those, the names too common as plain words to flag when they appear as strings.
_COMMON_WORDS = _words("os sys gc inspect subprocess signal threading ctypes shell events")

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
            needed |= _loaded_names(tree)
        for name, target, _ in _module_level_bindings(tree):
            if target is not None:
                defined[name] = target
        if cell.graded:
            continue
        defined.update(dict.fromkeys(_defined_names(tree) - defined.keys()))
        for statement in tree.body:
            reads = _loaded_names(statement)
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


def _loaded_names(tree: ast.AST) -> set[str]:
    return {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }


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
) -> list[Finding]:
    """Findings in the source of one code cell.

    Args:
        source: the cell's text, as in the notebook (magics included).
        protected: the result of `protected_names` (None: nothing is protected).
        modules: alias -> dotted module path for names imported anywhere in the notebook, so
            that `np.x` is read as `numpy.x` in a cell that does not import numpy itself.

    Returns:
        The findings in source order, markers included.
    """
    findings = _markers(source)
    tree = _parse(source)
    if tree is not None:
        imported = {name: target for name, target in (protected or {}).items() if target}
        aliases = {**imported, **(modules or {}), **_imports(tree)}
        findings += _Scanner(protected or {}, aliases).run(tree)
    return sorted(findings, key=lambda finding: finding.line)


def scan_notebook(notebook: nbformat.NotebookNode, locked: Sequence[LockedCell]) -> list[Finding]:
    """Findings in every cell of a submission that is not a locked cell with its released text.

    A cell counts as locked only when its grade_id names a locked cell of the release and its
    text is that cell's text: metadata alone cannot make a cell trusted, since a student can
    write it. Markdown and raw cells are checked for nbgrader's markers only.
    """
    released = {cell.grade_id: cell.source for cell in locked}
    protected = protected_names(locked)
    editable = [
        (index, cell)
        for index, cell in enumerate(notebook.cells)
        if released.get(cell.metadata.get("nbgrader", {}).get("grade_id")) != cell.source
    ]
    modules: dict[str, str] = {}
    for source in [*released.values(), *(c.source for _, c in editable if c.cell_type == "code")]:
        tree = _parse(source)
        if tree is not None:
            modules.update(_imports(tree))
    findings = []
    for index, cell in editable:
        found = (
            scan_source(cell.source, protected, modules)
            if cell.cell_type == "code"
            else _markers(cell.source)
        )
        findings += [
            Finding(finding.kind, finding.detail, finding.line, index) for finding in found
        ]
    return findings


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

    def __init__(self, protected: dict[str, str | None], aliases: dict[str, str]) -> None:
        self.protected, self.aliases = protected, aliases
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
            if name not in self.protected:
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
        # Only the leading literal of an f-string can make it an absolute path.
        first = node.values[0] if node.values else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            self._check_string(first.value, node)
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                self.visit(value)

    def _check_string(self, text: str, node: ast.AST) -> None:
        if text in _ANY_ATTRIBUTE and text not in _COMMON_WORDS:
            self._flag(_ANY_ATTRIBUTE[text], f"the name {text!r} as a string", node)
        elif _is_dunder(text) and text not in _HARMLESS_DUNDER_ATTRIBUTES:
            self._flag("introspection", f"the name {text!r} as a string", node)
        elif _OUTSIDE_FOLDER.match(text) or ".." in re.split(r"[/\\]", text):
            self._flag("path", f"{text[:60]!r}: a place outside the notebook's folder", node)

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
            dotted = _dotted(base)
            if dotted is not None and dotted.split(".")[-1] in _SUSPECT_BASES:
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
        elif function in ("setattr", "delattr") and node.args:
            target = _dotted(node.args[0])
            if target is not None and target.split(".")[0] in self.aliases:
                self._flag("patching", f"{function} on {target}, an import", node)
        if self._is_allowed_magic(node):
            self._scan_timed_code(node)
            return
        self.generic_visit(node)

    def _is_allowed_magic(self, node: ast.Call) -> bool:
        func = node.func
        if not (
            isinstance(func, ast.Attribute)
            and func.attr in ("run_line_magic", "run_cell_magic")
            and isinstance(func.value, ast.Call)
            and _dotted(func.value.func) == "get_ipython"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            return False
        return node.args[0].value in _HARMLESS_MAGICS | _TIMING_MAGICS

    def _scan_timed_code(self, node: ast.Call) -> None:
        if node.args[0].value not in _TIMING_MAGICS:
            return
        for argument in node.args[1:]:
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                code = argument.value
                while _MAGIC_OPTION.match(code):
                    code = _MAGIC_OPTION.sub("", code, count=1)
                tree = _parse(code)
                if tree is None and code.strip():
                    self._flag("ipython", "a timing magic whose code cannot be read", node)
                elif tree is not None:
                    for finding in _Scanner(self.protected, self.aliases).run(tree):
                        self._flag(finding.kind, finding.detail, node)


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")
