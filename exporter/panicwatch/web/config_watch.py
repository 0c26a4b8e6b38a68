"""The web config file as it is now: loaded at start, reloaded when it (or a TLS file) changes.

The toolkit reads the file on every request, so a new user or a renewed certificate
works without a restart. Here every connection costs a few stat() calls instead: the
file is parsed and the TLS context rebuilt only when the inode, size, or modification or
change time of the config file, the certificate, the key or the client CA moved. A change
that does not load (a half-written file, a key that does not match) is logged once and
the last good configuration keeps serving.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from panicwatch.web.config import WebConfig, WebConfigError, parse_web_config
from panicwatch.web.tls import ssl_context

log = logging.getLogger("panicwatch.web")

FileStamp = tuple[int, int, int, int, int] | None  # dev, inode, size, mtime_ns, ctime_ns


@dataclass(frozen=True)
class ActiveWebConfig:
    config: WebConfig
    ssl_context: ssl.SSLContext | None = None


def _stamp(path: Path) -> FileStamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def read_config(path: Path) -> WebConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise WebConfigError(f"cannot be read: {reason}") from None
    return parse_web_config(text, path.parent)


def activate(config: WebConfig) -> ActiveWebConfig:
    """Load the certificates the config names. Raises WebConfigError."""
    return ActiveWebConfig(config, ssl_context(config.tls) if config.tls else None)


class WebConfigSource:
    """The current ActiveWebConfig of one file. Construction loads it or raises
    WebConfigError; ``current()`` is safe and cheap to call from every worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._failed: tuple[FileStamp, ...] | None = None
        self.reloads = 0
        config = self._read()
        self._active = activate(config)

    def _read(self) -> WebConfig:
        """Parse the file and start watching it and the files it names."""
        stamp = _stamp(self.path)  # before reading: a write racing the read is seen next time
        config = read_config(self.path)
        self._files = (self.path, *(config.tls.files() if config.tls else ()))
        self._seen = (stamp, *(_stamp(f) for f in self._files[1:]))
        return config

    def _stamps(self) -> tuple[FileStamp, ...]:
        return tuple(_stamp(f) for f in self._files)

    def current(self) -> ActiveWebConfig:
        if self._stamps() == self._seen:
            return self._active
        with self._lock:  # one thread reloads; the others wait and take its result
            stamps = self._stamps()
            if stamps != self._seen:
                self._reload(stamps)
            return self._active

    def _reload(self, stamps: tuple[FileStamp, ...]) -> None:
        self._seen = stamps  # replaced by _read(); kept if the file does not even parse
        try:
            # A config naming a certificate not there yet is retried when that file comes.
            fresh = activate(self._read())
            if (fresh.ssl_context is None) != (self._active.ssl_context is None):
                raise WebConfigError("TLS can only be turned on or off by a restart")
        except WebConfigError as e:
            if self._seen != self._failed:
                log.error("web config %s not reloaded, the previous one stays: %s", self.path, e)
            self._failed = self._seen
            return
        self._active = fresh
        self._failed = None
        self.reloads += 1
        log.info("web config %s reloaded", self.path)
