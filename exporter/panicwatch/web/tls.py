"""TLS for `serve`: an ssl.SSLContext from the web config, and the server side of a handshake.

Python's ssl verifies every client certificate it accepts, so the toolkit's two
"accept any certificate" policies become their verifying twins here (stricter, never
looser): RequestClientCert verifies a certificate if one is sent (when client_ca_file is
given; without it no certificate is asked for, since an unverified one proves nothing),
and RequireAnyClientCert requires one signed by client_ca_file.
"""

from __future__ import annotations

import socket
import ssl
import time
import warnings

from panicwatch.web.config import ClientAuth, TLSServerConfig, TLSVersionName, WebConfigError

_VERSIONS: dict[TLSVersionName, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3,
}
_VERIFY: dict[ClientAuth, ssl.VerifyMode] = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_HANDSHAKE_RECORD = 0x16  # the first byte of every TLS ClientHello
PLAIN_HTTP_REPLY = (b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    b"Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")


def ssl_context(tls: TLSServerConfig) -> ssl.SSLContext:
    """A server context that reads the certificate, key and CA files now. Raises
    WebConfigError naming the file that is missing or wrong."""
    for key, path in (("cert_file", tls.cert_file), ("key_file", tls.key_file),
                      ("client_ca_file", tls.client_ca_file)):
        if path is None:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            raise WebConfigError(f"tls_server_config.{key} {path}: {e.strerror}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        # TLS 1.0/1.1 are deprecated in Python too; asked for by name, so no warning.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = _VERSIONS[tls.min_version]
        context.maximum_version = _VERSIONS[tls.max_version]
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except ssl.SSLError as e:
        raise WebConfigError(f"tls_server_config: cert_file {tls.cert_file} and key_file "
                             f"{tls.key_file} are not a PEM certificate and its key "
                             f"({e.reason or e})") from None
    mode = _VERIFY[tls.client_auth_type]
    if tls.client_ca_file is None:
        mode = ssl.CERT_NONE  # only RequestClientCert gets here (config.py checks the rest)
    else:
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except ssl.SSLError as e:
            raise WebConfigError(f"tls_server_config.client_ca_file {tls.client_ca_file}: no "
                                 f"PEM certificate in it ({e.reason or e})") from None
    context.verify_mode = mode
    return context


def server_handshake(conn: socket.socket, context: ssl.SSLContext,
                     deadline: float) -> ssl.SSLSocket | None:
    """The TLS side of an accepted connection, handshake done by ``deadline`` (monotonic).

    A client speaking plain HTTP gets a 400 saying so, as Go's servers answer, and None.
    Raises OSError (ssl.SSLError, TimeoutError) when the handshake fails or is too slow.
    """
    conn.settimeout(max(deadline - time.monotonic(), 0.001))
    first = conn.recv(1, socket.MSG_PEEK)
    if not first:
        return None
    if first[0] != _HANDSHAKE_RECORD:
        conn.sendall(PLAIN_HTTP_REPLY)
        return None
    tls = context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
    try:
        tls.settimeout(max(deadline - time.monotonic(), 0.001))
        tls.do_handshake()
    except BaseException:
        tls.close()  # wrap_socket took the descriptor from ``conn``: close it here
        raise
    return tls
