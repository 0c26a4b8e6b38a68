"""Basic authentication against the web config's bcrypt hashes, and the WSGI layer that
applies the web config (authentication and extra headers) to every response."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import bcrypt

from panicwatch.web.config import WebConfig

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Verify = Callable[[bytes, bytes], bool]

# Where the connection's handler puts the WebConfig it was accepted under.
ENVIRON_KEY = "panicwatch.web_config"

# Checked for unknown users so that a wrong name costs the same bcrypt time as a wrong
# password: the response time does not tell which user names exist. (Cost 10, of a random
# password that was thrown away.)
_DUMMY_HASH = b"$2b$10$RzXRstZ4vg.t/ColJbcxiO12TTT41jc33wP.4bUWxSIIxvskvhWAC"
# bcrypt uses the first 72 bytes of a password; Go's bcrypt (the toolkit's) ignores the
# rest when comparing, so a long password that works for node_exporter works here too.
_BCRYPT_MAX = 72


def bcrypt_verify(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password[:_BCRYPT_MAX], hashed)
    except ValueError:  # a hash bcrypt cannot read: no match
        return False


class BasicAuth:
    """Checks ``Authorization: Basic`` headers; a success is remembered.

    bcrypt costs ~75 ms at cost 10, too much for every scrape. Only successes are cached:
    an entry can be made only with a right password, so a flood of wrong ones can neither
    fill the cache nor push the real scraper's entry out. Keys are an HMAC, under a key
    made at start, of the user, the password and the hash: a password never sits in memory
    after its request, and a changed hash (or a removed user) matches no old entry.
    """

    def __init__(self, verify: Verify = bcrypt_verify, cache_size: int = 256) -> None:
        self._verify = verify
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, None] = OrderedDict()
        self._cache_lock = threading.Lock()
        # One bcrypt at a time, as the toolkit: a burst of new logins must not take every
        # core from the scrapes.
        self._bcrypt_lock = threading.Lock()
        self._secret = os.urandom(32)

    def allowed(self, users: Mapping[str, bytes], authorization: str | None) -> bool:
        credentials = _basic_credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        hashed = users.get(user)
        key = self._key(user, password, hashed or _DUMMY_HASH)
        if self._cached(key):
            return hashed is not None
        with self._bcrypt_lock:
            # Many scrapers arriving at once with the same new credentials: the first one
            # verifies, the rest find its entry here instead of queueing for bcrypt.
            if self._cached(key):
                return hashed is not None
            ok = self._verify(password, hashed or _DUMMY_HASH) and hashed is not None
            if ok:
                with self._cache_lock:
                    self._cache[key] = None
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
        return ok

    def _cached(self, key: bytes) -> bool:
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return True
            return False

    def _key(self, user: str, password: bytes, hashed: bytes) -> bytes:
        mac = hmac.new(self._secret, digestmod=hashlib.sha256)
        for part in (user.encode("utf-8", "surrogateescape"), password, hashed):
            mac.update(len(part).to_bytes(4, "big") + part)  # no two splits give one key
        return mac.digest()


def _basic_credentials(authorization: str | None) -> tuple[str, bytes] | None:
    if not authorization:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


def protect(app: WSGIApp, auth: BasicAuth) -> WSGIApp:
    """Wrap ``app``: the connection's web config adds its headers to every response and,
    when it has users, every path (``/healthz`` too, as the toolkit) needs one of them."""

    def protected(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        config: WebConfig | None = environ.get(ENVIRON_KEY)
        if config is None:
            return app(environ, start_response)
        extra = list(config.headers)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, headers + extra, exc_info)

        if config.users and not auth.allowed(config.users, environ.get("HTTP_AUTHORIZATION")):
            start("401 Unauthorized", [("Content-Type", "text/plain; charset=utf-8"),
                                       ("WWW-Authenticate", "Basic")])
            return [b"Unauthorized\n"]
        return app(environ, start)

    return protected
