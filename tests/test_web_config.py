"""--web.config.file: the parser on its own, then TLS, mTLS, basic auth, headers and reloads
against `panicwatch serve` over real sockets, with a CA made here by the openssl CLI."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from panicwatch.web.auth import BasicAuth, protect
from panicwatch.web.config import TLSServerConfig, WebConfig, WebConfigError, parse_web_config
from panicwatch.web.config_watch import WebConfigSource
from panicwatch.web.http_server import bind_server
from test_server import serve_process

OPENSSL = "/usr/bin/openssl"
EXPORTER = Path(__file__).parents[1] / "exporter"
# Cost 4 keeps the tests quick; the server takes any cost from 4 to 31.
ALICE_HASH = bcrypt.hashpw(b"alice-secret", bcrypt.gensalt(4)).decode()
BOB_HASH = bcrypt.hashpw(b"bob-secret", bcrypt.gensalt(4)).decode()


# -- the parser --------------------------------------------------------------------------

def test_full_config_parses(tmp_path):
    text = f"""
tls_server_config:
  cert_file: server.crt
  key_file: /etc/keys/server.key
  client_ca_file: ca.crt
  client_auth_type: RequireAndVerifyClientCert
  min_version: TLS13
http_server_config:
  http2: false
  headers:
    X-Frame-Options: deny
    X-Content-Type-Options: nosniff
    Strict-Transport-Security: max-age=31536000
    Content-Security-Policy: ""
basic_auth_users:
  alice: {ALICE_HASH}
