"""pstore names, mountinfo, kdump configuration, procfs formats and dump directory layouts."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest

from panicwatch.parsers.kdump_config import (
    DumpTarget,
    KdumpTestStatus,
    parse_kdump_conf,
    parse_kdump_tools_defaults,
    parse_shell_vars,
    parse_sysconfig_kdump,
    parse_test_status,
)
from panicwatch.parsers.mountinfo import Mount, mount_of, parse_mountinfo, unescape
from panicwatch.parsers.procfs import (
    IomemRange,
    ParseError,
    Pressure,
    iomem_addresses_hidden,
    parse_int,
    parse_iomem,
    parse_meminfo,
    parse_pressure,
)
from panicwatch.parsers.pstore import count_records, parse_record_name
from panicwatch.parsers.vmcore_layout import (
    DumpDirName,
    classify_dir,
    dmesg_file,
    is_dump_file,
    is_incomplete_marker,
)

# --- pstore -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("dmesg-efi_pstore-172345678901001", ("efi_pstore", "dmesg")),
        ("dmesg-efi-172345678901001.enc.z", ("efi", "dmesg")),
        ("console-ramoops-0", ("ramoops", "console")),
        ("dmesg-ramoops-1.enc.z", ("ramoops", "dmesg")),
        ("dmesg-ramoops-12", ("ramoops", "dmesg")),
        ("pmsg-ramoops-0", ("ramoops", "pmsg")),
        ("ftrace-ramoops-3", ("ramoops", "ftrace")),
        ("mce-erst-5", ("erst", "mce")),
        ("rtas-nvram-4", ("nvram", "rtas")),
        ("powerpc-ofw-nvram-3", ("nvram", "powerpc-ofw")),
        ("powerpc-common-nvram-1", ("nvram", "powerpc-common")),
        ("powerpc-opal-nvram-2", ("nvram", "powerpc-opal")),
        ("unknown-blk-0", ("blk", "unknown")),
        ("dmesg-mtd-pstore-7", ("mtd-pstore", "dmesg")),  # a backend name with a dash
        # junk
        ("README", None),
        ("", None),
        ("dmesg", None),
        ("dmesg-", None),
        ("dmesg-ramoops-", None),
        ("dmesg--1", None),
        ("dmesg-ramoops-x", None),
        ("dmesg-ramoops-1.enc", None),
        ("ftrace-ramoops-0.enc.z.bak", None),
        ("kmsg-ramoops-0", None),
        ("powerpc-nvram-0", None),
        ("Dmesg-ramoops-0", None),
    ],
)
def test_pstore_record_name(name: str, expected: tuple[str, str] | None) -> None:
    assert parse_record_name(name) == expected


def test_pstore_count_records() -> None:
    names = [
        "dmesg-efi_pstore-172345678901001", "dmesg-efi_pstore-172345678902001",
        "dmesg-efi_pstore-172345678903001.enc.z", "console-ramoops-0", "dmesg-ramoops-0",
        "dmesg-ramoops-1.enc.z", "powerpc-ofw-nvram-3", "lost+found", "README", "dmesg-ramoops-x",
    ]
    assert count_records(names) == Counter({
        ("efi_pstore", "dmesg"): 3,
        ("ramoops", "dmesg"): 2,
        ("ramoops", "console"): 1,
        ("nvram", "powerpc-ofw"): 1,
    })
    assert count_records([]) == Counter()
    assert count_records(["junk", "dmesg-"]) == Counter()


# --- mountinfo ----------------------------------------------------------------------------

MOUNTINFO = r"""22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
25 22 0:5 / /dev rw,nosuid,relatime shared:3 - devtmpfs udev rw,size=4010216k,nr_inodes=1002554,mode=755
31 22 252:2 / /var rw,relatime shared:20 - xfs /dev/vda2 rw,attr2,inode64,noquota
40 31 0:45 / /var/crash rw,relatime shared:30 master:7 - nfs4 nfs.example.com:/export/crash rw,vers=4.2
41 22 0:46 /sub\040dir /mnt/my\040disk\011tab rw,relatime - ext4 /dev/mapper/vg-back\134slash rw
this line is malformed
42 22 0:47 / /srv rw - xfs
x 22 0:48 / /opt rw - xfs /dev/vdb rw

