"""Run the server (collector + console) under uvicorn, with hooks for what starts alongside it."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import socket
from collections.abc import Awaitable, Callable

import uvicorn

from collector.db import Database
from collector.errors import KhienError
from collector.leader import migration_lock
from collector.settings import Settings
from khien.app import build_app

log = logging.getLogger("khien.server")


def check_port_free(host: str, port: int) -> None:
    """Fail early with a clear line instead of uvicorn's traceback-and-exit on a busy port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise KhienError(f"port {port} on {host} is already in use (choose another with --port)") from None
            raise KhienError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def tune_gc() -> None:
    """Keep the cyclic GC off the ingest hot path.

    Validating and storing a batch allocates many short-lived containers; with default thresholds
    the collector runs every few hundred allocations and its older generations rescan every
    module-level object of FastAPI, SQLAlchemy and pydantic. Freezing what exists after start-up
    and collecting gen 0 less often tripled validation speed in bench/ingest.py.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def console_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104 - display only
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}/"


def serve(settings: Settings, *, on_started: Callable[[], Awaitable[None]] | None = None,
          db: Database | None = None) -> None:
    """Upgrade the schema, then serve until Ctrl-C / SIGTERM; ``on_started`` runs once listening."""
    db = db or Database(settings.database_url)
    with migration_lock(db):  # several servers started together on a new database: one migrates
        db.upgrade()
    check_port_free(settings.host, settings.port)
    app = build_app(settings, db=db)
    tune_gc()
    # X-Forwarded-For is believed only from the proxies the operator names (KHIEN_TRUSTED_PROXIES):
    # from anyone else it would let a client choose the address the audit log and the login throttle see.
    proxies = list(settings.trusted_proxies)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                            access_log=False, proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None,
                            server_header=False)
    server = uvicorn.Server(config)

    async def main() -> None:
        async def announce() -> None:
            while not server.started:
                if server.should_exit:
                    return
                await asyncio.sleep(0.05)
            log.info("Khiên is listening: console and API at %s", console_url(settings))
            if on_started is not None:
                await on_started()

        watcher = asyncio.create_task(announce())
        try:
            await server.serve()
        finally:
            watcher.cancel()

    try:
        asyncio.run(main())
    finally:
        db.dispose()
