"""Keep-alive HTTP for the simulated agents: aiohttp when installed, httpx otherwise.

Measured on this 2-core machine against a trivial loopback server (uvloop, gzip body of ~600 bytes):
aiohttp spent 125-175 µs of client CPU per request, httpx 1.1-4.7 ms (its pool gets slower with more
connections), so httpx would make the load generator the bottleneck at a few hundred requests/s.
httpx (a dev dependency) stays as the fallback so the tool and its test run where aiohttp is absent.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple, Protocol

TIMEOUT_S = 30.0  # agent/config.py sender.timeout_s
KEEPALIVE_S = 4.0  # below uvicorn's 5 s keep-alive, so no request goes out on a socket the server is closing


class Answer(NamedTuple):
    status: int
    retry_after: str | None
    body: bytes


class Pool(Protocol):
    async def post(self, path: str, *, body: bytes, headers: dict[str, str]) -> Answer: ...

    async def close(self) -> None: ...


class TransportError(Exception):
    """No HTTP answer: ``name`` is the underlying exception's class, for the error counts."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"{name}: {detail}")
        self.name = name


class _AiohttpPool:
    def __init__(self, base_url: str, connections: int) -> None:
        import aiohttp

        self._errors = (aiohttp.ClientError, asyncio.TimeoutError)
        self.base_url = base_url
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=KEEPALIVE_S),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S), auto_decompress=False)

    async def post(self, path: str, *, body: bytes, headers: dict[str, str]) -> Answer:
        try:
            async with self.session.post(self.base_url + path, data=body, headers=headers) as response:
                return Answer(response.status, response.headers.get("Retry-After"), await response.read())
        except self._errors as exc:
            raise TransportError(type(exc).__name__, str(exc)) from None

    async def close(self) -> None:
        await self.session.close()


class _HttpxPool:
    def __init__(self, base_url: str, connections: int) -> None:
        import httpx

        self._errors = httpx.HTTPError
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections,
                              keepalive_expiry=KEEPALIVE_S)
        self.client = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=TIMEOUT_S)

    async def post(self, path: str, *, body: bytes, headers: dict[str, str]) -> Answer:
        try:
            response = await self.client.post(path, content=body, headers=headers)
        except self._errors as exc:
            raise TransportError(type(exc).__name__, str(exc)) from None
        return Answer(response.status_code, response.headers.get("Retry-After"), response.content)

    async def close(self) -> None:
        await self.client.aclose()


def library() -> str:
    """Which HTTP library the pools use here."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return "httpx"
    return "aiohttp"


def new_pool(base_url: str, connections: int) -> Pool:
    """One keep-alive pool per server, as a reverse proxy keeps its upstream connections (call inside a loop)."""
    return _AiohttpPool(base_url, connections) if library() == "aiohttp" else _HttpxPool(base_url, connections)