43 22 0:49 / /home rw,relatime - autofs systemd-1 rw,fd=47,pgrp=1
44 22 0:50 / /mnt/s3 rw,nosuid - fuse.s3fs s3fs rw,user_id=0
45 22 0:51 / /tmp rw - tmpfs tmpfs
"""


def test_parse_mountinfo() -> None:
    mounts, skipped = parse_mountinfo(MOUNTINFO)
    assert skipped == 3
    assert [m.mount_id for m in mounts] == [22, 23, 24, 25, 31, 40, 41, 43, 44, 45]
    assert mounts[0] == Mount(22, "/", "/", "ext4", "/dev/vda1", "rw,relatime", "rw,errors=remount-ro")
    assert mounts[5] == Mount(40, "/", "/var/crash", "nfs4", "nfs.example.com:/export/crash",
                              "rw,relatime", "rw,vers=4.2")
    assert mounts[6] == Mount(41, "/sub dir", "/mnt/my disk\ttab", "ext4", "/dev/mapper/vg-back\\slash",
                              "rw,relatime", "rw")
    assert mounts[9] == Mount(45, "/", "/tmp", "tmpfs", "tmpfs", "rw", "")
    assert [m.mount_id for m in mounts if m.may_block] == [40, 43, 44]


def test_parse_mountinfo_empty() -> None:
    assert parse_mountinfo("") == ([], 0)
    assert parse_mountinfo("\n\n  \n") == ([], 0)
    assert parse_mountinfo("garbage\n") == ([], 1)


def test_parse_mountinfo_empty_source() -> None:
    line = "74 25 0:59 / /mnt/tmpfs rw,relatime shared:38 - tmpfs  rw,size=1024k\n"
    mounts, skipped = parse_mountinfo(line)
    assert skipped == 0
    assert mounts == [Mount(74, "/", "/mnt/tmpfs", "tmpfs", "", "rw,relatime", "rw,size=1024k")]


@pytest.mark.parametrize(
    ("field", "text"),
    [
        (r"/mnt/a\040b", "/mnt/a b"),
        (r"\011\012\134", "\t\n\\"),
        (r"/no/escapes", "/no/escapes"),
        (r"/back\134040x", "/back\\040x"),  # an escaped backslash followed by digits
        (r"\08", r"\08"),  # not three octal digits
    ],
)
def test_unescape(field: str, text: str) -> None:
    assert unescape(field) == text


def _mount(mount_id: int, mountpoint: str, fstype: str = "ext4") -> Mount:
    return Mount(mount_id, "/", mountpoint, fstype, "/dev/x", "rw", "rw")


MOUNTS = [
    _mount(1, "/"),
    _mount(2, "/var"),
    _mount(3, "/var/crash", "nfs4"),
    _mount(4, "/var/crash2"),
    _mount(5, "/srv/"),
]


@pytest.mark.parametrize(
    ("path", "mount_id"),
    [
        ("/", 1),
        ("/etc/kdump.conf", 1),
        ("/var", 2),
        ("/var/", 2),
        ("/var/log", 2),
        ("/var/crash", 3),
        ("/var/crash/", 3),
        ("/var/crash/127.0.0.1-2024-05-01-03:12:45/vmcore", 3),
        ("/var/crash2/x", 4),
        ("/var/crashx", 2),
        ("/variable", 1),
        ("/srv", 5),
        ("/srv/dumps", 5),
    ],
)
def test_mount_of_longest_prefix(path: str, mount_id: int) -> None:
    found = mount_of(path, MOUNTS)
    assert found is not None
    assert found.mount_id == mount_id


def test_mount_of_last_mounted_wins() -> None:
    over = _mount(9, "/var/crash", "xfs")
    found = mount_of("/var/crash/x", [*MOUNTS, over])
    assert found == over
    assert not found.may_block


def test_mount_of_nothing() -> None:
    assert mount_of("/var", []) is None
    assert mount_of("/etc", [_mount(2, "/var")]) is None


# --- kdump.conf ---------------------------------------------------------------------------

RHEL_DEFAULT_CONF = """\
# This file contains a series of commands to perform (in order) in the kdump
# kernel when a kernel crash is triggered.
#
# raw <partition>
#           - Will dd /proc/vmcore into <partition>.
#
#raw /dev/vg/lv_kdump
#ext4 /dev/vg/lv_kdump
#ext4 LABEL=/boot
#ext4 UUID=03138356-5e61-4ab3-b58e-27507ac41937
#nfs my.server.com:/export/tmp
#nfs [2001:db8::1:2:3:4]:/export/tmp
#ssh user@my.server.com
#ssh user@2001:db8::1:2:3:4
#sshkey /root/.ssh/kdump_id_rsa
auto_reset_crashkernel yes
path /var/crash
core_collector makedumpfile -l --message-level 7 -d 31
#core_collector scp
#kdump_post /var/crash/scripts/kdump-post.sh
#failure_action shell
#dracut_args --omit-drivers "cfg80211 snd" --add-drivers "ext2 ext3"
"""


@pytest.mark.parametrize(
    ("text", "target", "label"),
    [
        ("", DumpTarget("local", "/var/crash", config="kdump.conf"), "/var/crash"),
        (RHEL_DEFAULT_CONF, DumpTarget("local", "/var/crash", config="kdump.conf"), "/var/crash"),
        ("path /srv/crash   # dumps go here\n", DumpTarget("local", "/srv/crash", config="kdump.conf"),
         "/srv/crash"),
        ("path /var/crash\nnfs server:/export\n",
         DumpTarget("nfs", "/var/crash", location="server:/export/var/crash", config="kdump.conf"),
         "server:/export/var/crash"),
        ("nfs server:/export/\npath /crash\n",  # path may come after the target
         DumpTarget("nfs", "/crash", location="server:/export/crash", config="kdump.conf"),
         "server:/export/crash"),
        ("nfs4 server:/export\n",
         DumpTarget("nfs", "/var/crash", location="server:/export/var/crash", config="kdump.conf"),
         "server:/export/var/crash"),
        ("ssh user@host\nsshkey /root/.ssh/kdump_id_rsa\n",
         DumpTarget("ssh", "/var/crash", location="user@host:/var/crash", config="kdump.conf"),
         "user@host:/var/crash"),
        ("ssh kdump@backup.example.com\npath /dumps\n",
         DumpTarget("ssh", "/dumps", location="kdump@backup.example.com:/dumps", config="kdump.conf"),
         "kdump@backup.example.com:/dumps"),
        ("raw /dev/sdb1\n", DumpTarget("raw", "/var/crash", device="/dev/sdb1", config="kdump.conf"),
         "/dev/sdb1"),
        ("xfs UUID=03138356-5e61-4ab3-b58e-27507ac41937\n",
         DumpTarget("device", "/var/crash", device="UUID=03138356-5e61-4ab3-b58e-27507ac41937",
                    config="kdump.conf"),
         "UUID=03138356-5e61-4ab3-b58e-27507ac41937:/var/crash"),
        ("ext4 LABEL=kdump\npath /crash\n",
         DumpTarget("device", "/crash", device="LABEL=kdump", config="kdump.conf"), "LABEL=kdump:/crash"),
        ("  btrfs   /dev/mapper/vg-crash  # indented, with a comment\n",
         DumpTarget("device", "/var/crash", device="/dev/mapper/vg-crash", config="kdump.conf"),
         "/dev/mapper/vg-crash:/var/crash"),
        ("virtiofs hostshare\n",
         DumpTarget("device", "/var/crash", device="hostshare", config="kdump.conf"), "hostshare:/var/crash"),
        ("#nfs server:/export\n# ssh user@host\npath\n",
         DumpTarget("local", "/var/crash", config="kdump.conf"), "/var/crash"),
    ],
)
def test_kdump_conf(text: str, target: DumpTarget, label: str) -> None:
    parsed = parse_kdump_conf(text)
    assert parsed == target
    assert parsed.label == label
    assert parsed.remote == (target.type in ("nfs", "ssh"))


# --- /etc/default/kdump-tools -------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "target", "use_kdump"),
    [
        ("USE_KDUMP=1\n", DumpTarget("local", "/var/crash", config="kdump-tools"), True),
        ("USE_KDUMP=0\n", DumpTarget("local", "/var/crash", config="kdump-tools"), False),
        ("", DumpTarget("local", "/var/crash", config="kdump-tools"), False),
        ("USE_KDUMP=1  # enable\nKDUMP_COREDIR=\"/srv/crash\"\n",
         DumpTarget("local", "/srv/crash", config="kdump-tools"), True),
        ("USE_KDUMP='1'\nKDUMP_COREDIR='/var/crash dir'\n",
         DumpTarget("local", "/var/crash dir", config="kdump-tools"), True),
        ("USE_KDUMP=1\nKDUMP_COREDIR=\"\"\n", DumpTarget("local", "/var/crash", config="kdump-tools"), True),
        ("USE_KDUMP=1\nSSH=\"ubuntu@backup.example.com\"\nKDUMP_COREDIR=\"/var/crash\"\n",
         DumpTarget("ssh", "/var/crash", location="ubuntu@backup.example.com:/var/crash",
                    config="kdump-tools"), True),
        ("USE_KDUMP=1\nNFS=\"nfs.example.com:/srv/crash\"\n",
         DumpTarget("nfs", "/var/crash", location="nfs.example.com:/srv/crash", config="kdump-tools"), True),
        ("USE_KDUMP=1\nSSH=\"u@h\"\nNFS=\"n:/e\"\n",
         DumpTarget("ssh", "/var/crash", location="u@h:/var/crash", config="kdump-tools"), True),
        ("USE_KDUMP=1\nSSH=\"\"\nNFS=\"\"\n", DumpTarget("local", "/var/crash", config="kdump-tools"), True),
        ("#USE_KDUMP=1\n#SSH=\"u@h\"\n", DumpTarget("local", "/var/crash", config="kdump-tools"), False),
        ("USE_KDUMP=yes\n", DumpTarget("local", "/var/crash", config="kdump-tools"), False),
    ],
)
def test_kdump_tools_defaults(text: str, target: DumpTarget, use_kdump: bool) -> None:
    assert parse_kdump_tools_defaults(text) == (target, use_kdump)


def test_parse_shell_vars() -> None:
    text = """\
