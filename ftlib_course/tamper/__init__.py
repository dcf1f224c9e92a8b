"""Static tamper evidence: what a submission's editable cells reach for that no honest answer needs.

The grading sandbox keeps a submission away from the course's files, but the tests run in the
student's own interpreter: a cell that rewrites test cells as they are compiled, rebinds `abs`
or returns a `float` subclass whose comparisons always succeed attacks the tests from inside.
This package reads every cell a student can edit (solution cells, free cells, cells they added;
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
- `test_name`: reading a name only the test cells bind (`_welch`, `expected`): a test's
  reference value (`ftlib_course.tamper.test_names`).
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

The package, in the order a cell meets it: `notebook` (the entry points, `scan_source` and
`scan_notebook`), `syntax` (the cell as IPython runs it), `scanner` (the visitor),
`watchlist` (what it looks for, by kind), `magics` (the magics and shell escapes let through),
`strings` (strings put together from pieces), `rebinding` (which names the tests rely on,
and where rebinding them matters), `bindings` (Python's scoping rules, which that needs) and
`findings` (the locked cells it trusts and the findings it reports).
"""

from ftlib_course.tamper.findings import REVIEW_ONLY, Finding, LockedCell, locked_cells
from ftlib_course.tamper.notebook import MARKERS, scan_notebook, scan_source
from ftlib_course.tamper.rebinding import protected_names

__all__ = [
    "MARKERS",
    "REVIEW_ONLY",
    "Finding",
    "LockedCell",
    "locked_cells",
    "protected_names",
    "scan_notebook",
    "scan_source",
]
