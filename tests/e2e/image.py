"""The guest disk image for the real-kernel end-to-end tests (issue 8), built offline and cached.

Three cached layers under $PANICWATCH_E2E_CACHE (default /var/tmp/panicwatch-e2e):

- ``base-<hash>/rootfs``: an mmdebstrap of Debian bookworm (minbase plus PACKAGES, no kernel),
  keyed by the tool, the suite, the mirror and the package list. Half a minute; rebuilt only
  when the list changes.
- ``kernel-<name>-<hash>/rootfs``: the base with one kernel of KERNELS and its headers installed
  with apt (6.1 from bookworm, 6.12 from bookworm-security), keyed by the base and the kernel's
  packages and sources. One or two minutes.
- ``image-<name>-<hash>/``: ``disk.img`` (raw ext4 made with ``mkfs.ext4 -d``), ``vmlinuz``,
  ``initrd.img`` and ``manifest.json``. A copy of the kernel layer, configured (kdump-tools, an NFS
  export to 127.0.0.1 and two loopback mounts of it, panicwatch installed as the README's
  bare-metal section says, with the shipped unit listening on 127.0.0.1:10110, Prometheus with
  alerts/panicwatch.rules.yml, Alertmanager, a webhook receiver writing into the 9p share, the e2e
  agent unit, the crash test module built against the kernel's headers), with panicwatch
  installed in /opt/panicwatch from wheels built and downloaded on the host: the guest never has
  a network. Keyed by the kernel layer, this file, the guest files in tests/e2e/guest/ (except
  agent.py, which the harness copies into the share on every boot), deploy/systemd/,
  pyproject.toml, the exporter's source and the alert rules. About a minute.

The kdump initrd, which kdump-tools would build on the first boot (about 90 s under TCG), is made
in the chroot here, so every boot is a fast one. A build takes an flock on the cache, so
concurrent runs wait for each other instead of building twice; the newest two images are kept.

Run ``python tests/e2e/build_image.py [6.1|6.12]`` to build (or find) one by hand.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from monitoring_stack import alertmanager_config, shortened_for

E2E = Path(__file__).resolve().parent
REPO = E2E.parent.parent
GUEST = E2E / "guest"
RULES = REPO / "alerts" / "panicwatch.rules.yml"
DEPLOY = REPO / "deploy" / "systemd"

SUITE = "bookworm"
MIRROR = os.environ.get("PANICWATCH_E2E_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get("PANICWATCH_E2E_SECURITY_MIRROR",
                                 "http://deb.debian.org/debian-security")
PACKAGES = (
    "systemd-sysv", "udev", "kmod", "kexec-tools", "makedumpfile",
    "kdump-tools", "nfs-kernel-server", "nfs-common", "python3", "iproute2", "procps", "nftables",
    "util-linux", "dbus", "python3-venv", "prometheus", "prometheus-alertmanager", "make",
)


@dataclass(frozen=True)
class Kernel:
    """A kernel series the e2e runs on: Debian's packages for it, and where apt finds them."""

    name: str
    packages: tuple[str, ...]  # image and headers; the headers pull in kbuild and gcc-12
    sources: tuple[str, ...] = ()  # apt lines beyond the base's own bookworm line


# Debian's stock kernel, and the newer series bookworm-security carries.
KERNELS = {k.name: k for k in (
    Kernel("6.1", ("linux-image-amd64", "linux-headers-amd64")),
    Kernel("6.12", ("linux-image-6.12-amd64", "linux-headers-6.12-amd64"),
           (f"deb {SECURITY_MIRROR} {SUITE}-security main",)),
)}
DEFAULT_KERNEL = "6.1"
# The crash test module (tests/e2e/guest/pw_crashtest), built in the image for its kernel.
MODULE = "pw_crashtest"
MODULE_SRC = f"/usr/local/src/{MODULE}"