# comment
NAME="Ubuntu"
VERSION_ID="24.04"
PRETTY_NAME="Ubuntu 24.04 LTS"
ID=ubuntu
ID_LIKE=debian
export KDUMP_COREDIR=/var/crash
QUOTED='single quoted'  # trailing comment
EMPTY=
BROKEN="unterminated
1BAD=x
not a variable
  INDENTED=yes
"""
    assert parse_shell_vars(text) == {
        "NAME": "Ubuntu",
        "VERSION_ID": "24.04",
        "PRETTY_NAME": "Ubuntu 24.04 LTS",
        "ID": "ubuntu",
        "ID_LIKE": "debian",
        "KDUMP_COREDIR": "/var/crash",
        "QUOTED": "single quoted",
        "EMPTY": "",
        "BROKEN": "unterminated",
        "INDENTED": "yes",
    }


# --- /etc/sysconfig/kdump -----------------------------------------------------------------

@pytest.mark.parametrize(
    ("savedir", "target"),
    [
        ("/var/crash", DumpTarget("local", "/var/crash", config="sysconfig/kdump")),
        ("/srv/dumps", DumpTarget("local", "/srv/dumps", config="sysconfig/kdump")),
        ("file:///var/crash", DumpTarget("local", "/var/crash", config="sysconfig/kdump")),
        ("FILE:///var/log/dump", DumpTarget("local", "/var/log/dump", config="sysconfig/kdump")),
        ("", DumpTarget("local", "/var/crash", config="sysconfig/kdump")),
        ("nfs://server/export/crash",
         DumpTarget("nfs", "/export/crash", location="nfs://server/export/crash", config="sysconfig/kdump")),
        ("ssh://user:pw@host/path",
         DumpTarget("ssh", "/path", location="ssh://host/path", config="sysconfig/kdump")),
        ("sftp://kdump@backup.example.com/var/crash",
         DumpTarget("sftp", "/var/crash", location="sftp://backup.example.com/var/crash",
                    config="sysconfig/kdump")),
        ("scp://root@host/dumps", DumpTarget("sftp", "/dumps", location="sftp://host/dumps",
                                            config="sysconfig/kdump")),
        ("ftp://anon:secret@ftp.example.com/incoming",
         DumpTarget("ftp", "/incoming", location="ftp://ftp.example.com/incoming", config="sysconfig/kdump")),
        ("cifs://user:pw@winsrv/share/crash",
         DumpTarget("cifs", "/share/crash", location="cifs://winsrv/share/crash", config="sysconfig/kdump")),
        ("smb://winsrv/share", DumpTarget("cifs", "/share", location="cifs://winsrv/share",
                                          config="sysconfig/kdump")),
    ],
)
def test_sysconfig_kdump(savedir: str, target: DumpTarget) -> None:
    text = (f'## Path: System/Kernel/Kdump\nKDUMP_KERNELVER=""\nKDUMP_SAVEDIR="{savedir}"\n'
            "KDUMP_KEEP_OLD_DUMPS=5\n")
    parsed = parse_sysconfig_kdump(text)
    assert parsed == target
    assert "pw" not in (parsed.location or "")
    assert "secret" not in (parsed.location or "")
    assert "@" not in (parsed.location or "")


def test_sysconfig_kdump_multiple_targets_uses_the_first() -> None:
    parsed = parse_sysconfig_kdump('KDUMP_SAVEDIR="nfs://a/x ssh://b/y"\n')
    assert parsed == DumpTarget("nfs", "/x", location="nfs://a/x", config="sysconfig/kdump")


@pytest.mark.parametrize("savedir", ["http://host/path", "https://host/path", "tftp://host/x", "gopher://h/"])
def test_sysconfig_kdump_unknown_scheme(savedir: str) -> None:
    with pytest.raises(ParseError, match="unknown scheme"):
        parse_sysconfig_kdump(f'KDUMP_SAVEDIR="{savedir}"\n')


def test_sysconfig_kdump_without_savedir() -> None:
    # RHEL's /etc/sysconfig/kdump has no KDUMP_SAVEDIR.
    rhel = ('KDUMP_COMMANDLINE=""\nKDUMP_COMMANDLINE_APPEND="irqpoll nr_cpus=1 reset_devices"\n'
            'KEXEC_ARGS="-s"\n')
    assert parse_sysconfig_kdump(rhel) is None
    assert parse_sysconfig_kdump("") is None
    assert parse_sysconfig_kdump('#KDUMP_SAVEDIR="/var/crash"\n') is None


# --- kdump-utils test status --------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("success kdump_test_id=1700000000-123456789\n",
         KdumpTestStatus("success", 1700000000 + 123456789 / 1e9)),
        ("pending kdump_test_id=1700000000-000000001", KdumpTestStatus("pending", 1700000000 + 1 / 1e9)),
        ("fail kdump_test_id=1700000000", KdumpTestStatus("fail", 1700000000.0)),
        ("manual", KdumpTestStatus("manual", None)),
        ("success", KdumpTestStatus("success", None)),
        ("success kdump_test_id=abc", KdumpTestStatus("success", None)),
        ("success other=1 kdump_test_id=1700000001", KdumpTestStatus("success", 1700000001.0)),
        ("  pending   kdump_test_id=5  ", KdumpTestStatus("pending", 5.0)),
    ],
)
def test_parse_test_status(text: str, expected: KdumpTestStatus) -> None:
    assert parse_test_status(text) == expected


def test_parse_test_status_exact_timestamp() -> None:
    status = parse_test_status("success kdump_test_id=1700000000-123456789")
    assert status.timestamp == pytest.approx(1700000000.123456789, abs=1e-6)


@pytest.mark.parametrize("text", ["", "\n", "garbage", "SUCCESS kdump_test_id=1", "ok kdump_test_id=1",
                                  "kdump_test_id=1700000000 success"])
def test_parse_test_status_garbage(text: str) -> None:
    with pytest.raises(ParseError, match="unknown kdump test status"):
        parse_test_status(text)


# --- procfs -------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [("1\n", 1), ("0", 0), ("  42 \n", 42), ("-1\n", -1),
                                             ("18446744073709551615\n", 18446744073709551615)])
def test_parse_int(text: str, value: int) -> None:
    assert parse_int(text) == value


@pytest.mark.parametrize("text", ["", "\n", "abc", "1.5", "0x10", "1 2", "Y\n"])
def test_parse_int_errors(text: str) -> None:
    with pytest.raises(ParseError, match="expected an integer"):
        parse_int(text)


MEMINFO = """\
MemTotal:       16314876 kB
MemFree:         8123456 kB
MemAvailable:   12345678 kB
Buffers:          234567 kB
HugePages_Total:       0
HugePages_Free:        0
Hugepagesize:       2048 kB
DirectMap1G:     4194304 kB
Weird:               abc kB
NoColon 123 kB
"""


def test_parse_meminfo() -> None:
    assert parse_meminfo(MEMINFO) == {
        "MemTotal": 16314876 * 1024,
        "MemFree": 8123456 * 1024,
        "MemAvailable": 12345678 * 1024,
        "Buffers": 234567 * 1024,
        "HugePages_Total": 0,
        "HugePages_Free": 0,
        "Hugepagesize": 2 * 1024 * 1024,
        "DirectMap1G": 4 * 1024 * 1024 * 1024,
    }


@pytest.mark.parametrize("text", ["", "MemFree: 1 kB\n", "garbage"])
def test_parse_meminfo_without_memtotal(text: str) -> None:
    with pytest.raises(ParseError, match="no MemTotal line"):
        parse_meminfo(text)


IOMEM = """\
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
000a0000-000bffff : PCI Bus 0000:00
00100000-bffdffff : System RAM
  0c000000-0d001fff : Kernel code
  0d200000-0dbfffff : Kernel rodata
  a3000000-b2ffffff : Crash kernel
