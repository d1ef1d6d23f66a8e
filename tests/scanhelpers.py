"""Loopback services for the nmap tests: something real for nmap to find, bound only to 127.0.0.1 or ::1.

The scanner tests must never touch another address, so every service here binds to a loopback address
on a free port and is torn down by its context manager. The TLS servers are deliberately bad (an
expired self-signed certificate, TLS 1.0/1.1 allowed) and the sshd accepts passwords, so that the
scan has findings to report.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

LOOPBACK = ("127.0.0.1", "::1")
HTTP_TITLE = "Khien loopback test page"
# nmap's service probes hard-match this Server header ("SimpleHTTPServer"), so -sV stops probing after GET
# instead of trying dozens of other probes against a server it cannot name.
HTTP_SERVER = "SimpleHTTP/0.6 Python/3.11"
TLS_SUBJECT_CN = "khien-expired.test"
SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True, slots=True)
class Service:
    """A running loopback service: where it listens and what a scan should see."""

    host: str
    port: int


def _check_loopback(host: str) -> None:
    if host not in LOOPBACK:
        raise ValueError(f"scan test services bind to loopback only, not {host!r}")


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on the loopback address ``host``."""
    _check_loopback(host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = HTTP_SERVER
    sys_version = ""

    def version_string(self) -> str:
        return HTTP_SERVER
    timeout = 4  # > nmap's tcpwrappedms (3 s), < its NULL-probe wait (6 s): idle probes end sooner

    def do_GET(self) -> None:
        body = f"<html><head><title>{HTTP_TITLE}</title></head><body>ok</body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet: nmap sends plenty of junk
        return


class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def finish_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        # Handshake in the per-connection thread, so a slow or garbage-sending prober cannot block accept().
        if self.tls is not None:
            try:
                request.settimeout(4)
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        return


class _HttpServer6(_HttpServer):
    address_family = socket.AF_INET6


@contextlib.contextmanager
def _serve(host: str, tls: ssl.SSLContext | None) -> Iterator[Service]:
    _check_loopback(host)
    cls = _HttpServer6 if ":" in host else _HttpServer
    server = cls((host, 0), _Handler)
    server.tls = tls
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield Service(host, server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def http_server(host: str = "127.0.0.1") -> Iterator[Service]:
    """Plain HTTP with a known <title> and Server header."""
    with _serve(host, None) as service:
        yield service


@contextlib.contextmanager
def closing_listener(host: str = "127.0.0.1", port: int = 0) -> Iterator[Service]:
    """A TCP port that accepts and hangs up at once: nmap -sV reports it "tcpwrapped" in well under a second.

    Use it to stand in for a service nmap cannot name (the default port then decides). A listener that
    accepts and stays silent is the slow case instead: -sV waits 6 s for a banner and then tries every
    probe for that port, each with its own wait, which takes minutes.
    """
    _check_loopback(host)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)

    def hang_up() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:  # closed by the context manager
                return
            conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        yield Service(host, sock.getsockname()[1])
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        thread.join(5)


def _self_signed(directory: Path, *, expired: bool) -> tuple[Path, Path]:
    """A self-signed EC certificate (expired a year ago when ``expired``), written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TLS_SUBJECT_CN)])
    now = dt.datetime.now(dt.UTC)
    start, end = (now - dt.timedelta(days=730), now - dt.timedelta(days=365)) if expired else (
        now - dt.timedelta(days=1), now + dt.timedelta(days=365))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def expired_not_after(directory: Path) -> dt.datetime:
    """The notAfter of the certificate ``tls_server`` wrote into ``directory``."""
    cert = x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes())
    return cert.not_valid_after_utc


def legacy_tls_supported() -> bool:
    """Whether this Python/OpenSSL lets a server offer TLS 1.0 at all (OpenSSL 3 does at SECLEVEL=0)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return False
    return ctx.minimum_version == ssl.TLSVersion.TLSv1


@contextlib.contextmanager
def tls_server(directory: Path, *, host: str = "127.0.0.1", expired: bool = True,
               legacy: bool = False) -> Iterator[Service]:
    """HTTPS with a self-signed certificate (expired by default); ``legacy`` also offers TLS 1.0 and 1.1."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = _self_signed(directory, expired=expired)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if legacy:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with _serve(host, ctx) as service:
        yield service


def _host_key(directory: Path) -> Path:
    key = ed25519.Ed25519PrivateKey.generate()
    path = directory / "ssh_host_ed25519_key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return path


def _wait_for_banner(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"sshd exited with {proc.returncode}: {err.strip()}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1) as sock:
            if sock.recv(64).startswith(b"SSH-"):
                return
        time.sleep(0.1)
    raise RuntimeError(f"sshd did not answer on {host}:{port} within {timeout} s")


@contextlib.contextmanager
def sshd_server(directory: Path, *, host: str = "127.0.0.1") -> Iterator[Service]:
    """OpenSSH on a free high loopback port with password authentication on; needs root and /usr/sbin/sshd."""
    _check_loopback(host)
    directory.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege-separation directory sshd insists on
    port = free_port(host)
    config = directory / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}",
        f"ListenAddress {host}",
        f"HostKey {_host_key(directory)}",
        f"PidFile {directory / 'sshd.pid'}",
        "PasswordAuthentication yes",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin no",
        "UsePAM no",
        "StrictModes no",
        "LogLevel ERROR",
        "",
    ]))
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_banner(host, port, proc)
        yield Service(host, port)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr:
            proc.stderr.close()
