"""/proc/self/mountstats and /proc/net/rpc/nfs: fixtures written from the kernel's print formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from panicwatch.parsers.mountstats import (
    BYTES_NAMES,
    EVENT_NAMES,
    RDMA_NAMES,
    NfsMount,
    OpStats,
    RpcNfsStats,
    Transport,
    parse_mountstats,
    parse_rpc_nfs,
    split_device,
)
from panicwatch.parsers.procfs import ParseError

FIXTURES = Path(__file__).parent / "fixtures" / "mountstats"

V3_OPS = [
    "NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE", "CREATE", "MKDIR",
    "SYMLINK", "MKNOD", "REMOVE", "RMDIR", "RENAME", "LINK", "READDIR", "READDIRPLUS", "FSSTAT",
    "FSINFO", "PATHCONF", "COMMIT",
]
# include/linux/nfs4.h NFSPROC4_CLNT_* as of 6.1: the order /proc/self/mountstats prints them in.
V42_OPS = [
    "NULL", "READ", "WRITE", "COMMIT", "OPEN", "OPEN_CONFIRM", "OPEN_NOATTR", "OPEN_DOWNGRADE",
    "CLOSE", "SETATTR", "FSINFO", "RENEW", "SETCLIENTID", "SETCLIENTID_CONFIRM", "LOCK", "LOCKT",
    "LOCKU", "ACCESS", "GETATTR", "LOOKUP", "LOOKUP_ROOT", "REMOVE", "RENAME", "LINK", "SYMLINK",
    "CREATE", "PATHCONF", "STATFS", "READLINK", "READDIR", "SERVER_CAPS", "DELEGRETURN", "GETACL",
    "SETACL", "FS_LOCATIONS", "RELEASE_LOCKOWNER", "SECINFO", "FSID_PRESENT", "EXCHANGE_ID",
    "CREATE_SESSION", "DESTROY_SESSION", "SEQUENCE", "GET_LEASE_TIME", "RECLAIM_COMPLETE",
    "LAYOUTGET", "GETDEVICEINFO", "LAYOUTCOMMIT", "LAYOUTRETURN", "SECINFO_NO_NAME", "TEST_STATEID",
    "FREE_STATEID", "GETDEVICELIST", "BIND_CONN_TO_SESSION", "DESTROY_CLIENTID", "SEEK", "ALLOCATE",
    "DEALLOCATE", "LAYOUTSTATS", "CLONE", "COPY", "OFFLOAD_CANCEL", "LOOKUPP", "LAYOUTERROR",
    "COPY_NOTIFY", "GETXATTR", "SETXATTR", "LISTXATTRS", "REMOVEXATTR", "READ_PLUS",
]
WRAPPED = 18446744073709551615  # 2**64 - 1: a counter that wrapped, as 3.10 kernels have been seen to print


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# --- fixtures from real kernel layouts ---------------------------------------------------------


def test_old_kernel_statvers_10_nfsv3() -> None:
    """2.6.18-era: statvers=1.0, RPC iostats 1.0, 25 events, 10-value tcp xprt, 8-value ops."""
    result = parse_mountstats(fixture("rhel5_v3_statvers10.txt"))
    assert result.skipped == []
    [m] = result.mounts
    assert (m.device, m.server, m.export, m.mountpoint, m.fstype) == (
        "fs1.corp.example:/vol/home", "fs1.corp.example", "/vol/home", "/home", "nfs")
    assert (m.statvers, m.rpc_iostats_version) == ("1.0", "1.0")
    assert (m.rpc_program, m.rpc_program_version) == (100003, 3)
    assert m.age == 1838274
    assert m.opts == {
        "rw": "", "vers": "3", "rsize": "32768", "wsize": "32768", "acregmin": "3", "acregmax": "60",
        "acdirmin": "30", "acdirmax": "60", "hard": "", "intr": "", "proto": "tcp", "timeo": "600",
        "retrans": "2", "sec": "sys",
    }
    assert (m.version, m.proto, m.server_address, m.port) == ("3", "tcp", None, None)
    assert m.events == (68921542, 1720843771, 12893, 85520, 4216780, 10290562, 33456721, 8563307, 0, 11325,
                        12896401, 5240136, 1327834, 95316, 3355240, 76582, 21, 4216702, 0, 77412, 4389921,
                        1204, 0, 0, 0)
    assert m.event_counts()["vfsopen"] == 4216780
    assert m.event_counts()["delay"] == 0
    assert "pnfsread" not in m.event_counts()
    assert m.bytes == (236551822016, 87127741311, 0, 0, 198863210848, 86982236514, 48551593, 21236937)
    assert m.byte_counts()["serverreadbytes"] == 198863210848
    assert m.transports == (Transport(
        "tcp", (766, 1, 1, 0, 11, 93512744, 93512702, 0, 1437891623, 0), port=766, bind_count=1,
        connect_count=1, connect_time=0, idle_time=11, sends=93512744, recvs=93512702, bad_xids=0,
        req_u=1437891623, bklog_u=0, max_slots=None, sending_u=None, pending_u=None),)
    assert list(m.ops) == V3_OPS
    assert m.ops["NULL"] == OpStats(0, 0, 0, 0, 0, 0, 0, 0, None)
    assert m.ops["GETATTR"] == OpStats(68921588, 68921601, 0, 9926281648, 7719217856, 172683, 19773802,
                                       20325790, None)
    assert m.ops["READ"] == OpStats(5836231, 5836233, 0, 817072340, 190983811504, 40214, 3521440, 3581228)
    assert m.ops["WRITE"].major_timeouts == 2
    assert m.ops["WRITE"].errors is None
    assert m.ops["WRITE"].execute_ms == 11182504
    assert m.ops["WRITE"].execute_seconds == 11182.504
    assert m.ops["PATHCONF"] == OpStats(80, 82, 0, 18880, 13360, 0, 40, 48)


def test_el7_wrapped_counters_are_kept() -> None:
    result = parse_mountstats(fixture("el7_v3_wrapped.txt"))
    assert result.skipped == []
    [m] = result.mounts
    assert (m.mountpoint, m.statvers, m.rpc_iostats_version) == ("/data", "1.1", "1.0")
    assert m.ops["GETATTR"] == OpStats(2287190, 2287190, 0, 274462800, 256165280, 5318, WRAPPED, 1132241)
    assert m.ops["GETATTR"].rtt_ms == 18446744073709551615
    # 3.10 prints the 13-value transport line under RPC iostats version 1.0.
    [xprt] = m.transports
    assert xprt.req_u == WRAPPED
    assert (xprt.max_slots, xprt.sending_u, xprt.pending_u) == (2, 0, 2338414)
    assert len(m.events) == 27
    assert m.event_counts()["pnfswrite"] == 0
    assert m.opts["mountaddr"] == "192.168.40.12"
    assert m.server_address is None  # upstream kernels print addr= only in mountinfo


def test_linux61_nfsv42_full_op_list() -> None:
    result = parse_mountstats(fixture("debian12_v42.txt"))
    assert result.skipped == []
    [m] = result.mounts  # proc, sysfs, ext4, tmpfs, cgroup2, "no device" and others are skipped
    assert (m.device, m.mountpoint, m.fstype, m.statvers) == (
        "files.lab.example:/srv/projects", "/srv/projects", "nfs4", "1.1")
    assert (m.version, m.proto, m.port, m.opts["clientaddr"], m.opts["local_lock"]) == (
        "4.2", "tcp", None, "10.0.2.15", "none")
    assert (m.rpc_iostats_version, m.rpc_program, m.rpc_program_version) == ("1.1", 100003, 4)
    assert m.age == 3605
    assert m.events == (4411102, 9120334, 215, 3310, 80300, 610221, 120330, 702214, 0, 40122, 0, 51233, 2210,
                        10332, 81002, 1202, 88, 80291, 0, 1550, 20331, 12, 0, 0, 4, 0, 0)
    assert dict(zip(EVENT_NAMES, m.events, strict=True)) == m.event_counts()
    assert m.event_counts()["vfsfsync"] == 1202
    assert m.event_counts()["pnfsread"] == 0
    assert m.byte_counts() == dict(zip(BYTES_NAMES, (167851724288, 92318870528, 0, 0, 167851724288,
                                                     92318870528, 40979669, 22538302), strict=True))
    assert list(m.ops) == V42_OPS
    assert len(m.ops) == 69
    assert m.ops["NULL"] == OpStats(1, 1, 0, 44, 24, 0, 0, 0, 0)
    assert m.ops["READ"] == OpStats(1281923, 1281925, 0, 215363064, 167851724288, 3211, 2514822, 2561307, 0)
    assert m.ops["READ"].rtt_seconds == 2514.822
    assert m.ops["READ"].queue_seconds == 3.211
    assert m.ops["WRITE"] == OpStats(702214, 702230, 1, 92318870528, 126398520, 210330, 4209113, 4501288, 3)
    assert m.ops["OPEN"].errors == 1022
    assert m.ops["OPEN_DOWNGRADE"] == OpStats(6, 6, 0, 936, 1260, 0, 3, 3, 2)  # a name longer than %12s
    assert m.ops["BIND_CONN_TO_SESSION"] == OpStats(0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert m.ops["READ_PLUS"] == OpStats(0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert m.transports == (Transport(
        "tcp", (765, 0, 1, 0, 1, 7181543, 7181543, 0, 8112094, 0, 2, 0, 1220331), port=765, bind_count=0,
        connect_count=1, connect_time=0, idle_time=1, sends=7181543, recvs=7181543, bad_xids=0,
        req_u=8112094, bklog_u=0, max_slots=2, sending_u=0, pending_u=1220331),)


def test_nconnect_four_transports() -> None:
    [m] = parse_mountstats(fixture("nconnect4.txt")).mounts
    assert m.opts["nconnect"] == "4"
    assert [t.proto for t in m.transports] == ["tcp"] * 4
    assert [t.port for t in m.transports] == [877, 938, 774, 1003]
    assert [t.sends for t in m.transports] == [2000061, 2000050, 2000055, 2000048]
    assert [t.recvs for t in m.transports] == [2000061, 2000050, 2000054, 2000048]
    assert [t.idle_time for t in m.transports] == [0, 0, 2, 0]
    assert [t.max_slots for t in m.transports] == [128, 128, 128, 128]
    assert [t.pending_u for t in m.transports] == [6220331, 6219981, 6221002, 6219334]
    assert m.ops["READ"] == OpStats(8000214, 8000214, 0, 1344035952, 33554432000000, 1733, 8129920, 8201441,
                                    0)


def test_udp_transports_7_and_10_values() -> None:
    result = parse_mountstats(fixture("udp_v3.txt"))
    assert result.skipped == []
    old, new = result.mounts
    assert (old.mountpoint, old.proto, old.opts["ro"]) == ("/opt/tools", "udp", "")
    assert "rw" not in old.opts
    assert old.transports == (Transport(
        "udp", (877, 0, 127413, 127398, 0, 221871, 3), port=877, bind_count=0, sends=127413, recvs=127398,
        bad_xids=0, req_u=221871, bklog_u=3),)
    assert old.transports[0].connect_count is None
    assert old.transports[0].idle_time is None
    assert old.transports[0].max_slots is None
    assert old.ops["GETATTR"] == OpStats(92233, 92240, 7, 10330096, 10330096, 102, 23011, 23344, None)
    assert len(old.events) == 25
    assert new.transports == (Transport(
        "udp", (822, 0, 31007, 30991, 0, 80231, 0, 16, 0, 40212), port=822, bind_count=0, sends=31007,
        recvs=30991, bad_xids=0, req_u=80231, bklog_u=0, max_slots=16, sending_u=0, pending_u=40212),)
    assert new.ops["WRITE"] == OpStats(4416, 4431, 15, 145269248, 565248, 102, 31022, 31871)
    assert new.opts["mountport"] == "892"


def test_rdma_transports_by_name() -> None:
    result = parse_mountstats(fixture("rdma.txt"))
    assert result.skipped == []
    old, new = result.mounts
    assert old.proto == "rdma"
    assert old.port == 20049
    [xprt] = old.transports
    assert (xprt.proto, xprt.port, xprt.bind_count, xprt.connect_count) == ("rdma", 0, 0, 1)
    assert (xprt.connect_time, xprt.idle_time) == (0, 30)
    assert (xprt.sends, xprt.recvs, xprt.bad_xids, xprt.req_u, xprt.bklog_u) == (28731, 28731, 0, 31220, 0)
    assert (xprt.max_slots, xprt.sending_u, xprt.pending_u) == (None, None, None)
    assert xprt.rdma == {
        "read_chunk_count": 880, "write_chunk_count": 12220, "reply_chunk_count": 3,
        "total_rdma_request": 12815553920, "total_rdma_reply": 922746880, "pullup_copy_count": 2,
        "fixup_copy_count": 9, "hardway_register_count": 0, "failed_marshal_count": 0, "bad_reply_count": 0,
    }
    [xprt] = new.transports
    assert len(xprt.values) == 27
    assert (xprt.sends, xprt.recvs, xprt.req_u) == (6012, 6012, 6030)
    assert xprt.rdma == {
        "read_chunk_count": 21, "write_chunk_count": 0, "reply_chunk_count": 44, "total_rdma_request": 0,
        "total_rdma_reply": 22020096, "pullup_copy_count": 0, "fixup_copy_count": 0,
        "hardway_register_count": 0, "failed_marshal_count": 0, "bad_reply_count": 0,
        "nomsg_call_count": 1, "mrs_recycled": 2, "mrs_orphaned": 3, "mrs_allocated": 4,
        "local_inv_needed": 5, "empty_sendctx_q": 6, "reply_waits_for_send": 7,
    }
    assert list(xprt.rdma) == list(RDMA_NAMES)
    assert new.ops["SEQUENCE"] == OpStats(4650, 4650, 0, 744000, 465000, 2, 1201, 1310, 0)


def test_rdma_intermediate_and_longer_lines() -> None:
    """4.9 printed 25 values; a future kernel may append more: named as far as known."""
    generic = "0 0 1 0 0 10 10 0 10 0"
    text = block("/mnt/r", xprt=f"rdma {generic} 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15")
    [m] = parse_mountstats(text).mounts
    assert m.transports[0].rdma == dict(zip(RDMA_NAMES[:15], range(1, 16), strict=True))
    text = block("/mnt/r", xprt=f"rdma {generic} " + " ".join(map(str, range(1, 20))))
    [m] = parse_mountstats(text).mounts
    assert m.transports[0].rdma == dict(zip(RDMA_NAMES, range(1, 18), strict=True))
    assert m.transports[0].values[-2:] == (18, 19)


def test_truncated_file_keeps_the_complete_mounts() -> None:
    result = parse_mountstats(fixture("truncated.txt"))
    assert [m.mountpoint for m in result.mounts] == ["/srv/projects", "/home"]
    assert [m.export for m in result.mounts] == ["/srv/projects", "/srv/home"]
    assert [len(m.ops) for m in result.mounts] == [69, 69]
    assert result.mounts[1].ops["READ_PLUS"] == OpStats(0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert result.skipped == ["/archive: truncated per-op statistics (no blank line after the last op)"]


@pytest.mark.parametrize(
    ("cut_after", "reason"),
    [
        ("\tage:\t", "/mnt/b: truncated before per-op statistics"),
        ("\tbytes:\t1 2 3 4 5 6 7 8 \n", "/mnt/b: truncated before per-op statistics"),
        ("\tper-op statistics\n", "/mnt/b: truncated per-op statistics (no blank line after the last op)"),
        ("\t        READ: 5 5 0 600 40960 0 7 8 0\n",
         "/mnt/b: truncated per-op statistics (no blank line after the last op)"),
        ("\t        READ: 5 5 0 6", "/mnt/b: truncated per-op statistics (no blank line after the last op)"),
    ],
)
def test_truncation_points(cut_after: str, reason: str) -> None:
    second = block("/mnt/b")
    text = block("/mnt/a") + second[:second.index(cut_after) + len(cut_after)]
    result = parse_mountstats(text)
    assert [m.mountpoint for m in result.mounts] == ["/mnt/a"]
    assert result.skipped == [reason]


def test_complete_last_mount_needs_its_blank_line() -> None:
    text = block("/mnt/a")
    assert text.endswith(" 0\n\n")
    assert [m.mountpoint for m in parse_mountstats(text).mounts] == ["/mnt/a"]
    assert parse_mountstats(text[:-1]).skipped == [
        "/mnt/a: truncated per-op statistics (no blank line after the last op)"]


# --- small blocks built here ---------------------------------------------------------------------

EVENTS_27 = " ".join(str(100 + i) for i in range(27))


def block(mountpoint: str = "/mnt/a", device: str = "srv:/export", *, fstype: str = "nfs4",
          opts: str = "rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,"
                      "sec=sys,clientaddr=10.0.0.5,local_lock=none",
          impl_id: str = "name='',domain='',date='0,0'", events: str = EVENTS_27,
          xprt: str | list[str] = "tcp 801 0 1 0 0 20 20 0 25 0 2 0 5",
          ops: str = "\t        NULL: 1 1 0 44 24 0 0 0 0\n\t        READ: 5 5 0 600 40960 0 7 8 0\n",
          extra: str = "") -> str:
    """A 6.x-style NFSv4.2 block, terminated by the kernel's blank line."""
    xprts = [xprt] if isinstance(xprt, str) else xprt
    return (
        f"device {device} mounted on {mountpoint} with fstype {fstype} statvers=1.1\n"
        f"\topts:\t{opts}\n"
        "\tage:\t42\n"
        f"\timpl_id:\t{impl_id}\n"
        "\tcaps:\tcaps=0x3ffbffff,wtmult=512,dtsize=1048576,bsize=0,namlen=255\n"
        "\tnfsv4:\tbm0=0xfdffbfff,bm1=0x40fdbe3e,bm2=0x60803,acl=0x3,sessions,pnfs=not configured\n"
        "\tsec:\tflavor=1,pseudoflavor=1\n"
        f"\tevents:\t{events} \n"
        "\tbytes:\t1 2 3 4 5 6 7 8 \n"
        f"{extra}"
        "\tRPC iostats version: 1.1  p/v: 100003/4 (nfs)\n"
        + "".join(f"\txprt:\t{x}\n" for x in xprts)
        + "\tper-op statistics\n"
        + ops
        + "\n"
    )