# host command -> Debian package providing it
HOST_TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "mmdebstrap": "mmdebstrap",
    "mkfs.ext4": "e2fsprogs",
}
DISK_SIZE = "6G"
GUEST_PYTHON = "3.11"  # bookworm's python3
# bookworm has glibc 2.36: any of these manylinux wheels runs there
GUEST_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64",
                   "manylinux_2_34_x86_64")

PANICWATCH_ADDRESS = "127.0.0.1:10110"
PROMETHEUS_ADDRESS = "127.0.0.1:9090"
ALERTMANAGER_ADDRESS = "127.0.0.1:9093"
WEBHOOK_PORT = 9099
SCRAPE_INTERVAL_S = 5
NFS_EXPORT = "/srv/nfs"
NFS_MOUNTS = {"/mnt/nfs3": "vers=3", "/mnt/nfs42": "vers=4.2"}
# Every stat on the mounts is a round trip (no attribute cache), so counters follow the stress
TREE_DIRS, TREE_FILES = 10, 20  # /srv/nfs/tree/dNN/fNNN: 200 files for `panicwatch stress`
NFS_OPTIONS = "proto=tcp,actimeo=0"

BLACKLIST_MODULES = ("bochs", "bochs_drm", "drm_vram_helper", "floppy", "parport", "parport_pc",
                     "ppdev", "pcspkr", "sr_mod", "cdrom", "ata_piix", "kvm", "kvm_amd", "kvm_intel",
                     "i2c_piix4", "serio_raw", "joydev", "psmouse", "evdev", "aesni_intel",
                     "ghash_clmulni_intel", "sha512_ssse3", "sha256_ssse3", "sha1_ssse3",
                     "crc32_pclmul", "polyval_clmulni", "qemu_fw_cfg", "button", "sg")
# kexec-load (kexec reboots: the VM must power off on reboot), LVM/multipath probes, logins
MASKED_UNITS = ("kexec-load.service", "kexec.service", "nfs-blkmap.service",
                "systemd-logind.service", "e2scrub_reap.service")


def cache_root() -> Path:
    return Path(os.environ.get("PANICWATCH_E2E_CACHE", "/var/tmp/panicwatch-e2e"))


@dataclass(frozen=True)
class Image:
    dir: Path
    disk: Path
    kernel: Path
    initrd: Path
    kernel_version: str
    key: str
    built: bool  # False: found in the cache
    timings: dict[str, float]


Log = Callable[[str], None]


def _log(msg: str) -> None:
    print(f"[e2e-image] {msg}", file=sys.stderr, flush=True)


def run(argv: list[str], log: Log = _log, timeout: float = 1800, **kw: object) -> str:
    log("$ " + " ".join(argv))
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]
    if p.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {p.returncode}\n--- stdout\n{p.stdout[-4000:]}\n"
                           f"--- stderr\n{p.stderr[-4000:]}")
    return p.stdout


def missing_host_packages() -> list[str]:
    return sorted({pkg for cmd, pkg in HOST_TOOLS.items() if shutil.which(cmd) is None})


