"""What a grading kernel sees of the machine: the bubblewrap command that builds its world.

The fork server runs in this world, and every kernel it forks gets a fresh copy of the writable
parts. Visible, read-only: the system's programs and libraries (`/usr`, `/lib*`, `/bin`, a few
files of `/etc`), the Python environment (the virtual environment, the interpreter it was made
from, the editable sources of `ftlib` and `ftlib_course`) and the lessons' data (the torch hub
cache, scikit-learn's data folder, where they exist). Writable, per kernel: its scratch folder
(its working directory and HOME), `/tmp` and `/dev/shm`. Nothing else of the course root, the
home folders or the host's `/tmp` exists in there (a course cloned under `/tmp` still works:
its read-only folders are bound on top of each fresh `/tmp`); the network is an empty namespace.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

SCRATCH = "/scratch"
"""The kernel's working folder and HOME inside the sandbox."""

SOCKETS = "/run/kernel"
"""Where a kernel's zmq sockets live inside the sandbox (a small tmpfs of its own)."""

_SYSTEM = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
_ETC = [
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "passwd",
    "group",
    "nsswitch.conf",
    "hosts",
    "mime.types",
    "fonts",
    "alternatives",
]
_EDITABLE_PACKAGES = ["ftlib", "ftlib_course"]
_PASSED_ON = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "FTLIB_DEVICE",
    "NBGRADER_EXECUTION",
    "NBGRADER_VALIDATING",
)
_INLINE_FIGURES = "module://matplotlib_inline.backend_inline"


def python_executable() -> Path:
    """This interpreter with the folders above it resolved, but not the file itself: a virtual
    environment's `python` links to the base interpreter, which would not find the environment.
    Where `.venv` is itself a link, only the resolved path exists inside the sandbox."""
    executable = Path(sys.executable)
    return Path(os.path.realpath(executable.parent)) / executable.name


def python_roots() -> list[Path]:
    """The virtual environment, its base interpreter and the editable sources, deduplicated."""
    roots = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.base_exec_prefix)]
    roots.append(Path(os.path.realpath(sys.executable)).parent.parent)
    for name in _EDITABLE_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            roots.extend(Path(location) for location in spec.submodule_search_locations)
    return _outermost(Path(os.path.realpath(root)) for root in roots)


def data_roots() -> dict[str, Path]:
    """environment variable -> existing data folder the lessons read (torch hub, scikit-learn)."""
    home = Path.home()
    cache = Path(os.environ.get("XDG_CACHE_HOME", home / ".cache"))
    candidates = {
        "TORCH_HOME": Path(os.environ.get("TORCH_HOME", cache / "torch")),
        "SCIKIT_LEARN_DATA": Path(os.environ.get("SCIKIT_LEARN_DATA", home / "scikit_learn_data")),
    }
    return {name: path.resolve() for name, path in candidates.items() if path.is_dir()}


def read_only_roots() -> list[Path]:
    """Every folder the kernel may read, besides its own scratch, /tmp, /dev and /proc."""
    system = [Path(path) for path in _SYSTEM if Path(path).exists()]
    etc = [Path("/etc") / name for name in _ETC if (Path("/etc") / name).exists()]
    return _outermost([*system, *etc, *python_roots(), *data_roots().values()])


def _outermost(paths) -> list[Path]:
    """`paths` without duplicates and without folders inside another one of them."""
    kept: list[Path] = []
    for path in sorted(set(paths), key=lambda p: len(p.parts)):
        if not any(path == root or root in path.parents for root in kept):
            kept.append(path)
    return kept


def bubblewrap_command(runtime: Path, program: list[str], env: dict[str, str]) -> list[str]:
    """The bwrap command that runs `program` in the sandbox.

    Args:
        runtime: a host folder bound read-write at the same path (the fork server's socket and
            the inputs of each kernel); each forked kernel hides it again.
        program: the command to run inside.
        env: its whole environment (nothing of the caller's is inherited).

    The process keeps its capabilities inside the sandbox's own user namespace, so that the fork
    server can give each kernel fresh namespaces and mounts; each kernel drops them all before
    it runs anything (`namespaces.drop_all_privileges`).
    """
    command = ["bwrap", "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc"]
    command += ["--unshare-uts", "--unshare-cgroup-try", "--cap-add", "ALL"]
    command += ["--die-with-parent", "--new-session", "--clearenv"]
    for name, value in env.items():
        command += ["--setenv", name, value]
    command += ["--tmpfs", "/tmp"]  # first, so that roots under /tmp are bound on top of it
    for root in read_only_roots():
        command += ["--ro-bind", str(root), str(root)]
    command += ["--proc", "/proc", "--dev", "/dev"]
    command += ["--dir", SCRATCH, "--dir", SOCKETS, "--bind", str(runtime), str(runtime)]
    command += ["--remount-ro", "/", "--chdir", "/"]
    return command + program


def server_environment() -> dict[str, str]:
    """The fork server's whole environment (its own writable place is its /tmp)."""
    return _environment(home="/tmp/server", tmp="/tmp")


def kernel_environment() -> dict[str, str]:
    """A grading kernel's whole environment: HOME and the tools' folders in its scratch folder."""
    return _environment(home=SCRATCH, tmp="/tmp")


def _environment(*, home: str, tmp: str) -> dict[str, str]:
    env = {
        "PATH": f"{python_executable().parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "MPLBACKEND": _INLINE_FIGURES,
        "MPLCONFIGDIR": f"{home}/.config/matplotlib",
        "XDG_CACHE_HOME": f"{home}/.cache",
        "IPYTHONDIR": f"{home}/.ipython",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    env.update({name: str(path) for name, path in data_roots().items()})
    env.update({name: os.environ[name] for name in _PASSED_ON if name in os.environ})
    return env