c0000000-febfffff : PCI Bus 0000:00
  fd000000-fdffffff : 0000:00:01.0
    fd000000-fdffffff : bochs-drm
fed00000-fed003ff : PNP0103:00
100000000-43fffffff : System RAM
  42f000000-43effffff : Crash kernel
"""


def test_parse_iomem_nested() -> None:
    ranges, skipped = parse_iomem(IOMEM)
    assert skipped == 0
    assert ranges == [
        IomemRange(0x0, 0xfff, "Reserved", 0),
        IomemRange(0x1000, 0x9fbff, "System RAM", 0),
        IomemRange(0xa0000, 0xbffff, "PCI Bus 0000:00", 0),
        IomemRange(0x100000, 0xbffdffff, "System RAM", 0),
        IomemRange(0xc000000, 0xd001fff, "Kernel code", 1),
        IomemRange(0xd200000, 0xdbfffff, "Kernel rodata", 1),
        IomemRange(0xa3000000, 0xb2ffffff, "Crash kernel", 1),
        IomemRange(0xc0000000, 0xfebfffff, "PCI Bus 0000:00", 0),
        IomemRange(0xfd000000, 0xfdffffff, "0000:00:01.0", 1),
        IomemRange(0xfd000000, 0xfdffffff, "bochs-drm", 2),
        IomemRange(0xfed00000, 0xfed003ff, "PNP0103:00", 0),
        IomemRange(0x100000000, 0x43fffffff, "System RAM", 0),
        IomemRange(0x42f000000, 0x43effffff, "Crash kernel", 1),
    ]
    assert [r.size for r in ranges if r.name == "Crash kernel"] == [256 << 20, 256 << 20]
    assert sum(r.size for r in ranges if r.name == "System RAM") == 0x9ec00 + 0xbfee0000 + (13 << 30)
    assert not iomem_addresses_hidden(ranges)


def test_parse_iomem_zeroed_addresses() -> None:
    text = """\
