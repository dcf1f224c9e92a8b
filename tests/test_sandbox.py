"""What a submission can reach from inside its grading kernel: only its own scratch copy.

Each test hands in a notebook whose answer cell probes the sandbox from inside (reads, writes,
network, processes, resources) and prints what it found as JSON; the real nbgrader autograde runs
it in the real sandboxed kernel, and the test reads the printout in the autograded notebook.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
from pathlib import Path

import pytest
from grading_course import (
    GradingCourse,
    answer_cell,
    graded_cell,
    lesson,
    needs_sandbox,
    read_only_cell,
)

from ftlib_course.config import ROOT
from ftlib_course.sandbox import sandbox_problem
from ftlib_course.sandbox.layout import read_only_roots
from ftlib_course.sandbox.limits import writable_controllers

GRADING_OUTPUTS = {"gradebook.db", "autograded", "feedback"}
PROBE_TEST = 'assert probed, "the probe did not run"'
HIDDEN_MARK = "### BEGIN HIDDEN TESTS"


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> GradingCourse:
    needs_sandbox()
    source = lesson(
        read_only_cell("import json, os", "setup"),
        answer_cell("### BEGIN SOLUTION\nprobed = True\n### END SOLUTION"),
        graded_cell(f"{PROBE_TEST}\n{HIDDEN_MARK}\nassert probed\n### END HIDDEN TESTS"),
    )
    return GradingCourse(
        tmp_path_factory.mktemp("course"), source, files={"data.csv": "x,y\n1,2\n"}, max_tasks=64
    )


def _probe(course: GradingCourse, student: str, code: str) -> dict:
    """Grade `code` (which sets `found`) as `student`'s answer; return `found`."""
    graded = course.grade(
        student, course.submission(f"{code}\nprint(json.dumps(found))\nprobed = 1")
    )
    text = graded.text(1)
    assert text, f"the probe printed nothing: {graded.notebook.cells[1].outputs}"
    return json.loads(text.strip().splitlines()[-1])


READ = """
def readable(path):
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read(1)
        return True
    except OSError:
        return False
found = {path: readable(path) for path in PATHS}
"""


def test_kernel_reads_nothing_of_the_course_and_the_machine(course: GradingCourse, tmp_path):
    classmate = course.grade("classmate", course.submission("probed = True"))
    assert classmate.score == 1
    host_tmp = tempfile.NamedTemporaryFile(prefix="host-secret-", delete=False)  # noqa: SIM115
    host_tmp.close()
    paths = [
        str(course.root / "solutions" / "tiny" / "tiny.ipynb"),
        str(course.root / "gradebook.db"),
        str(course.root / "submitted" / "classmate" / "tiny" / "tiny.ipynb"),
        str(course.root / "autograded"),
        str(ROOT / "nbgrader_config.py"),
        str(ROOT / "solutions"),
        str(ROOT / "lessons"),
        "/root/.bashrc",
        "/root/.cache",
        "/home",
        host_tmp.name,
        f"/proc/{os.getpid()}/root/etc/hostname",
        "/etc/shadow",
    ]
    try:
        listing = (
            "found['listings'] = {d: os.listdir(d) for d in ('/root', '/home') if os.path.isdir(d)}"
        )
        found = _probe(course, "reader", f"PATHS = {paths!r}\n{READ}\n{listing}")
    finally:
        os.unlink(host_tmp.name)
    listings = found.pop("listings")
    assert found == dict.fromkeys(paths, False), "readable from the kernel: " + ", ".join(
        path for path, ok in found.items() if ok
    )
    # Home folders exist in there only as the way to a read-only root (an interpreter under
    # /root/.pyenv, say), and show nothing else.
    for folder, names in listings.items():
        for name in names:
            path = Path(folder) / name
            assert any(path == root or path in root.parents for root in read_only_roots()), path


