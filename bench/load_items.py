"""What a simulated agent sends, built by the agent's own code so the shapes are the real ones.

Auth events come from syslog lines put through the agent's auth-log parser (the line shapes of
tests/agent/fixtures/authlog); file changes through the FIM module's ``change_data``; inventory is
this machine's own inventory (``collect_sections``) with the identity replaced, and package deltas
toggle one package in or out of the list, as ``apt-get install/remove`` would. Parsing every line at the
load's rate would spend the generator's CPU on the agent's work, so a pool of parsed events is built
once and each event picks one and gets its own time.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent import __version__ as AGENT_VERSION
from agent.collectors.authlog.parser import LineParser
from agent.collectors.fim.baseline import Record
from agent.collectors.fim.events import change_data
from agent.collectors.inventory import collect_sections
from agent.wire import section_hash

# Share of each kind among events (the rest of the mix is heartbeats and inventory, on their own clocks).
EVENT_MIX: tuple[tuple[str, float], ...] = (("ssh_failure", 0.55), ("ssh_success", 0.15), ("sudo", 0.12),
                                            ("su", 0.03), ("fim", 0.15))
POOL_PER_KIND = 400
ATTACKERS = [f"203.0.113.{i}" for i in range(1, 120)] + [f"198.51.100.{i}" for i in range(1, 60)] + \
            [f"2001:db8:{i:x}::7" for i in range(1, 20)]
ADMIN_SOURCES = [f"10.20.{i}.{j}" for i in range(1, 4) for j in range(2, 12)]
GUESSED_USERS = ["admin", "root", "oracle", "test", "ubuntu", "postgres", "git", "pi", "user", "ftpuser", "guest"]
STAFF = ["alice", "bob", "deploy", "quantri", "vanhanh", "ansible"]
SUDO_COMMANDS = ["/usr/bin/systemctl restart nginx", "/usr/bin/apt-get update", "/usr/bin/tail -n 200 /var/log/syslog",
                 "/usr/bin/journalctl -u ssh", "/usr/sbin/ufw status", "/usr/bin/docker ps"]
FIM_PATHS = [("/etc/ssh/sshd_config", False), ("/etc/sudoers", False), ("/etc/passwd", False), ("/etc/hosts", False),
             ("/etc/nginx/nginx.conf", False), ("/etc/crontab", False), ("/usr/local/bin/backup.sh", False),
             ("/var/www/html/index.php", True), ("/var/www/html/uploads/anh.jpg", True),
             ("/root/.ssh/authorized_keys", False), ("/usr/bin/curl", False)]
HEARTBEAT_MODULES = ("inventory", "patches", "facts", "authlog", "fim", "heartbeat")
# Share of hosts under a brute-force campaign: half their failures come from one address, enough for the
# brute-force rule to fire (8 in 120 s), so the detection stage writes alerts as it would in production.
ATTACKED_SHARE = 0.1


def now_iso(wall: float) -> str:
    """An epoch time as the agent writes it (ISO 8601, milliseconds, explicit UTC offset)."""
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")


def _syslog_line(rng: random.Random, kind: str) -> str:
    pid = rng.randint(1000, 60000)
    stamp = datetime.now(UTC).strftime("%b %d %H:%M:%S")
    ip, port = rng.choice(ATTACKERS), rng.randint(32768, 60999)
    if kind == "ssh_failure":
        user = rng.choice(GUESSED_USERS)
        message = rng.choice([
            f"Failed password for invalid user {user} from {ip} port {port} ssh2",
            f"Failed password for root from {ip} port {port} ssh2",
            f"Invalid user {user} from {ip} port {port}",
            f"Failed publickey for {user} from {ip} port {port} ssh2: RSA SHA256:Xk1Yc6cQm2kO3ZqP0qk0bq9A0QbVxYw0",
            f"error: maximum authentication attempts exceeded for root from {ip} port {port} ssh2 [preauth]",
        ])
        return f"{stamp} srv sshd[{pid}]: {message}"
    if kind == "ssh_success":
        user, src = rng.choice(STAFF), rng.choice(ADMIN_SOURCES)
        method = rng.choice(["publickey", "publickey", "password"])
        tail = " ssh2: ED25519 SHA256:q8vF1Jm4ZQ2nqkT0H1y8rV8Jx4u0Wb1dC1fK2lM3nO4" if method == "publickey" else " ssh2"
        return f"{stamp} srv sshd[{pid}]: Accepted {method} for {user} from {src} port {port}{tail}"
    if kind == "sudo":
        user = rng.choice(STAFF)
        if rng.random() < 0.85:
            return (f"{stamp} srv sudo[{pid}]:   {user} : TTY=pts/{rng.randint(0, 4)} ; PWD=/home/{user} ; USER=root ; "
                    f"COMMAND={rng.choice(SUDO_COMMANDS)}")
        return (f"{stamp} srv sudo[{pid}]:   {user} : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/home/{user} ; "
                f"USER=root ; COMMAND=/usr/bin/bash")
    user = rng.choice(STAFF)
    if rng.random() < 0.8:
        return f"{stamp} srv su[{pid}]: (to root) {user} on pts/{rng.randint(0, 4)}"
    return f"{stamp} srv su[{pid}]: FAILED SU (to root) {user} on pts/{rng.randint(0, 4)}"


def _fim_data(rng: random.Random) -> dict[str, Any]:
    path, web_root = rng.choice(FIM_PATHS)
    mtime = datetime.now(UTC).timestamp() - rng.randint(0, 3600)
    old = Record(size=rng.randint(200, 90_000), mode=0o100644, uid=0, gid=0, mtime=mtime - 86400,
                 inode=rng.randint(10_000, 9_999_999), kind="file", sha256=hashlib.sha256(path.encode()).hexdigest())
    action = rng.choice(["modified", "modified", "attributes", "created", "deleted"])
    if action == "attributes":
        new = old._replace(mode=0o100600, mtime=mtime)
        changed = {"mode": (old.mode, new.mode), "mtime": (old.mtime, new.mtime)}
    else:
        new = old._replace(size=old.size + rng.randint(1, 500), mtime=mtime,
                           sha256=hashlib.sha256(f"{path}{mtime}".encode()).hexdigest())
        changed = {} if action in ("created", "deleted") else \
            {k: (getattr(old, k), getattr(new, k)) for k in ("size", "mtime", "sha256")}
    record = old if action == "deleted" else new
    return change_data(path, action, record, changed, scan="realtime", web_root=web_root)


@dataclass
class EventPool:
    """Parsed events by kind; ``pick`` returns (type, data) for one event of the configured mix."""

    by_kind: dict[str, list[tuple[str, dict[str, Any]]]]
    kinds: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)

    @classmethod
    def build(cls, seed: int = 1, per_kind: int = POOL_PER_KIND) -> EventPool:
        rng = random.Random(seed)
        parser = LineParser("file")
        by_kind: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for kind, _share in EVENT_MIX:
            pool: list[tuple[str, dict[str, Any]]] = []
            while len(pool) < per_kind:
                if kind == "fim":
                    pool.append(("file.change", _fim_data(rng)))
                    continue
                item = parser.parse_line(_syslog_line(rng, kind))
                if item is None:  # a template the parser does not know would silently skew the mix
                    raise RuntimeError(f"the agent's parser ignored a generated {kind} line: {parser.counters}")
                pool.append((item.type, item.data))
            by_kind[kind] = pool
        return cls(by_kind, [k for k, _ in EVENT_MIX], [w for _, w in EVENT_MIX])

    def pick(self, rng: random.Random, campaign: str | None = None) -> tuple[str, dict[str, Any]]:
        """One event; with a ``campaign`` address, half the SSH failures come from it."""
        kind = rng.choices(self.kinds, self.weights)[0]
        type_, data = rng.choice(self.by_kind[kind])
        if campaign and kind == "ssh_failure" and "source_ip" in data and rng.random() < 0.5:
            data = data | {"source_ip": campaign, "raw": data["raw"].replace(data["source_ip"], campaign)}
        return type_, data


def inventory_clock(index: int) -> random.Random:
    """The random source of one host's package changes, apart from its events, so the prepare step can
    tell in advance which hosts change packages during the run (they need a first inventory before)."""
    return random.Random(f"inventory-{index}")


def changes_packages_within(index: int, *, every_s: float, duration_s: float) -> bool:
    return every_s > 0 and inventory_clock(index).expovariate(1.0 / every_s) < duration_s


def identity(index: int, run_tag: str) -> dict[str, Any]:
    """A stable, unique identity per simulated host (QEMU-style MAC, machine-id from the index)."""
    machine = uuid.uuid5(uuid.NAMESPACE_DNS, f"{run_tag}.{index}.khien-load")
    mac = f"52:54:00:{(index >> 16) & 0xFF:02x}:{(index >> 8) & 0xFF:02x}:{index & 0xFF:02x}"
    return {"hostname": f"load-{index:05d}", "machine_id": machine.hex, "product_uuid": str(machine), "macs": [mac]}


class Inventory:
    """This machine's inventory as the template of every simulated host; packages split base/extra."""

    def __init__(self, *, packages: int) -> None:
        sections = collect_sections()
        rows = sorted(sections.pop("packages", []), key=lambda r: r["name"])
        if len(rows) < 2:
            raise RuntimeError("this machine's package list is empty: the inventory template needs dpkg or rpm")
        keep = min(packages, max(1, len(rows) - 1))
        self.base, self.extras = rows[:keep], rows[keep:]  # extras are what deltas install and remove
        self.other = sections
        self._canon = [json.dumps(r, sort_keys=True, separators=(",", ":")) for r in rows]

    def packages(self, extras: set[int]) -> tuple[str, list[dict[str, Any]]]:
        """(hash, rows) of the packages section with these extra packages installed (agent/wire.section_hash)."""
        chosen = self._canon[:len(self.base)] + [self._canon[len(self.base) + i] for i in sorted(extras)]
        digest = hashlib.sha256("\n".join(sorted(chosen)).encode()).hexdigest()
        return digest, self.base + [self.extras[i] for i in sorted(extras)]

    def full_snapshot(self, ident: dict[str, Any], extras: set[int]) -> dict[str, Any]:
        """The first, full inventory of a host (every section)."""
        out: dict[str, Any] = {}
        for name, rows in (self.other | {"identity": [ident]}).items():
            if name == "os":
                rows = [r | {"hostname": ident["hostname"]} for r in rows]
            out[name] = {"hash": section_hash(rows), "rows": rows}
        digest, rows = self.packages(extras)
        out["packages"] = {"hash": digest, "rows": rows}
        return {"full": True, "sections": out}

    def delta(self, extras: set[int], rng: random.Random) -> tuple[dict[str, Any], str]:
        """Toggle one extra package (installed <-> removed) and return (snapshot data, derived event type)."""
        pick = rng.randrange(len(self.extras))
        installed = pick not in extras
        extras.symmetric_difference_update({pick})
        digest, rows = self.packages(extras)
        data = {"full": False, "sections": {"packages": {"hash": digest, "rows": rows}}}
        return data, "package.installed" if installed else "package.removed"