def test_block_helper_parses_exactly() -> None:
    [m] = parse_mountstats(block()).mounts
    assert m == NfsMount(
        device="srv:/export", mountpoint="/mnt/a", fstype="nfs4", statvers="1.1",
        opts={"rw": "", "vers": "4.2", "rsize": "1048576", "wsize": "1048576", "namlen": "255", "hard": "",
              "proto": "tcp", "timeo": "600", "retrans": "2", "sec": "sys", "clientaddr": "10.0.0.5",
              "local_lock": "none"},
        age=42, events=tuple(range(100, 127)), bytes=(1, 2, 3, 4, 5, 6, 7, 8), rpc_iostats_version="1.1",
        rpc_program=100003, rpc_program_version=4,
        transports=(Transport("tcp", (801, 0, 1, 0, 0, 20, 20, 0, 25, 0, 2, 0, 5), port=801, bind_count=0,
                              connect_count=1, connect_time=0, idle_time=0, sends=20, recvs=20, bad_xids=0,
                              req_u=25, bklog_u=0, max_slots=2, sending_u=0, pending_u=5),),
        ops={"NULL": OpStats(1, 1, 0, 44, 24, 0, 0, 0, 0), "READ": OpStats(5, 5, 0, 600, 40960, 0, 7, 8, 0)},
    )


