"""The in-guest end of the e2e harness: runs what the host asks for, through the 9p share.

The host drops a request as share/req/<id>.json (written elsewhere and renamed in, so it is never
seen half-written); this agent runs it on a thread of its own and writes share/resp/<id>.json the
same way. A request is either {"sh": "<bash script>", "timeout": s} -> {"rc", "stdout", "stderr",
"seconds"} or {"http": url, "timeout": s} -> {"status", "body", "seconds", "error"}. Only the
standard library: this runs on the guest's system python3, before and apart from panicwatch.

Started by pw-e2e-agent.service once the share is mounted; it writes share/boot.json first, so the
host knows which boot it is talking to.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request

SHARE = os.path.dirname(os.path.abspath(__file__))
REQ = os.path.join(SHARE, "req")
RESP = os.path.join(SHARE, "resp")
POLL_S = 0.2


def write_json(path: str, data: object) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.rename(tmp, path)


def run_sh(req: dict) -> dict:
    start = time.monotonic()
    try:
        p = subprocess.run(["/bin/bash", "-c", req["sh"]], capture_output=True,
                           timeout=req.get("timeout", 60), cwd=SHARE)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, e.stdout or b"", (e.stderr or b"") + b"\n[agent: timed out]"
    return {"rc": rc, "stdout": out.decode(errors="replace"), "stderr": err.decode(errors="replace"),
            "seconds": time.monotonic() - start}


def run_http(req: dict) -> dict:
    start = time.monotonic()
    status, body, error = None, "", None
    try:
        with urllib.request.urlopen(req["http"], timeout=req.get("timeout", 10)) as r:
            status, body = r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read().decode(errors="replace")
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
    return {"status": status, "body": body, "error": error, "seconds": time.monotonic() - start}


def handle(name: str) -> None:
    path = os.path.join(REQ, name)
    try:
        with open(path) as f:
            req = json.load(f)
        os.unlink(path)
        resp = run_http(req) if "http" in req else run_sh(req)
    except Exception:
        resp = {"rc": None, "error": traceback.format_exc()}
    resp["finished"] = time.time()
    write_json(os.path.join(RESP, name), resp)


def uptime() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def main() -> None:
    os.makedirs(REQ, exist_ok=True)
    os.makedirs(RESP, exist_ok=True)
    with open("/proc/sys/kernel/random/boot_id") as f:
        boot_id = f.read().strip()
    write_json(os.path.join(SHARE, "boot.json"), {
        "boot_id": boot_id, "kernel": os.uname().release, "time": time.time(),
        "uptime": uptime()})
    taken: set[str] = set()
    while True:
        for name in sorted(os.listdir(REQ)):
            if name.endswith(".json") and name not in taken:
                taken.add(name)
                threading.Thread(target=handle, args=(name,), daemon=True).start()
        time.sleep(POLL_S)


if __name__ == "__main__":
    sys.exit(main())