def ensure_host_tools(log: Log = _log) -> None:
    missing = missing_host_packages()
    if not missing:
        return
    log(f"installing host packages {missing}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], log, env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], log, env=env)


def _digest(parts: list[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in parts:
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()[:16]


def base_key() -> str:
    return _digest([("tool", b"mmdebstrap"), ("suite", SUITE.encode()), ("mirror", MIRROR.encode()),
                    ("packages", " ".join(PACKAGES).encode())])


def kernel_key(kernel: Kernel) -> str:
    return _digest([("base", base_key().encode()), ("packages", " ".join(kernel.packages).encode()),
                    ("sources", "\n".join(kernel.sources).encode())])


def image_inputs(kernel: Kernel) -> list[tuple[str, bytes]]:
    files = [Path(__file__), REPO / "pyproject.toml", RULES]
    for tree in (GUEST, DEPLOY, REPO / "exporter" / "panicwatch"):
        files += sorted(p for p in tree.rglob("*") if p.is_file() and p.name != "agent.py"
                        and "__pycache__" not in p.parts and p.suffix != ".pyc")
    return [("kernel", kernel_key(kernel).encode())] + [
        (str(p.relative_to(REPO)), p.read_bytes()) for p in files]


def image_key(kernel: Kernel) -> str:
    return _digest(image_inputs(kernel))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def chroot_mounts(rootfs: Path) -> Iterator[None]:
    """/proc, /sys and /dev inside the rootfs for the chroot steps; always unmounted."""
    mounted: list[Path] = []
    try:
        for fs in ("proc", "sys", "dev"):
            target = rootfs / fs
            subprocess.run(["mount", "--bind", f"/{fs}", str(target)], check=True)
            mounted.append(target)
        yield
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", "-l", str(target)], check=False)


def build_base(log: Log = _log) -> tuple[Path, float]:
    """The bootstrapped rootfs (cached); returns (rootfs, seconds spent bootstrapping).

    mmdebstrap rather than debootstrap: apt's parallel downloads and dpkg without fsync made it
    30 s against debootstrap's 270 s here, for the same package set. It leaves
    /etc/machine-id empty (reproducible images), which systemd would treat as a first boot
    on every boot: one is made here, as debootstrap's systemd postinst does."""
    final = cache_root() / f"base-{base_key()}"
    if (final / "done").exists():
        return final / "rootfs", 0.0
    work = final.with_name(final.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    start = time.monotonic()
    run(["mmdebstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
         str(work / "rootfs"), MIRROR], log, timeout=1800)
    run(["chroot", str(work / "rootfs"), "systemd-machine-id-setup"], log)
    seconds = time.monotonic() - start
    (work / "done").write_text(json.dumps({"packages": PACKAGES, "seconds": seconds}))
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    return final / "rootfs", seconds


def copy_layer(rootfs: Path, final: Path, log: Log) -> tuple[Path, Path]:
    """A fresh work directory beside ``final`` (renamed to it when done) holding a copy of
    ``rootfs``; returns (work directory, its rootfs)."""
    work = final.with_name(final.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    run(["cp", "-a", str(rootfs), str(work / "rootfs")], log)
    return work, work / "rootfs"


def build_kernel_layer(kernel: Kernel, log: Log = _log) -> tuple[Path, dict[str, float]]:
    """The base with the kernel and its headers (cached); returns (rootfs, stage seconds)."""
    final = cache_root() / f"kernel-{kernel.name}-{kernel_key(kernel)}"
    timings: dict[str, float] = {}
    if (final / "done").exists():
        return final / "rootfs", timings
    base, timings["bootstrap"] = build_base(log)
    start = time.monotonic()
    work, rootfs = copy_layer(base, final, log)
    if kernel.sources:
        write(rootfs, "/etc/apt/sources.list.d/pw-e2e.list", "".join(f"{s}\n" for s in kernel.sources))
    shutil.copy2("/etc/resolv.conf", rootfs / "etc/resolv.conf")  # apt in the chroot only
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # kdump-tools' kernel hook would build its initrd with MODULES=dep, which fails in a chroot
    # (it inspects the running kernel); make_initrds builds it later.
    hook = rootfs / "etc/kernel/postinst.d/kdump-tools"
    off = hook.with_name("kdump-tools.pw-e2e-off")
    hook.rename(off)
    try:
        with chroot_mounts(rootfs):
            run(["chroot", str(rootfs), "apt-get", "update", "-qq"], log, env=env)
            run(["chroot", str(rootfs), "apt-get", "install", "-y", "-qq",
                 "--no-install-recommends", *kernel.packages], log, env=env, timeout=1800)
            run(["chroot", str(rootfs), "apt-get", "clean"], log, env=env)
    finally:
        off.rename(hook)
    (rootfs / "etc/resolv.conf").unlink()
    timings["kernel_install"] = time.monotonic() - start
    (work / "done").write_text(json.dumps({"packages": kernel.packages, **timings}))
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    return final / "rootfs", timings


def shortened_rules() -> str:
    """The shipped rules with every `for:` cut to 1 s, as in tests/test_monitoring_e2e.py."""
    return shortened_for(RULES.read_text())


def write(rootfs: Path, path: str, text: str, mode: int = 0o644) -> None:
    target = rootfs / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    target.write_text(text)
    target.chmod(mode)


def enable(rootfs: Path, unit: str, target: str = "multi-user.target") -> None:
    wants = rootfs / "etc/systemd/system" / f"{target}.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / unit
    if not link.is_symlink():
        src = f"/etc/systemd/system/{unit}"
        if not (rootfs / src.lstrip("/")).exists():
            src = f"/lib/systemd/system/{unit}"
        link.symlink_to(src)


def disable(rootfs: Path, unit: str) -> None:
    for link in (rootfs / "etc/systemd/system").glob(f"*.wants/{unit}"):
        link.unlink()


def guest_files() -> dict[str, str]:
    """Every configuration file the image gets, by guest path."""
    mounts = "".join(
        f"ExecStart=/bin/mount -t nfs -o {opts},{NFS_OPTIONS} 127.0.0.1:{NFS_EXPORT} {mnt}\n"
        for mnt, opts in NFS_MOUNTS.items())
    unmounts = "".join(f"ExecStop=-/bin/umount -f -l {mnt}\n" for mnt in NFS_MOUNTS)
    return {
        "/etc/hostname": "pw-guest\n",
        "/etc/hosts": "127.0.0.1 localhost\n127.0.1.1 pw-guest\n",
        "/etc/fstab": (
            "/dev/vda / ext4 rw,errors=remount-ro 0 1\n"
            "share /share 9p trans=virtio,version=9p2000.L,msize=262144,nofail 0 0\n"),
        # Modules udev would load for QEMU's default devices (VGA, floppy, CD-ROM, parallel port,
        # PC speaker, nested KVM, ...): under TCG each costs seconds of boot, none is used here.
        "/etc/modprobe.d/pw-e2e-blacklist.conf": "".join(
            f"blacklist {m}\n" for m in BLACKLIST_MODULES),
        "/etc/systemd/journald.conf.d/pw-e2e.conf": "[Journal]\nStorage=volatile\n",
        "/etc/exports": f"{NFS_EXPORT} 127.0.0.1(rw,sync,no_subtree_check,no_root_squash)\n",
        "/etc/systemd/system/pw-e2e-nfs-mounts.service": f"""\
[Unit]
Description=panicwatch e2e: NFSv3 and NFSv4.2 loopback mounts of {NFS_EXPORT}
Requires=nfs-server.service
After=nfs-server.service rpcbind.service
Before=panicwatch.service

[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=120
{mounts}{unmounts}
[Install]
WantedBy=multi-user.target
""",
        # panicwatch as the README's bare-metal section installs it: the unit as shipped, and the
        # shipped defaults file with the address in ARGS (the symlink: install_panicwatch)
        "/etc/systemd/system/panicwatch.service": (DEPLOY / "panicwatch.service").read_text(),
        "/etc/default/panicwatch": re.sub(
            r'^ARGS=""$', f'ARGS="--web.listen-address={PANICWATCH_ADDRESS}"',
            (DEPLOY / "panicwatch.default").read_text(), count=1, flags=re.M),
        "/etc/systemd/system/pw-e2e-webhook.service": f"""\
[Unit]
Description=panicwatch e2e: Alertmanager webhook receiver writing to /share/webhook.jsonl
RequiresMountsFor=/share

[Service]
ExecStart=/usr/bin/python3 /usr/local/lib/pw-e2e/webhook.py {WEBHOOK_PORT}
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
""",
        # Long-lived, so Type=simple rather than oneshot: a oneshot that never exits would keep
        # multi-user.target (and so `systemctl is-system-running`) waiting for ever.
        "/etc/systemd/system/pw-e2e-agent.service": """\
[Unit]
Description=panicwatch e2e: run the host's requests from the 9p share
RequiresMountsFor=/share
ConditionPathExists=/share/agent.py

[Service]
ExecStart=/usr/bin/python3 /share/agent.py
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
""",
        "/usr/local/lib/pw-e2e/webhook.py": (GUEST / "webhook.py").read_text(),
        "/etc/prometheus/prometheus.yml": f"""\
global:
  scrape_interval: {SCRAPE_INTERVAL_S}s
  scrape_timeout: {SCRAPE_INTERVAL_S}s
  evaluation_interval: {SCRAPE_INTERVAL_S}s
rule_files: [/etc/prometheus/rules/panicwatch.rules.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['{ALERTMANAGER_ADDRESS}']
scrape_configs:
  - job_name: panicwatch
    static_configs:
      - targets: ['{PANICWATCH_ADDRESS}']
        labels:
          instance: pw-guest
""",
        "/etc/prometheus/rules/panicwatch.rules.yml": shortened_rules(),
        "/etc/default/prometheus": (
            f'ARGS="--web.listen-address={PROMETHEUS_ADDRESS} --rules.alert.resend-delay=1s '
            '--storage.tsdb.retention.time=1d"\n'),
        "/etc/prometheus/alertmanager.yml": alertmanager_config(
            f"http://127.0.0.1:{WEBHOOK_PORT}/alerts", severities="critical|warning"),
        # no cluster: with only a loopback interface Alertmanager finds no address to gossip on
        "/etc/default/prometheus-alertmanager": (
            f'ARGS="--web.listen-address={ALERTMANAGER_ADDRESS} --cluster.listen-address="\n'),
    }


def configure(rootfs: Path) -> None:
    for path, text in guest_files().items():
        write(rootfs, path, text)
    for mnt in [*NFS_MOUNTS, "/share"]:
        (rootfs / mnt.lstrip("/")).mkdir(parents=True, exist_ok=True)
    tree = rootfs / NFS_EXPORT.lstrip("/") / "tree"
    for d in range(TREE_DIRS):
        (tree / f"d{d:02}").mkdir(parents=True, exist_ok=True)
        for f in range(TREE_FILES):
            (tree / f"d{d:02}" / f"f{f:03}").write_text(f"{d} {f}\n")
    kdump = rootfs / "etc/default/kdump-tools"
    text = kdump.read_text()
    text = re.sub(r"^#?\s*USE_KDUMP=.*$", "USE_KDUMP=1", text, flags=re.M)
    write(rootfs, "/etc/default/kdump-tools", text if "USE_KDUMP=1" in text else text + "USE_KDUMP=1\n")
    for unit in ("panicwatch.service", "pw-e2e-nfs-mounts.service", "pw-e2e-webhook.service",
                 "pw-e2e-agent.service"):
        enable(rootfs, unit)
    enable(rootfs, "kdump-tools.service", "basic.target")
    enable(rootfs, "serial-getty@ttyS0.service", "getty.target")
    for unit in MASKED_UNITS:
        mask = rootfs / "etc/systemd/system" / unit
        if not mask.is_symlink():
            mask.symlink_to("/dev/null")
    for unit in ("apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer",
                 "e2scrub_all.timer", "fstrim.timer", "e2scrub_reap.service", "getty@tty1.service"):
        disable(rootfs, unit)


def kernel_version(rootfs: Path) -> str:
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise RuntimeError(f"expected one kernel in {rootfs / 'boot'}, found {kernels}")
    return kernels[0].name.removeprefix("vmlinuz-")


def small_initramfs_conf(rootfs: Path, confdir: str, kdump: bool) -> None:
    """An initramfs-tools config dir with only what this VM's root needs (virtio disk, ext4): a
    fraction of MODULES=most, so both kernels start faster under TCG. kdump-tools' own hook would
    use MODULES=dep, which inspects the running (host) kernel and so cannot work in a chroot."""
    target = rootfs / confdir.lstrip("/")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(rootfs / "etc/initramfs-tools", target, symlinks=True)
    (target / "conf.d").mkdir(exist_ok=True)
    (target / "conf.d" / "zzz-pw-e2e").write_text("MODULES=list\nFSTYPE=ext4\n")
    with open(target / "modules", "a") as f:
        f.write("virtio_pci\nvirtio_blk\next4\n")
    if kdump:  # what /etc/kernel/postinst.d/kdump-tools appends; the kdump hook checks the dir
        with open(target / "initramfs.conf", "a") as f:
            f.write("KDUMP=y\n")


def make_initrds(rootfs: Path, kver: str, log: Log) -> None:
    # the system's initrd, small
    small_initramfs_conf(rootfs, "/var/lib/pw-e2e/initramfs-tools", kdump=False)
    run(["chroot", str(rootfs), "mkinitramfs", "-d", "/var/lib/pw-e2e/initramfs-tools",
         "-o", f"/boot/initrd.img-{kver}", kver], log)
    # the kdump initrd exactly where kdump-config looks for it, with the symlinks and the sysctl
    # stamp it checks, so it does not rebuild it on the first boot
    kdir = "/var/lib/kdump"
    small_initramfs_conf(rootfs, f"{kdir}/initramfs-tools", kdump=True)
    run(["chroot", str(rootfs), "mkinitramfs", "-d", f"{kdir}/initramfs-tools",
         "-o", f"{kdir}/initrd.img-{kver}", kver], log)
    k = rootfs / kdir.lstrip("/")
    for name, dest in (("vmlinuz", f"/boot/vmlinuz-{kver}"), ("initrd.img", f"{kdir}/initrd.img-{kver}")):
        if (k / name).is_symlink() or (k / name).exists():
            (k / name).unlink()
        (k / name).symlink_to(dest)
    sysctl = rootfs / "etc/kdump/sysctl.conf"
    if sysctl.exists():
        shutil.copy2(sysctl, k / f"latest_sysctls-{kver}")


def build_module(rootfs: Path, kver: str, log: Log) -> None:
    """The crash test module, built with the kernel's own headers and compiler (gcc-12, pulled
    in by the headers) and installed where modprobe finds it. Unsigned: it loads (and taints
    the kernel O and E) since Debian's kernels do not force signatures."""
    src = rootfs / MODULE_SRC.lstrip("/")
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(GUEST / MODULE, src)
    run(["chroot", str(rootfs), "make", "-C", f"/lib/modules/{kver}/build", f"M={MODULE_SRC}",
         "modules"], log, timeout=900)
    dest = rootfs / "lib/modules" / kver / "extra"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / f"{MODULE}.ko", dest / f"{MODULE}.ko")
    run(["chroot", str(rootfs), "depmod", kver], log)


def guest_requirements() -> list[str]:
    with open(REPO / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def fetch_wheels(dest: Path, log: Log) -> None:
    """panicwatch's wheel built from this checkout, and its dependencies' wheels for the guest's
    Python and platform; the guest installs from these with --no-index."""
    dest.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    venv_pip = REPO / ".venv" / "bin" / "pip"
    if venv_pip.exists():
        pip = [str(venv_pip)]
    run([*pip, "wheel", "--quiet", "--no-deps", "-w", str(dest), str(REPO)], log, timeout=600)
    platforms = [arg for p in GUEST_PLATFORMS for arg in ("--platform", p)]
    run([*pip, "download", "--quiet", "-d", str(dest), "--only-binary=:all:",
         "--python-version", GUEST_PYTHON, *platforms, *guest_requirements()], log, timeout=600)


def install_panicwatch(rootfs: Path, log: Log) -> None:
    wheels = rootfs / "wheels"
    fetch_wheels(wheels, log)
    run(["chroot", str(rootfs), "python3", "-m", "venv", "/opt/panicwatch"], log)
    run(["chroot", str(rootfs), "/opt/panicwatch/bin/pip", "install", "--quiet", "--no-index",
         "--find-links", "/wheels", "panicwatch"], log)
    run(["chroot", str(rootfs), "ln", "-sf", "/opt/panicwatch/bin/panicwatch",
         "/usr/local/bin/panicwatch"], log)
    run(["chroot", str(rootfs), "panicwatch", "--help"], log)
    shutil.rmtree(wheels)


def prune(keep: Path, kernel: Kernel) -> None:
    """Keep the newest two images of this kernel, its current kernel layer and the base."""
    root = cache_root()
    images = sorted((p for p in root.glob(f"image-{kernel.name}-*") if p.is_dir()),
                    key=lambda p: p.stat().st_mtime)
    for old in images[:-2]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
    for layer in root.glob(f"kernel-{kernel.name}-*"):
        if layer.name != f"kernel-{kernel.name}-{kernel_key(kernel)}":
            shutil.rmtree(layer, ignore_errors=True)
    for base in root.glob("base-*"):
        if base.name != f"base-{base_key()}":
            shutil.rmtree(base, ignore_errors=True)
    for old in root.glob("image-*"):  # image-<key>: from before images were per kernel
        if re.fullmatch(r"image-[0-9a-f]{16}", old.name):
            shutil.rmtree(old, ignore_errors=True)


def load(final: Path, built: bool, timings: dict[str, float]) -> Image:
    manifest = json.loads((final / "manifest.json").read_text())
    return Image(dir=final, disk=final / "disk.img", kernel=final / "vmlinuz",
                 initrd=final / "initrd.img", kernel_version=manifest["kernel_version"],
                 key=manifest["key"], built=built, timings={**manifest["timings"], **timings})


def build(kernel_name: str = DEFAULT_KERNEL, log: Log = _log) -> Image:
    """The image for this checkout and kernel: from the cache, or built (and cached) now."""
    kernel = KERNELS[kernel_name]
    key = image_key(kernel)
    final = cache_root() / f"image-{kernel.name}-{key}"
    start = time.monotonic()
    with locked(cache_root() / "lock"):
        if (final / "manifest.json").exists():
            os.utime(final)
            return load(final, False, {"image_lookup": time.monotonic() - start})
        ensure_host_tools(log)
        timings: dict[str, float] = {"host_tools": time.monotonic() - start}
        layer, layer_timings = build_kernel_layer(kernel, log)
        timings.update(layer_timings)
        t = time.monotonic()
        work, rootfs = copy_layer(layer, final, log)
        kver = kernel_version(rootfs)
        configure(rootfs)
        with chroot_mounts(rootfs):
            install_panicwatch(rootfs, log)
            build_module(rootfs, kver, log)
            make_initrds(rootfs, kver, log)
        shutil.copy2(rootfs / "boot" / f"vmlinuz-{kver}", work / "vmlinuz")
        shutil.copy2(rootfs / "boot" / f"initrd.img-{kver}", work / "initrd.img")
        disk = work / "disk.img"
        run(["truncate", "-s", DISK_SIZE, str(disk)], log)
        run(["mkfs.ext4", "-q", "-F", "-L", "pwroot", "-d", str(rootfs), str(disk)], log)
        for fs in ("proc", "sys", "dev"):  # never let rmtree walk into the host's /dev
            if os.path.ismount(rootfs / fs):
                raise RuntimeError(f"{rootfs / fs} is still mounted")
        shutil.rmtree(rootfs)
        timings["image_build"] = time.monotonic() - t
        (work / "manifest.json").write_text(json.dumps({
            "key": key, "kernel": kernel.name, "kernel_version": kver, "packages": PACKAGES,
            "kernel_packages": kernel.packages, "suite": SUITE, "mirror": MIRROR,
            "requirements": guest_requirements(), "timings": timings,
            "inputs": [name for name, _ in image_inputs(kernel)]}, indent=1))
        shutil.rmtree(final, ignore_errors=True)
        work.rename(final)
        prune(final, kernel)
        return load(final, True, {})
