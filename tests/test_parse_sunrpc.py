"""sunrpc debugfs/sysfs parsers and the task age tracker.

Fixtures in tests/fixtures/sunrpc/ are written from the kernel's format strings (net/sunrpc/debugfs.c
tasks_show and xprt_info_show, net/sunrpc/sysfs.c rpc_sysfs_xprt_*_show) for several kernel
generations. The fuzz tests render tasks with their own copy of the tasks_show format, independent
of the parser; hypothesis draws a seed and a ``random.Random`` fills in the bulk (cheaper than
drawing every field through strategies on this 2-core machine).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panicwatch.parsers.sunrpc import (
    RPC_CALL_MAJORSEEN,
    TASK_FLAG_NAMES,
    Parsed,
    RpcTask,
    SysfsXprtInfo,
    TasksFile,
    XprtInfo,
    XprtState,
    XprtSwitchInfo,
    client_id_from_dirname,
    decode_task_flags,
    decode_xprt_state,
    parse_sysfs_address,
    parse_sysfs_xprt_info,
    parse_task_line,
    parse_tasks,
    parse_xprt_info,
    parse_xprt_state,
    parse_xprt_switch_info,
    sysfs_id_from_dirname,
    xprt_dir_from_link,
)
from panicwatch.tracking.rpc_task_ages import ServerTasks, TaskTracker, TrackedTask, aggregate_by_server

FIXTURES = Path(__file__).parent / "fixtures" / "sunrpc"
SUNRPC = " [sunrpc]"
PGIO = "nfs_pgio_common_ops [nfs]"

MANY = settings(max_examples=2_000, deadline=None)
SOME = settings(max_examples=300, deadline=None)


def fixture(name: str) -> str:
    # newline="" keeps the text as written (no newline translation)
    with open(FIXTURES / name, encoding="utf-8", newline="") as f:
        return f.read()


def rpc(task_id: int, flags: int, status: int, client_id: int, xid: int, timeout: int, ops: str, program: str,
        version: int, procedure: str, action: str, queue: str) -> RpcTask:
    return RpcTask(task_id, flags, status, client_id, xid, timeout, ops, program, version, procedure, action,
                   queue)


# --- tasks: fixtures ------------------------------------------------------------------------------


def test_tasks_6_1_nfsv3_stuck_server() -> None:
    """Debian 6.1, NFSv3 hard mount, server dropped: replies awaited on xprt_pending, one write
    waiting for the transport, one for a request slot, one running. Timeouts are jiffies left."""
    result = parse_tasks(fixture("tasks_6.1_nfsv3_stuck.txt"))
    assert result.skipped == []
    assert (result.client_address, result.task_count) == (None, None)
    dflt = "rpc_default_ops" + SUNRPC
    assert result.tasks == [
        rpc(2271, 0x08a0, 0, 4, 0x8b3b9a47, 11873, dflt, "nfs", 3, "GETATTR", "call_status" + SUNRPC,
            "xprt_pending"),
        rpc(2272, 0x08a1, 0, 4, 0x8b3b9a48, 11874, PGIO, "nfs", 3, "READ", "call_status" + SUNRPC,
            "xprt_pending"),
        rpc(2280, 0x0881, 0, 4, 0x8b3b9a4f, 14201, PGIO, "nfs", 3, "WRITE", "call_status" + SUNRPC,
            "xprt_pending"),
        rpc(2291, 0x0081, 0, 4, 0x8b3b9a50, 0, PGIO, "nfs", 3, "WRITE", "call_transmit_status" + SUNRPC,
            "xprt_sending"),
        rpc(2293, 0x0081, 0, 4, 0, 0, "nfs_commit_ops [nfs]", "nfs", 3, "COMMIT",
            "call_reserveresult" + SUNRPC, "xprt_backlog"),
        rpc(2295, 0x0080, -11, 4, 0, 0, dflt, "nfs", 3, "ACCESS", "call_reserve" + SUNRPC, "none"),
    ]
    assert [t.major_timeout for t in result.tasks] == [True, True, False, False, False, False]
    assert [t.queued for t in result.tasks] == [True, True, True, True, True, False]
    assert [t.has_request for t in result.tasks] == [True, True, True, True, False, False]
    assert [t.is_async for t in result.tasks] == [False, True, True, True, True, False]
    assert not any(t.soft for t in result.tasks)
    first = result.tasks[0]
    assert (first.action_name, first.ops_name, first.key) == (
        "call_status", "rpc_default_ops", (4, 2271, 0x8b3b9a47))
    assert first.flag_names == ("MAJORSEEN", "DYNAMIC", "SENT")
    assert result.tasks[1].flag_names == ("ASYNC", "MAJORSEEN", "DYNAMIC", "SENT")


def test_tasks_4_18_nfsv41_session_slots_and_delay_queue() -> None:
    """RHEL 8: NFSv4.1 (NO_RETRANS_TIMEOUT on every task), tasks waiting for a session slot
    (queue name with spaces, xid 0), a soft SEQUENCE, an OPEN on delayq. Timeouts relative."""
    result = parse_tasks(fixture("tasks_4.18_nfsv41.txt"))
    assert result.skipped == []
    prep = "rpc_prepare_task" + SUNRPC
    assert result.tasks == [
        rpc(17603, 0x48a1, 0, 9, 0x1f3e6c02, 60000, PGIO, "nfs", 4, "READ", "call_status" + SUNRPC,
            "xprt_pending"),
        rpc(17611, 0x4881, 0, 9, 0x1f3e6c09, 60000, PGIO, "nfs", 4, "WRITE", "call_status" + SUNRPC,
            "xprt_pending"),
        rpc(17620, 0x4281, 0, 9, 0, 0, "nfs41_sequence_ops [nfsv4]", "nfs", 4, "SEQUENCE", prep,
            "ForeChannel Slot table"),
        rpc(17625, 0x4080, 0, 9, 0, 0, "nfs41_call_sync_ops [nfsv4]", "nfs", 4, "GETATTR", prep,
            "ForeChannel Slot table"),
        rpc(17630, 0x4081, 0, 9, 0, 15000, "nfs4_open_ops [nfsv4]", "nfs", 4, "OPEN", prep, "delayq"),
    ]
    assert [t.major_timeout for t in result.tasks] == [True, False, False, False, False]
    assert [t.soft for t in result.tasks] == [False, False, True, False, False]
    assert result.tasks[2].flag_names == ("ASYNC", "DYNAMIC", "SOFT", "NO_RETRANS_TIMEOUT")


def test_tasks_6_15_trailer_repeated_and_cut_short() -> None:
    """2025 kernels end every read() chunk with clnt[addr] RPC tasks[N]; a chunk that has no room
    for it gets it cut short and NUL-terminated, glued to the next task line."""
    text = fixture("tasks_6.15_trailer.txt")
    assert "\x00" in text
    result = parse_tasks(text)
    assert result.skipped == []
    assert (result.client_address, result.task_count) == ("[fd00:10::5]:2049", 4)
    assert [(t.task_id, t.client_id, t.xid, t.procedure, t.queue) for t in result.tasks] == [
        (1021, 0x2a, 0x5d0c0e11, "READ", "xprt_pending"),
        (1022, 0x2a, 0x5d0c0e12, "READ", "xprt_pending"),
        (1030, 0x2a, 0x5d0c0e19, "WRITE", "xprt_sending"),
        (1031, 0x2a, 0, "GETATTR", "ForeChannel Slot table"),
    ]
    assert result.tasks[0].flags == 0x48a5
    assert result.tasks[0].flag_names == (
        "ASYNC", "MOVEABLE", "MAJORSEEN", "DYNAMIC", "SENT", "NO_RETRANS_TIMEOUT")
    # A full trailer mid-file (a read() that stopped early) is accepted too; the last one wins.
    twice = parse_tasks("clnt[10.0.0.1:2049] RPC tasks[7]\n" + text)
    assert (twice.skipped, twice.client_address, twice.task_count, len(twice.tasks)) == (
        [], "[fd00:10::5]:2049", 4, 4)


def test_tasks_5_4_builtin_sunrpc_unresolved_ops() -> None:
    """sunrpc built in (no module suffix), tk_ops not named by kallsyms, soft rpcbind tasks,
    procedures "NULL" and "no proc"."""
    result = parse_tasks(fixture("tasks_5.4_builtin.txt"))
    assert result.skipped == []
    assert result.tasks == [
        rpc(17, 0x0680, 0, 0, 0x3c7f1a20, 2491, "0xffffffff82a3c1e0", "rpcbind", 4, "GETADDR", "call_status",
            "xprt_pending"),
        rpc(18, 0x0680, -110, 0, 0x3c7f1a21, 0, "0xffffffff82a3c1e0", "rpcbind", 4, "NULL", "call_status",
            "none"),
        rpc(19, 0x0081, 0, 1, 0, 0, "0xffffffff82a3d2c0", "nfs", 4, "no proc", "call_bc_transmit", "none"),
    ]
    assert [t.soft for t in result.tasks] == [True, True, False]
    assert result.tasks[0].flag_names == ("DYNAMIC", "SOFT", "SOFTCONN")
    assert result.tasks[0].ops_name == "0xffffffff82a3c1e0"


def test_tasks_variants_and_skipped_lines() -> None:
    """Flags printed %08x are read; a hex task id (a vendor fork's %llx), a dmesg header and a cut
    line are reported, each with its line number."""
    result = parse_tasks(fixture("tasks_variants.txt"))
    assert [(t.task_id, t.flags, t.xid, t.queue) for t in result.tasks] == [
        (501, 0x48a1, 0x11, "xprt_pending"), (504, 0x0081, 0x14, "unknown")]
    assert result.skipped == [
        "line 2: not a task line: "
        "'1f7 0881      0 0x3 0x12      100 nfs_pgio_common_ops [nfs] nfsv4 WRITE a:call_s'",
        "line 3: not a task line: '-pid- flgs status -client- --rqstp- -timeout ---ops--'",
        "line 4: not a task line: '  503 0881      0 0x3 0x13      100 nfs_pgio_common_ops [nfs] nfsv4 WRI'",
    ]


@pytest.mark.parametrize("text", ["", "\n", "\n\n  \n", "\x00"])
def test_tasks_empty(text: str) -> None:
    assert parse_tasks(text) == TasksFile([], [], None, None)


def test_task_line_fields_at_their_limits() -> None:
    line = ("65535 ffff -10008 0xffffffff 0xffffffff -9223372036854775808 nfs4_locku_ops [nfsv4] nfsaclv3 "
            "no proc a:0x0 q:NFSv4.0 transport Slot table")
    task = parse_task_line(line)
    assert task == rpc(65535, 0xffff, -10008, 0xffffffff, 0xffffffff, -(2**63), "nfs4_locku_ops [nfsv4]",
                       "nfsacl", 3, "no proc", "0x0", "NFSv4.0 transport Slot table")
    assert task is not None and task.major_timeout and task.soft
    # Unicode digits are not numbers here (int() would take them).
    assert parse_task_line(line.replace("65535", "٣")) is None


def test_flag_and_state_decoding() -> None:
    assert RPC_CALL_MAJORSEEN == 0x20 and TASK_FLAG_NAMES[0x20] == "MAJORSEEN"
    assert decode_task_flags(0) == ()
    assert decode_task_flags(0x0100) == ("KILLED/NO_ROUND_ROBIN",)
    assert decode_task_flags(0x30001) == ("ASYNC", "0x10000", "0x20000")
    assert decode_xprt_state(0x212) == ("CONNECTED", "BOUND", "CONGESTED")
    assert decode_xprt_state(0x2180) == ("CONNECTION_ABORT/OFFLINE", "CONNECTION_CLOSE/REMOVE", "bit13")


# --- debugfs rpc_xprt/<n>/info -------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected", "names"), [
    ("xprt_info_4.18.txt", XprtInfo("tcp", "192.168.122.1", "2049", 0x12), ("CONNECTED", "BOUND")),
    ("xprt_info_6.1_connecting.txt", XprtInfo("tcp6", "fd00:10::5", "2049", 0x15),
     ("LOCKED", "CONNECTING", "BOUND")),
    ("xprt_info_6.15.txt", XprtInfo("tcp", "192.168.122.1", "2049", 0x212, 4026531840, "192.168.122.10"),
     ("CONNECTED", "BOUND", "CONGESTED")),
    ("xprt_info_6.15_closed.txt", XprtInfo("tcp", "192.168.122.1", "2049", 0x10, 4026531840, "<closed>"),
     ("BOUND",)),
])
def test_xprt_info_fixtures(name: str, expected: XprtInfo, names: tuple[str, ...]) -> None:
    result = parse_xprt_info(fixture(name))
    assert result == Parsed(expected, [])
    info = result.value
    assert info is not None
    assert info.state_names == names
    assert info.port_number == 2049
    assert (info.connected, info.connecting, info.bound) == (
        "CONNECTED" in names, "CONNECTING" in names, True)
    assert info.congested == ("CONGESTED" in names)
    assert not info.close_wait and not info.closing


def test_xprt_info_broken() -> None:
    assert parse_xprt_info("") == Parsed(None, ["no netid, addr, port, state lines"])
    assert parse_xprt_info("netid: tcp\naddr:  a\nport:  \nstate: 27\n") == Parsed(
        None, ["state is not 0x<hex>: '27'"])
    result = parse_xprt_info("netid: rdma\naddr:  10.1.1.1\nport:  20049\nstate: 0x2\nstate: 0x0\n"
                             "garbage line\nnetns: x\nmtu: 9000\n")
    assert result == Parsed(XprtInfo("rdma", "10.1.1.1", "20049", 0x2, None, None, {"mtu": "9000"}), [
        "line 5: 'state' given twice; the first one kept",
        "line 6: not a 'key: value' line: 'garbage line'",
        "netns is not a number: 'x'",
    ])
    assert XprtInfo("local", "/var/run/rpcbind.sock", "", 0).port_number is None


def test_debugfs_names() -> None:
    assert xprt_dir_from_link("../../rpc_xprt/1a") == "1a"
    assert xprt_dir_from_link("../../rpc_xprt/1a/") == "1a"
    assert xprt_dir_from_link("../../rpc_clnt/1a") is None
    assert xprt_dir_from_link("1a") is None
    assert client_id_from_dirname("2a") == 42
    assert client_id_from_dirname("xprt") is None
    assert client_id_from_dirname("") is None
    assert sysfs_id_from_dirname("clnt-42", "clnt") == 42
    assert sysfs_id_from_dirname("xprt-3-tcp", "xprt") == 3
    assert sysfs_id_from_dirname("switch-0", "switch") == 0
    assert sysfs_id_from_dirname("switch-0", "clnt") is None
    assert sysfs_id_from_dirname("switch--1", "switch") is None
    assert sysfs_id_from_dirname("switch", "switch") is None


# --- sysfs ---------------------------------------------------------------------------------------


def test_sysfs_xprt_info_6_1() -> None:
    text = fixture("sysfs_xprt_info_6.1.txt")
    assert text.endswith("\n\x00")  # rpc_sysfs_xprt_info_show returns ret + 1
    result = parse_sysfs_xprt_info(text)
    assert result == Parsed(SysfsXprtInfo(
        last_used=4297519230, cur_cong=16384, cong_win=16384, max_num_slots=65536, min_num_slots=2,
        num_reqs=128, binding_q_len=0, sending_q_len=1, pending_q_len=126, backlog_q_len=37, main_xprt=1,
        src_port=822, tasks_queuelen=164, dst_port="2049"), [])
    assert result.value is not None and result.value.dst_port_number == 2049


def test_sysfs_xprt_info_first_ten_keys_and_unknown_keys() -> None:
    result = parse_sysfs_xprt_info(fixture("sysfs_xprt_info_10keys.txt"))
    assert result == Parsed(SysfsXprtInfo(
        last_used=4297519230, cur_cong=16384, cong_win=16384, max_num_slots=65536, min_num_slots=2,
        num_reqs=128, binding_q_len=0, sending_q_len=1, pending_q_len=126, backlog_q_len=37), [])
    result = parse_sysfs_xprt_info("num_reqs=x\nfuture_key=7 8\nbacklog_q_len=3\nno equals\n")
    assert result == Parsed(SysfsXprtInfo(backlog_q_len=3, extra={"future_key": "7 8"}), [
        "line 4: not a key=value line: 'no equals'", "num_reqs is not a number: 'x'"])
    assert parse_sysfs_xprt_info("a=1\n") == Parsed(None, ["no known xprt_info key"])


def test_sysfs_xprt_switch_info() -> None:
    assert parse_xprt_switch_info(fixture("sysfs_xprt_switch_info.txt")) == Parsed(
        XprtSwitchInfo(num_xprts=4, num_active=3, num_unique_destaddr=1, queue_len=164), [])
    assert parse_xprt_switch_info("") == Parsed(None, ["no known xprt_switch_info key"])


@pytest.mark.parametrize(("name", "names", "bits"), [
    ("sysfs_xprt_state_closed.txt", {"CLOSED"}, 0),
    ("sysfs_xprt_state_6.1.txt", {"CONNECTED", "BOUND", "CWND_WAIT"}, 0x412),
    ("sysfs_xprt_state_5.14.txt", {"LOCKED", "CONNECTING", "BOUND"}, 0x15),
])
def test_sysfs_xprt_state(name: str, names: set[str], bits: int) -> None:
    result = parse_xprt_state(fixture(name))
    assert result == Parsed(XprtState(frozenset(names)), [])
    state = result.value
    assert state is not None
    assert state.state == bits
    assert (state.closed, state.connected, state.connecting) == (
        "CLOSED" in names, "CONNECTED" in names, "CONNECTING" in names)
    assert not state.offline and not state.congested


def test_sysfs_xprt_state_broken() -> None:
    assert parse_xprt_state("") == Parsed(None, ["no state= line"])
    assert parse_xprt_state("CONNECTED\nstate=BOUND OFFLINE NEW_BIT\nstate=LOCKED\n") == Parsed(
        XprtState(frozenset({"BOUND", "OFFLINE", "NEW_BIT"})),
        ["line 1: not a state= line: 'CONNECTED'", "line 3: a second state= line"])


def test_sysfs_addresses() -> None:
    assert parse_sysfs_address(fixture("sysfs_dstaddr.txt")) == "192.168.122.1"
    assert parse_sysfs_address("fd00:10::5\n") == "fd00:10::5"
    assert parse_sysfs_address("") is None
    assert parse_sysfs_address("\x00") is None
    assert parse_sysfs_address("a b\n") is None


# --- task age tracking -----------------------------------------------------------------------------


def scrape(name: str) -> list[RpcTask]:
    result = parse_tasks(fixture(name))
    assert result.skipped == []
    return result.tasks


def ages(update_tasks: tuple[TrackedTask, ...]) -> dict[tuple[int, int], float]:
    return {(t.task.client_id, t.task.task_id): t.age_seconds for t in update_tasks}


SERVERS = {4: "192.168.122.1", 7: "10.20.0.5", 9: "10.9.9.9"}


def test_tracker_over_three_scrapes() -> None:
    tracker = TaskTracker()
    first = tracker.update(1000.0, scrape("tracker_scrape1.txt"))
    assert ages(first.tasks) == {(4, 100): 0.0, (4, 101): 0.0, (4, 102): 0.0, (7, 200): 0.0}
    assert (first.new, first.forgotten, first.untracked, first.duplicates, len(tracker)) == (4, 0, 0, 0, 4)

    # 100 stays (same xid); 101 got its request slot (xid 0 -> 0x1003): the same task; 102 finished;
    # 103 is new; 200 came back with a new xid: a new task; 201 is new.
    second = tracker.update(1015.0, scrape("tracker_scrape2.txt"))
    assert ages(second.tasks) == {(4, 100): 15.0, (4, 101): 15.0, (4, 103): 0.0, (7, 200): 0.0, (7, 201): 0.0}
    assert [t.first_seen for t in second.tasks] == [1000.0, 1000.0, 1015.0, 1015.0, 1015.0]
    assert (second.new, second.forgotten, second.untracked, len(tracker)) == (3, 2, 0, 5)
    assert all(t.tracked for t in second.tasks)

    third = tracker.update(1075.0, scrape("tracker_scrape3.txt"))
    assert ages(third.tasks) == {(4, 100): 75.0, (4, 101): 75.0, (4, 103): 60.0, (7, 200): 60.0}
    assert (third.new, third.forgotten, len(tracker)) == (0, 1, 4)
    assert [t.major_timeout for t in third.tasks] == [True, True, False, True]
    groups = third.by_client()
    assert {c: [t.task.task_id for t in g] for c, g in groups.items()} == {4: [100, 101, 103], 7: [200]}

    assert aggregate_by_server(third.tasks, SERVERS, stuck_after=60) == {
        "10.20.0.5": ServerTasks("10.20.0.5", tasks=1, oldest_age_seconds=60.0, stuck=1, major_timeouts=1),
        "10.9.9.9": ServerTasks("10.9.9.9", tasks=0, oldest_age_seconds=0.0, stuck=0, major_timeouts=0),
        "192.168.122.1": ServerTasks("192.168.122.1", tasks=3, oldest_age_seconds=75.0, stuck=3,
                                     major_timeouts=2),
    }
    by_server = aggregate_by_server(third.tasks, SERVERS, stuck_after=61)
    assert [(s.server, s.stuck) for s in by_server.values()] == [("10.20.0.5", 0), ("10.9.9.9", 0),
                                                                   ("192.168.122.1", 2)]

    # Everything finished: all forgotten; a task id seen again later starts from 0.
    empty = tracker.update(1090.0, [])
    assert (empty.tasks, empty.forgotten, len(tracker)) == ((), 4, 0)
    again = tracker.update(1105.0, scrape("tracker_scrape3.txt"))
    assert set(ages(again.tasks).values()) == {0.0}


def test_tracker_xid_rules() -> None:
    base = rpc(1, 0x81, 0, 4, 0, 0, PGIO, "nfs", 3, "WRITE", "call_status", "xprt_pending")
    tracker = TaskTracker()

    def age_of(now: float, xid: int) -> float:
        [tracked] = tracker.update(now, [base._replace(xid=xid)]).tasks
        return tracked.age_seconds

    assert age_of(0.0, 0) == 0.0
    assert age_of(10.0, 0x10) == 10.0  # got a slot
    assert age_of(20.0, 0x10) == 20.0  # retransmissions keep the xid
    assert age_of(30.0, 0) == 30.0  # slot released for a restart
    assert age_of(40.0, 0x11) == 40.0  # and a new one got
    assert age_of(50.0, 0x12) == 0.0  # a different xid with no 0 in between: a new task
    assert age_of(45.0, 0x12) == 0.0  # a clock that went backwards never gives a negative age


def test_tracker_same_task_id_on_two_clients_and_duplicates() -> None:
    a = rpc(7, 0x81, 0, 1, 0x5, 0, PGIO, "nfs", 3, "READ", "call_status", "xprt_pending")
    b = a._replace(client_id=2)
    tracker = TaskTracker()
    update = tracker.update(1.0, [a, b, a])
    assert (len(update.tasks), update.duplicates, update.new, len(tracker)) == (2, 1, 2, 2)
    update = tracker.update(3.0, [b])
    assert (ages(update.tasks), update.forgotten) == ({(2, 7): 2.0}, 1)


def test_tracker_cap() -> None:
    tasks = [rpc(n, 0x81, 0, 1, 0x100 + n, 0, PGIO, "nfs", 3, "READ", "call_status", "xprt_pending")
             for n in range(5)]
    tracker = TaskTracker(max_tracked=3)
    first = tracker.update(0.0, tasks[:2])
    assert (first.new, first.untracked, len(tracker)) == (2, 0, 2)
    # Two tracked tasks continue; one place left: task 2 gets it, 3 and 4 are reported untracked.
    second = tracker.update(10.0, tasks)
    assert [(t.task.task_id, t.age_seconds, t.tracked) for t in second.tasks] == [
        (0, 10.0, True), (1, 10.0, True), (2, 0.0, True), (3, 0.0, False), (4, 0.0, False)]
    assert (second.new, second.untracked, len(tracker)) == (1, 2, 3)
    # Untracked tasks are new again next time, and stay untracked while the tracker is full.
    third = tracker.update(20.0, tasks)
    assert [(t.age_seconds, t.tracked) for t in third.tasks] == [
        (20.0, True), (20.0, True), (10.0, True), (0.0, False), (0.0, False)]
    # Room frees up: they are tracked from now.
    fourth = tracker.update(30.0, tasks[3:])
    assert [(t.age_seconds, t.tracked) for t in fourth.tasks] == [(0.0, True), (0.0, True)]
    assert (fourth.forgotten, len(tracker)) == (3, 2)
    assert len(TaskTracker(max_tracked=0).update(0.0, tasks).tasks) == 5
    with pytest.raises(ValueError, match="max_tracked"):
        TaskTracker(max_tracked=-1)


def test_tracker_retains_clients_that_could_not_be_read() -> None:
    tracker = TaskTracker()
    tracker.update(1000.0, scrape("tracker_scrape1.txt"))
    # Client 4's file could not be read: its tasks are kept, not reported; client 7's are gone.
    update = tracker.update(1010.0, [], retain_clients={4})
    assert (update.tasks, update.forgotten, len(tracker)) == ((), 1, 3)
    again = tracker.update(1020.0, scrape("tracker_scrape1.txt"))
    assert ages(again.tasks) == {(4, 100): 20.0, (4, 101): 20.0, (4, 102): 20.0, (7, 200): 0.0}
    tracker.clear()
    assert len(tracker) == 0


def test_aggregate_unknown_client_and_empty() -> None:
    task = rpc(1, 0xa1, 0, 99, 0x5, 0, PGIO, "nfs", 3, "READ", "call_status", "xprt_pending")
    tracked = [TrackedTask(task, 0.0, 120.0)]
    assert aggregate_by_server(tracked, {}, stuck_after=60) == {
        "unknown": ServerTasks("unknown", 1, 120.0, 1, 1)}
    assert aggregate_by_server(tracked, {}, stuck_after=60, unknown_server="") == {
        "": ServerTasks("", 1, 120.0, 1, 1)}
    assert aggregate_by_server([], {1: "a", 2: "a"}, stuck_after=1) == {"a": ServerTasks("a", 0, 0.0, 0, 0)}


# --- fuzz: generated tasks, rendered with the kernel's format ------------------------------------

SYMBOLS = ["call_status", "call_transmit_status", "call_reserveresult", "rpc_prepare_task",
           "call_connect_status", "call_start", "rpc_exit_task", "xprt_timer", "nfs_pgio_common_ops",
           "rpc_default_ops", "0x0", "0xffffffffc0a1b2c0", "x", "[odd]", "a]b", "sym.cold"]
MODULES = ["sunrpc", "nfs", "nfsv4", "rpcsec_gss_krb5", "nfs 5e27ffb3a1b2c3d4e5f60718293a4b5c6d7e8f90", ""]
PROGRAMS = ["nfs", "nfsacl", "lockd", "rpcbind", "mount", "status", "nfsv", "nfsv4cb", "v", "", "p12"]
PROCEDURES = ["READ", "WRITE", "GETATTR", "SEQUENCE", "NULL", "no proc", "OPEN_DOWNGRADE", "GETADDR",
              "CB_RECALL", "X", "two words"]
QUEUES = ["xprt_pending", "xprt_sending", "xprt_backlog", "xprt_binding", "delayq", "none", "unknown",
          "ForeChannel Slot table", "BackChannel Slot table", "NFSv4.0 transport Slot table", ""]
QUEUE_CHARS = "abc XYZ_.:[]-q a:q:\t\r\x0b\x1c\x85\u2028é中"
EDGE = [0, 1, 2**16 - 1, 2**16, 2**31 - 1, 2**32 - 1]


def number(rnd: random.Random, bits: int) -> int:
    return rnd.choice([*EDGE, 2**bits - 1]) if rnd.random() < 0.2 else rnd.getrandbits(bits)


def symbol(rnd: random.Random) -> str:
    name = rnd.choice(SYMBOLS)
    return f"{name} [{rnd.choice(MODULES)}]" if rnd.random() < 0.6 else name


def random_task(rnd: random.Random) -> tuple[RpcTask, str]:
    """A task and its line, rendered like tasks_show:
    "%5u %04x %6d 0x%x 0x%x %8ld %ps %sv%u %s a:%ps q:%s"."""
    if rnd.random() < 0.8:
        queue = rnd.choice(QUEUES)
    else:
        queue = "".join(rnd.choices(QUEUE_CHARS, k=rnd.randint(0, 12)))
    task = RpcTask(
        task_id=number(rnd, rnd.choice([16, 16, 40])), flags=number(rnd, rnd.choice([16, 32])),
        status=rnd.choice([-1, -1, 1]) * rnd.choice([0, 5, 11, 107, 110, 512, 10008, number(rnd, 31)]),
        client_id=number(rnd, 32), xid=0 if rnd.random() < 0.3 else number(rnd, 32),
        timeout_jiffies=rnd.choice([0, 15000, 60000, -1, 2**63 - 1, -(2**63), number(rnd, 40)]),
        ops=symbol(rnd), program=rnd.choice(PROGRAMS), version=rnd.choice([1, 2, 3, 4, number(rnd, 32)]),
        procedure=rnd.choice(PROCEDURES), action=symbol(rnd), queue=queue)
    flags = "%08x" if rnd.random() < 0.1 else "%04x"
    line = ("%5u " + flags + " %6d 0x%x 0x%x %8ld %s %sv%u %s a:%s q:%s") % (
        task.task_id, task.flags, task.status, task.client_id, task.xid, task.timeout_jiffies, task.ops,
        task.program, task.version, task.procedure, task.action, task.queue)
    return task, line


# Garbage that can sit between task lines. None of it holds " q:", which every task line has.
FRAGMENTS = ["", " ", "\t", "\x00", "clnt[10.0.0.1:2049] RPC tasks[3]", "clnt[[fd00::1]:2049] RPC tasks[",
             "clnt[",
             "-pid- flgs status -client- --rqstp- -timeout ---ops--", "  412 08a1   -110 0x3 0x5e2c1a7b",
             "  412 08a1 0 0x3 0x5 1 ops nfsv3 READ a:call_status", "netid: tcp", "state=CLOSED", "٣ 0 0 0x0"]
JUNK = "0123456789abcdefx []:-_ \t\r\x00\x0b\u2028٣é"
TRAILER = "clnt[10.0.0.1:2049] RPC tasks[12]"


def junk_line(rnd: random.Random) -> str:
    line = rnd.choice(FRAGMENTS) if rnd.random() < 0.5 else "".join(rnd.choices(JUNK, k=rnd.randint(0, 40)))
    return line.replace(" q:", " ")


def tasks_text(seed: int) -> tuple[list[RpcTask], str]:
    """Tasks with junk lines between them; some task lines carry a cut trailer and a NUL in front,
    as when the kernel ran out of room in a read() chunk."""
    rnd = random.Random(seed)
    expected: list[RpcTask] = []
    lines = [junk_line(rnd) for _ in range(rnd.choice([0, 1, 2]))]
    for _ in range(rnd.choice([0, 1, 2, 3, 5, 8])):
        task, line = random_task(rnd)
        if rnd.random() < 0.1:
            line = TRAILER[:rnd.randrange(len(TRAILER))] + "\x00" + line
        expected.append(task)
        lines.append(line)
        lines += [junk_line(rnd) for _ in range(rnd.choice([0, 0, 1, 2]))]
    if rnd.random() < 0.3:
        lines.append(TRAILER)
    return expected, "\n".join(lines) + rnd.choice(["", "\n"])


@MANY
@given(st.integers(0, 2**64 - 1))
def test_tasks_survive_garbage_lines(seed: int) -> None:
    expected, text = tasks_text(seed)
    assert parse_tasks(text).tasks == expected


# Text made of pieces of the formats, for the never-raises properties.
SOUP = [
    "  412 08a1   -110 0x3 0x5e2c1a7b    14523 nfs_pgio_common_ops [nfs] nfsv3 READ a:call_status [sunrpc]",
    " q:", " a:",
    "clnt[10.0.0.1:2049] RPC tasks[3]\n", "netid: tcp\naddr:  10.0.0.1\nport:  2049\nstate: 0x12\nnetns: 1\n",
    "saddr: <closed>\n", "last_used=4297519230\ncur_cong=256\nmain_xprt=1\ndst_port=2049\n", "num_xprts=2\n",
    "state=CLOSED\n", "state= CONNECTED   BOUND    \n", "\x00", "\n", " ", "=", ":", "0x", "-", "٣", "\u2028",
]


def soup_text(seed: int) -> str:
    rnd = random.Random(seed)
    return "".join(rnd.choices([*SOUP, *JUNK], k=rnd.randint(0, 40)))


soup = st.integers(0, 2**64 - 1).map(soup_text)


@MANY
@given(st.one_of(st.text(), soup))
def test_every_parser_takes_arbitrary_text(text: str) -> None:
    """Each parser gets every one of these texts: none raises, and what comes out is well-formed."""
    tasks = parse_tasks(text)
    assert all(min(t.task_id, t.flags, t.client_id, t.xid, t.version) >= 0 for t in tasks.tasks)
    assert all(isinstance(reason, str) for reason in tasks.skipped)
    assert (tasks.task_count is None) == (tasks.client_address is None)

    for parse in (parse_xprt_info, parse_sysfs_xprt_info, parse_xprt_switch_info, parse_xprt_state):
        result = parse(text)
        assert isinstance(result, Parsed)
        assert all(isinstance(reason, str) for reason in result.skipped)
        assert result.value is not None or result.skipped
    info = parse_xprt_info(text).value
    if info is not None:
        assert info.state >= 0 and isinstance(info.state_names, tuple)
    address = parse_sysfs_address(text)
    assert address is None or (address and not any(c.isspace() for c in address))


# --- fuzz: key/value files with junk between their lines ----------------------------------------

VALUE_CHARS = "0123456789abcdef.:/<>-_ é"
NO_SEPARATOR_JUNK = "abc XYZ_.-0123456789\t\r\x0b\u2028é"


def _no_sep_junk(rnd: random.Random, separator: str) -> list[str]:
    return ["".join(rnd.choices(NO_SEPARATOR_JUNK, k=rnd.randint(0, 20))).replace(separator, "")
            for _ in range(rnd.choice([0, 1, 2, 3]))]


def _interleave(rnd: random.Random, lines: list[str], separator: str) -> str:
    out: list[str] = []
    for line in lines:
        out += _no_sep_junk(rnd, separator)
        out.append(line)
    out += _no_sep_junk(rnd, separator)
    return "\n".join(out) + rnd.choice(["", "\n", "\n\x00"])


def _word(rnd: random.Random) -> str:
    return "".join(rnd.choices(VALUE_CHARS.replace(" ", ""), k=rnd.randint(1, 12)))


def check_xprt_info_survives_garbage(rnd: random.Random) -> None:
    info = XprtInfo(netid=rnd.choice(["tcp", "tcp6", "udp", "rdma", "local"]), addr=_word(rnd),
                    port=rnd.choice(["2049", "20049", "0", ""]), state=number(rnd, rnd.choice([13, 64])),
                    netns=rnd.choice([None, number(rnd, 32)]),
                    saddr=rnd.choice([None, "<closed>", _word(rnd)]),
                    extra={f"k{n}": _word(rnd) for n in range(rnd.choice([0, 0, 2]))})
    lines = [f"netid: {info.netid}", f"addr:  {info.addr}", f"port:  {info.port}", f"state: 0x{info.state:x}"]
    if info.netns is not None:
        lines.append(f"netns: {info.netns}")
    if info.saddr is not None:
        lines.append(f"saddr: {info.saddr}")
    lines += [f"{k}: {v}" for k, v in info.extra.items()]
    rnd.shuffle(lines)
    assert parse_xprt_info(_interleave(rnd, lines, ":")).value == info


@MANY
@given(st.integers(0, 2**64 - 1))
def test_key_value_files_survive_garbage(seed: int) -> None:
    """Every record of the debugfs info and sysfs files comes out exactly, whatever junk lines
    (without the file's separator) sit around its lines, in any order, NUL or not at the end."""
    rnd = random.Random(seed)
    check_xprt_info_survives_garbage(rnd)

    names = [n for n in SysfsXprtInfo.__slots__ if n not in ("dst_port", "extra")]
    present = [n for n in names if rnd.random() < 0.8] or ["num_reqs"]
    values: dict[str, object] = {n: number(rnd, rnd.choice([8, 32, 64])) for n in present}
    if rnd.random() < 0.8:
        values["dst_port"] = rnd.choice(["2049", "0", _word(rnd)])
    extra = {f"new_key{n}": _word(rnd) for n in range(rnd.choice([0, 0, 1]))}
    lines = [f"{k}={v}" for k, v in {**values, **extra}.items()]
    rnd.shuffle(lines)
    assert parse_sysfs_xprt_info(_interleave(rnd, lines, "=")).value == SysfsXprtInfo(**values, extra=extra)

    switch = {n: number(rnd, 32) for n in ("num_xprts", "num_active", "num_unique_destaddr", "queue_len")}
    lines = [f"{k}={v}" for k, v in switch.items()]
    assert parse_xprt_switch_info(_interleave(rnd, lines, "=")).value == XprtSwitchInfo(**switch)

    slots = ["LOCKED", "CONNECTED", "CONNECTING", "CLOSE_WAIT", "BOUND", "BOUNDING", "CLOSING", "CONGESTED",
             "CWND_WAIT", "WRITE_SPACE", "OFFLINE", "REMOVE"][:rnd.choice([10, 12])]
    chosen = [n if rnd.random() < 0.4 else "" for n in slots]
    line = "state=" + " ".join(chosen) if any(chosen) else "state=CLOSED"
    expected = frozenset(n for n in chosen if n) or frozenset({"CLOSED"})
    assert parse_xprt_state(_interleave(rnd, [line], "=")).value == XprtState(expected)


# --- tracker against a reference model -----------------------------------------------------------


@SOME
@given(st.integers(0, 2**64 - 1))
def test_tracker_matches_a_reference_model(seed: int) -> None:
    """Random scrapes from a small pool of (client, id, xid) triples, compared with a plain
    re-statement of the rules; with a cap, only the cap-related facts are checked."""
    rnd = random.Random(seed)
    cap = rnd.choice([2, 5, 1000])
    tracker = TaskTracker(max_tracked=cap)
    model: dict[tuple[int, int], tuple[int, float]] = {}
    now = 0.0
    for _ in range(rnd.randint(1, 8)):
        now += rnd.choice([0.0, 1.0, 15.0, 60.0])
        triples = {(rnd.randrange(3), rnd.randrange(4)): rnd.choice([0, 1, 2])
                   for _ in range(rnd.randint(0, 8))}
        tasks = [rpc(tid, 0, 0, clid, xid, 0, "o", "nfs", 3, "READ", "a", "q")
                 for (clid, tid), xid in triples.items()]
        update = tracker.update(now, tasks)
        assert len(tracker) <= cap
        assert len(update.tasks) == len(tasks)
        assert update.untracked == sum(not t.tracked for t in update.tasks)
        if cap < 1000:
            assert all(t.age_seconds >= 0 for t in update.tasks)
            continue
        expected_model: dict[tuple[int, int], tuple[int, float]] = {}
        for (clid, tid), xid in triples.items():
            before = model.get((clid, tid))
            same = before is not None and (before[0] == xid or 0 in (before[0], xid))
            expected_model[(clid, tid)] = (xid, before[1] if same and before else now)
        model = expected_model
        assert {(t.task.client_id, t.task.task_id): t.first_seen for t in update.tasks} == {
            k: v[1] for k, v in model.items()}
        assert all(t.age_seconds == now - t.first_seen for t in update.tasks)
