"""Snapshot of kdump: is a crash kernel loaded, how much memory is reserved and asked for,
is capture enabled at boot, and where do dumps go (and is there room)."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import dataclass

from panicwatch import host as paths
from panicwatch.parsers import crashkernel, kdump_config, mountinfo, procfs, recommended
from panicwatch.reader import HostReader, describe_error, is_absent
from panicwatch.safepath import UnsafePath, resolve_safely
from panicwatch.snapshots.mounts import read_mounts

_ARCH_ALIASES = {
    "x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64",
    "ppc64le": "ppc64le", "powerpc64le": "ppc64le", "ppc64el": "ppc64le", "s390x": "s390x",
}
DEBIAN_UNIT = "kdump-tools.service"
KDUMP_UNIT = "kdump.service"


@dataclass(frozen=True)
class ServiceState:
    unit: str | None  # None: no kdump unit installed at all
    enabled: bool  # enabled at boot (and, on Debian, USE_KDUMP=1)
    use_kdump: bool | None  # Debian's switch in /etc/default/kdump-tools
    masked: bool = False


@dataclass(frozen=True)
class TargetState:
    target: kdump_config.DumpTarget
    local_dir: str | None  # host-absolute directory dumps are written to, when local
    exists: bool | None  # None: not checked (remote, or on a filesystem that may block)
    free_bytes: int | None
    unchecked_reason: str | None = None


@dataclass(frozen=True)
class KdumpState:
    arch: str
    kernel_release: str
    os_release: dict[str, str]
    fadump: bool  # ppc64 firmware-assisted dump is the mechanism
    supported: bool  # the kernel can load a crash kernel at all (CONFIG_CRASH_DUMP)
    loaded: bool
    reserved_bytes: int
    low_unmeasured: bool  # a split reservation whose low part an unprivileged reader can't see
    system_ram: int | None
    request: crashkernel.CrashkernelRequest
    recommendation: recommended.Recommendation | None
    service: ServiceState
    target: TargetState
    test: kdump_config.KdumpTestStatus | None
    complete: bool  # /proc/cmdline and the RAM size could be read


def detect_arch(kernel_release: str) -> str:
    """The host's architecture: RHEL-style releases end in it, otherwise ours is the host's."""
    for suffix, arch in _ARCH_ALIASES.items():
        if kernel_release.split("+")[0].endswith(("." + suffix, "-" + suffix)):
            return arch
    machine = platform.machine()
    return _ARCH_ALIASES.get(machine, machine)


def read_os_release(reader: HostReader) -> dict[str, str]:
    for candidate in paths.OS_RELEASE:
        text = reader.text(reader.host.root(candidate))
        if text is not None:
            return kdump_config.parse_shell_vars(text)
    return {}


def _read_iomem(reader: HostReader) -> list[procfs.IomemRange] | None:
    path = reader.host.iomem()
    text = reader.text(path)
    if text is None:
        return None
    ranges, skipped = procfs.parse_iomem(text)
    if skipped:
        reader.problem(f"{path}: {skipped} unrecognised lines skipped")
    return ranges


def _read_system_ram(reader: HostReader, iomem: list[procfs.IomemRange] | None,
                     reserved: int) -> int | None:
    """memblock's RAM size, which crashkernel= ranges are matched against.

    /proc/iomem's top-level "System RAM" is that size (given with its addresses visible);
    unprivileged readers see zeroed addresses, so fall back to MemTotal plus the crash
    reservation (MemTotal excludes it), which the kernel's 128M round-up then absorbs in
    all but edge cases.
    """
    if iomem:
        ram = sum(r.size for r in iomem if r.depth == 0 and r.name == "System RAM")
        if ram:
            return ram
    meminfo = reader.parsed(reader.host.meminfo(), procfs.parse_meminfo, required=True)
    return meminfo["MemTotal"] + reserved if meminfo else None


def _read_service(reader: HostReader) -> ServiceState:
    host = reader.host
    defaults = reader.text(host.root(paths.KDUMP_TOOLS_DEFAULTS))
    debian = defaults is not None or _unit_installed(host, DEBIAN_UNIT)
    unit = DEBIAN_UNIT if debian else KDUMP_UNIT
    if not _unit_installed(host, unit):
        return ServiceState(None, False, None)
    masked = _link_target(host.root(f"{paths.SYSTEMD_UNIT_DIRS[0]}/{unit}")) == "/dev/null"
    enabled = not masked and _unit_wanted(host, unit)
    use_kdump = None
    if debian:
        use_kdump = kdump_config.parse_kdump_tools_defaults(defaults or "")[1]
        enabled = enabled and use_kdump
    return ServiceState(unit, enabled, use_kdump, masked)


def _link_target(path: os.PathLike[str]) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _unit_installed(host: paths.Host, unit: str) -> bool:
    return any(os.path.lexists(host.root(f"{d}/{unit}")) for d in paths.SYSTEMD_UNIT_DIRS)


def _unit_wanted(host: paths.Host, unit: str) -> bool:
    """Enabled = a symlink in some <target>.wants/ or .requires/ (what `systemctl enable` makes)."""
    for unit_dir in paths.SYSTEMD_UNIT_DIRS:
        try:
            entries = list(os.scandir(host.root(unit_dir)))
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith((".wants", ".requires")) and os.path.lexists(
                os.path.join(entry.path, unit)
            ):
                return True
    return False


def read_dump_target(reader: HostReader) -> kdump_config.DumpTarget:
    """The first distribution config that names a target, else the tools' default path.

    An unreadable config is not guessed past: the target is then ``unknown``.
    """
    parsers: tuple[tuple[str, Callable[[str], kdump_config.DumpTarget | None]], ...] = (
        (paths.KDUMP_CONF, kdump_config.parse_kdump_conf),
        (paths.KDUMP_TOOLS_DEFAULTS, lambda text: kdump_config.parse_kdump_tools_defaults(text)[0]),
        (paths.SYSCONFIG_KDUMP, kdump_config.parse_sysconfig_kdump),
    )
    for config, parse in parsers:
        path = reader.host.root(config)
        try:
            text = paths.read_text(path)
        except OSError as e:
            if is_absent(e):
                continue
            reader.problem(describe_error(e))
            return kdump_config.DumpTarget("unknown", "", config=config)
        try:
            target = parse(text)
        except procfs.ParseError as e:
            reader.problem(f"{path}: {e}")
            return kdump_config.DumpTarget("unknown", "", config=config)
        if target is not None:
            return target
    return kdump_config.DumpTarget("local", kdump_config.DEFAULT_PATH, config="default")


def _device_mountpoint(reader: HostReader, device: str,
                       mounts: list[mountinfo.Mount]) -> str | None:
    """Where a kdump.conf device (/dev/x, UUID=, LABEL=, PARTUUID=) is mounted, if it is."""
    name = device
    key, sep, value = device.partition("=")
    if sep and key in ("UUID", "LABEL", "PARTUUID", "PARTLABEL"):
        link = reader.host.root(f"{paths.DISK_BY}/by-{key.lower()}/{value}")
        try:
            name = "/dev/" + os.path.basename(os.readlink(link))
        except OSError:
            return None
    for m in mounts:
        if m.source == name and m.root == "/":
            return m.mountpoint
    return None


def locate_target(reader: HostReader, target: kdump_config.DumpTarget,
                  mounts: list[mountinfo.Mount] | None) -> TargetState:
    if target.type == "local":
        local_dir: str | None = target.path
    elif target.type == "device" and target.device and mounts is not None:
        mountpoint = _device_mountpoint(reader, target.device, mounts)
        if mountpoint is None:
            return TargetState(target, None, None, None, f"{target.device} is not mounted")
        local_dir = mountpoint.rstrip("/") + "/" + target.path.lstrip("/")
    else:
        why = (f"{target.config} could not be read" if target.type == "unknown"
               else f"dumps go to {target.type} {target.label}")
        return TargetState(target, None, None, None, why)
    if mounts is None:
        return TargetState(target, local_dir, None, None, "mount table unreadable")
    if "\x00" in local_dir:  # no path holds one; the file is garbled
        why = f"{target.config}: the dump path holds a NUL byte"
        reader.problem(why)
        return TargetState(target, None, None, None, why)
    try:
        real = resolve_safely(reader.host, local_dir, mounts)
    except UnsafePath as e:
        # A stat or statvfs there could hang the scrape on a dead server.
        return TargetState(target, local_dir, None, None, f"{e}: not checked from the scrape")
    except OSError as e:
        reader.problem(describe_error(e))
        return TargetState(target, local_dir, None, None, describe_error(e))
    path = reader.host.root(real) if real else None
    if path is None or not path.is_dir():
        return TargetState(target, local_dir, False, None)
    try:
        st = os.statvfs(path)
    except OSError as e:
        reader.problem(describe_error(e))
        return TargetState(target, real, True, None)
    return TargetState(target, real, True, st.f_bavail * st.f_frsize)


def read_target_state(reader: HostReader) -> TargetState:
    return locate_target(reader, read_dump_target(reader), reader.snapshot(read_mounts))


def read_kdump(reader: HostReader) -> KdumpState:
    host = reader.host
    kernel_release = (reader.text(host.sysctl("kernel.osrelease")) or "").strip()
    arch = detect_arch(kernel_release)
    os_release = read_os_release(reader)

    iomem = _read_iomem(reader)
    hidden = iomem is not None and procfs.iomem_addresses_hidden(iomem)
    fadump_enabled = reader.first_integer(host.fadump("enabled"), host.sys_kernel("fadump_enabled"))
    fadump = bool(fadump_enabled)
    if fadump:
        registered = reader.first_integer(
            host.fadump("registered"), host.sys_kernel("fadump_registered"))
        loaded = registered == 1
        supported = True
        reserved = reader.integer(host.fadump("mem_reserved")) or 0
        low_unmeasured = False
    else:
        # A kernel without CONFIG_CRASH_DUMP has no kexec_crash_* files: nothing can be loaded.
        crash_loaded = reader.integer(host.sys_kernel("kexec_crash_loaded"))
        supported = crash_loaded is not None
        loaded = crash_loaded == 1
        crash_size = reader.integer(host.sys_kernel("kexec_crash_size")) or 0
        crash_ranges = [r for r in iomem or [] if r.name == "Crash kernel"]
        # kexec_crash_size counts the low region only on newer kernels; iomem always does.
        reserved = max(crash_size, 0 if hidden else sum(r.size for r in crash_ranges))
        low_unmeasured = hidden and len(crash_ranges) > 1

    system_ram = _read_system_ram(reader, None if hidden else iomem, reserved)
    cmdline_text = reader.text(host.cmdline(), required=True)
    cmdline = cmdline_text or ""
    if fadump and not crashkernel.crashkernel_arguments(cmdline):
        # fadump_reserve_mem= is the older way to size the fadump area.
        cmdline = cmdline.replace("fadump_reserve_mem=", "crashkernel=")
    # Range lists and plain sizes are both checked against RAM: without it, nothing resolves.
    request = (crashkernel.resolve(cmdline, system_ram, arch) if system_ram is not None
               else crashkernel.unresolved(cmdline))
    recommendation = (
        recommended.recommend(os_release, arch, kernel_release, fadump, system_ram)
        if system_ram else None
    )
    test_status = reader.parsed(host.root(paths.KDUMP_TEST_STATUS), kdump_config.parse_test_status)
    return KdumpState(
        arch=arch,
        kernel_release=kernel_release,
        os_release=os_release,
        fadump=fadump,
        supported=supported,
        loaded=loaded,
        reserved_bytes=reserved,
        low_unmeasured=low_unmeasured,
        system_ram=system_ram,
        request=request,
        recommendation=recommendation,
        service=_read_service(reader),
        target=reader.snapshot(read_target_state),
        test=test_status,
        complete=cmdline_text is not None and system_ram is not None,
    )
