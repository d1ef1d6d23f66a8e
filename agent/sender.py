"""Talks to the collector: enrollment, config, and draining the spool in gzip batches (stdlib only).

Every response code has one meaning here (the server contract in DESIGN.md §4):
202 ack · 413 split (a lone item is dead-lettered) · 422 and other rejecting 4xx dead-letter ·
401/403 keep the data and stop until re-enrolled · 429/5xx/network back off with full jitter,
honouring Retry-After. Nothing leaves the spool without an ack or a counted dead letter. A spool the
disk will not write (full) stops the drain until the next tick: a batch is sent only once its id is
on disk, and an ack that cannot be written leaves the batch to be resent and answered as a duplicate.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from agent.config import AgentError
from agent.spool import PendingBatch, Spool, SpoolUnwritable
from agent.state import CREDENTIAL_REJECTED, Credentials, StatusBook
from agent.transport import (  # re-exported: callers need one import for talking to the server
    Response,
    ServerUnreachable,
    Transport,
    check_server_url,
    is_loopback,
    parse_retry_after,
)
from agent.wire import Item, utc_now

log = logging.getLogger(__name__)

ENROLL_PATH = "/api/v1/agent/enroll"
BATCHES_PATH = "/api/v1/agent/batches"
CONFIG_PATH = "/api/v1/agent/config"

# 4xx codes that say nothing about the data: keep it and retry later instead of dead-lettering.
RETRYABLE_4XX = frozenset({404, 405, 408, 425, 429})
SERVER_CONFIG_KEYS = ("heartbeat_interval_s", "inventory_interval_s", "inventory_full_interval_s",
                      "batch_max_items", "batch_max_bytes", "send_interval_s")


class EnrollError(AgentError):
    """The server refused or failed the enrollment."""


class CredentialRejected(AgentError):
    """The server no longer accepts this agent's credential (revoked or unknown)."""


