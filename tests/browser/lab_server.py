"""A JupyterLab server started as `course.py lab` starts it, in a folder of the test's choosing.

It runs `python -m ftlib_course.lab` (the code behind `course.py lab`) on 127.0.0.1 with a random
port and token, and with Jupyter's per-user folders (config, settings, workspaces, runtime) inside
`home`, so that it sees what a learner sees on first start and nothing of this machine's user.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ftlib_course.config import ROOT

_START_SECONDS = 120
_STOP_SECONDS = 30


class LabServer:
    """One running lab; `url(path)` gives an address with the token, `stop()` ends it."""

    def __init__(
        self,
        folder: Path,
        home: Path,
        *,
        instructor: bool = False,
        settings: Mapping[str, Mapping[str, object]] | None = None,
    ) -> None:
        """Start the lab on `folder` with Jupyter's per-user folders in `home`, and `settings`
        (plugin id -> values) as the user's own, as if chosen in the lab's Settings."""
        self.folder = folder
        self._shutting_down = ThreadPoolExecutor(max_workers=1)
        self.token = secrets.token_hex(16)
        self.log = home / "jupyterlab.log"
        runtime = home / "runtime"
        environment = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_RUNTIME_DIR": str(runtime),
            "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            "IPYTHONDIR": str(home / "ipython"),
        }
        command = [
            sys.executable,
            "-m",
            "ftlib_course.lab",
            *(["--instructor"] if instructor else []),
            f"--folder={folder}",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",
            f"--IdentityProvider.token={self.token}",
        ]
        folder.mkdir(parents=True, exist_ok=True)
        home.mkdir(parents=True, exist_ok=True)
        for plugin, values in (settings or {}).items():
            package, name = plugin.split(":")
            path = home / "settings" / package / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        with self.log.open("w") as log:
            # A session of its own, so that stop() reaches the server behind ftlib_course.lab.
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.base = ""
        try:
            self._wait_until_serving(runtime)
        except BaseException:
            self.stop()
            raise

    def url(self, path: str = "lab") -> str:
        separator = "&" if "?" in path else "?"
        return f"{self.base}{path}{separator}token={self.token}"

    def workspace_url(self, workspace: str) -> str:
        """The address of the lab in `workspace`, emptied first, so that the lab restores no tab
        that another page left in it."""
        return self.url(f"lab/workspaces/{workspace}?reset")

    def status(self, path: str) -> int:
        """The HTTP status of GET `path` (with the token): 200 where the server serves it."""
        try:
            with self._request(path) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def setting_default(self, plugin: str, key: str) -> object:
        """The default the lab gives a JupyterLab setting (the schema's, or the course's)."""
        with self._request(f"lab/api/settings/{plugin}") as response:
            return json.load(response)["schema"]["properties"][key]["default"]

    def validate(self, path: str) -> dict:
        """What the Validate button gets back for the notebook at `path` (relative to the lab)."""
        request = urllib.request.Request(
            f"{self.base}assignments/validate",
            data=urllib.parse.urlencode({"path": path}).encode(),
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            return json.load(response)

    def shut_down_kernel(self, notebook: str) -> None:
        """End the kernel of `notebook` (a lab path), so that a finished notebook holds no memory
        or CPU. It returns at once: the server takes a second or two to see the kernel end, and
        `stop()` waits for it."""
        with self._request("api/sessions") as response:
            sessions = [session for session in json.load(response) if session["path"] == notebook]
        for session in sessions:
            self._shutting_down.submit(self._delete_session, session["id"])

    def _delete_session(self, session_id: str) -> None:
        self._request(f"api/sessions/{session_id}", method="DELETE").close()

    def _request(self, path: str, method: str = "GET"):
        request = urllib.request.Request(
            f"{self.base}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        return urllib.request.urlopen(request, timeout=30)

    def stop(self) -> None:
        """End the lab and its kernels: SIGTERM, as a service manager would, then SIGKILL to
        whatever of the lab's process group is left after 30 s."""
        self._shutting_down.shutdown()
        group = self.process.pid  # the session leader's pid names the group
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # ftlib_course.lab passes it on
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=_STOP_SECONDS)
        with contextlib.suppress(ProcessLookupError):  # where all is gone, as it should be
            os.killpg(group, signal.SIGKILL)
        self.process.wait()

    def _wait_until_serving(self, runtime: Path) -> None:
        deadline = time.monotonic() + _START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with status {self.process.returncode}:\n"
                    f"{self.log.read_text()}"
                )
            for info in runtime.glob("jpserver-*.json"):
                try:
                    self.base = json.loads(info.read_text())["url"]
                    if self.status("api/status") == 200:
                        return
                except (ValueError, KeyError, urllib.error.URLError):
                    pass  # the file is still being written, or the server not yet listening
            time.sleep(0.2)
        raise TimeoutError(
            f"JupyterLab did not answer within {_START_SECONDS} s:\n{self.log.read_text()}"
        )
