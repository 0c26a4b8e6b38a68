"""The crashkernel= size each distribution recommends for a machine's RAM and architecture.

Tables are the distributions' own, resolved with the kernel's range rules so that an
undersized reservation shows up against what the vendor would have set. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from panicwatch.parsers import distro
from panicwatch.parsers.crashkernel import CrashkernelSyntaxError, resolve_ranges

# kdump-utils kdump-lib.sh, kdump_get_arch_recommend_crashkernel() (Fedora 40+, RHEL 10).
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
# The same function in kexec-tools, before kdump-utils split off (RHEL 8.x/9.x, Fedora < 40,
# Amazon Linux): the smallest range starts at 1G instead of 2G.
KEXEC_TOOLS = {
    **KDUMP_UTILS,
    "x86_64": "1G-4G:192M,4G-64G:256M,64G-:512M",
    "s390x": "1G-4G:192M,4G-64G:256M,64G-:512M",
    "aarch64": "1G-4G:256M,4G-64G:320M,64G-:576M",
    "aarch64+64k": "1G-4G:356M,4G-64G:420M,64G-:676M",
}
# kdump-tools' /etc/default/grub.d/kdump-tools.cfg.
UBUNTU_2404 = "2G-4G:320M,4G-32G:512M,32G-64G:1024M,64G-128G:2048M,128G-:4096M"
UBUNTU_OLD = "512M-:192M"
DEBIAN = "384M-:128M"


@dataclass(frozen=True)
class Recommendation:
    size: int
    table: str  # the crashkernel= value the distribution would set
    source: str  # whose table it is


def _uses_kdump_utils(os_release: dict[str, str]) -> bool:
    """kdump-utils replaced kexec-tools' scripts in Fedora 40 and RHEL 10 (and its rebuilds)."""
    version = distro.version(os_release) or (0,)
    name = os_release.get("ID", "")
    if name == "fedora":
        return version >= (40,)
    if name == "amzn":
        return False
    return version >= (10,)


def recommended_table(os_release: dict[str, str], arch: str, kernel_release: str,
                      fadump: bool) -> tuple[str, str] | None:
    """(crashkernel= table, source) for this distribution, or None when it has no table."""
    family = distro.family(os_release)
    if family == "rhel":
        key = arch
        if arch == "aarch64" and "64k" in kernel_release:
            key = "aarch64+64k"
        elif arch == "ppc64le" and fadump:
            key = "ppc64le+fadump"
        tables, source = ((KDUMP_UTILS, "kdump-utils") if _uses_kdump_utils(os_release)
                          else (KEXEC_TOOLS, "kexec-tools"))
        table = tables.get(key)
        return (table, source) if table else None
    if os_release.get("ID") == "ubuntu":
        if (distro.version(os_release) or (0,)) >= (24, 4):
            return UBUNTU_2404, "ubuntu kdump-tools (24.04+)"
        return UBUNTU_OLD, "ubuntu kdump-tools"
    if family == "debian":
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
