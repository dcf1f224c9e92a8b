"""Open the course in JupyterLab: `python -m ftlib_course.lab [--instructor] [OPTIONS ...]`.

A learner's lab opens `lessons/` and shows nbgrader's Validate button, but none of the
instructor's tools (the nbgrader menu, the Create Assignment sidebar, formgrader, the course and
assignment lists), which only confuse someone working through a lesson. `--instructor` opens the
course root with all of them. Neither asks about Jupyter news on first start, and in both the
Validate button checks a notebook as `course.py validate` does (`ftlib_course.lab_validate`).

The settings are JupyterLab's own files in `lab_settings/` (disabled plugins in
`labconfig/page_config.json`, setting defaults in `labconfig/default_setting_overrides.json`,
server extensions in `jupyter_server_config.json`). They are put in front of the Jupyter config
path of the one server started here (`JUPYTER_CONFIG_PATH`), so the user's own Jupyter
configuration stays as it is and still applies to every other lab they start.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = Path(__file__).resolve().parent / "lab_settings"


def is_root() -> bool:
    """True when this process runs as the superuser (Docker, most cloud notebooks)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def lab_command(
    folder: str | Path | None = None,
    *,
    instructor: bool = False,
    options: Sequence[str] = (),
    python: str = sys.executable,
) -> list[str]:
    """The command line that starts the course's JupyterLab.

    Args:
        folder: the folder the lab opens; None opens `lessons/` (`--instructor`: the course root,
            which formgrader needs to see).
        instructor: open the course root instead of `lessons/` (the tools are set by
            `lab_environment`).
        options: further options for `jupyter lab`, e.g. `--no-browser`.
        python: the interpreter that has JupyterLab installed.

    Returns:
        The argument list; `--allow-root` is added when running as root, where JupyterLab would
        otherwise refuse to start.
    """
    if folder is None:
        folder = ROOT if instructor else ROOT / "lessons"
    command = [python, "-m", "jupyterlab", str(folder)]
    if is_root():
        command.append("--allow-root")
    return [*command, *options]


def lab_environment(
    *,
    instructor: bool = False,
    python: str = sys.executable,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """`environ` with the course's JupyterLab settings first on `JUPYTER_CONFIG_PATH`.

    Args:
        instructor: keep nbgrader's instructor tools; otherwise the learner's settings hide them.
        python: the interpreter of the lab; its folder goes first on PATH, as if its environment
            were activated, so that `pip` and `python` in the lab's terminals are the course's.
        environ: the environment to extend (default: this process's).

    Returns:
        A new environment for the server's process; `environ` itself is not changed.
    """
    settings = ["everyone"] if instructor else ["learner", "everyone"]
    return {
        **environ,
        "JUPYTER_CONFIG_PATH": _prepend(
            [str(SETTINGS / name) for name in settings], environ.get("JUPYTER_CONFIG_PATH")
        ),
        "PATH": _prepend([str(Path(python).parent)], environ.get("PATH")),
    }


def _prepend(folders: list[str], search_path: str | None) -> str:
    return os.pathsep.join([*folders, *([search_path] if search_path else [])])


def main(argv: Sequence[str] | None = None, *, python: str = sys.executable) -> int:
    """Start JupyterLab for the course with `python` and wait for it; returns its exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Any other option goes to `jupyter lab` (see `jupyter lab --help`).",
    )
    parser.add_argument(
        "--instructor",
        action="store_true",
        help="open the course root with nbgrader's tools for instructors (formgrader, ...)",
    )
    parser.add_argument("--folder", help="the folder to open (default: lessons/)")
    args, options = parser.parse_known_args(argv)
    folder = None if args.folder is None else Path(args.folder).resolve()
    command = lab_command(folder, instructor=args.instructor, options=options, python=python)
    environment = lab_environment(instructor=args.instructor, python=python)
    # From the course root, as for every other course command: nbgrader's Validate button reads
    # nbgrader_config.py from the server's working directory.
    server = subprocess.Popen(command, cwd=ROOT, env=environment)
    # Ctrl-C reaches JupyterLab too, which then asks whether to shut down and stops its kernels:
    # this process must outlive it rather than die at the first Ctrl-C and cut that short. A
    # SIGTERM (a service manager, `kill`) is passed on, so that no server is left behind.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: server.terminate())
    return server.wait()


if __name__ == "__main__":
    sys.exit(main())
