"""The exporter-toolkit web configuration file (``--web.config.file``), parsed.

The same YAML node_exporter takes: ``tls_server_config``, ``basic_auth_users`` and
``http_server_config.headers``. ``parse_web_config`` is a pure function from the file's
text to a frozen ``WebConfig``; reading the file, loading certificates and noticing changes
live in config_watch.py. Anything the toolkit knows but panicwatch cannot honour
(``rate_limit``, ``cipher_suites``, ...) is an error naming the key: a setting that is
silently dropped is worse than one that stops the start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml

ClientAuth = Literal["NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                     "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"]
TLSVersionName = Literal["TLS10", "TLS11", "TLS12", "TLS13"]

CLIENT_AUTH_TYPES: tuple[ClientAuth, ...] = (
    "NoClientCert", "RequestClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert")
# The toolkit still accepts the old name of RequireAnyClientCert.
_CLIENT_AUTH_ALIASES: dict[str, ClientAuth] = {"RequireClientCert": "RequireAnyClientCert"}
TLS_VERSIONS: tuple[TLSVersionName, ...] = ("TLS10", "TLS11", "TLS12", "TLS13")

# The toolkit's fixed list (web/handler.go): only these, and for two of them only these values.
ALLOWED_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}

_BCRYPT_HASH = re.compile(r"\$2[abxy]\$(\d\d)\$[./A-Za-z0-9]{53}")

_TOP_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users")
_TLS_KEYS = ("cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version",
             "max_version")
_HTTP_KEYS = ("headers", "http2")
_UNSUPPORTED = {
    "rate_limit": "rate limiting is not supported (put a reverse proxy in front)",
    "tls_server_config.cert": "inline certificates are not supported: use cert_file",
    "tls_server_config.key": "inline keys are not supported: use key_file",
    "tls_server_config.client_ca": "inline CA certificates are not supported: use client_ca_file",
    "tls_server_config.cipher_suites":
        "cipher_suites is not supported: OpenSSL's defaults for TLS 1.2 apply",
    "tls_server_config.curve_preferences":
        "curve_preferences is not supported: OpenSSL's defaults apply",
    "tls_server_config.prefer_server_cipher_suites":
        "prefer_server_cipher_suites is not supported (OpenSSL prefers the server's order)",
    "tls_server_config.client_allowed_sans":
        "client_allowed_sans is not supported: give each client a certificate from a CA of "
        "its own and list only that CA in client_ca_file",
}


class WebConfigError(ValueError):
    """The web configuration cannot be used; the message says which key and why."""


@dataclass(frozen=True)
class TLSServerConfig:
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    client_auth_type: ClientAuth = "NoClientCert"
    min_version: TLSVersionName = "TLS12"
    max_version: TLSVersionName = "TLS13"

    def files(self) -> tuple[Path, ...]:
        return (self.cert_file, self.key_file,
                *((self.client_ca_file,) if self.client_ca_file else ()))


@dataclass(frozen=True)
class WebConfig:
    tls: TLSServerConfig | None = None
    # user -> bcrypt hash; empty means no authentication, as in the toolkit
    users: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))
    headers: tuple[tuple[str, str], ...] = ()


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice (the toolkit's strict decoding does too):
    a second entry for a user would otherwise replace the first without a word."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)  # type: ignore[no-untyped-call]
        if isinstance(key, str | int | float | bool) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                              _mapping_without_duplicates)


def parse_web_config(text: str, base_dir: Path) -> WebConfig:
    """The file's text -> WebConfig. Relative file names resolve against ``base_dir`` (the
    directory of the file, as the toolkit does). Raises WebConfigError."""
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as e:
        raise WebConfigError(f"not valid YAML: {_yaml_problem(e)}") from None
    if document is None:
        return WebConfig()  # an empty file: plain HTTP, no authentication
    top = _mapping(document, "the file")
    _check_keys(top, _TOP_KEYS, "")
    return WebConfig(
        tls=_tls(top.get("tls_server_config"), base_dir),
        users=_users(top.get("basic_auth_users")),
        headers=_headers(top.get("http_server_config")),
    )


def _yaml_problem(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"{error.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(error)


def _mapping(value: Any, where: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise WebConfigError(f"{where} must be a mapping of keys to values")
    return value


def _check_keys(section: dict[Any, Any], known: tuple[str, ...], prefix: str) -> None:
    for key in section:
        name = f"{prefix}{key}"
        if name in _UNSUPPORTED:
            raise WebConfigError(f"{name}: {_UNSUPPORTED[name]}")
        if key not in known:
            raise WebConfigError(f"{name}: unknown key (known here: {', '.join(known)})")


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise WebConfigError(f"{name} must be a string")
    return value


def _path(value: Any, name: str, base_dir: Path) -> Path | None:
    if value is None or value == "":
        return None
    return base_dir / _string(value, name)  # an absolute path stays as it is


def _tls(value: Any, base_dir: Path) -> TLSServerConfig | None:
    if value is None:
        return None
    tls = _mapping(value, "tls_server_config")
    _check_keys(tls, _TLS_KEYS, "tls_server_config.")
    if not tls:
        return None
    name = "tls_server_config."
    cert = _path(tls.get("cert_file"), name + "cert_file", base_dir)
    key = _path(tls.get("key_file"), name + "key_file", base_dir)
    ca = _path(tls.get("client_ca_file"), name + "client_ca_file", base_dir)
    if cert is None:
        raise WebConfigError(f"{name}cert_file is missing: TLS needs a certificate and its key")
    if key is None:
        raise WebConfigError(f"{name}key_file is missing: TLS needs a certificate and its key")
    auth = _client_auth(tls.get("client_auth_type"))
    if ca is not None and auth == "NoClientCert":
        raise WebConfigError(f"{name}client_ca_file is set but client_auth_type is "
                             "NoClientCert: set client_auth_type: RequireAndVerifyClientCert")
    if ca is None and auth in ("RequireAnyClientCert", "VerifyClientCertIfGiven",
                               "RequireAndVerifyClientCert"):
        # Python's ssl verifies every client certificate it accepts, so it needs the CA.
        raise WebConfigError(f"{name}client_auth_type {auth} needs client_ca_file")
    low = _version(tls.get("min_version"), "min_version", "TLS12")
    high = _version(tls.get("max_version"), "max_version", "TLS13")
    if TLS_VERSIONS.index(low) > TLS_VERSIONS.index(high):
        raise WebConfigError(f"{name}min_version {low} is above max_version {high}")
    return TLSServerConfig(cert, key, ca, auth, low, high)


def _client_auth(value: Any) -> ClientAuth:
    if value is None or value == "":
        return "NoClientCert"
    text = _string(value, "tls_server_config.client_auth_type")
    text = _CLIENT_AUTH_ALIASES.get(text, text)
    for known in CLIENT_AUTH_TYPES:
        if text == known:
            return known
    raise WebConfigError(f"tls_server_config.client_auth_type: {text!r} is not one of "
                         f"{', '.join(CLIENT_AUTH_TYPES)}")


def _version(value: Any, key: str, default: TLSVersionName) -> TLSVersionName:
    if value is None or value == "":
        return default
    text = _string(value, f"tls_server_config.{key}")
    for known in TLS_VERSIONS:
        if text == known:
            return known
    raise WebConfigError(f"tls_server_config.{key}: {text!r} is not one of "
                         f"{', '.join(TLS_VERSIONS)}")


def _users(value: Any) -> Mapping[str, bytes]:
    if value is None:
        return MappingProxyType({})
    users: dict[str, bytes] = {}
    for user, hashed in _mapping(value, "basic_auth_users").items():
        if not isinstance(user, str):
            raise WebConfigError(f"basic_auth_users: user name {user!r} must be a string "
                                 "(quote it)")
        if ":" in user:
            # Basic auth splits user from password at the first colon: unusable.
            raise WebConfigError(f"basic_auth_users: user name {user!r} contains a colon")
        match = _BCRYPT_HASH.fullmatch(hashed) if isinstance(hashed, str) else None
        if match is None or not 4 <= int(match.group(1)) <= 31:
            raise WebConfigError(
                f"basic_auth_users.{user}: not a bcrypt hash (expected $2y$<cost>$ and 53 "
                "characters, e.g. from: htpasswd -nBC 10 \"\" | tr -d ':\\n')")
        users[user] = hashed.encode()
    return MappingProxyType(users)


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    http = _mapping(value, "http_server_config")
    _check_keys(http, _HTTP_KEYS, "http_server_config.")
    http2 = http.get("http2")
    if http2 is not None and http2 is not False:
        raise WebConfigError("http_server_config.http2: HTTP/2 is not supported (panicwatch "
                             "speaks HTTP/1.x); remove the key or set it to false")
    headers = http.get("headers")
    if headers is None:
        return ()
    out: list[tuple[str, str]] = []
    for name, raw in _mapping(headers, "http_server_config.headers").items():
        if name not in ALLOWED_HEADERS:
            raise WebConfigError(f"http_server_config.headers: {name!r} can not be configured "
                                 f"(allowed: {', '.join(ALLOWED_HEADERS)})")
        text = "" if raw is None else _string(raw, f"http_server_config.headers.{name}")
        if "\r" in text or "\n" in text:
            raise WebConfigError(f"http_server_config.headers.{name}: contains a line break")
        allowed = ALLOWED_HEADERS[name]
        if text and allowed and text not in allowed:
            raise WebConfigError(f"http_server_config.headers.{name}: {text!r} is not one of "
                                 f"{', '.join(allowed)}")
        if text:  # "Unset if blank", as the toolkit documents
            out.append((name, text))
    return tuple(out)