def test_kernel_sees_the_notebook_as_submitted_and_the_lessons_files(course: GradingCourse):
    found = _probe(
        course,
        "own-copy",
        "found = {'cwd': os.getcwd(), 'home': os.path.expanduser('~'),"
        " 'files': sorted(os.listdir()), 'notebook': open('tiny.ipynb').read(),"
        " 'data': open('data.csv').read()}",
    )
    assert found["cwd"] == found["home"]
    assert {"tiny.ipynb", "data.csv"} <= set(found["files"])
    assert found["data"] == "x,y\n1,2\n"
    assert "found = {'cwd'" in found["notebook"], "the copy is not the student's notebook"
    assert "HIDDEN TESTS" not in found["notebook"], "the kernel saw the hidden tests"


WRITE = """
def writable(path):
    try:
        with open(path, "w") as file:
            file.write("x")
        return True
    except OSError:
        return False
found = {path: writable(path) for path in PATHS}
"""


def test_kernel_writes_only_its_scratch_folder_and_the_course_stays_byte_identical(
    course: GradingCourse,
):
    outside = [
        str(course.root / "solutions" / "tiny" / "planted.py"),
        str(course.root / "nbgrader_config.py"),
        str(ROOT / "ftlib" / ".planted.py"),
        str(ROOT / "ftlib_course" / ".planted.py"),
        str(ROOT / ".venv" / ".planted"),
        "/usr/.planted",
        "/etc/.planted",
        "/dev/.planted",
    ]
    inside = ["scratch.txt", "/tmp/tmp.txt", "/dev/shm/shm.txt"]
    before = _tree_digest(course.root)
    try:
        found = _probe(course, "writer", f"PATHS = {outside + inside!r}\n{WRITE}")
    finally:
        planted = [path for path in outside[2:5] if Path(path).exists()]
        for path in planted:
            os.unlink(path)
    assert not planted, f"the kernel planted files in the repository: {planted}"
    assert [path for path in outside if found[path]] == []
    assert all(found[path] for path in inside), found
    assert _tree_digest(course.root) == before, "grading changed the course outside its outputs"


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] in GRADING_OUTPUTS or relative.parts[:2] == ("submitted", "writer"):
            continue
        digest.update(str(relative).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_kernel_has_no_network_not_even_loopback(course: GradingCourse):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        found = _probe(
            course,
            "networker",
            "import socket\n"
            "def reach(host, port):\n"
            "    try:\n"
            "        socket.create_connection((host, port), timeout=2).close()\n"
            "        return True\n"
            "    except OSError:\n"
            "        return False\n"
            f"found = {{'loopback': reach('127.0.0.1', {port}), 'outside': reach('1.1.1.1', 53)}}",
        )
    assert found == {"loopback": False, "outside": False}


def test_kernel_has_a_pid_namespace_of_its_own_and_no_privileges(course: GradingCourse):
    found = _probe(
        course,
        "prober",
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "status = open('/proc/self/status').read()\n"
        "found = {'pid': os.getpid(),"
        " 'pids': sorted(p for p in os.listdir('/proc') if p.isdigit()),"
        " 'caps': status.split('CapEff:')[1].split()[0],"
        " 'new_user_namespace': libc.unshare(0x10000000) == 0,"
        " 'mount': libc.mount(b'none', b'/tmp', b'tmpfs', 0, None) == 0}",
    )
    assert found == {
        "pid": 2,
        "pids": ["1", "2"],  # its init and itself
        "caps": "0000000000000000",
        "new_user_namespace": False,
        "mount": False,
    }


def test_a_fork_bomb_is_stopped_by_the_process_limit(course: GradingCourse):
    if "pids" not in writable_controllers():
        pytest.skip("no writable pids cgroup here: processes are limited only by the kernel's life")
    found = _probe(
        course,
        "bomber",
        "import time\n"
        "forks = 0\n"
        "while forks < 10_000:\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(600)\n"
        "            os._exit(0)\n"
        "    except OSError:\n"
        "        break\n"
        "    forks += 1\n"
        "found = {'forks': forks}",
    )
    assert 0 < found["forks"] < 64
    leftovers = list(writable_controllers()["pids"].glob(f"ftlib-kernel-{os.getpid()}-*"))
    assert leftovers == [], "a kernel's control group outlived it"


def test_sandbox_problem_names_the_fix_when_there_is_one():
    problem = sandbox_problem()
    assert problem is None or "--no-sandbox" in problem
