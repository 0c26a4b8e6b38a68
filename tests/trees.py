"""Fixture root trees: fake /proc, /sys, /etc and /var/crash of real distributions.

Contents follow the kernel's documented formats (Documentation/ABI, proc(5),
kdump.rst) and the distributions' kdump tools. Each builder writes one tree under
``root`` and documents what the tree is; the tests assert exact metric values.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

GiB = 1 << 30
MiB = 1 << 20

LOCKUP_PANIC_ON = {
    "panic": 10, "panic_on_oops": 1, "softlockup_panic": 1, "hardlockup_panic": 1,
    "hung_task_panic": 1, "hung_task_timeout_secs": 120, "panic_on_warn": 0,
    "panic_on_rcu_stall": 0, "nmi_watchdog": 1, "watchdog": 1, "watchdog_thresh": 10,
    "unknown_nmi_panic": 0, "panic_on_io_nmi": 0, "sysrq": 16,
}
LOCKUP_PANIC_OFF = {**LOCKUP_PANIC_ON, "softlockup_panic": 0, "hardlockup_panic": 0,
                    "hung_task_panic": 0, "panic": 0}

PRESSURE_IO = (
    "some avg10=0.00 avg60=0.12 avg300=0.05 total=123456789\n"
    "full avg10=0.00 avg60=0.06 avg300=0.02 total=23456789\n"
)

OS_RHEL9 = (
    'NAME="Red Hat Enterprise Linux"\nVERSION="9.4 (Plow)"\nID="rhel"\n'
    'ID_LIKE="fedora"\nVERSION_ID="9.4"\nPRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"\n'
)
OS_FEDORA = 'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=40\nPRETTY_NAME="Fedora Linux 40"\n'
OS_UBUNTU_2404 = (
    'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\n'
    "ID_LIKE=debian\n"
)
OS_UBUNTU_2204 = (
    'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\n'
    "ID_LIKE=debian\n"
)
OS_DEBIAN12 = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
    'VERSION_ID="12"\nID=debian\n'
)
OS_SLES = (
    'NAME="SLES"\nVERSION="15-SP5"\nVERSION_ID="15.5"\nPRETTY_NAME="SUSE Linux Enterprise '
    'Server 15 SP5"\nID="sles"\nID_LIKE="suse"\n'
)

# x86_64 /proc/iomem with 16 GiB of System RAM in three ranges, and a 256M crash region.
IOMEM_16G = """\
00000000-00000fff : Reserved
00001000-0009ffff : System RAM
000a0000-000fffff : Reserved
  000f0000-000fffff : System ROM
00100000-bffdffff : System RAM
  2b000000-3affffff : Crash kernel
  5a000000-5b002fff : Kernel code
