"""The one place that knows where host files live.

Every host path is resolved here from ``--path.rootfs``, ``--path.procfs`` and
``--path.sysfs`` (node_exporter's meaning, except that procfs and sysfs default
to ``<rootfs>/proc`` and ``<rootfs>/sys`` so that a container with the host at
/host needs one flag). Collectors never build host paths themselves.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Distribution configuration and state files, as host-absolute paths.
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
KDUMP_CONF = "/etc/kdump.conf"  # RHEL, Fedora (kexec-tools / kdump-utils)
KDUMP_TOOLS_DEFAULTS = "/etc/default/kdump-tools"  # Debian, Ubuntu
SYSCONFIG_KDUMP = "/etc/sysconfig/kdump"  # SUSE (RHEL has it too, without KDUMP_SAVEDIR)
KDUMP_TEST_STATUS = "/var/lib/kdump/vmcore-creation.status"  # kdump-utils `kdumpctl test`
LOCALTIME = "/etc/localtime"
SYSTEMD_UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
DISK_BY = "/dev/disk"
KMSG = "/dev/kmsg"  # under --path.rootfs: in a container, the host's /dev is at /host/dev

READ_LIMIT = 1 << 20  # no host text file we parse is legitimately bigger than 1 MiB


@dataclass(frozen=True)
class Host:
    rootfs: Path
    procfs: Path
    sysfs: Path

    @classmethod
    def from_paths(
        cls, rootfs: Path | str = "/", procfs: Path | str | None = None,
        sysfs: Path | str | None = None,
    ) -> Host:
        root = Path(rootfs)
        return cls(
            rootfs=root,
            procfs=Path(procfs) if procfs else root / "proc",
            sysfs=Path(sysfs) if sysfs else root / "sys",
        )

    def root(self, host_path: str | PurePosixPath) -> Path:
        """Where a host-absolute path (``/var/crash``) is visible to us."""
        relative = PurePosixPath(host_path).relative_to("/")
        return self.rootfs / relative

    def proc(self, *parts: str) -> Path:
        return self.procfs.joinpath(*parts)

    def sys(self, *parts: str) -> Path:
        return self.sysfs.joinpath(*parts)

    # Kernel interfaces used by more than one module.
    def cmdline(self) -> Path:
        return self.proc("cmdline")

    def meminfo(self) -> Path:
        return self.proc("meminfo")

    def iomem(self) -> Path:
        return self.proc("iomem")

    def sysctl(self, name: str) -> Path:
        """``kernel.panic`` -> <procfs>/sys/kernel/panic."""
        return self.proc("sys", *name.split("."))

    def sys_kernel(self, name: str) -> Path:
        return self.sys("kernel", name)

    def fadump(self, name: str) -> Path:
        return self.sys("kernel", "fadump", name)

    def debugfs(self, *parts: str) -> Path:
        """debugfs where the kernel mounts it (never mounted by us; root only)."""
        return self.sys("kernel", "debug", *parts)

    def pressure(self, resource: str) -> Path:
        return self.proc("pressure", resource)

    def pstore(self) -> Path:
        return self.sys("fs", "pstore")

    def mountstats(self, pid: str) -> Path:
        """Per mount namespace: ``self`` is ours, ``1`` the host's (with the host PID namespace)."""
        return self.proc(pid, "mountstats")

    def rpc_nfs(self) -> Path:
        return self.proc("net", "rpc", "nfs")

    def mountinfo(self) -> list[Path]:
        """Mount tables to try, host's init namespace first (paths are host-absolute)."""
        return [self.proc("1", "mountinfo"), self.proc("self", "mountinfo")]


def read_text(path: Path, limit: int = READ_LIMIT) -> str:
    """Read a small host file; errors (missing, permission denied) propagate to the caller."""
    with open(path, "rb") as f:
        return f.read(limit).decode("utf-8", errors="replace")


def read_tail(path: Path, limit: int) -> str:
    """The last ``limit`` bytes of a file: dmesg files can be large, their end is what matters."""
    # No symlinks, and a FIFO must not block the open: only a regular file is read.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with open(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        size = st.st_size
        if size > limit:
            f.seek(size - limit)
        return f.read(limit).decode("utf-8", errors="replace")
