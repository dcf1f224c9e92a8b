"""Static tamper evidence: see `ftlib_course.tamper.scanner`."""

from ftlib_course.tamper.scanner import (
    MARKERS,
    REVIEW_ONLY,
    Finding,
    LockedCell,
    locked_cells,
    protected_names,
    scan_notebook,
    scan_source,
)

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