"""
    config = parse_web_config(text, tmp_path)
    assert config.tls == TLSServerConfig(
        cert_file=tmp_path / "server.crt", key_file=Path("/etc/keys/server.key"),
        client_ca_file=tmp_path / "ca.crt", client_auth_type="RequireAndVerifyClientCert",
        min_version="TLS13", max_version="TLS13")
    assert dict(config.users) == {"alice": ALICE_HASH.encode()}
    assert config.headers == (("X-Frame-Options", "deny"), ("X-Content-Type-Options", "nosniff"),
                              ("Strict-Transport-Security", "max-age=31536000"))


@pytest.mark.parametrize("text", ["", "# nothing\n", "tls_server_config:\nbasic_auth_users:\n",
                                  "tls_server_config: {}\nhttp_server_config: {headers: {}}\n"])
def test_empty_configs_mean_plain_http(text, tmp_path):
    assert parse_web_config(text, tmp_path) == WebConfig()


def test_old_client_auth_name_and_defaults(tmp_path):
    text = "tls_server_config: {cert_file: a, key_file: b, client_ca_file: c, " \
           "client_auth_type: RequireClientCert}"
    tls = parse_web_config(text, tmp_path).tls
    assert tls is not None
    assert (tls.client_auth_type, tls.min_version, tls.max_version) == (
        "RequireAnyClientCert", "TLS12", "TLS13")


BAD_CONFIGS = [
    ("tls_server_config: [\n", "not valid YAML"),
    ("- a\n- b\n", "the file must be a mapping"),
    ("tls_config: {}\n", "tls_config: unknown key"),
    ("rate_limit: {interval: 1s, burst: 20}\n", "rate_limit: rate limiting is not supported"),
    ("http_server_config: {http2: true}\n", "http_server_config.http2: HTTP/2 is not supported"),
    ("http_server_config: {h2: true}\n", "http_server_config.h2: unknown key"),
    ("tls_server_config: {cert_file: a, key_file: b, cipher_suites: [TLS_AES_128_GCM_SHA256]}",
     "tls_server_config.cipher_suites: cipher_suites is not supported"),
    ("tls_server_config: {cert_file: a, key_file: b, curve_preferences: [X25519]}",
     "tls_server_config.curve_preferences"),
    ("tls_server_config: {cert_file: a, key_file: b, prefer_server_cipher_suites: true}",
     "tls_server_config.prefer_server_cipher_suites"),
    ("tls_server_config: {cert_file: a, key_file: b, client_ca_file: c,\n"
     "  client_auth_type: RequireAndVerifyClientCert, client_allowed_sans: [x]}",
     "tls_server_config.client_allowed_sans"),
    ("tls_server_config: {cert: PEM, key: PEM}", "inline certificates are not supported"),
    ("tls_server_config: {key_file: b}", "tls_server_config.cert_file is missing"),
    ("tls_server_config: {cert_file: a}", "tls_server_config.key_file is missing"),
    ("tls_server_config: {min_version: TLS12}", "cert_file is missing"),
    ("tls_server_config: {cert_file: a, key_file: b, client_auth_type: Maybe}",
     "client_auth_type: 'Maybe' is not one of NoClientCert"),
    ("tls_server_config: {cert_file: a, key_file: b, client_ca_file: c}",
     "client_ca_file is set but client_auth_type is NoClientCert"),
    ("tls_server_config: {cert_file: a, key_file: b, client_auth_type: RequireAndVerifyClientCert}",
     "client_auth_type RequireAndVerifyClientCert needs client_ca_file"),
    ("tls_server_config: {cert_file: a, key_file: b, min_version: TLS14}",
     "min_version: 'TLS14' is not one of TLS10, TLS11, TLS12, TLS13"),
    ("tls_server_config: {cert_file: a, key_file: b, min_version: TLS13, max_version: TLS12}",
     "min_version TLS13 is above max_version TLS12"),
    ("tls_server_config: {cert_file: 5, key_file: b}", "cert_file must be a string"),
    ("basic_auth_users: {alice: secret}", "basic_auth_users.alice: not a bcrypt hash"),
    ("basic_auth_users: {alice: '$2y$03$" + "a" * 53 + "'}", "basic_auth_users.alice: not a"),
    ("basic_auth_users: {1234: x}", "user name 1234 must be a string"),
    ("basic_auth_users: {'a:b': x}", "user name 'a:b' contains a colon"),
    (f"basic_auth_users:\n  alice: {ALICE_HASH}\n  alice: {BOB_HASH}\n",
     "duplicate key 'alice' (line 3"),
    ("http_server_config: {headers: {Server: panicwatch}}", "'Server' can not be configured"),
    ("http_server_config: {headers: {X-Frame-Options: allow}}",
     "X-Frame-Options: 'allow' is not one of deny, sameorigin"),
    ("http_server_config: {headers: {X-Content-Type-Options: sniff}}", "is not one of nosniff"),
    ('http_server_config: {headers: {X-XSS-Protection: "1\\r\\nSet-Cookie: a=b"}}',
     "contains a line break"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_bad_configs_name_the_problem(text, message, tmp_path):
    with pytest.raises(WebConfigError) as error:
        parse_web_config(text, tmp_path)
    assert message in str(error.value)
    assert ALICE_HASH not in str(error.value)  # hashes stay out of messages and logs
    assert BOB_HASH not in str(error.value)


# -- the bcrypt cache --------------------------------------------------------------------

class CountingVerify:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, password: bytes, hashed: bytes) -> bool:
        self.calls += 1
        return bcrypt.checkpw(password, hashed)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_a_success_is_verified_once_and_failures_every_time():
    verify = CountingVerify()
    auth = BasicAuth(verify)
    users = {"alice": ALICE_HASH.encode()}
    assert auth.allowed(users, basic("alice", "alice-secret"))
    assert auth.allowed(users, basic("alice", "alice-secret"))
    assert verify.calls == 1
    assert not auth.allowed(users, basic("alice", "wrong"))
    assert not auth.allowed(users, basic("alice", "wrong"))
    assert verify.calls == 3  # failures are never cached: they cannot evict the scraper
    assert not auth.allowed(users, basic("mallory", "alice-secret"))
    assert verify.calls == 4  # an unknown user costs a bcrypt too (no user enumeration)
    # a new hash for the same user (a changed password) is verified afresh
    assert not auth.allowed({"alice": BOB_HASH.encode()}, basic("alice", "alice-secret"))
    assert auth.allowed({}, basic("alice", "alice-secret")) is False  # user removed
    assert verify.calls == 6


def test_a_burst_of_new_logins_with_the_same_credentials_runs_bcrypt_once():
    verify = CountingVerify()

    def slow_verify(password: bytes, hashed: bytes) -> bool:
        time.sleep(0.05)  # as a real cost would: the others arrive while it runs
        return verify(password, hashed)

    auth = BasicAuth(slow_verify)
    users = {"alice": ALICE_HASH.encode()}
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(
        auth.allowed(users, basic("alice", "alice-secret")))) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 20
    assert verify.calls == 1


@pytest.mark.parametrize("header", [None, "", "Bearer abc", "Basic !!!", "Basic " +
                                    base64.b64encode(b"no-colon").decode()])
def test_malformed_authorization_is_refused_without_bcrypt(header):
    verify = CountingVerify()
    assert not BasicAuth(verify).allowed({"alice": ALICE_HASH.encode()}, header)
    assert verify.calls == 0


def test_passwords_past_72_bytes_compare_as_go_bcrypt_does():
    long = b"x" * 72
    users = {"alice": bcrypt.hashpw(long, bcrypt.gensalt(4))}
    assert BasicAuth().allowed(users, basic("alice", (long + b"-ignored").decode()))


# -- real servers ------------------------------------------------------------------------

@dataclass(frozen=True)
class PKI:
    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # signed by another CA
    stranger_key: Path


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True)


def make_ca(dir: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
            "-subj", f"/CN={name}", cwd=dir)


def make_leaf(dir: Path, name: str, ca: str, extensions: str) -> None:
    (dir / f"{name}.ext").write_text(extensions)
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=dir)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
            cwd=dir)


SERVER_EXT = "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" \
             "extendedKeyUsage=serverAuth\n"
CLIENT_EXT = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    make_leaf(d, "server", "ca", SERVER_EXT)
    make_leaf(d, "client", "ca", CLIENT_EXT)
    make_leaf(d, "stranger", "other-ca", CLIENT_EXT)
    return PKI(d, d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt",
               d / "client.key", d / "stranger.crt", d / "stranger.key")


@contextmanager
def serve_web(root: Path, config: Path) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """`panicwatch serve --web.config.file`, ready once its port accepts connections (the
    plain /healthz probe of test_server cannot pass TLS or basic auth)."""
    def port_accepts(base: str) -> None:
        socket.create_connection(("127.0.0.1", port_of(base)), timeout=1).close()

    with serve_process(root, f"--web.config.file={config}", "--no-collector.kernel_log",
                       ready=port_accepts) as (base, proc):
        yield port_of(base), proc


def port_of(base: str) -> int:
    return int(base.rpartition(":")[2])


def fetch(url: str, context: ssl.SSLContext | None = None,
          **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def client_context(pki: PKI, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.ca)
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def write_config(path: Path, text: str) -> None:
    # Written aside and renamed in, as config management does: a reader never sees half.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def tls_yaml(pki: PKI, extra: str = "") -> str:
    return (f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
            + extra)


def test_https_with_the_test_ca_and_plain_http_refused(tree, tmp_path, pki):
    config = tmp_path / "web.yml"
    write_config(config, tls_yaml(pki) + "http_server_config:\n  headers:\n"
                 "    Strict-Transport-Security: max-age=63072000\n")
    with serve_web(tree("fedora_vmcores"), config) as (port, _):
        status, headers, body = fetch(f"https://127.0.0.1:{port}/metrics", client_context(pki))
        assert status == 200 and b"panicwatch_vmcores 2.0" in body
        assert headers["Strict-Transport-Security"] == "max-age=63072000"
        assert fetch(f"https://localhost:{port}/healthz", client_context(pki))[2] == b"ok\n"
        # plain HTTP to the TLS port: a 400 saying so, never the metrics
        status, _, body = fetch(f"http://127.0.0.1:{port}/metrics")
        assert status == 400 and b"HTTP request to an HTTPS server" in body
        # a client that does not trust our CA refuses the server
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            fetch(f"https://127.0.0.1:{port}/healthz", ssl.create_default_context())


def test_min_version_tls13_refuses_tls12(tree, tmp_path, pki):
    config = tmp_path / "web.yml"
    write_config(config, tls_yaml(pki, "  min_version: TLS13\n"))
    with serve_web(tree("fedora_vmcores"), config) as (port, _):
        old = client_context(pki)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(urllib.error.URLError):
            fetch(f"https://127.0.0.1:{port}/healthz", old)
        assert fetch(f"https://127.0.0.1:{port}/healthz", client_context(pki))[0] == 200


def tls_refused(port: int, context: ssl.SSLContext) -> bool:
    """Whether the server ends the connection instead of answering (in TLS 1.3 the client's
    certificate is checked after the client's handshake is done: the refusal shows on read)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            return not tls.recv(100).startswith(b"HTTP/1.0 200")
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True


def test_mtls_require_and_verify(tree, tmp_path, pki):
    config = tmp_path / "web.yml"
    write_config(config, tls_yaml(pki, f"  client_ca_file: {pki.ca}\n"
                                       "  client_auth_type: RequireAndVerifyClientCert\n"))
    with serve_web(tree("fedora_vmcores"), config) as (port, proc):
        assert tls_refused(port, client_context(pki))  # no certificate
        assert tls_refused(port, client_context(pki, pki.stranger_cert, pki.stranger_key))
        with_cert = client_context(pki, pki.client_cert, pki.client_key)
        assert not tls_refused(port, with_cert)
        assert fetch(f"https://127.0.0.1:{port}/metrics", with_cert)[0] == 200
        assert proc.poll() is None


def test_verify_client_cert_if_given(tree, tmp_path, pki):
    config = tmp_path / "web.yml"
    write_config(config, tls_yaml(pki, f"  client_ca_file: {pki.ca}\n"
                                       "  client_auth_type: VerifyClientCertIfGiven\n"))
    with serve_web(tree("fedora_vmcores"), config) as (port, _):
        assert not tls_refused(port, client_context(pki))
        assert not tls_refused(port, client_context(pki, pki.client_cert, pki.client_key))
        assert tls_refused(port, client_context(pki, pki.stranger_cert, pki.stranger_key))


def test_basic_auth_on_every_path_with_headers(tree, tmp_path):
    config = tmp_path / "web.yml"
    write_config(config, f"basic_auth_users:\n  alice: {ALICE_HASH}\n"
                         "http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    with serve_web(tree("fedora_vmcores"), config) as (port, _):
        base = f"http://127.0.0.1:{port}"
        for path in ("/metrics", "/healthz", "/", "/nope"):
            status, headers, _ = fetch(base + path)
            assert (status, headers["WWW-Authenticate"]) == (401, "Basic"), path
            assert headers["X-Frame-Options"] == "deny"
        assert fetch(base + "/metrics", Authorization=basic("alice", "wrong"))[0] == 401
        assert fetch(base + "/metrics", Authorization=basic("bob", "alice-secret"))[0] == 401
        status, headers, body = fetch(base + "/metrics",
                                      Authorization=basic("alice", "alice-secret"))
        assert status == 200 and b"panicwatch_vmcores 2.0" in body
        assert headers["X-Frame-Options"] == "deny"
        assert fetch(base + "/healthz", Authorization=basic("alice", "alice-secret"))[0] == 200


def test_reload_takes_a_new_user_and_keeps_the_last_good_config(tree, tmp_path):
    config = tmp_path / "web.yml"
    write_config(config, f"basic_auth_users:\n  alice: {ALICE_HASH}\n")
    with serve_web(tree("fedora_vmcores"), config) as (port, proc):
        url = f"http://127.0.0.1:{port}/healthz"
        assert fetch(url, Authorization=basic("bob", "bob-secret"))[0] == 401
        write_config(config, f"basic_auth_users:\n  alice: {ALICE_HASH}\n  bob: {BOB_HASH}\n")
        assert fetch(url, Authorization=basic("bob", "bob-secret"))[0] == 200
        # a broken edit: logged once, the previous users keep working
        write_config(config, "basic_auth_users:\n  bob: [\n")
        for _ in range(3):
            assert fetch(url, Authorization=basic("bob", "bob-secret"))[0] == 200
        write_config(config, f"basic_auth_users:\n  alice: {ALICE_HASH}\n")
        assert fetch(url, Authorization=basic("bob", "bob-secret"))[0] == 401
        assert fetch(url, Authorization=basic("alice", "alice-secret"))[0] == 200
        proc.terminate()
        stderr = proc.communicate(timeout=10)[1]
    assert stderr.count("not reloaded, the previous one stays: not valid YAML") == 1, stderr
    assert stderr.count(' reloaded"') == 2, stderr


def test_renewed_certificate_is_served_without_restart(tree, tmp_path, pki):
    d = tmp_path / "certs"
    d.mkdir()
    for f in ("ca.crt", "ca.key", "server.crt", "server.key"):
        (d / f).write_bytes((pki.dir / f).read_bytes())
    config = tmp_path / "web.yml"
    write_config(config, "tls_server_config:\n  cert_file: certs/server.crt\n"
                         "  key_file: certs/server.key\n")  # relative to the file
    with serve_web(tree("fedora_vmcores"), config) as (port, _):
        def serial() -> int:
            context = client_context(pki)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                    context.wrap_socket(raw, server_hostname="localhost") as tls:
                return int(tls.getpeercert()["serialNumber"], 16)

        first = serial()
        make_leaf(d, "renewed", "ca", SERVER_EXT)
        (d / "renewed.key").replace(d / "server.key")
        (d / "renewed.crt").replace(d / "server.crt")
        assert serial() != first


@pytest.mark.parametrize(("text", "message"), [
    ("basic_auth_users: [\n", "not valid YAML"),
    ("tls_config: {}\n", "tls_config: unknown key"),
    ("http_server_config:\n  http2: true\n", "http_server_config.http2: HTTP/2 is not supported"),
    ("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
     "tls_server_config.cert_file {dir}/missing.crt: No such file or directory"),
    ("tls_server_config:\n  cert_file: {pki}/ca.crt\n  key_file: {pki}/server.key\n",
     "are not a PEM certificate and its key"),
])
def test_bad_config_stops_the_start(tree, tmp_path, pki, text, message):
    bad = tmp_path / "bad.yml"
    bad.write_text(text.replace("{pki}", str(pki.dir)))
    done = subprocess.run(
        [sys.executable, "-m", "panicwatch", "serve", f"--web.config.file={bad}",
         "--web.listen-address=127.0.0.1:0", f"--path.rootfs={tree('fedora_vmcores')}"],
        env={**os.environ, "PYTHONPATH": str(EXPORTER)}, capture_output=True, text=True,
        timeout=30)
    assert done.returncode == 2
    assert done.stderr.startswith(f"panicwatch: error: --web.config.file {bad}: ")
    assert message.replace("{dir}", str(tmp_path)) in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_config_file_stops_the_start(tree, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "panicwatch", "serve", "--web.listen-address=127.0.0.1:0",
         f"--path.rootfs={tree('fedora_vmcores')}"],
        env={**os.environ, "PYTHONPATH": str(EXPORTER),
             "PANICWATCH_WEB_CONFIG_FILE": str(tmp_path / "nope.yml")},
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "nope.yml: cannot be read: No such file or directory" in done.stderr


# -- the source: when it reloads and when it refuses -----------------------------------

def test_an_unchanged_file_is_not_parsed_again(tmp_path):
    config = tmp_path / "web.yml"
    write_config(config, f"basic_auth_users:\n  alice: {ALICE_HASH}\n")
    source = WebConfigSource(config)
    first = source.current()
    assert all(source.current() is first for _ in range(100))
    assert source.reloads == 0
    write_config(config, f"basic_auth_users:\n  bob: {BOB_HASH}\n")
    assert list(source.current().config.users) == ["bob"]
    assert source.reloads == 1


def test_tls_cannot_be_turned_on_by_a_reload(tmp_path, pki, caplog):
    config = tmp_path / "web.yml"
    write_config(config, f"basic_auth_users:\n  alice: {ALICE_HASH}\n")
    source = WebConfigSource(config)
    write_config(config, tls_yaml(pki))
    for _ in range(3):
        active = source.current()
        assert active.ssl_context is None and list(active.config.users) == ["alice"]
    assert caplog.text.count("TLS can only be turned on or off by a restart") == 1


def test_a_certificate_named_before_it_exists_is_taken_when_it_comes(tmp_path, pki, caplog):
    config = tmp_path / "web.yml"
    write_config(config, tls_yaml(pki))
    source = WebConfigSource(config)
    old = source.current()
    write_config(config, "tls_server_config:\n  cert_file: new.crt\n  key_file: new.key\n")
    assert source.current() is old
    assert "new.crt: No such file or directory" in caplog.text
    (tmp_path / "new.key").write_bytes(pki.server_key.read_bytes())
    (tmp_path / "new.crt").write_bytes(pki.server_cert.read_bytes())
    fresh = source.current()
    assert fresh is not old and fresh.config.tls is not None
    assert fresh.config.tls.cert_file == tmp_path / "new.crt"


# -- in-process: the cache seen through the server --------------------------------------

@contextmanager
def in_process(config: Path, auth: BasicAuth) -> Iterator[str]:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello\n"]

    server = bind_server("127.0.0.1:0", protect(app, auth), WebConfigSource(config))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_second_request_with_the_same_credentials_skips_bcrypt(tmp_path):
    config = tmp_path / "web.yml"
    write_config(config, f"basic_auth_users:\n  alice: {ALICE_HASH}\n")
    verify = CountingVerify()
    with in_process(config, BasicAuth(verify)) as base:
        for _ in range(5):
            assert fetch(base + "/", Authorization=basic("alice", "alice-secret"))[0] == 200
        assert verify.calls == 1
        # a reload that changes alice's hash makes the old entry useless
        write_config(config, f"basic_auth_users:\n  alice: {BOB_HASH}\n")
        assert fetch(base + "/", Authorization=basic("alice", "alice-secret"))[0] == 401
        assert fetch(base + "/", Authorization=basic("alice", "bob-secret"))[0] == 200
        assert verify.calls == 3
