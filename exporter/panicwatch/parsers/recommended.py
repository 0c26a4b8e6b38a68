"""The crashkernel= size each distribution recommends for a machine's RAM and architecture.

Tables are the distributions' own, resolved with the kernel's range rules so that an
undersized reservation shows up against what the vendor would have set. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from panicwatch.parsers.crashkernel import CrashkernelSyntaxError, resolve_ranges

# kdump-utils kdump-lib.sh, kdump_get_arch_recommend_crashkernel() (Fedora, RHEL 9/10).
# Not modelled: +64M with SME/SEV, +150M/+200M with mlx5, +384M with an SMMU on 64k.
KDUMP_UTILS = {
    "x86_64": "2G-64G:256M,64G-:512M",
    "s390x": "2G-64G:256M,64G-:512M",
    "aarch64": "2G-4G:256M,4G-64G:320M,64G-:576M",
    "aarch64+64k": "2G-4G:356M,4G-64G:420M,64G-:676M",
    "ppc64le": "2G-4G:384M,4G-16G:512M,16G-64G:1G,64G-128G:2G,128G-:4G",
    "ppc64le+fadump": (
        "4G-16G:768M,16G-64G:1G,64G-128G:2G,128G-1T:4G,1T-2T:6G,2T-4T:12G,4T-8T:20G,"
        "8T-16T:36G,16T-32T:64G,32T-64T:128G,64T-:180G"
    ),
}
# kdump-tools' /etc/default/grub.d/kdump-tools.cfg.
UBUNTU_2404 = "2G-4G:320M,4G-32G:512M,32G-64G:1024M,64G-128G:2048M,128G-:4096M"
UBUNTU_OLD = "512M-:192M"
DEBIAN = "384M-:128M"

RHEL_FAMILY = {"rhel", "fedora", "centos", "rocky", "almalinux", "ol", "amzn"}


@dataclass(frozen=True)
class Recommendation:
    size: int
    table: str  # the crashkernel= value the distribution would set
    source: str  # whose table it is


def _version_at_least(version: str, minimum: tuple[int, ...]) -> bool:
    try:
        parts = tuple(int(p) for p in version.split("."))
    except ValueError:
        return False
    return parts >= minimum


def recommended_table(os_release: dict[str, str], arch: str, kernel_release: str,
                      fadump: bool) -> tuple[str, str] | None:
    """(crashkernel= table, source) for this distribution, or None when it has no table."""
    ids = {os_release.get("ID", "")} | set(os_release.get("ID_LIKE", "").split())
    if ids & RHEL_FAMILY:
        key = arch
        if arch == "aarch64" and "64k" in kernel_release:
            key = "aarch64+64k"
        elif arch == "ppc64le" and fadump:
            key = "ppc64le+fadump"
        table = KDUMP_UTILS.get(key)
        return (table, "kdump-utils") if table else None
    if os_release.get("ID") == "ubuntu":
        if _version_at_least(os_release.get("VERSION_ID", ""), (24, 4)):
            return UBUNTU_2404, "ubuntu kdump-tools (24.04+)"
        return UBUNTU_OLD, "ubuntu kdump-tools"
    if "debian" in ids:
        return DEBIAN, "debian kdump-tools"
    return None  # SUSE calibrates per machine (kdumptool calibrate); unknown distributions


def recommend(os_release: dict[str, str], arch: str, kernel_release: str, fadump: bool,
              system_ram: int) -> Recommendation | None:
    found = recommended_table(os_release, arch, kernel_release, fadump)
    if found is None:
        return None
    table, source = found
    try:
        size, _ = resolve_ranges(table, system_ram)
    except CrashkernelSyntaxError:
        # A range size >= RAM: the machine is too small for the distribution's table.
        size = 0
    return Recommendation(size, table, source)