bffe0000-bfffffff : Reserved
c0000000-febfffff : PCI Bus 0000:00
fee00000-fee00fff : Local APIC
100000000-43ff5ffff : System RAM
"""
RAM_16G = (0x9FFFF - 0x1000 + 1) + (0xBFFDFFFF - 0x100000 + 1) + (0x43FF5FFFF - 0x100000000 + 1)

MOUNTINFO_ROOT = """\
22 1 253:0 / / rw,relatime shared:1 - xfs /dev/mapper/rhel-root rw,attr2,inode64
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
25 22 259:2 / /boot rw,relatime shared:30 - xfs /dev/vda1 rw
"""

# /proc/self/mountstats of a host without NFS mounts: one line per mount.
MOUNTSTATS_NO_NFS = """\
device /dev/mapper/rhel-root mounted on / with fstype xfs
device proc mounted on /proc with fstype proc
device sysfs mounted on /sys with fstype sysfs
device /dev/vda1 mounted on /boot with fstype xfs
"""

DMESG_SOFT_LOCKUP = """\
[    0.000000] Linux version 5.14.0-427.13.1.el9_4.x86_64 (mockbuild@x86-64-01)
[ 3312.101010] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [find:48213]
[ 3312.101013] Modules linked in: nfsv4 dns_resolver nfs lockd grace fscache netfs
[ 3312.101020] CPU: 1 PID: 48213 Comm: find Kdump: loaded Not tainted 5.14.0-427.el9.x86_64 #1
[ 3312.101024] RIP: 0010:nfs_access_get_cached+0x1a4/0x2b0 [nfs]
[ 3312.101050] Kernel panic - not syncing: softlockup: hung tasks
[ 3312.101061] CPU: 1 PID: 48213 Comm: find Kdump: loaded Tainted: G             L
"""
DMESG_HUNG_TASK = """\
[ 7201.000001] INFO: task stat:9913 blocked for more than 120 seconds.
[ 7201.000010]       Not tainted 6.8.0-31-generic #31-Ubuntu
[ 7201.000015] task:stat            state:D stack:0     pid:9913  tgid:9913  ppid:1 flags:0x00004002
[ 7201.000030]  rpc_wait_bit_killable+0x11/0x70 [sunrpc]
[ 7201.000042] Kernel panic - not syncing: hung_task: blocked tasks
[ 7201.000050] CPU: 0 PID: 34 Comm: khungtaskd Not tainted 6.8.0-31-generic #31-Ubuntu
"""
DMESG_NULL_DEREF = """\
[  512.334455] BUG: kernel NULL pointer dereference, address: 0000000000000008
[  512.334460] #PF: supervisor read access in kernel mode
[  512.334462] #PF: error_code(0x0000) - not-present page
[  512.334466] PGD 0 P4D 0
[  512.334470] Oops: 0000 [#1] PREEMPT SMP NOPTI
[  512.334475] CPU: 3 PID: 2211 Comm: kworker/3:1 Not tainted 5.14.21-150500.55.39-default #1
[  512.334480] RIP: 0010:nfs4_do_close+0x3c/0x2a0 [nfsv4]
[  512.334600] Kernel panic - not syncing: Fatal exception
"""
DMESG_SYSRQ = """\
[  100.000001] sysrq: Trigger a crash
[  100.000010] Kernel panic - not syncing: sysrq triggered crash
[  100.000020] CPU: 0 PID: 800 Comm: bash Not tainted 5.14.0-427.el9.x86_64 #1
"""


class Tree:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, path: str, text: str, mode: int | None = None) -> Path:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        if mode is not None:
            target.chmod(mode)
        return target

    def sized(self, path: str, size: int) -> None:
        """A dump file of an exact size (sparse: costs no disk)."""
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as f:
            f.truncate(size)

    def link(self, path: str, points_to: str) -> None:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(points_to, target)

    def mkdir(self, path: str) -> None:
        (self.root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)

    def sysctls(self, values: dict[str, int]) -> None:
        for name, value in values.items():
            self.write(f"proc/sys/kernel/{name}", f"{value}\n")

    def base(self, *, os_release: str, osrelease: str, cmdline: str, memtotal_kib: int,
             iomem: str | None, loaded: int | None, crash_size: int | None,
             sysctls: dict[str, int] = LOCKUP_PANIC_ON, mountinfo: str = MOUNTINFO_ROOT) -> None:
        self.write("etc/os-release", os_release)
        self.write("proc/sys/kernel/osrelease", osrelease + "\n")
        self.write("proc/cmdline", cmdline + "\n")
        self.write("proc/meminfo", f"MemTotal:       {memtotal_kib} kB\nMemFree:          812345 kB\n"
                   "MemAvailable:    9812345 kB\n")
        if iomem is not None:
            self.write("proc/iomem", iomem)
        if loaded is not None:
            self.write("sys/kernel/kexec_crash_loaded", f"{loaded}\n")
        if crash_size is not None:
            self.write("sys/kernel/kexec_crash_size", f"{crash_size}\n")
        self.write("proc/1/mountinfo", mountinfo)
        self.write("proc/self/mountstats", MOUNTSTATS_NO_NFS)
        self.write("proc/pressure/io", PRESSURE_IO)
        self.sysctls(sysctls)
        self.write("proc/sys/kernel/hung_task_detect_count", "0\n")
        for name in ("softlockup_count", "hardlockup_count", "rcu_stall_count", "oops_count",
                     "warn_count"):
            self.write(f"sys/kernel/{name}", "0\n")
        self.mkdir("sys/fs/pstore")

    def enable(self, unit: str, unit_dir: str = "/usr/lib/systemd/system") -> None:
        self.write(f"{unit_dir}/{unit}", "[Unit]\nDescription=kdump\n[Install]\n"
                   "WantedBy=multi-user.target\n")
        self.link(f"etc/systemd/system/multi-user.target.wants/{unit}", f"{unit_dir}/{unit}")

    def install(self, unit: str, unit_dir: str = "/usr/lib/systemd/system") -> None:
        self.write(f"{unit_dir}/{unit}", "[Unit]\nDescription=kdump\n")


def rhel9_armed(t: Tree) -> None:
    """RHEL 9.4 x86_64, 16 GiB, crashkernel table -> 256M reserved, kdump loaded and tested."""
    t.base(os_release=OS_RHEL9, osrelease="5.14.0-427.13.1.el9_4.x86_64",
           cmdline="BOOT_IMAGE=(hd0,gpt2)/vmlinuz-5.14.0-427.13.1.el9_4.x86_64 "
           "root=/dev/mapper/rhel-root ro crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M "
           "rd.lvm.lv=rhel/root rhgb quiet",
           memtotal_kib=16_082_000, iomem=IOMEM_16G, loaded=1, crash_size=256 * MiB)
    t.write("etc/kdump.conf", "# kdump.conf(5)\npath /var/crash\n"
            "core_collector makedumpfile -l --message-level 7 -d 31\n")
    t.enable("kdump.service")
    t.write("var/lib/kdump/vmcore-creation.status", "success kdump_test_id=1714521600-123456789\n")
    t.mkdir("var/crash")
    t.write("sys/fs/pstore/dmesg-efi_pstore-171452160001001", "Panic#1 Part1\n")
    t.write("sys/fs/pstore/dmesg-efi_pstore-171452160001002", "Panic#1 Part2\n")


def fedora_vmcores(t: Tree) -> None:
    """Fedora 40, Berlin time, two dumps (one incomplete), a kdumpctl test dump, test failed."""
    t.base(os_release=OS_FEDORA, osrelease="6.8.5-301.fc40.x86_64",
           cmdline="BOOT_IMAGE=/vmlinuz-6.8.5-301.fc40.x86_64 root=UUID=1234 ro crashkernel=256M",
           memtotal_kib=16_082_000, iomem=IOMEM_16G, loaded=1, crash_size=256 * MiB)
    t.write("etc/kdump.conf", "path /var/crash\ncore_collector makedumpfile -l -d 31\n")
    t.enable("kdump.service")
    t.write("var/lib/kdump/vmcore-creation.status", "fail kdump_test_id=1714600000\n")
    berlin = Path("/usr/share/zoneinfo/Europe/Berlin").read_bytes()  # tzdata's TZif file
    (t.root / "usr/share/zoneinfo/Europe").mkdir(parents=True)
    (t.root / "usr/share/zoneinfo/Europe/Berlin").write_bytes(berlin)
    t.link("etc/localtime", "/usr/share/zoneinfo/Europe/Berlin")
    d = "var/crash/127.0.0.1-2024-05-01-03:12:45"
    t.sized(f"{d}/vmcore-incomplete", 2 * MiB)
    t.write(f"{d}/vmcore-dmesg-incomplete.txt", DMESG_SYSRQ)
    d = "var/crash/127.0.0.1-2024-05-02-10:00:00"
    t.sized(f"{d}/vmcore", 48 * MiB)
    t.write(f"{d}/vmcore-dmesg.txt", DMESG_SOFT_LOCKUP)
    t.write(f"{d}/kexec-dmesg.log", "kexec: loaded\n")
    t.sized("var/crash/kdump-test-1714600000/vmcore", 40 * MiB)


def ubuntu_armed_dumps(t: Tree) -> None:
    """Ubuntu 24.04, 16 GiB -> 512M reserved and loaded, one dump waiting, apport crumbs."""
    t.base(os_release=OS_UBUNTU_2404, osrelease="6.8.0-31-generic",
           cmdline="BOOT_IMAGE=/boot/vmlinuz-6.8.0-31-generic root=UUID=abcd ro quiet splash "
           "crashkernel=2G-4G:320M,4G-32G:512M,32G-64G:1024M,64G-128G:2048M,128G-:4096M",
           memtotal_kib=15_900_000, iomem=IOMEM_16G.replace(
               "2b000000-3affffff : Crash kernel", "2b000000-4affffff : Crash kernel"),
           loaded=1, crash_size=512 * MiB)
    t.write("etc/default/kdump-tools", 'USE_KDUMP=1\nKDUMP_COREDIR="/var/crash"\n'
            'MAKEDUMP_ARGS="-c -d 31"\n')
    t.enable("kdump-tools.service", "/lib/systemd/system")
    d = "var/crash/202405010312"
    t.sized(f"{d}/dump.202405010312", 64 * MiB)
    t.write(f"{d}/dmesg.202405010312", DMESG_HUNG_TASK)
    t.write("var/crash/kexec_cmd", "/sbin/kexec -p --command-line=...\n")
    t.write("var/crash/kdump_lock", "")
    t.write("var/crash/_usr_bin_find.1000.crash", "ProblemType: Crash\n")


def ubuntu_disarmed(t: Tree) -> None:
    """Ubuntu 22.04: memory reserved but USE_KDUMP=0, unit not enabled, nothing loaded."""
    t.base(os_release=OS_UBUNTU_2204, osrelease="5.15.0-107-generic",
           cmdline="BOOT_IMAGE=/boot/vmlinuz-5.15.0-107-generic root=UUID=abcd ro "
           "crashkernel=512M-:192M",
           memtotal_kib=15_900_000, iomem=IOMEM_16G.replace(
               "2b000000-3affffff : Crash kernel", "2b000000-36ffffff : Crash kernel"),
           loaded=0, crash_size=192 * MiB, sysctls=LOCKUP_PANIC_OFF)
    t.write("etc/default/kdump-tools", "USE_KDUMP=0\n")
    t.install("kdump-tools.service", "/lib/systemd/system")
    t.mkdir("var/crash")


def debian_reservation_failed(t: Tree) -> None:
    """Debian 12: crashkernel=512M on the command line, the kernel reserved nothing."""
    t.base(os_release=OS_DEBIAN12, osrelease="6.1.0-21-amd64",
           cmdline="BOOT_IMAGE=/boot/vmlinuz-6.1.0-21-amd64 root=/dev/vda1 ro crashkernel=512M",
           memtotal_kib=16_300_000,
           iomem=IOMEM_16G.replace("  2b000000-3affffff : Crash kernel\n", ""),
           loaded=0, crash_size=0)
    t.write("etc/default/kdump-tools", "USE_KDUMP=1\n")
    t.enable("kdump-tools.service", "/lib/systemd/system")
    t.mkdir("var/crash")


def sles_dumps(t: Tree) -> None:
    """SLES 15 SP5: KDUMP_SAVEDIR as a file:// URL, a new-style and an old-style dump dir."""
    t.base(os_release=OS_SLES, osrelease="5.14.21-150500.55.39-default",
           cmdline="BOOT_IMAGE=/boot/vmlinuz-5.14.21-150500.55.39-default root=/dev/sda2 "
           "crashkernel=242M,high crashkernel=72M,low",
           memtotal_kib=15_900_000, iomem=IOMEM_16G.replace(
               "  2b000000-3affffff : Crash kernel\n",
               "  2b000000-2f7fffff : Crash kernel\n").replace(
               "100000000-43ff5ffff : System RAM\n",
               "100000000-43ff5ffff : System RAM\n  42f000000-43e1fffff : Crash kernel\n"),
           loaded=1, crash_size=242 * MiB)
    t.write("etc/sysconfig/kdump", '## Type: string\nKDUMP_SAVEDIR="file:///var/crash"\n'
            'KDUMP_KEEP_OLD_DUMPS="5"\n')
    t.enable("kdump.service")
    d = "var/crash/2024-05-03-21-07"
    t.sized(f"{d}/vmcore", 30 * MiB)
    t.write(f"{d}/dmesg", DMESG_NULL_DEREF)
    t.write(f"{d}/README.txt", "Kernel crashdump\n")
    d = "var/crash/2023-11-20-08:15"
    t.sized(f"{d}/vmcore", 20 * MiB)
    t.write(f"{d}/dmesg.txt", DMESG_SYSRQ)
    t.write(f"{d}/README.txt", "Kernel crashdump\n")


def ppc64le_fadump(t: Tree) -> None:
    """RHEL 9 on POWER with firmware-assisted dump registered, 8 GiB."""
    t.base(os_release=OS_RHEL9, osrelease="5.14.0-427.13.1.el9_4.ppc64le",
           cmdline="BOOT_IMAGE=/vmlinuz-5.14.0-427.13.1.el9_4.ppc64le root=/dev/sda2 ro "
           "fadump=on crashkernel=4G-16G:768M,16G-64G:1G,64G-128G:2G,128G-1T:4G",
           memtotal_kib=7_600_000, iomem=None, loaded=None, crash_size=None)
    t.write("sys/kernel/fadump/enabled", "1\n")
    t.write("sys/kernel/fadump/registered", "1\n")
    t.write("sys/kernel/fadump/mem_reserved", f"{768 * MiB}\n")
    t.link("sys/kernel/fadump_enabled", "fadump/enabled")
    t.link("sys/kernel/fadump_registered", "fadump/registered")
    t.write("etc/kdump.conf", "path /var/crash\ndump_mode fadump\n")
    t.enable("kdump.service")
    t.write("var/lib/kdump/vmcore-creation.status", "success kdump_test_id=1714521600\n")
    t.mkdir("var/crash")


def too_small(t: Tree) -> None:
    """A 768 MiB VM whose crashkernel= ranges start at 1G: nothing asked, nothing reserved."""
    ram_end = 0x100000 + 767 * MiB - 1
    t.base(os_release=OS_RHEL9, osrelease="5.14.0-427.13.1.el9_4.x86_64",
           cmdline="ro crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M",
           memtotal_kib=640_000,
           iomem=f"00001000-0009ffff : System RAM\n00100000-{ram_end:08x} : System RAM\n",
           loaded=0, crash_size=0)
    t.write("etc/kdump.conf", "path /var/crash\n")
    t.enable("kdump.service")
    t.mkdir("var/crash")


def unprivileged(t: Tree) -> None:
    """RHEL 9 as seen by a non-root reader: /proc/iomem addresses zeroed, kdump state dir
    unreadable; a split ,high/,low reservation whose low part kexec_crash_size omits."""
    zeroed = "".join(
        f"{'  ' * depth}00000000-00000000 : {name}\n"
        for depth, name in ((0, "Reserved"), (0, "System RAM"), (0, "System RAM"),
                            (1, "Crash kernel"), (0, "System RAM"), (1, "Crash kernel")))
    t.base(os_release=OS_RHEL9, osrelease="5.14.0-427.13.1.el9_4.x86_64",
           cmdline="ro crashkernel=512M,high", memtotal_kib=15_400_000, iomem=zeroed,
           loaded=1, crash_size=512 * MiB)
    t.write("etc/kdump.conf", "path /var/crash\n")
    t.enable("kdump.service")
    t.write("var/lib/kdump/vmcore-creation.status", "success kdump_test_id=1714521600\n", 0o600)
    (t.root / "var/lib/kdump").chmod(0o700)
    t.mkdir("var/crash")


def nfs_target(t: Tree) -> None:
    """RHEL 9 whose /var/crash is an NFS mount: never statvfs'ed from the scrape."""
    t.base(os_release=OS_RHEL9, osrelease="5.14.0-427.13.1.el9_4.x86_64",
           cmdline="ro crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M", memtotal_kib=16_082_000,
           iomem=IOMEM_16G, loaded=1, crash_size=256 * MiB,
           mountinfo=MOUNTINFO_ROOT + "40 22 0:45 / /var/crash rw,relatime shared:80 - nfs4 "
           "filer:/crash rw,vers=4.2,addr=192.0.2.10\n")
    t.write("etc/kdump.conf", "path /var/crash\n")
    t.enable("kdump.service")
    t.write("var/lib/kdump/vmcore-creation.status", "success kdump_test_id=1714521600\n")
    t.mkdir("var/crash")


def ssh_target(t: Tree) -> None:
    """Debian with dumps sent over ssh: the target is remote, nothing local is counted."""
    t.base(os_release=OS_DEBIAN12, osrelease="6.1.0-21-amd64",
           cmdline="ro crashkernel=384M-:256M", memtotal_kib=15_900_000, iomem=IOMEM_16G,
           loaded=1, crash_size=256 * MiB)
    t.write("etc/default/kdump-tools", 'USE_KDUMP=1\nSSH="kdump@dumphost"\n')
    t.enable("kdump-tools.service", "/lib/systemd/system")


def nfs_client(t: Tree) -> None:
    """RHEL 9, armed, an NFSv4.2 client of 192.168.122.1 (Debian 12's mountstats), RPC tasks in
    debugfs and the transport in sysfs: every NFS collector has something to report."""
    rhel9_armed(t)
    t.write("proc/1/mountinfo", MOUNTINFO_ROOT + "40 22 0:45 / /srv/projects rw,relatime "
            "shared:80 - nfs4 files.lab.example:/srv/projects rw,vers=4.2,rsize=1048576,"
            "wsize=1048576,proto=tcp,timeo=600,retrans=2,sec=sys,addr=192.168.122.1\n")
    t.write("proc/self/mountstats", (FIXTURES / "mountstats/debian12_v42.txt").read_text())
    t.mkdir("srv/projects")  # the canary's statvfs lands here, under the root
    # nfs_show_stats: packets, then calls/retransmissions/auth refreshes, then per-proc counts
    t.write("proc/net/rpc/nfs", "net 0 0 0 0\nrpc 2113742 87 2113760\n"
            "proc4 69 1 1281923 702214 0 80313 0 26 6 26 2120 3012 0 0 0 2196 32 0 3815 "
            + "0 " * 51 + "\n")
    sunrpc = FIXTURES / "sunrpc"
    t.write("sys/kernel/debug/sunrpc/rpc_xprt/2/info", (sunrpc / "xprt_info_6.15.txt").read_text())
    t.write("sys/kernel/debug/sunrpc/rpc_clnt/9/tasks",
            (sunrpc / "tasks_4.18_nfsv41.txt").read_text())
    t.link("sys/kernel/debug/sunrpc/rpc_clnt/9/xprt", "../../rpc_xprt/2")
    xprt = "sys/kernel/sunrpc/xprt-switches/switch-0/xprt-0-tcp"
    t.write(f"{xprt}/xprt_info", (sunrpc / "sysfs_xprt_info_6.1.txt").read_text())
    t.write(f"{xprt}/dstaddr", (sunrpc / "sysfs_dstaddr.txt").read_text())


def garbled(t: Tree) -> None:
    """RHEL 9 with garbage in kexec_crash_size and /proc/pressure/io."""
    rhel9_armed(t)
    t.write("sys/kernel/kexec_crash_size", "two hundred and fifty-six megabytes\n")
    t.write("proc/pressure/io", "\x00\x01garbage\n")


TREES: dict[str, Callable[[Tree], None]] = {
    f.__name__: f
    for f in (rhel9_armed, fedora_vmcores, ubuntu_armed_dumps, ubuntu_disarmed,
              debian_reservation_failed, sles_dumps, ppc64le_fadump, too_small, unprivileged,
              nfs_target, ssh_target, nfs_client, garbled)
}


def build(name: str, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    TREES[name](Tree(root))
    return root
