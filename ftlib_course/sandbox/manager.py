"""Kernel managers for grading: where and how nbclient's kernel is started.

- `CappedKernelManager`: jupyter_client's async manager whose sockets refuse any message larger
  than `outputs.MESSAGE_LIMIT` unread (used for every notebook the course executes).
- `GuardedKernelManager`: the grading kernel (`ftlib_course.sandbox.kernel`) as a local process
  with the evidence channel passed down, for trusted runs without a sandbox.
- `SandboxKernelManager`: the grading kernel forked by the fork server into its sandbox; it talks
  over Unix sockets (`ipc`), which the grader reaches through `/proc/PID/root`, because the
  kernel has no network at all.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from traitlets import default

from ftlib_course.sandbox import layout, outputs
from ftlib_course.sandbox.evidence import EvidenceChannel
from ftlib_course.sandbox.forkserver import ForkServerClient
from ftlib_course.sandbox.limits import Limits
from ftlib_course.sandbox.zygote import CONNECTION_FILE, EVIDENCE_FD

KERNEL_IP = f"{layout.SOCKETS}/kernel"
"""The prefix of a sandboxed kernel's socket paths, inside the sandbox."""


class _CappedContext(zmq.asyncio.Context):
    def socket(self, socket_type, *args, **kwargs):
        sock = super().socket(socket_type, *args, **kwargs)
        sock.setsockopt(zmq.MAXMSGSIZE, outputs.MESSAGE_LIMIT)
        return sock


class CappedKernelClient(AsyncKernelClient):
    """A kernel client whose sockets refuse oversized messages."""

    @default("context")
    def _context_default(self) -> zmq.asyncio.Context:
        self._created_context = True
        return _CappedContext()


class CappedKernelManager(AsyncKernelManager):
    """An async kernel manager whose sockets, and its clients', refuse oversized messages."""

    @default("context")
    def _context_default(self) -> zmq.asyncio.Context:
        self._created_context = True
        return _CappedContext()

    @default("client_class")
    def _client_class_default(self) -> str:
        return f"{__name__}.CappedKernelClient"


def grading_kernel_spec(*, fd: int, roots: list[Path]) -> KernelSpec:
    """The kernel spec of the grading kernel, with its evidence channel on `fd`."""
    settings = {"fd": fd, "roots": [str(root) for root in roots]}
    settings["output_limit"] = outputs.OUTPUT_LIMIT
    module = "ftlib_course.sandbox.kernel"
    argv = [sys.executable, "-m", module, "--guard", json.dumps(settings)]
    return KernelSpec(
        argv=[*argv, "-f", "{connection_file}"],
        display_name="Python 3 (grading)",
        language="python",
        interrupt_mode="signal",
    )


class GuardedKernelManager(CappedKernelManager):
    """The grading kernel as a local child process, outside any sandbox."""

    def __init__(self, *, channel: EvidenceChannel, **kwargs) -> None:
        super().__init__(**kwargs)
        self.channel = channel
        roots = layout.read_only_roots()
        self._kernel_spec = grading_kernel_spec(fd=channel.kernel_fd, roots=roots)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        kw["pass_fds"] = (self.channel.kernel_fd,)
        try:
            await super()._async_launch_kernel(kernel_cmd, **kw)
        finally:
            self.channel.kernel_started()


class SandboxKernelManager(CappedKernelManager):
    """The grading kernel forked into the sandbox by `server`.

    Args:
        server: the fork server.
        channel: the kernel's evidence channel.
        files: name in the kernel's scratch folder -> file to copy there.
        env: the kernel's whole environment.
        limits: what the kernel may use.
    """

    def __init__(
        self,
        *,
        server: ForkServerClient,
        channel: EvidenceChannel,
        files: dict[str, Path],
        env: dict[str, str],
        limits: Limits,
        **kwargs,
    ) -> None:
        super().__init__(transport="ipc", ip=KERNEL_IP, **kwargs)
        self.kernel_id = str(uuid.uuid4())
        self._kernel_spec = grading_kernel_spec(fd=EVIDENCE_FD, roots=layout.read_only_roots())
        self.provisioner = ForkProvisioner(
            kernel_id=self.kernel_id, kernel_spec=self._kernel_spec, parent=self
        )
        self.provisioner.job = (server, channel, files, env, limits)


class ForkProvisioner(LocalProvisioner):
    """Launches a kernel by asking the fork server, not by running a command."""

    job: tuple[ForkServerClient, EvidenceChannel, dict[str, Path], dict[str, str], Limits]

    async def launch_kernel(self, cmd: list[str], **kwargs) -> dict:
        server, channel, files, env, limits = self.job
        km = self.parent
        info = km.get_connection_info()
        info["key"] = info["key"].decode()
        argv = cmd[3:]  # after `python -m ftlib_course.sandbox.kernel`
        argv[argv.index("-f") + 1] = CONNECTION_FILE
        try:
            self.process = server.spawn(
                argv=argv,
                connection_info=info,
                env=env,
                files=files,
                evidence_fd=channel.kernel_fd,
                limits=limits,
            )
        finally:
            channel.kernel_started()
        self.pid, self.pgid, self.cwd = self.process.pid, None, None
        # The grader reaches the kernel's sockets through its root folder.
        host_ip = f"/proc/{self.pid}/root{KERNEL_IP}"
        self.connection_info = {**km.get_connection_info(), "ip": host_ip}
        return self.connection_info