def heartbeat(*, uptime_s: float, spool_items: int, items_sent: int, rng: random.Random) -> dict[str, Any]:
    """A heartbeat with every field the agent's HeartbeatCollector fills (agent/heartbeat.py)."""
    runs = max(1, int(uptime_s // 60))
    modules = {name: {"runs": runs, "errors": 0, "items": items_sent if name == "authlog" else runs,
                      "status": "ok", "last_duration_ms": round(rng.uniform(0.2, 40.0), 3),
                      "total_ms": round(runs * rng.uniform(1, 30), 3), "last_error": None,
                      "counters": {"recognised": items_sent, "ignored.other_program": 3 * runs}
                      if name == "authlog" else {}} for name in HEARTBEAT_MODULES}
    rss = 38_000_000 + rng.randint(0, 6_000_000)
    cpu = round(rng.uniform(0.1, 1.5), 2)
    return {"agent_version": AGENT_VERSION, "agent_uptime_s": round(uptime_s, 3),
            "host_uptime_s": round(uptime_s + 864_000, 3), "spool_items": spool_items,
            "spool_bytes": spool_items * 600, "dropped": {}, "dead_letters": 0, "rss_bytes": rss,
            "cpu_percent": cpu, "collectors": modules, "platform": "linux",
            "budget": {"max_rss_bytes": 60_000_000, "max_cpu_percent": 5.0, "rss_bytes": rss, "cpu_percent": cpu,
                       "over": False, "overruns": 0, "paused": []}}
