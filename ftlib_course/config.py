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
            exchange), e.g. a test's temporary directory; None keeps the repository.

    Returns:
        A traitlets `Config` to pass as `config=` to `NbGraderAPI`, `Validator` or an nbgrader app.

    Raises:
        FileNotFoundError: if `nbgrader_config.py` is not next to this package (ftlib_course was
            installed without the course repository).
    """
    if not CONFIG_FILE.is_file():
        raise FileNotFoundError(
            f"no nbgrader_config.py at {CONFIG_FILE}; run this from a clone of the course "
            "repository installed with `pip install -e .`"
        )
    config = PyFileConfigLoader(CONFIG_FILE.name, path=str(CONFIG_FILE.parent)).load_config()
    if root is not None:
        root = Path(root).resolve()
        config.CourseDirectory.root = str(root)
        config.Exchange.root = str(root / "exchange")
    return config