00000000-00000000 : Reserved
00000000-00000000 : System RAM
  00000000-00000000 : Kernel code
  00000000-00000000 : Crash kernel
00000000-00000000 : PCI Bus 0000:00
"""
    ranges, _ = parse_iomem(text)
    assert len(ranges) == 5
    assert ranges[3] == IomemRange(0, 0, "Crash kernel", 1)
    assert ranges[3].size == 1
    assert iomem_addresses_hidden(ranges)


def test_iomem_hidden_edge_cases() -> None:
    assert parse_iomem("") == ([], 0)
    assert not iomem_addresses_hidden([])
    assert not iomem_addresses_hidden([IomemRange(0, 0, "a", 0), IomemRange(0, 0xfff, "b", 0)])
    assert IomemRange(10, 5, "backwards", 0).size == 0


@pytest.mark.parametrize("line", ["garbage", "00000000 : Reserved", "0-fff: Reserved", "zz-ff : x"])
def test_parse_iomem_skips_what_it_cannot_read(line: str) -> None:
    ranges, skipped = parse_iomem(f"00000000-00000fff : Reserved\n{line}\n\n"
                                  "  2b000000-3affffff : Crash kernel\n")
    assert skipped == 1
    assert ranges == [IomemRange(0, 0xfff, "Reserved", 0),
                      IomemRange(0x2b000000, 0x3affffff, "Crash kernel", 1)]


def test_parse_pressure() -> None:
    text = (
        "some avg10=0.12 avg60=0.34 avg300=0.56 total=12345678\n"
        "full avg10=0.00 avg60=0.01 avg300=0.02 total=910111\n"
    )
    assert parse_pressure(text) == Pressure(12345678, 910111)


def test_parse_pressure_cpu_without_full() -> None:
    assert parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=42\n") == Pressure(42, None)


@pytest.mark.parametrize("text", ["", "full avg10=0.00 avg60=0.00 avg300=0.00 total=1\n",
                                  "some avg10=0.00 avg60=0.00 avg300=0.00\n",
                                  "some avg10=0.00 total=-1\n", "garbage"])
def test_parse_pressure_errors(text: str) -> None:
    with pytest.raises(ParseError, match=r"no 'some \.\.\. total=' line"):
        parse_pressure(text)


# --- dump directory layouts ---------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("127.0.0.1-2024-05-01-03:12:45", DumpDirName("rhel", datetime(2024, 5, 1, 3, 12, 45))),
        ("10.0.0.5-2023-12-31-23:59:59", DumpDirName("rhel", datetime(2023, 12, 31, 23, 59, 59))),
        ("2024-05-01-03:12:45", DumpDirName("rhel", datetime(2024, 5, 1, 3, 12, 45))),
        ("202405010312", DumpDirName("debian", datetime(2024, 5, 1, 3, 12))),
        ("192.168.1.10-202405010312", DumpDirName("debian", datetime(2024, 5, 1, 3, 12))),
        ("myhost-202405010312", DumpDirName("debian", datetime(2024, 5, 1, 3, 12))),
        ("2024-05-01-03-12", DumpDirName("suse", datetime(2024, 5, 1, 3, 12))),
        ("2024-05-01-03:12", DumpDirName("suse", datetime(2024, 5, 1, 3, 12))),
        ("kdump-test-123", None),
        ("kdump-test-2024-05-01-03:12:45", None),
        ("random", None),
        ("", None),
        ("lost+found", None),
        ("2024-13-01-00-00", None),  # month 13
        ("2024-02-30-00:00:00", None),
        ("202402301200", None),
        ("2024-05-01-24:00:00", None),
        ("2024-05-01", None),
        ("20240501031", None),
        ("2024050103120", None),
        ("127.0.0.1-2024-05-01-03:12:45.tmp", None),
    ],
)
def test_classify_dir(name: str, expected: DumpDirName | None) -> None:
    assert classify_dir(name) == expected


@pytest.mark.parametrize(
    ("name", "dump", "incomplete"),
    [
        ("vmcore", True, False),
        ("vmcore.flat", True, False),
        ("vmcore.202405010312", True, False),
        ("dump.202405010312", True, False),
        ("vmcore-incomplete", True, True),
        ("dump-incomplete", True, True),
        ("vmcore-dmesg-incomplete.txt", False, True),
        ("vmcore-dmesg.txt", False, False),
        ("dmesg.202405010312", False, False),
        ("dmesg.txt", False, False),
        ("README.txt", False, False),
        ("kexec-dmesg.log", False, False),
        ("vmcore.1", False, False),
        ("dump.2024", False, False),
        ("vmcore.flat.bak", False, False),
        ("xvmcore", False, False),
    ],
)
def test_is_dump_file(name: str, dump: bool, incomplete: bool) -> None:
    assert is_dump_file(name) is dump
    assert is_incomplete_marker(name) is incomplete


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["vmcore", "vmcore-dmesg.txt", "kexec-dmesg.log"], "vmcore-dmesg.txt"),
        (["vmcore-incomplete", "vmcore-dmesg-incomplete.txt"], "vmcore-dmesg-incomplete.txt"),
        (["vmcore-dmesg-incomplete.txt", "vmcore-dmesg.txt"], "vmcore-dmesg.txt"),
        (["vmcore", "dmesg.txt", "README.txt"], "dmesg.txt"),
        (["vmcore", "dmesg", "README.txt"], "dmesg"),
        (["dmesg", "dmesg.txt"], "dmesg.txt"),
        (["dump.202405010312", "dmesg.202405010312"], "dmesg.202405010312"),
        (["dmesg.202405020312", "dmesg.202405010312", "dump.202405020312"], "dmesg.202405020312"),
        (["dmesg.202405010312", "vmcore-dmesg-incomplete.txt"], "vmcore-dmesg-incomplete.txt"),
        (["vmcore"], None),
        ([], None),
        (["dmesg.2024", "kexec-dmesg.log"], None),
    ],
)
def test_dmesg_file(names: list[str], expected: str | None) -> None:
    assert dmesg_file(names) == expected
