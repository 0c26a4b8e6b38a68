"""The distributions' recommended crashkernel= sizes."""

from __future__ import annotations

import pytest

from panicwatch.parsers.recommended import (
    DEBIAN,
    KDUMP_UTILS,
    KEXEC_TOOLS,
    UBUNTU_2404,
    UBUNTU_OLD,
    Recommendation,
    recommend,
    recommended_table,
)

MiB = 1 << 20
GiB = 1 << 30

RHEL9 = {"ID": "rhel", "ID_LIKE": "fedora", "VERSION_ID": "9.4"}
RHEL10 = {"ID": "rhel", "ID_LIKE": "centos fedora", "VERSION_ID": "10.0"}
FEDORA = {"ID": "fedora", "VERSION_ID": "40"}
FEDORA39 = {"ID": "fedora", "VERSION_ID": "39"}
ROCKY = {"ID": "rocky", "ID_LIKE": "rhel centos fedora", "VERSION_ID": "9.3"}
UBUNTU_2404_OS = {"ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "24.04"}
UBUNTU_2204_OS = {"ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "22.04"}
DEBIAN_OS = {"ID": "debian", "VERSION_ID": "12"}
SLES = {"ID": "sles", "ID_LIKE": "suse", "VERSION_ID": "15.5"}
OPENSUSE = {"ID": "opensuse-leap", "ID_LIKE": "suse opensuse", "VERSION_ID": "15.5"}
ARCH = {"ID": "arch"}

X86_KERNEL = "5.14.0-427.13.1.el9_4.x86_64"
ARM_KERNEL = "5.14.0-427.13.1.el9_4.aarch64"
ARM_64K_KERNEL = "5.14.0-427.13.1.el9_4.aarch64+64k"


@pytest.mark.parametrize(
    ("ram", "size"),
    [
        (1 * GiB, 0),
        (2 * GiB - 128 * MiB, 0),
        (2 * GiB - 1 * MiB, 256 * MiB),  # rounds up to 2G
        (2 * GiB, 256 * MiB),
        (16 * GiB, 256 * MiB),
        (64 * GiB - 256 * MiB, 256 * MiB),
        (64 * GiB, 512 * MiB),
        (1 << 40, 512 * MiB),
    ],
)
def test_rhel10_x86_64(ram: int, size: int) -> None:
    assert recommend(RHEL10, "x86_64", X86_KERNEL, False, ram) == Recommendation(
        size, "2G-64G:256M,64G-:512M", "kdump-utils")


def test_rhel10_x86_64_small_machine_below_every_size() -> None:
    # 512M: the 64G-:512M entry's size is not below RAM, the kernel would reject the table.
    assert recommend(RHEL10, "x86_64", X86_KERNEL, False, 512 * MiB) == Recommendation(
        0, "2G-64G:256M,64G-:512M", "kdump-utils")


@pytest.mark.parametrize(
    ("arch", "kernel", "ram", "size", "table"),
    [
        ("x86_64", X86_KERNEL, 768 * MiB, 0, "1G-4G:192M,4G-64G:256M,64G-:512M"),
        ("x86_64", X86_KERNEL, 1 * GiB, 192 * MiB, "1G-4G:192M,4G-64G:256M,64G-:512M"),
        ("x86_64", X86_KERNEL, 4 * GiB - 128 * MiB, 192 * MiB, "1G-4G:192M,4G-64G:256M,64G-:512M"),
        ("x86_64", X86_KERNEL, 16 * GiB, 256 * MiB, "1G-4G:192M,4G-64G:256M,64G-:512M"),
        ("x86_64", X86_KERNEL, 64 * GiB, 512 * MiB, "1G-4G:192M,4G-64G:256M,64G-:512M"),
        ("s390x", "5.14.0-427.el9.s390x", 2 * GiB, 192 * MiB, "1G-4G:192M,4G-64G:256M,64G-:512M"),
        ("aarch64", ARM_KERNEL, 1 * GiB, 256 * MiB, "1G-4G:256M,4G-64G:320M,64G-:576M"),
        ("aarch64", ARM_KERNEL, 16 * GiB, 320 * MiB, "1G-4G:256M,4G-64G:320M,64G-:576M"),
        ("aarch64", ARM_64K_KERNEL, 1 * GiB, 356 * MiB, "1G-4G:356M,4G-64G:420M,64G-:676M"),
        ("ppc64le", "5.14.0-427.el9.ppc64le", 8 * GiB, 512 * MiB, KDUMP_UTILS["ppc64le"]),
    ],
)
def test_rhel9_uses_the_kexec_tools_table(arch: str, kernel: str, ram: int, size: int,
                                          table: str) -> None:
    assert recommend(RHEL9, arch, kernel, False, ram) == Recommendation(size, table, "kexec-tools")


@pytest.mark.parametrize(
    ("os_release", "source"),
    [
        (FEDORA, "kdump-utils"),
        (RHEL10, "kdump-utils"),
        ({"ID": "rocky", "ID_LIKE": "rhel centos fedora", "VERSION_ID": "10.0"}, "kdump-utils"),
        (FEDORA39, "kexec-tools"),
        (ROCKY, "kexec-tools"),
        ({"ID": "almalinux", "ID_LIKE": "rhel centos fedora", "VERSION_ID": "8.10"}, "kexec-tools"),
        ({"ID": "centos", "ID_LIKE": "rhel fedora", "VERSION_ID": "9"}, "kexec-tools"),
        ({"ID": "ol"}, "kexec-tools"),  # no VERSION_ID: assume the older tooling
        ({"ID": "amzn", "ID_LIKE": "fedora", "VERSION_ID": "2023"}, "kexec-tools"),
        ({"ID": "somederivative", "ID_LIKE": "rhel", "VERSION_ID": "9.2"}, "kexec-tools"),
    ],
)
def test_rhel_family_tooling_by_version(os_release: dict[str, str], source: str) -> None:
    table = KDUMP_UTILS if source == "kdump-utils" else KEXEC_TOOLS
    assert recommend(os_release, "x86_64", X86_KERNEL, False, 16 * GiB) == Recommendation(
        256 * MiB, table["x86_64"], source)
    assert recommended_table(os_release, "x86_64", X86_KERNEL, False) == (table["x86_64"], source)


@pytest.mark.parametrize(
    ("arch", "kernel", "fadump", "ram", "size", "table"),
    [
        ("s390x", "5.14.0-427.el9.s390x", False, 8 * GiB, 256 * MiB, "2G-64G:256M,64G-:512M"),
        ("aarch64", ARM_KERNEL, False, 2 * GiB, 256 * MiB, "2G-4G:256M,4G-64G:320M,64G-:576M"),
        ("aarch64", ARM_KERNEL, False, 16 * GiB, 320 * MiB, "2G-4G:256M,4G-64G:320M,64G-:576M"),
        ("aarch64", ARM_KERNEL, False, 64 * GiB, 576 * MiB, "2G-4G:256M,4G-64G:320M,64G-:576M"),
        ("aarch64", ARM_64K_KERNEL, False, 2 * GiB, 356 * MiB, "2G-4G:356M,4G-64G:420M,64G-:676M"),
        ("aarch64", ARM_64K_KERNEL, False, 16 * GiB, 420 * MiB, "2G-4G:356M,4G-64G:420M,64G-:676M"),
        ("aarch64", ARM_64K_KERNEL, False, 128 * GiB, 676 * MiB, "2G-4G:356M,4G-64G:420M,64G-:676M"),
        ("ppc64le", "5.14.0-427.el9.ppc64le", False, 8 * GiB, 512 * MiB, KDUMP_UTILS["ppc64le"]),
        ("ppc64le", "5.14.0-427.el9.ppc64le", False, 32 * GiB, 1 * GiB, KDUMP_UTILS["ppc64le"]),
        ("ppc64le", "5.14.0-427.el9.ppc64le", True, 8 * GiB, 768 * MiB, KDUMP_UTILS["ppc64le+fadump"]),
        ("ppc64le", "5.14.0-427.el9.ppc64le", True, 32 * GiB, 1 * GiB, KDUMP_UTILS["ppc64le+fadump"]),
        ("ppc64le", "5.14.0-427.el9.ppc64le", True, 1536 * GiB, 6 * GiB, KDUMP_UTILS["ppc64le+fadump"]),
        ("ppc64le", "5.14.0-427.el9.ppc64le", True, 2 * GiB, 0, KDUMP_UTILS["ppc64le+fadump"]),
    ],
)
def test_rhel10_other_arches(arch: str, kernel: str, fadump: bool, ram: int, size: int,
                            table: str) -> None:
    assert recommend(RHEL10, arch, kernel, fadump, ram) == Recommendation(size, table, "kdump-utils")


def test_fadump_only_matters_on_ppc64le() -> None:
    assert recommend(RHEL10, "x86_64", X86_KERNEL, True, 8 * GiB) == Recommendation(
        256 * MiB, KDUMP_UTILS["x86_64"], "kdump-utils")


def test_64k_only_matters_on_aarch64() -> None:
    assert recommend(RHEL10, "x86_64", "6.8.0+64k", False, 8 * GiB) == Recommendation(
        256 * MiB, KDUMP_UTILS["x86_64"], "kdump-utils")


def test_rhel_unknown_arch_has_no_table() -> None:
    assert recommended_table(RHEL9, "riscv64", "6.8.0", False) is None
    assert recommend(RHEL9, "riscv64", "6.8.0", False, 16 * GiB) is None


@pytest.mark.parametrize(
    ("ram", "size"),
    [
        (1 * GiB, 0),
        (2 * GiB, 320 * MiB),
        (8 * GiB, 512 * MiB),
        (32 * GiB, 1024 * MiB),
        (64 * GiB, 2048 * MiB),
        (256 * GiB, 4096 * MiB),
    ],
)
def test_ubuntu_2404(ram: int, size: int) -> None:
    assert recommend(UBUNTU_2404_OS, "x86_64", "6.8.0-31-generic", False, ram) == Recommendation(
        size, UBUNTU_2404, "ubuntu kdump-tools (24.04+)")


@pytest.mark.parametrize("version", ["24.04", "24.10", "25.04", "26.04"])
def test_ubuntu_newer_releases_use_the_2404_table(version: str) -> None:
    r = recommend({"ID": "ubuntu", "VERSION_ID": version}, "x86_64", "6.8.0-31-generic", False, 8 * GiB)
    assert r == Recommendation(512 * MiB, UBUNTU_2404, "ubuntu kdump-tools (24.04+)")


@pytest.mark.parametrize(
    ("os_release", "ram", "size"),
    [
        (UBUNTU_2204_OS, 8 * GiB, 192 * MiB),
        (UBUNTU_2204_OS, 512 * MiB, 192 * MiB),
        (UBUNTU_2204_OS, 384 * MiB, 0),
        ({"ID": "ubuntu", "VERSION_ID": "20.04"}, 64 * GiB, 192 * MiB),
        ({"ID": "ubuntu", "VERSION_ID": "23.10"}, 8 * GiB, 192 * MiB),
        ({"ID": "ubuntu"}, 8 * GiB, 192 * MiB),  # no VERSION_ID: the older table
        ({"ID": "ubuntu", "VERSION_ID": "noble"}, 8 * GiB, 192 * MiB),
    ],
)
def test_ubuntu_before_2404(os_release: dict[str, str], ram: int, size: int) -> None:
    assert recommend(os_release, "x86_64", "5.15.0-100-generic", False, ram) == Recommendation(
        size, UBUNTU_OLD, "ubuntu kdump-tools")


@pytest.mark.parametrize(
    ("os_release", "ram", "size"),
    [
        (DEBIAN_OS, 8 * GiB, 128 * MiB),
        (DEBIAN_OS, 384 * MiB, 128 * MiB),
        (DEBIAN_OS, 256 * MiB, 0),
        ({"ID": "raspbian", "ID_LIKE": "debian"}, 4 * GiB, 128 * MiB),
    ],
)
def test_debian(os_release: dict[str, str], ram: int, size: int) -> None:
    assert recommend(os_release, "x86_64", "6.1.0-18-amd64", False, ram) == Recommendation(
        size, DEBIAN, "debian kdump-tools")


@pytest.mark.parametrize("os_release", [SLES, OPENSUSE, ARCH, {}, {"ID": "gentoo", "ID_LIKE": ""}])
def test_no_table(os_release: dict[str, str]) -> None:
    assert recommended_table(os_release, "x86_64", "6.4.0-150600.21-default", False) is None
    assert recommend(os_release, "x86_64", "6.4.0-150600.21-default", False, 16 * GiB) is None


def test_tables() -> None:
    assert recommended_table(RHEL10, "aarch64", ARM_64K_KERNEL, False) == (
        "2G-4G:356M,4G-64G:420M,64G-:676M", "kdump-utils")
    assert recommended_table(UBUNTU_2404_OS, "arm64", "6.8.0", False) == (
        "2G-4G:320M,4G-32G:512M,32G-64G:1024M,64G-128G:2048M,128G-:4096M", "ubuntu kdump-tools (24.04+)")
    assert recommended_table(UBUNTU_2204_OS, "x86_64", "5.15.0", False) == (
        "512M-:192M", "ubuntu kdump-tools")
    assert recommended_table(DEBIAN_OS, "x86_64", "6.1.0", False) == ("384M-:128M", "debian kdump-tools")
