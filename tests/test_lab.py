"""`course.py lab`: how the course starts JupyterLab, for learners and for instructors.

The lab must start as root (Docker, cloud notebooks), hide nbgrader's instructor tools from
learners with JupyterLab's own settings files, and leave the user's Jupyter configuration alone.
What the pages then look like is checked in a real browser by test_browser.py; these tests need
no browser.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import nbformat
import pytest
from browser.lab_server import LabServer
from tiny_lesson import one_exercise

from ftlib_course import lab
from ftlib_course.lab import SETTINGS, lab_command, lab_environment

LABEXTENSION = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "@jupyter" / "nbgrader"
SERVER_EXTENSIONS = Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.d"


@pytest.mark.parametrize("euid, allowed", [(0, True), (1000, False)])
def test_lab_allows_root_only_when_running_as_root(monkeypatch, euid, allowed):
    monkeypatch.setattr(os, "geteuid", lambda: euid, raising=False)
    assert ("--allow-root" in lab_command()) is allowed


def test_learner_lab_opens_lessons_and_instructor_lab_the_course_root():
    assert lab_command(python="py")[:4] == ["py", "-m", "jupyterlab", str(lab.ROOT / "lessons")]
    assert lab_command(instructor=True, python="py")[3] == str(lab.ROOT)
    assert lab_command(options=["--no-browser"])[-1] == "--no-browser"


def test_course_settings_come_first_and_the_users_own_config_path_stays():
    environ = {"JUPYTER_CONFIG_PATH": "/users/own", "PATH": "/usr/bin"}
    learner = lab_environment(environ=environ, python="/venv/bin/python")
    assert learner["JUPYTER_CONFIG_PATH"].split(os.pathsep) == [
        str(SETTINGS / "learner"),
        str(SETTINGS / "everyone"),
        "/users/own",
    ]
    assert learner["PATH"].split(os.pathsep) == ["/venv/bin", "/usr/bin"]
    instructor = lab_environment(instructor=True, environ=environ)
    assert instructor["JUPYTER_CONFIG_PATH"].split(os.pathsep)[0] == str(SETTINGS / "everyone")
    assert environ == {"JUPYTER_CONFIG_PATH": "/users/own", "PATH": "/usr/bin"}


def test_learner_settings_name_plugins_and_server_extensions_that_nbgrader_ships():
    """A renamed plugin would silently show the instructor's tools again."""
    shipped_plugins = {
        plugin
        for script in LABEXTENSION.glob("static/*.js")
        for plugin in re.findall(r'"(@jupyter/nbgrader:[\w-]+)"', script.read_text())
    }
    page_config = json.loads((SETTINGS / "learner/labconfig/page_config.json").read_text())
    disabled = set(page_config["disabledExtensions"])
    assert disabled <= shipped_plugins
    assert shipped_plugins - disabled == {"@jupyter/nbgrader:validate-assignment"}

    shipped_servers = json.loads((SERVER_EXTENSIONS / "nbgrader.json").read_text())
    server = json.loads((SETTINGS / "learner/jupyter_server_config.json").read_text())
    turned_off = server["ServerApp"]["jpserver_extensions"]
    assert set(turned_off) | {"nbgrader.server_extensions.validate_assignment"} == set(
        shipped_servers["ServerApp"]["jpserver_extensions"]
    )
    assert not any(turned_off.values())


def test_learner_lab_serves_validation_but_not_formgrader(tmp_path):
    server = LabServer(tmp_path / "lessons", tmp_path / "home")
    try:
        assert server.status("formgrader") == 404
        assert server.status("nbgrader_version?version=0") == 200  # the Validate button's server
    finally:
        server.stop()


def test_validate_button_skips_the_cells_a_lesson_marks_as_course_validate_does(tmp_path):
    """The marked cell would break the test if it ran: nbgrader's own handler runs it."""
    notebook = one_exercise(
        "answer = 41\n### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION",
        'assert answer == 42, "expected 42"',
    )
    notebook.cells[0].source = "answer = 42"
    experiment = nbformat.v4.new_code_cell("answer = 0  # a long experiment, say")
    experiment.metadata.tags = ["grading-skip"]
    experiment.metadata.nbgrader = {
        "schema_version": 3,
        "grade": False,
        "solution": False,
        "locked": True,
        "grade_id": "experiment",
    }
    notebook.cells.insert(1, experiment)
    (tmp_path / "lessons").mkdir()
    nbformat.write(notebook, tmp_path / "lessons" / "probe.ipynb")
    server = LabServer(tmp_path / "lessons", tmp_path / "home")
    try:
        assert server.validate("probe.ipynb") == {"success": True, "value": {}}
    finally:
        server.stop()


def test_ctrl_c_leaves_the_lab_to_answer_it(tmp_path):
    """A terminal sends Ctrl-C to the lab and to the `course.py lab` process that waits for it:
    that process must outlive it, or the lab would lose its terminal and its shutdown prompt."""
    server = LabServer(tmp_path / "lessons", tmp_path / "home")
    try:
        os.kill(server.process.pid, signal.SIGINT)
        time.sleep(1)
        assert server.process.poll() is None, server.log.read_text()
        assert server.status("api/status") == 200
    finally:
        server.stop()
    assert "KeyboardInterrupt" not in server.log.read_text()


def test_sigterm_stops_the_lab_behind_the_wrapper(tmp_path):
    """`kill` or a service manager signals the process it started: the lab must go with it."""
    server = LabServer(tmp_path / "lessons", tmp_path / "home")
    try:
        os.kill(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=60)
        with pytest.raises(ProcessLookupError):
            os.killpg(server.process.pid, 0)  # nothing of the lab's process group is left
    finally:
        server.stop()
