"""HTTP(S) to the collector with nothing but ``http.client`` and ``ssl``.

Not ``urllib.request``: it costs ~1 MB of RSS to import (tempfile, shutil, bz2, lzma...) and its
redirect and proxy handling would need overriding anyway. Here: certificates always verified,
redirects never followed (they would carry the Bearer credential elsewhere), plain HTTP only to
loopback unless explicitly allowed, and an ``https_proxy`` honoured through CONNECT.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import socket
import ssl
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from agent import __version__
from agent.config import AgentError

MAX_RESPONSE_BYTES = 1024 * 1024


class ServerUnreachable(AgentError):
    """No HTTP answer: connection refused, DNS, TLS verification, timeout."""


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_url(url: str, *, allow_insecure_http: bool = False) -> str:
    """The base URL without trailing slash; refuses plain HTTP to anything but loopback."""
    parts = urlsplit(url.strip())
    try:
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        raise AgentError(f"invalid server URL {url!r}: bad port") from None
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment \
            or parts.username:
        raise AgentError(f"invalid server URL {url!r}: expected https://HOST[:PORT][/PATH]")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise AgentError(f"refusing plain http:// to {parts.hostname}: use https:// "
                         "(or set server.allow_insecure_http = true in the config)")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds from now (delta-seconds or HTTP date); None if absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


@dataclass
class Response:
    """An HTTP answer, whatever its status."""

    status: int
    headers: Any = field(default_factory=dict)  # http.client.HTTPMessage: case-insensitive get()
    body: bytes = b""

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, or {} if it is not one."""
        try:
            data = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def detail(self) -> str:
        """The server's ``detail`` message (or the start of the body), for one log line."""
        detail = self.json().get("detail")
        if detail:
            return (detail if isinstance(detail, str) else json.dumps(detail))[:300]
        text = self.body[:200].decode("utf-8", "replace").strip()
        return " ".join(text.split()) or "no detail"


class Transport:
    """Requests to one server, certificates verified (optionally against a private CA file)."""

    def __init__(self, server_url: str, *, ca_file: str = "", timeout_s: float = 30.0,
                 allow_insecure_http: bool = False) -> None:
        self.base_url = check_server_url(server_url, allow_insecure_http=allow_insecure_http)
        self.ca_file = os.path.abspath(ca_file) if ca_file else ""
        self.timeout_s = timeout_s
        parts = urlsplit(self.base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path
        self._tls = tls_context(self.ca_file) if self._https else None
        self._proxy = https_proxy_for(self._host) if self._https else None

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Response:
        """One request; any HTTP status comes back as a Response, no answer raises ServerUnreachable."""
        conn = self._connection()
        try:
            conn.request(method, self._prefix + path, body=body, headers={
                "User-Agent": f"khien-agent/{__version__}", "Accept": "application/json", **(headers or {})})
            reply = conn.getresponse()
            return Response(reply.status, reply.headers, reply.read(MAX_RESPONSE_BYTES))
        except (OSError, http.client.HTTPException) as exc:
            raise ServerUnreachable(f"cannot reach {self.base_url}: {describe(exc)}") from None
        finally:
            conn.close()

    def _connection(self) -> http.client.HTTPConnection:
        if not self._https:
            return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)
        if self._proxy is None:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout_s,
                                               context=self._tls)
        proxy_host, proxy_port = self._proxy
        conn = http.client.HTTPSConnection(proxy_host, proxy_port, timeout=self.timeout_s, context=self._tls)
        conn.set_tunnel(self._host, self._port)  # TLS runs end to end through CONNECT
        return conn


def tls_context(ca_file: str = "") -> ssl.SSLContext:
    """A verifying client context: the given CA file, else the system trust store."""
    try:
        if ca_file:
            return ssl.create_default_context(cafile=ca_file)
        capath = _hashed_ca_dir()
        return ssl.create_default_context(capath=capath) if capath else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise AgentError(f"cannot load CA file {ca_file or '(system trust store)'}: {exc}") from None


def _hashed_ca_dir() -> str | None:
    # Loading the system bundle file parses ~150 certificates up front (~2.4 MB of RSS); a hashed
    # certificate directory (Debian's /etc/ssl/certs) is searched lazily, one file per lookup.
    paths = ssl.get_default_verify_paths()
    if os.environ.get(paths.openssl_cafile_env):
        return None  # SSL_CERT_FILE set: the operator chose a bundle; create_default_context loads it
    capath = paths.capath
    try:
        if capath and any(name.endswith(".0") for name in os.listdir(capath)):
            return capath
    except OSError:
        pass
    return None


def https_proxy_for(host: str) -> tuple[str, int] | None:
    """The ``https_proxy`` (host, port) to use for ``host``, honouring ``no_proxy``; None for direct."""
    if is_loopback(host):
        return None
    proxy = os.environ.get("https_proxy") or os.environ.get("HTTPS_PROXY")
    if not proxy:
        return None
    no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
    for entry in (e.strip().lower().lstrip(".") for e in no_proxy.split(",")):
        if entry == "*" or (entry and (host.lower() == entry or host.lower().endswith("." + entry))):
            return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if not parts.hostname:
        raise AgentError(f"invalid https_proxy {proxy!r}")
    return parts.hostname, parts.port or 3128


def describe(exc: BaseException) -> str:
    """A short human description of a connection failure."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed ({exc.verify_message})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"name resolution failed ({exc.strerror})"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed without a response"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
