"""A loopback TCP proxy that a test can cut and restore: the network between two real processes.

The server under test is pointed at the proxy's port instead of PostgreSQL's. ``cut()`` closes every
connection and then either refuses new ones (the port is closed: what a stopped database host or a
firewall reject looks like) or blackholes them (accepted, never answered: a hung database or a
half-open network path, which only a client-side connect timeout gets out of). ``restore()``
forwards again on the same port. Runs its own asyncio loop in a thread, so tests stay synchronous.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

REFUSE = "refuse"
BLACKHOLE = "blackhole"


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target_host:target_port`` until cut."""

    def __init__(self, target_host: str, target_port: int, *, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self.mode: str | None = None  # None: forwarding
        self.connections = 0  # accepted since start (forwarded or not): shows the server tried
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcpproxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self, mode: str = REFUSE) -> None:
        """Close every connection; then refuse new ones (port closed) or accept and ignore them."""
        if mode not in (REFUSE, BLACKHOLE):
            raise ValueError(f"unknown mode {mode!r}")
        self._call(self._cut(mode))

    def restore(self) -> None:
        """Forward again (on the same port)."""
        self._call(self._restore())

    def stop(self) -> None:
        self._call(self._cut(REFUSE))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _call(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self, mode: str) -> None:
        self.mode = mode
        for writer in list(self._writers):
            _abort(writer)
        self._writers.clear()
        if mode == REFUSE and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        elif mode == BLACKHOLE and self._server is None:
            await self._listen()

    async def _restore(self) -> None:
        self.mode = None
        for writer in list(self._writers):  # blackholed connections: their clients connect again
            _abort(writer)
        self._writers.clear()
        if self._server is None:
            await self._listen()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        if self.mode == BLACKHOLE:
            return  # held open, never answered, until the next cut() or restore() closes it
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(writer)
            return
        self._writers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            _abort(writer)
            self._writers.discard(writer)


def _abort(writer: asyncio.StreamWriter) -> None:
    # abort(), not close(): the peer sees the connection reset at once, as when a link goes down.
    with contextlib.suppress(Exception):
        writer.transport.abort()