def test_escaped_mount_points_and_devices() -> None:
    text = (block(r"/mnt/with\040space", r"srv:/exp\040one")
            + block(r"/mnt/tab\011here", "srv:/b")
            + block(r"/mnt/new\012line", "srv:/c")
            + block(r"/mnt/back\134slash\040040", r"srv:/d\134e"))
    result = parse_mountstats(text)
    assert result.skipped == []
    assert [m.mountpoint for m in result.mounts] == [
        "/mnt/with space", "/mnt/tab\there", "/mnt/new\nline", "/mnt/back\\slash 040"]
    assert [m.device for m in result.mounts] == ["srv:/exp one", "srv:/b", "srv:/c", "srv:/d\\e"]
    assert result.mounts[0].export == "/exp one"


def test_non_nfs_devices_interleaved() -> None:
    text = ("no device mounted on /proc/fs/nfsd with fstype nfsd\n"
            "device proc mounted on /proc with fstype proc\n"
            + block("/mnt/a")
            + "device sysfs mounted on /sys with fstype sysfs\n"
            "device /dev/sda1 mounted on /boot with fstype ext4\n"
            "device tmpfs mounted on /run with fstype tmpfs\n"
            "device  mounted on /mnt/empty with fstype tmpfs\n"  # an empty source
            "device //win/share mounted on /mnt/win with fstype cifs \n"  # cifs prints an empty show_stats
            "no device mounted on /sys/fs/bpf with fstype bpf\n"
            + block("/mnt/b")
            + "device nfsd mounted on /proc/fs/nfsd with fstype nfsd\n")
    result = parse_mountstats(text)
    assert result.skipped == []
    assert [m.mountpoint for m in result.mounts] == ["/mnt/a", "/mnt/b"]


