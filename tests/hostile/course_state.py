"""Fingerprints of everything a submission could damage, to compare before and after grading."""

from __future__ import annotations

import hashlib
import site
from pathlib import Path

import ftlib
import ftlib_course

GRADING_OUTPUTS = ("gradebook.db", "gradebook.db-journal", "autograded", "feedback")
"""What grading writes in the course root: everything else must stay byte-identical."""


def tree_digest(root: Path, leave_out: tuple[str, ...] = ()) -> dict[str, str]:
    """relative path -> sha256 of every file under `root` (links by their target), sorted.

    Top-level entries named in `leave_out` are not read.
    """
    digests = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] in leave_out or "__pycache__" in relative.parts:
            continue
        if path.is_symlink():
            digests[str(relative)] = f"link to {path.readlink()}"
        elif path.is_file():
            digests[str(relative)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def planted_files() -> set[str]:
    """The entries of site-packages: a planted `sitecustomize.py` or `.pth` shows up here."""
    return {str(entry) for folder in site.getsitepackages() for entry in Path(folder).iterdir()}


def sabotaged_sources(marker: str) -> list[str]:
    """Files of the editable ftlib and ftlib_course sources that contain `marker`.

    Their content is compared by a marker the attacks write, not by a digest, because the
    library's own sources may be edited while a long test runs.
    """
    found = []
    for package in (ftlib, ftlib_course):
        for path in Path(package.__file__).parent.rglob("*.py"):
            if marker in path.read_text(errors="replace"):
                found.append(str(path))
    return found
