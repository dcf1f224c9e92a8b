"""The course's nbgrader settings for code that runs nbgrader in-process.

The nbgrader command line reads `nbgrader_config.py` from its working directory, but
`NbGraderAPI` and `Validator` read no file at all. `course_config` loads that same file, so the
command line, the validate wrapper and the tests all grade with one set of settings.
"""

from __future__ import annotations

from pathlib import Path

from traitlets.config import Config, PyFileConfigLoader

ROOT = Path(__file__).resolve().parents[1]
CONFIG_FILE = ROOT / "nbgrader_config.py"


def course_config(root: str | Path | None = None) -> Config:
    """Load the course's `nbgrader_config.py`.

    Args:
        root: another folder to use as the course root (with its own `solutions/`, gradebook and
            exchange), e.g. a copy of the course or a test's temporary directory; its own
            `nbgrader_config.py` is loaded when it has one, else this repository's. None keeps
            the repository.

    Returns:
        A traitlets `Config` to pass as `config=` to `NbGraderAPI`, `Validator` or an nbgrader app.

    Raises:
        FileNotFoundError: if `nbgrader_config.py` is not next to this package (ftlib_course was
            installed without the course repository).
    """
    root = None if root is None else Path(root).resolve()
    config_file = CONFIG_FILE
    if root is not None and (root / CONFIG_FILE.name).is_file():
        config_file = root / CONFIG_FILE.name
    if not config_file.is_file():
        raise FileNotFoundError(
            f"no nbgrader_config.py at {config_file}; run this from a clone of the course "
            "repository installed with `pip install -e .`"
        )
    config = PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config()
    if root is not None:
        config.CourseDirectory.root = str(root)
        config.Exchange.root = str(root / "exchange")
    return config