def test_non_nfs_block_bodies_are_not_read() -> None:
    """Whatever follows a non-NFS device line up to the next device line is never looked at."""
    text = ("device tmpfs mounted on /run with fstype tmpfs\n"
            "\tevents:\tnot numbers\n\tper-op statistics\n\t  READ: x\n"
            + block("/mnt/a"))
    result = parse_mountstats(text)
    assert [m.mountpoint for m in result.mounts] == ["/mnt/a"]
    assert result.skipped == []


def test_zero_ops_and_empty_op_section() -> None:
    zeros = "".join(f"\t{name:>12}: 0 0 0 0 0 0 0 0 0\n" for name in V42_OPS)
    result = parse_mountstats(block("/mnt/zero", ops=zeros) + block("/mnt/none", ops=""))
    assert result.skipped == []
    zero, none = result.mounts
    assert list(zero.ops) == V42_OPS
    assert set(zero.ops.values()) == {OpStats(0, 0, 0, 0, 0, 0, 0, 0, 0)}
    assert none.ops == {}
    assert none.events == tuple(range(100, 127))


def test_impl_id_with_newlines_in_name() -> None:
    impl = "name='Acme NAS\nfirmware 7.1\n\tevents:\t1 2 3\n',domain='acme.example',date='1700000000,0'"
    result = parse_mountstats(block("/mnt/acme", impl_id=impl) + block("/mnt/b"))
    assert result.skipped == []
    acme, b = result.mounts
    assert acme.events == tuple(range(100, 127))  # the fake events line inside the name is not read
    assert acme.ops["READ"] == OpStats(5, 5, 0, 600, 40960, 0, 7, 8, 0)
    assert b.mountpoint == "/mnt/b"


