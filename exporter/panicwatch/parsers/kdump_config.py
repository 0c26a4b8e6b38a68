"""Distribution kdump configuration: where dumps go, whether capture is switched on.

Three formats: RHEL/Fedora /etc/kdump.conf (kdump.conf(5)), Debian/Ubuntu
/etc/default/kdump-tools (shell variables), SUSE /etc/sysconfig/kdump
(KDUMP_SAVEDIR, possibly a URL). Plus os-release and kdump-utils' test status file.
Pure: no I/O.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit

from panicwatch.parsers.procfs import ParseError

DEFAULT_PATH = "/var/crash"
REMOTE_TYPES = frozenset({"nfs", "ssh", "ftp", "sftp", "cifs"})


@dataclass(frozen=True)
class DumpTarget:
    """Where the capture kernel writes the dump.

    type: ``local`` (a directory on the root fs), ``device`` (a filesystem on ``device``,
    dumps under ``path`` inside it), ``raw`` (a partition, no filesystem), or a remote
    kind (nfs, ssh, ftp, sftp, cifs) where ``location`` is the remote address.
    """

    type: str
    path: str
    device: str | None = None
    location: str | None = None
    config: str = ""  # which file said so

    @property
    def remote(self) -> bool:
        return self.type in REMOTE_TYPES

    @property
    def label(self) -> str:
        """The ``path`` label: what an operator would look for."""
        if self.type == "local":
            return self.path
        if self.type == "device":
            return f"{self.device}:{self.path}"
        if self.type == "raw":
            return self.device or ""
        return self.location or self.path


def parse_shell_vars(text: str) -> dict[str, str]:
    """KEY=value lines of a sourced shell file (os-release, /etc/default, sysconfig)."""
    result = {}
    for line in text.split("\n"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ")
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        try:
            words = shlex.split(value, comments=True)
        except ValueError:
            words = [value.strip("\"'")]
        result[key] = " ".join(words)
    return result


def parse_kdump_conf(text: str) -> DumpTarget:
    """/etc/kdump.conf: ``path``, and at most one target (nfs, ssh, raw, <fs> <device>)."""
    path = DEFAULT_PATH
    target: tuple[str, str] | None = None
    for line in text.split("\n"):
        words = line.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        key, value = words[0], words[1]
        if key == "path":
            path = value
        elif key in ("nfs", "nfs4", "ssh", "raw"):
            target = ("nfs" if key == "nfs4" else key, value)
        elif key in ("ext2", "ext3", "ext4", "xfs", "btrfs", "minix", "virtiofs"):
            target = ("device", value)
    if target is None:
        return DumpTarget("local", path, config="kdump.conf")
    kind, value = target
    if kind == "device":
        return DumpTarget("device", path, device=value, config="kdump.conf")
    if kind == "raw":
        return DumpTarget("raw", path, device=value, config="kdump.conf")
    # ssh: user@host, dumps in <path> there; nfs: server:/export, dumps in <export>/<path>.
    location = f"{value}:{path}" if kind == "ssh" else f"{value.rstrip('/')}/{path.lstrip('/')}"
    return DumpTarget(kind, path, location=location, config="kdump.conf")


def parse_kdump_tools_defaults(text: str) -> tuple[DumpTarget, bool]:
    """/etc/default/kdump-tools: (target, USE_KDUMP). SSH and NFS select remote targets."""
    env = parse_shell_vars(text)
    path = env.get("KDUMP_COREDIR") or DEFAULT_PATH
    # kdump-config tests USE_KDUMP numerically: any non-zero integer is on.
    switch = env.get("USE_KDUMP", "0").strip()
    use_kdump = switch.isascii() and switch.isdigit() and int(switch) != 0
    if env.get("SSH"):
        target = DumpTarget("ssh", path, location=f"{env['SSH']}:{path}", config="kdump-tools")
    elif env.get("NFS"):
        target = DumpTarget("nfs", path, location=env["NFS"], config="kdump-tools")
    else:
        target = DumpTarget("local", path, config="kdump-tools")
    return target, use_kdump


def parse_sysconfig_kdump(text: str) -> DumpTarget | None:
    """SUSE /etc/sysconfig/kdump KDUMP_SAVEDIR (a path or URL); None if it is not SUSE's."""
    env = parse_shell_vars(text)
    savedir = env.get("KDUMP_SAVEDIR")
    if savedir is None:
        return None
    savedir = savedir.split()[0] if savedir.split() else DEFAULT_PATH
    try:
        url = urlsplit(savedir)
    except ValueError as e:  # "ftp://[not-an-address/x": Invalid IPv6 URL
        raise ParseError(f"KDUMP_SAVEDIR: {e}") from None
    scheme = url.scheme.lower()
    if scheme in ("", "file"):
        return DumpTarget("local", url.path or DEFAULT_PATH, config="sysconfig/kdump")
    kind = {"scp": "sftp", "smb": "cifs"}.get(scheme, scheme)
    if kind not in REMOTE_TYPES:
        raise ParseError(f"KDUMP_SAVEDIR: unknown scheme {scheme!r}")
    # Credentials never go into a label.
    location = f"{kind}://{url.hostname or ''}{url.path}"
    return DumpTarget(kind, url.path, location=location, config="sysconfig/kdump")


@dataclass(frozen=True)
class KdumpTestStatus:
    status: str  # success, fail, pending, manual
    timestamp: float | None  # when the test was started (kdump_test_id)


def parse_test_status(text: str) -> KdumpTestStatus:
    """kdump-utils: ``<status> kdump_test_id=<epoch>[-<ns>]``."""
    words = text.split()
    if not words or words[0] not in ("success", "fail", "pending", "manual"):
        raise ParseError(f"unknown kdump test status {text.strip()[:40]!r}")
    timestamp = None
    for word in words[1:]:
        key, _, value = word.partition("=")
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", value)
        if key == "kdump_test_id" and m:
            timestamp = int(m.group(1)) + (int(m.group(2)) / 1e9 if m.group(2) else 0.0)
    return KdumpTestStatus(words[0], timestamp)