@dataclass
class DrainResult:
    """What one ``drain()`` did; ``outcome`` is empty | backoff | credential_rejected | stopped |
    spool_unwritable."""

    outcome: str = "empty"
    batches: int = 0
    items: int = 0
    duplicates: int = 0
    splits: int = 0
    dead_lettered: int = 0
    retry_in_s: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the spool was emptied."""
        return self.outcome == "empty"


class Backoff:
    """Exponential backoff with full jitter (AWS style); Retry-After from the server wins."""

    def __init__(self, initial_s: float = 1.0, max_s: float = 300.0, *, rng: Any = None) -> None:
        self.initial_s, self.max_s = initial_s, max_s
        self.failures = 0
        self.until = 0.0  # time.monotonic() before which nothing is sent
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not cryptography

    def remaining(self) -> float:
        """Seconds left before the next attempt is allowed."""
        return max(0.0, self.until - time.monotonic())

    def fail(self, retry_after: float | None = None) -> float:
        """Record a failure; returns the delay chosen."""
        ceiling = min(self.max_s, self.initial_s * 2 ** min(self.failures, 32))
        self.failures += 1
        delay = self._rng.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, 3600.0))  # never earlier than asked; cap a silly ask
        self.until = time.monotonic() + delay
        return delay

    def reset(self) -> None:
        """A success: the next failure starts from the initial delay again."""
        self.failures, self.until = 0, 0.0


class Sender:
    """Drains the spool to the collector, one assigned batch at a time."""

    def __init__(self, spool: Spool, transport: Transport, credentials: Credentials, *,
                 batch_max_items: int = 500, batch_max_bytes: int = 1024 * 1024,
                 backoff: Backoff | None = None, status: StatusBook | None = None) -> None:
        self.spool, self.transport, self.credentials = spool, transport, credentials
        self.batch_max_items, self.batch_max_bytes = batch_max_items, batch_max_bytes
        self.backoff = backoff or Backoff()
        self.status = status
        self.rejected = False
        self._lock = threading.Lock()  # one drain at a time, whoever triggers it

    def use_credentials(self, credentials: Credentials) -> None:
        """Adopt new credentials (after a re-enroll) and resume sending."""
        self.credentials, self.rejected = credentials, False
        self.backoff.reset()

    def drain(self, stop: threading.Event | None = None) -> DrainResult:
        """Send until the spool is empty, a failure says back off, or ``stop`` is set."""
        with self._lock:
            result = DrainResult()
            if self.rejected:
                result.outcome, result.error = "credential_rejected", CREDENTIAL_REJECTED
            elif self.backoff.remaining() > 0:
                result.outcome, result.retry_in_s = "backoff", self.backoff.remaining()
            else:
                self._drain(result, stop)
                self._record(result)
            return result

    def _drain(self, result: DrainResult, stop: threading.Event | None) -> None:
        try:
            while True:
                if stop is not None and stop.is_set():
                    result.outcome = "stopped"
                    return
                pending = self.spool.next_batch(self.batch_max_items, self.batch_max_bytes)
                if pending is None:
                    result.outcome = "empty"
                    return
                if not self._send(pending, result):
                    return
        except SpoolUnwritable as exc:  # logged by the spool when it starts; the next tick tries again
            result.outcome, result.error = "spool_unwritable", str(exc)

    def send_now(self, items: list[Item]) -> bool:
        """Send items straight away in a batch of their own, bypassing the spool; True if stored.

        For the heartbeat when the spool cannot be written: it is what tells the server about the
        loss. The batch id is not kept, so an unanswered attempt is not retried (the next heartbeat
        says the same, newer); a 202 is the only success.
        """
        texts = [json.dumps(item.to_dict(), separators=(",", ":"), ensure_ascii=False) for item in items]
        try:
            response = self._post(PendingBatch(str(uuid.uuid4()), utc_now(), texts))
        except ServerUnreachable as exc:
            log.warning("direct send failed: %s", exc)
            return False
        if not 200 <= response.status < 300:
            log.warning("direct send refused: HTTP %d: %s", response.status, response.detail())
        return 200 <= response.status < 300

    def _post(self, pending: PendingBatch) -> Response:
        body = pending.encode()  # the wire.Batch envelope, streamed from the spooled text
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
                   "Authorization": self.credentials.bearer}
        return self.transport.request("POST", BATCHES_PATH, body=body, headers=headers)

    def _send(self, pending: PendingBatch, result: DrainResult) -> bool:
        """Send one batch and settle it; False when draining must stop for now."""
        try:
            response = self._post(pending)
        except ServerUnreachable as exc:
            return self._back_off(result, str(exc), None)
        status = response.status
        if 200 <= status < 300:
            reply = response.json()
            self.backoff.reset()  # the server is fine, whatever the local disk says next
            self.spool.ack(pending.batch_id)
            result.batches += 1
            result.items += len(pending.items)
            result.duplicates += bool(reply.get("duplicate"))
            return True
        if status == 413:
            return self._too_large(pending, result)
        if status in (401, 403):
            self.rejected = True
            result.outcome, result.error = "credential_rejected", CREDENTIAL_REJECTED
            log.warning("server rejected the agent credential (HTTP %d): %s; data kept, sending stopped",
                      status, response.detail())
            return False
        if status >= 500 or status in RETRYABLE_4XX or status < 200 or 300 <= status < 400:
            error = f"server answered HTTP {status}: {response.detail()}"
            return self._back_off(result, error, parse_retry_after(response.headers.get("Retry-After")))
        reason = "rejected_schema" if status == 422 else f"rejected_http_{status}"
        moved = self.spool.dead_letter(pending.batch_id, reason, response.detail())
        result.dead_lettered += moved
        log.error("server rejected a batch of %d items (HTTP %d: %s); dead-lettered",
                  moved, status, response.detail())
        return True

    def _too_large(self, pending: PendingBatch, result: DrainResult) -> bool:
        if self.spool.split(pending.batch_id):
            result.splits += 1
            log.info("batch of %d items too large for the server; split in two", len(pending.items))
        else:
            result.dead_lettered += self.spool.dead_letter(pending.batch_id, "too_large",
                                                           "single item over the server's size cap")
            log.error("an item is larger than the server accepts; dead-lettered")
        return True

    def _back_off(self, result: DrainResult, error: str, retry_after: float | None) -> bool:
        delay = self.backoff.fail(retry_after)
        result.outcome, result.error, result.retry_in_s = "backoff", error, delay
        log.warning("send failed (%s); retrying in %.1f s", error, delay)
        return False

    def _record(self, result: DrainResult) -> None:
        attempted = result.batches or result.dead_lettered or result.splits or result.error
        if self.status is None or not attempted:
            return  # the spool was already empty: "last send" keeps meaning the last real one
        now = utc_now()
        values: dict[str, Any] = {"last_send_at": now, "credential_rejected": self.rejected}
        if result.batches:
            values["last_success_at"] = now
        if result.outcome in ("empty", "stopped"):
            values.update(last_send_result="ok", last_error=None)
        else:
            values.update(last_send_result=result.outcome, last_error=result.error)
        self.status.update(**values)


def enroll(transport: Transport, *, token: str, identity: dict[str, Any], agent_version: str,
           platform: str) -> Credentials:
    """Exchange an enrollment token for this agent's id and secret."""
    payload = {
        "token": token,
        "hostname": identity.get("hostname") or "",
        "machine_id": identity.get("machine_id"),
        "product_uuid": identity.get("product_uuid"),
        "macs": list(identity.get("macs") or []),
        "agent_version": agent_version,
        "platform": platform,
    }
    response = transport.request("POST", ENROLL_PATH, body=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    if response.status in (401, 403):
        raise EnrollError(f"enrollment token rejected by the server: {response.detail()}")
    if response.status not in (200, 201):
        raise EnrollError(f"enrollment failed: server answered HTTP {response.status}: {response.detail()}")
    reply = response.json()
    agent_id, secret = reply.get("agent_id"), reply.get("secret")
    if not (isinstance(agent_id, str) and agent_id and isinstance(secret, str) and secret):
        raise EnrollError("enrollment failed: the server's reply has no agent_id/secret")
    host_id = reply.get("host_id")
    return Credentials(server=transport.base_url, agent_id=agent_id, secret=secret,
                       ca_file=transport.ca_file, enrolled_at=utc_now(),
                       host_id=host_id if isinstance(host_id, int) else None,
                       unit=str(reply.get("unit") or ""))


def fetch_config(transport: Transport, credentials: Credentials) -> dict[str, int]:
    """The server's settings for this agent: known keys with positive integer values only."""
    response = transport.request("GET", CONFIG_PATH, headers={"Authorization": credentials.bearer})
    if response.status in (401, 403):
        raise CredentialRejected(f"{CREDENTIAL_REJECTED} (HTTP {response.status}: {response.detail()})")
    if response.status != 200:
        raise ServerUnreachable(f"config request failed: HTTP {response.status}: {response.detail()}")
    reply = response.json()
    return {key: value for key in SERVER_CONFIG_KEYS
            if isinstance(value := reply.get(key), int) and not isinstance(value, bool) and value > 0}



__all__ = ["Backoff", "CredentialRejected", "DrainResult", "EnrollError", "Response", "Sender",
           "ServerUnreachable", "Transport", "check_server_url", "enroll", "fetch_config", "is_loopback"]