def test_impl_id_without_its_end_is_one_line() -> None:
    [m] = parse_mountstats(block("/mnt/a", impl_id="name='cut")).mounts
    assert m.ops["NULL"] == OpStats(1, 1, 0, 44, 24, 0, 0, 0, 0)


def test_impl_id_name_holding_a_device_line_loses_only_that_mount() -> None:
    """The documented limit: a device line inside a server-chosen name splits the block."""
    impl = ("name='x\ndevice evil:/ mounted on /evil with fstype tmpfs\n',domain='d',"
            "date='1,2'")
    result = parse_mountstats(block("/mnt/a", impl_id=impl) + block("/mnt/b"))
    assert [m.mountpoint for m in result.mounts] == ["/mnt/b"]
    assert result.skipped == ["/mnt/a: truncated before per-op statistics"]


def test_ipv6_and_plain_servers() -> None:
    text = block("/mnt/v6", "[fd00::1]:/export") + block("/mnt/v4", "10.1.2.3:/srv/nfs")
    v6, v4 = parse_mountstats(text).mounts
    assert (v6.device, v6.server, v6.export) == ("[fd00::1]:/export", "fd00::1", "/export")
    assert (v4.server, v4.export) == ("10.1.2.3", "/srv/nfs")


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ("server:/export", ("server", "/export")),
        ("server.example.com:/a/b:c", ("server.example.com", "/a/b:c")),
        ("[fe80::1]:/exp", ("fe80::1", "/exp")),
        ("[fd00::1:2]:/", ("fd00::1:2", "/")),
        ("fd00::1:/export", ("fd00::1", "/export")),
        ("server:", ("server", "")),
        ("server:relative", ("server", "relative")),
        ("nocolon", ("", "nocolon")),
        ("", ("", "")),
        ("[broken:/x", ("[broken", "/x")),
    ],
)
def test_split_device(device: str, expected: tuple[str, str]) -> None:
    assert split_device(device) == expected


def test_same_export_on_two_mount_points_stays_separate() -> None:
    first = block("/mnt/one", "srv:/export")
    second = block("/mnt/two", "srv:/export", ops="\t        NULL: 2 2 0 88 48 0 0 0 0\n")
    one, two = parse_mountstats(first + second).mounts
    assert (one.mountpoint, one.device) == ("/mnt/one", "srv:/export")
    assert (two.mountpoint, two.device) == ("/mnt/two", "srv:/export")
    assert one.ops == {"NULL": OpStats(1, 1, 0, 44, 24, 0, 0, 0, 0),
                       "READ": OpStats(5, 5, 0, 600, 40960, 0, 7, 8, 0)}
    assert two.ops == {"NULL": OpStats(2, 2, 0, 88, 48, 0, 0, 0, 0)}


