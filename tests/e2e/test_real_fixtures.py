"""panicwatch's parsers on files a real kernel wrote (no VM needed: part of `make test`).

tests/fixtures/real/<kernel>/{idle,stall}/ are the guest's own /proc/self/mountstats,
/proc/net/rpc/nfs and debugfs/sysfs sunrpc files, saved by test_real_kernel.py (issue 8) from
Debian 12's 6.1 kernel with an NFSv3 and an NFSv4.2 loopback mount: idle after `panicwatch
stress`, and during a stall made by an nft drop of tcp 2049 on lo. Refresh them with
PANICWATCH_E2E_SAVE_FIXTURES=1 make e2e.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from panicwatch.parsers.mountstats import parse_mountstats, parse_rpc_nfs
from panicwatch.parsers.sunrpc import parse_tasks, parse_xprt_info

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"
# NFS client states (idle, stall) hold mountstats; crashes/ holds the saved kernel logs, which
# tests/test_parse_crash_report.py reads.
STATES = sorted(p.parent for p in REAL.glob("*/*/mountstats")) if REAL.exists() else []


def ids(path: Path) -> str:
    return f"{path.parent.name}-{path.name}"


@pytest.mark.parametrize("state", STATES, ids=ids)
def test_mountstats(state: Path) -> None:
    result = parse_mountstats((state / "mountstats").read_text())
    assert result.skipped == []
    mounts = {m.mountpoint: m for m in result.mounts}
    assert set(mounts) == {"/mnt/nfs3", "/mnt/nfs42"}
    v3, v42 = mounts["/mnt/nfs3"], mounts["/mnt/nfs42"]
    assert (v3.fstype, v3.version, v3.rpc_program_version) == ("nfs", "3", 3)
    assert (v42.fstype, v42.version, v42.rpc_program_version) == ("nfs4", "4.2", 4)
    for m in (v3, v42):
        assert (m.server, m.export, m.proto) == ("127.0.0.1", "/srv/nfs", "tcp")
        assert m.statvers == "1.1" and len(m.events) == 27 and len(m.transports) == 1
    assert len(v3.ops) == 22 and len(v42.ops) >= 60  # every procedure the 6.1 client prints
    # the stress walked the tree: GETATTR and the statvfs ops moved well past mount time
    assert v3.ops["GETATTR"].ops > 1000 and v3.ops["FSSTAT"].ops > 100
    assert v42.ops["STATFS"].ops > 100


@pytest.mark.parametrize("state", STATES, ids=ids)
def test_rpc_nfs(state: Path) -> None:
    stats = parse_rpc_nfs((state / "net-rpc-nfs").read_text())
    assert stats.calls > 0 and set(stats.procs) >= {3, 4}


@pytest.mark.parametrize("state", STATES, ids=ids)
def test_sunrpc(state: Path) -> None:
    tasks = []
    for path in sorted((state / "sunrpc" / "rpc_clnt").glob("*/tasks")):
        parsed = parse_tasks(path.read_text())
        assert parsed.skipped == [], path
        tasks += parsed.tasks
    for path in sorted((state / "sunrpc" / "rpc_xprt").glob("*/info")):
        assert parse_xprt_info(path.read_text()).value is not None, path
    if state.name == "idle":
        assert tasks == []
    else:  # the stalled canary probes and stat calls, waiting for the server's reply
        assert len(tasks) >= 2
        assert {t.queue for t in tasks} == {"xprt_pending"}
