"""The Validate button of the course's JupyterLab, checking a notebook as `course.py validate` does.

nbgrader's Validate button posts to `/assignments/validate`, whose handler builds nbgrader's own
`Validator`: it runs every cell, the lessons' long experiments included. This server extension
answers the same request with `ftlib_course.validate`, which skips the cells a lesson marks
`grading-skip`, cuts runaway output and still reports the tests when the kernel dies, so the
button gives the same verdict as the terminal command, as fast. The course's lab settings load
it in place of nbgrader's `validate_assignment` extension.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from nbgrader.nbgraderformat import SchemaTooNewError, SchemaTooOldError
from nbgrader.server_extensions.validate_assignment.handlers import NbGraderVersionHandler
from tornado import web

from ftlib_course.validate import validate

_SCHEMA_ADVICE = {
    SchemaTooOldError: "uses an old nbgrader metadata format: back it up, then run "
    "`nbgrader update` on it",
    SchemaTooNewError: "uses a newer nbgrader metadata format than this nbgrader reads",
}


class CourseValidateHandler(JupyterHandler):
    """POST `path` (relative to the lab's root): nbgrader's reply, `{"success", "value"}`."""

    @web.authenticated
    def post(self) -> None:
        path = self.get_argument("path", None) or (self.get_json_body() or {}).get("path")
        if not path:
            raise web.HTTPError(400, "give the notebook's path")
        root = Path(self.settings["root_dir"]).resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root):
            raise web.HTTPError(403, "Access denied: path outside allowed directory")
        self.finish(json.dumps(_reply(target)))


def _reply(notebook: Path) -> dict[str, Any]:
    try:
        return {"success": True, "value": validate(notebook)}
    except (SchemaTooOldError, SchemaTooNewError) as error:
        return {
            "success": False,
            "value": f"The notebook {notebook} {_SCHEMA_ADVICE[type(error)]}.",
        }
    except Exception:  # the button shows the text; the server must answer in any case
        return {"success": False, "value": traceback.format_exc()}


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Register the handlers on the lab's server (Jupyter Server's extension hook)."""
    web_app = server_app.web_app
    web_app.settings["root_dir"] = server_app.root_dir
    base = web_app.settings["base_url"]
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "assignments/validate"), CourseValidateHandler),
            (url_path_join(base, "nbgrader_version"), NbGraderVersionHandler),
        ],
    )


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "ftlib_course.lab_validate"}]