def test_unknown_lines_and_vendor_additions_are_ignored() -> None:
    extra = ("\tfsc:\t12 0 40 0 0\n"
             "\tsunrpc-id:\t1a\n"
             "\tsomething new: 1 2 3\n")
    xprts = ["tcp 801 0 1 0 0 20 20 0 25 0 2 0 5", "tcp 802 0 1 0 0 21 21 0 26 0 2 0 6"]
    text = block("/mnt/a", extra=extra, xprt=xprts)
    # A vendor kernel (multipath NFS) adds lines after each xprt and before per-op statistics.
    text = text.replace("\tper-op statistics\n",
                        "\t\t10.0.0.5 -> 10.0.0.1, state: CONNECTED BOUND\n"
                        "\tspread reads: 1 writes: 1\n\tmdconnect: 0\n\tper-op statistics\n")
    result = parse_mountstats(text)
    assert result.skipped == []
    [m] = result.mounts
    assert [t.port for t in m.transports] == [801, 802]
    assert m.ops["READ"] == OpStats(5, 5, 0, 600, 40960, 0, 7, 8, 0)


def test_whitespace_tolerated() -> None:
    ops = "\t        NULL: 1 1 0 44 24 0 0 0 0   \n\t        READ:  5 5 0 600 40960 0 7 8 0\n"
    text = block("/mnt/a", ops=ops).replace("\tage:\t42\n", "\tage:\t42  \n")
    text = text[:-1] + "   \n" + "\n\n" + block("/mnt/b")  # a blank line made of spaces, more blank lines
    result = parse_mountstats("\n\n" + text)
    assert result.skipped == []
    a, b = result.mounts
    assert a.ops == {"NULL": OpStats(1, 1, 0, 44, 24, 0, 0, 0, 0),
                     "READ": OpStats(5, 5, 0, 600, 40960, 0, 7, 8, 0)}
    assert a.age == 42
    assert b.mountpoint == "/mnt/b"


def test_ops_of_any_name_and_mixed_widths() -> None:
    ops = ("\t          51: 3 3 0 300 200 0 1 1 0\n"  # a procedure without a name prints its number
           "\t  NEW_OP_2030: 1 1 0 10 10 0 0 0 0\n"
           "\t   OLDSTYLE: 4 4 0 40 40 0 1 1\n")
    [m] = parse_mountstats(block("/mnt/a", ops=ops)).mounts
    assert m.ops == {"51": OpStats(3, 3, 0, 300, 200, 0, 1, 1, 0),
                     "NEW_OP_2030": OpStats(1, 1, 0, 10, 10, 0, 0, 0, 0),
                     "OLDSTYLE": OpStats(4, 4, 0, 40, 40, 0, 1, 1, None)}


def test_fast_and_line_by_line_paths_agree() -> None:
    """Clean op sections are converted in one go; anything else goes line by line. Same result."""
    ops = "".join(f"\t{name:>12}: {i} {i} 0 {i * 100} {i * 90} {i // 3} {i * 2} {i * 3} {i % 2}\n"
                  for i, name in enumerate(V42_OPS))
    fast = parse_mountstats(block("/mnt/a", ops=ops)).mounts
    slow = parse_mountstats(block("/mnt/a", ops=ops.replace("\n", " \n"))).mounts
    assert fast == slow
    assert fast[0].ops["READ_PLUS"] == OpStats(68, 68, 0, 6800, 6120, 22, 136, 204, 0)
    eight = ops.replace(" 0\n", "\n").replace(" 1\n", "\n")
    [m] = parse_mountstats(block("/mnt/a", ops=eight)).mounts
    assert m.ops["READ_PLUS"] == OpStats(68, 68, 0, 6800, 6120, 22, 136, 204, None)


@pytest.mark.parametrize(
    ("ops", "line"),
    [
        # The right tokens with the line breaks in the wrong places.
        ("\t           A: 1 2 3 4 5 6 7 8 9 B:\n\t1 2 3 4 5 6 7 8 9\n", 13),
        ("\t           A: 1 2 3 4 5 6 7 8 9\n\t1 2 3 4 5 6 7 8 9 B:\n", 14),
        # Op names never hold a colon, and are never empty.
        ("\t           A:B: 1 2 3 4 5 6 7 8 9\n\t           C: 1 2 3 4 5 6 7 8 9\n", 13),
        ("\t           C: 1 2 3 4 5 6 7 8 9\n\t          A:: 1 2 3 4 5 6 7 8 9\n", 14),
        ("\t           : 1 2 3 4 5 6 7 8 9\n", 13),
    ],
)
def test_misplaced_op_tokens_are_malformed(ops: str, line: int) -> None:
    result = parse_mountstats(block("/mnt/a", ops=ops))
    assert result.mounts == []
    assert len(result.skipped) == 1
    assert result.skipped[0].startswith(f"/mnt/a: line {line}: malformed per-op line ")


def test_unknown_transport_keeps_raw_values() -> None:
    [m] = parse_mountstats(block("/mnt/a", xprt="vsock 1 2 3")).mounts
    assert m.transports == (Transport("vsock", (1, 2, 3)),)
    assert m.transports[0].sends is None


def test_local_transport() -> None:
    [m] = parse_mountstats(block("/mnt/a", xprt="local 1 1 0 3 50 50 0 70 0 4 0 9")).mounts
    assert m.transports == (Transport(
        "local", (1, 1, 0, 3, 50, 50, 0, 70, 0, 4, 0, 9), port=None, bind_count=1, connect_count=1,
        connect_time=0, idle_time=3, sends=50, recvs=50, bad_xids=0, req_u=70, bklog_u=0, max_slots=4,
        sending_u=0, pending_u=9),)


