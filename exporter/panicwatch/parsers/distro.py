"""Which distribution family an os-release describes: it decides the kdump tooling and fixes."""

from __future__ import annotations

RHEL_FAMILY = frozenset({"rhel", "fedora", "centos", "rocky", "almalinux", "ol", "amzn"})
SUSE_FAMILY = frozenset({"suse", "sles", "sles_sap", "opensuse", "opensuse-leap"})


def ids(os_release: dict[str, str]) -> set[str]:
    return {os_release.get("ID", "")} | set(os_release.get("ID_LIKE", "").split())


def family(os_release: dict[str, str]) -> str:
    """``rhel``, ``debian``, ``suse`` or ``other``."""
    found = ids(os_release)
    if found & RHEL_FAMILY:
        return "rhel"
    if found & {"debian", "ubuntu"}:
        return "debian"
    if found & SUSE_FAMILY:
        return "suse"
    return "other"


def version(os_release: dict[str, str]) -> tuple[int, ...] | None:
    """VERSION_ID as numbers (``9.4`` -> (9, 4)); None when absent or not numeric."""
    try:
        return tuple(int(p) for p in os_release.get("VERSION_ID", "").split("."))
    except ValueError:
        return None
