"""Alertmanager's webhook receiver inside the guest: every notification it POSTs becomes one
JSON line in /share/webhook.jsonl (with the guest time it arrived), so the host sees the page."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OUT = os.environ.get("WEBHOOK_OUT", "/share/webhook.jsonl")
# One append at a time: the handlers run in threads, and on the 9p share O_APPEND does not keep
# two writers apart (two notifications 2 ms apart once came out interleaved in one line).
APPEND = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            note = json.loads(body)
        except ValueError:
            note = {"unparsed": body.decode(errors="replace")}
        note["_received"] = time.time()
        with APPEND, open(OUT, "a") as f:
            f.write(json.dumps(note) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9099
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