def line_of(text: str, fragment: str, after: str = "") -> int:
    return text[:text.index(fragment, text.index(after))].count("\n") + 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("\tevents:\t" + EVENTS_27, "\tevents:\t1 2 3"),
         "line {line}: events: expected 25 or 27 values, got 3"),
        (("\tevents:\t" + EVENTS_27, "\tevents:\t1 2 x"),
         "line {line}: events: expected 25 or 27 values, got '1 2 x'"),
        (("\tbytes:\t1 2 3 4 5 6 7 8", "\tbytes:\t1 2 3 4 5 6 7 -8"),
         "line {line}: bytes: expected 8 values, got '1 2 3 4 5 6 7 -8'"),
        (("\tbytes:\t1 2 3 4 5 6 7 8", "\tbytes:\t1 2 3 4 5 6 7"),
         "line {line}: bytes: expected 8 values, got 7"),
        (("\tage:\t42", "\tage:\tforty"), "line {line}: age: expected one integer, got 'forty'"),
        (("\txprt:\ttcp 801 0 1 0 0 20 20 0 25 0 2 0 5", "\txprt:\ttcp 801 0 1 0 0 20 20 0 25 0 2"),
         "line {line}: xprt: unexpected number of values for tcp: 11"),
        (("\txprt:\ttcp 801 0 1 0 0 20 20 0 25 0 2 0 5", "\txprt:\ttcp 801 0 1 0 0 20 20 0 25 0 2 0 -5"),
         "line {line}: xprt: expected a protocol and integers, got 'tcp 801 0 1 0 0 20 20 0 25 0 2 0 -5'"),
        (("\txprt:\ttcp 801 0 1 0 0 20 20 0 25 0 2 0 5", "\txprt:\t"),
         "line {line}: xprt: expected a protocol and integers, got ''"),
        (("\txprt:\ttcp 801 0 1 0 0 20 20 0 25 0 2 0 5", "\txprt:\trdma 0 1 2"),
         "line {line}: xprt: unexpected number of values for rdma: 3"),
        (("\tRPC iostats version: 1.1  p/v: 100003/4 (nfs)", "\tRPC iostats version: 1.1  p/v: nfs"),
         "line {line}: malformed RPC iostats line 'RPC iostats version: 1.1  p/v: nfs'"),
        (("\t        READ: 5 5 0 600 40960 0 7 8 0", "\t        READ: 5 5 0 600 40960 0 7"),
         "line {line}: malformed per-op line 'READ: 5 5 0 600 40960 0 7'"),
        (("\t        READ: 5 5 0 600 40960 0 7 8 0", "\t        READ: 5 5 0 600 40960 0 7 8 0 1"),
         "line {line}: malformed per-op line 'READ: 5 5 0 600 40960 0 7 8 0 1'"),
        (("\t        READ: 5 5 0 600 40960 0 7 8 0", "\t        READ 5 5 0 600 40960 0 7 8 0"),
         "line {line}: malformed per-op line 'READ 5 5 0 600 40960 0 7 8 0'"),
        (("\t        READ: 5 5 0 600 40960 0 7 8 0", "\t        READ: 5 5 0 600 40960 0 7 ٨ x"),
         "line {line}: malformed per-op line 'READ: 5 5 0 600 40960 0 7 ٨ x'"),
        (("\t        READ: 5 5 0 600 40960 0 7 8 0", "\t        NULL: 5 5 0 600 40960 0 7 8 0"),
         "line {line}: op NULL appears twice"),
        (("\tage:\t42\n", "\tage:\t42\n\tage:\t43\n"), "line {line2}: a second age: line"),
        (("\tevents:\t" + EVENTS_27 + " \n", ("\tevents:\t" + EVENTS_27 + " \n") * 2),
         "line {line2}: a second events: line"),
        (("\topts:\t", "\topts:\trw\n\topts:\t"), "line {line2}: a second opts: line"),
    ],
)
def test_malformed_block_loses_only_that_mount(change: tuple[str, str], reason: str) -> None:
    old, new = change
    bad = block("/mnt/bad").replace(old, new, 1)
    text = block("/mnt/a") + bad + block("/mnt/c")
    line = line_of(text, new, after="/mnt/bad")
    result = parse_mountstats(text)
    assert [m.mountpoint for m in result.mounts] == ["/mnt/a", "/mnt/c"]
    assert result.skipped == ["/mnt/bad: " + reason.format(line=line, line2=line + 1)]
    assert result.mounts[0] == parse_mountstats(block("/mnt/a")).mounts[0]
    assert result.mounts[1] == parse_mountstats(block("/mnt/c")).mounts[0]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (block("/mnt/bad").replace("\tper-op statistics\n", ""),
         "/mnt/bad: block ended before per-op statistics"),
        (block("/mnt/bad").replace("\tRPC iostats version: 1.1  p/v: 100003/4 (nfs)\n", ""),
         "/mnt/bad: no RPC iostats version line before per-op statistics"),
        (block("/mnt/bad").replace("\tage:\t42\n", "").replace("\tbytes:\t1 2 3 4 5 6 7 8 \n", ""),
         "/mnt/bad: no age, bytes line before per-op statistics"),
        (block("/mnt/bad").replace("\tsec:", "\n\tsec:"), "/mnt/bad: block ended before per-op statistics"),
        (block("/mnt/bad").replace(" statvers=1.1", ""),
         "/mnt/bad: nfs4 mount without statistics (no statvers=)"),
        (block("/mnt/bad", fstype="nfs").replace("statvers=1.1", "stats=1"),
         "/mnt/bad: nfs mount without statistics (no statvers=)"),
        (block("/mnt/bad").replace("statvers=1.1", "statvers=1.1 extra"),
         "/mnt/bad: line {line}: malformed device line"),
    ],
)
def test_incomplete_block_is_reported(bad: str, reason: str) -> None:
    text = block("/mnt/a") + bad + block("/mnt/c")
    result = parse_mountstats(text)
    assert [m.mountpoint for m in result.mounts] == ["/mnt/a", "/mnt/c"]
    assert result.skipped == [reason.format(line=line_of(text, "device srv:/export mounted on /mnt/bad"))]
    assert line_of(text, "device srv:/export mounted on /mnt/bad") == 16


