"""The names, modules and attributes a submission must not reach for, each with its finding kind.

These lists are the scan's whole vocabulary: the visitor (`scanner`) only matches names,
attributes, imports and strings against them. What is listed as fine (`inspect.signature`,
`gc.collect`, `__init__`) is what honest lessons use.
"""

from __future__ import annotations

import builtins
import re


def words(text: str) -> frozenset[str]:
    """The set of the space-separated words of `text`: long lists of names, written as text."""
    return frozenset(text.split())


IPYTHON_NAMES = re.compile(r"^(get_ipython|In|Out|_ih|_oh|_dh|_i{1,3}|_i\d+|_\d+|__|___)$")

# module -> (kind, attributes that are fine or None when all are flagged)
MODULES: dict[str, tuple[str, frozenset[str] | None]] = {
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
MODULE_ATTRIBUTES: dict[str, tuple[str, frozenset[str]]] = {
    "sys": (
        "introspection",
        words(
            "_getframe _current_frames _current_exceptions settrace setprofile gettrace "
            "getprofile addaudithook audit modules meta_path path_hooks path_importer_cache "
            "displayhook excepthook __displayhook__ __excepthook__ breakpointhook unraisablehook "
            "exc_info exception last_traceback last_value last_type last_exc monitoring "
            "remote_exec _xoptions"
        ),
    ),
    "os": (
        "process",
        words(
            "kill killpg fork forkpty system popen posix_spawn posix_spawnp setsid "
            "register_at_fork chdir fchdir chroot getppid pidfd_open"
        ),
    ),
    "pickle": ("dynamic_code", words("load loads Unpickler _load _loads _Unpickler")),
    "types": (
        "dynamic_code",
        words("CodeType FunctionType FrameType TracebackType ModuleType MethodType CellType"),
    ),
    "torch": ("torch_function", frozenset({"_C", "overrides", "library"})),
    "torch.utils": ("torch_function", frozenset({"_python_dispatch"})),
}
PROCESS_PREFIXES = ("os.exec", "os.spawn")
EXITS = {"os._exit", "os.abort"}
PATH_CALLS = {
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
ANY_ATTRIBUTE: dict[str, str] = {
    **dict.fromkeys(
        words(
            "input_transformers_cleanup input_transformers_post input_transformer_manager "
            "ast_transformers user_ns user_global_ns user_ns_hidden run_cell run_cell_async "
            "run_ast_nodes run_code showtraceback showsyntaxerror _showtraceback display_pub "
            "set_custom_exc events shell get_ipython history_manager session pub_thread "
            "parent_header _parent_header get_parent iopub_socket iopub_thread comm_manager "
            "displayhook excepthook ast_node_interactivity"
        ),
        "ipython",
    ),
    **dict.fromkeys(
        words(
            "_getframe _current_frames settrace setprofile addaudithook f_back f_locals "
            "f_globals f_builtins f_code f_trace tb_frame tb_next gi_frame cr_frame ag_frame "
            "co_code co_consts get_referrers get_referents get_objects meta_path path_hooks "
            "currentframe linecache"
        ),
        "introspection",
    ),
    "_exit": "exit",
    **dict.fromkeys(words("killpg forkpty"), "process"),
    **dict.fromkeys(
        words("os _os sys _sys builtins ctypes gc inspect subprocess signal threading _thread"),
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
COMMON_WORDS = words("os sys gc inspect subprocess signal threading ctypes shell events session")

NAMES: dict[str, str] = {
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
HARMLESS_DUNDER_NAMES = {"__name__", "__doc__", "__debug__"}

HARMLESS_SPECIAL_METHODS = words(
    "__init__ __repr__ __str__ __len__ __getitem__ __setitem__ __iter__ __next__ __contains__ "
    "__call__ __enter__ __exit__ __post_init__"
)
HARMLESS_DUNDER_ATTRIBUTES = HARMLESS_SPECIAL_METHODS | words(
    "__name__ __qualname__ __doc__ __module__ __version__ __class__ __annotations__"
)

SUSPECT_BASES = frozenset(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and not issubclass(value, BaseException) and value is not object
) | words(
    "Tensor Parameter ndarray generic number floating integer float64 float32 float16 int64 "
    "int32 bool_ Number Real Integral Complex Rational Decimal Fraction"
)

IPYTHON_STRINGS = re.compile(r"^(_ih|_oh|_dh|_ii|_iii|_i\d+)$")
SCRIPT_TYPE = re.compile(r"\b(application|text)/(javascript|ecmascript)\b", re.IGNORECASE)

OUTSIDE_FOLDER = re.compile(r"^(?:/[\w.~-]|~[\w.-]*(?:[/\\]|$)|[A-Za-z]:[\\/]|\\\\)")