def test_garbage_device_line() -> None:
    text = block("/mnt/a") + "device what is this\n" + block("/mnt/c")
    result = parse_mountstats(text)
    assert [m.mountpoint for m in result.mounts] == ["/mnt/a", "/mnt/c"]
    assert result.skipped == [f"line {line_of(text, 'device what')}: not a mountstats device line: "
                              "'device what is this'"]


@pytest.mark.parametrize("text", [
    "", "\n", "garbage\n", "no device mounted on /x with fstype y\n", "device", "device ",
    "device x mounted on /m with fstype nfs4 statvers=1.1",
])
def test_nothing_to_return(text: str) -> None:
    result = parse_mountstats(text)
    assert result.mounts == []
    assert len(result.skipped) == (1 if text.startswith("device ") else 0)


def test_many_mounts() -> None:
    text = "".join(block(f"/mnt/{i}", f"srv{i % 3}:/e{i}") + "device tmpfs mounted on /t with fstype tmpfs\n"
                   for i in range(1000))
    result = parse_mountstats(text)
    assert result.skipped == []
    assert [m.mountpoint for m in result.mounts] == [f"/mnt/{i}" for i in range(1000)]
    assert {m.ops["READ"] for m in result.mounts} == {OpStats(5, 5, 0, 600, 40960, 0, 7, 8, 0)}


# --- /proc/net/rpc/nfs ------------------------------------------------------------------------

PROC3 = [0, 2287190, 396, 3372, 40021, 4547, 301, 0, 2676, 3281, 2020, 3034, 1237, 2695, 3400, 4625, 2380, 89,
         2944, 373, 80, 0]
PROC4 = [1, 1281923, 702214, 0, 80313, 0, 26, 6, 26, 2120, 3012, 0, 0, 0, 2196, 32, 0, 3815, 4411270, 98, 2,
         12, 4, 0, 3, 1, 0, 44, 0, 210, 3, 88, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1790, 1, 1] + [0] * 25
RPC_NFS = (
    "net 0 0 0 0\n"
    "rpc 2338412 12 2338440\n"
    f"proc3 22 {' '.join(map(str, PROC3))}\n"
    f"proc4 69 {' '.join(map(str, PROC4))}\n"
)


def test_parse_rpc_nfs() -> None:
    stats = parse_rpc_nfs(RPC_NFS)
    assert (stats.calls, stats.retransmissions, stats.auth_refreshes) == (2338412, 12, 2338440)
    assert (stats.net_packets, stats.net_udp, stats.net_tcp, stats.net_tcp_connections) == (0, 0, 0, 0)
    assert sorted(stats.procs) == [3, 4]
    assert stats.procs[3] == tuple(PROC3)
    assert len(stats.procs[3]) == 22
    assert stats.procs[4] == tuple(PROC4)
    assert len(stats.procs[4]) == 69
    assert stats.procs[4][41] == 1790  # SEQUENCE


def test_parse_rpc_nfs_minimal_and_unknown_lines() -> None:
    stats = parse_rpc_nfs("net 1 2 3 4\nrpc 5 6 7\nsomething new 8\n\n")
    assert stats == RpcNfsStats(1, 2, 3, 4, 5, 6, 7, {})
    assert parse_rpc_nfs("rpc 4294967295 0 0\nnet 0 0 0 0\nproc2 0\n").procs == {2: ()}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "net 0 0 0 0\n",
        "rpc 1 2 3\n",
        "net 0 0 0\nrpc 1 2 3\n",
        "net 0 0 0 0\nrpc 1 2\n",
        "net 0 0 0 0\nrpc 1 2 x\n",
        "net 0 0 0 0\nrpc 1 2 -3\n",
        "net 0 0 0 0\nrpc 1 2 3\nrpc 1 2 3\n",
        "net 0 0 0 0\nrpc 1 2 3\nproc3 22 1 2 3\n",
        "net 0 0 0 0\nrpc 1 2 3\nproc3\n",
        "net 0 0 0 0\nrpc 1 2 3\nproc3 1 1\nproc3 1 1\n",
    ],
)
def test_parse_rpc_nfs_errors(text: str) -> None:
    with pytest.raises(ParseError):
        parse_rpc_nfs(text)
