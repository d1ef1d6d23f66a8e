"""Auth log parsing speed: ``parse-log`` (in-process and CLI) next to plain ``re`` and ``grep -cE``.

Usage:
    .venv/bin/python bench/parse_log.py [--lines 200000] [--seed 7]

Generates a realistic auth log (brute force, scanners, logins, sudo/su, account changes, unrelated
programs; IPv4 and IPv6) in a temp dir, then times each contender over the same file and prints
lines/s. The baselines only find lines; parse-log also frames, parses, validates IPs and builds items.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.collectors.authlog import LineParser  # noqa: E402 - after the path tweak for direct runs
from agent.collectors.authlog.logfile import parse_stream  # noqa: E402

TEMPLATES: list[tuple[int, str]] = [
    (30, "sshd[{pid}]: Failed password for {user} from {ip} port {port} ssh2"),
    (8, "sshd[{pid}]: Failed password for invalid user {bad} from {ip} port {port} ssh2"),
    (10, "sshd[{pid}]: Invalid user {bad} from {ip} port {port}"),
    (8, "sshd[{pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
        "rhost={ip}  user={user}"),
    (6, "sshd[{pid}]: Connection closed by authenticating user {user} {ip} port {port} [preauth]"),
    (4, "sshd[{pid}]: Received disconnect from {ip} port {port}:11: Bye Bye [preauth]"),
    (2, "sshd[{pid}]: message repeated 4 times: [ Failed password for {user} from {ip} port {port} ssh2]"),
    (2, "sshd[{pid}]: error: maximum authentication attempts exceeded for {user} from {ip} port {port} ssh2 "
        "[preauth]"),
    (2, "sshd[{pid}]: Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:q8vF1Jm4ZQ2nqkT0"),
    (1, "sshd[{pid}]: Accepted password for {user} from {ip} port {port} ssh2"),
    (3, "sshd[{pid}]: pam_unix(sshd:session): session opened for user {user}(uid=1000) by (uid=0)"),
    (1, "sshd[{pid}]: Did not receive identification string from {ip} port {port}"),
    (3, "sudo:   {user} : TTY=pts/{tty} ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx"),
    (1, "sudo:   {user} : 3 incorrect password attempts ; TTY=pts/{tty} ; PWD=/home/{user} ; USER=root ; "
        "COMMAND=/bin/bash"),
    (3, "sudo: pam_unix(sudo:session): session opened for user root(uid=0) by {user}(uid=1000)"),
    (1, "su[{pid}]: (to root) {user} on pts/{tty}"),
    (1, "su[{pid}]: FAILED SU (to root) {user} on pts/{tty}"),
    (1, "useradd[{pid}]: new user: name={bad}, UID=1{tty}00, GID=100, home=/home/{bad}, shell=/bin/bash"),
    (1, "usermod[{pid}]: add '{user}' to group 'sudo'"),
    (6, "CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"),
    (5, "systemd-logind[612]: New session {pid} of user {user}."),
    (1, "sshd[{pid}]: Some future OpenSSH message nobody has seen yet"),
]
USERS = ["root", "admin", "alice", "bob", "deploy", "oracle", "postgres", "ubuntu"]
BAD = ["test", "guest", "ftpuser", "pi", "support", "ubnt", "git", "hadoop"]


def generate(path: Path, lines: int, seed: int) -> None:
    """Write ``lines`` lines of a plausible /var/log/auth.log."""
    rng = random.Random(seed)
    weights = [w for w, _ in TEMPLATES]
    picks = rng.choices([t for _, t in TEMPLATES], weights, k=lines)
    with open(path, "w") as out:
        for n, template in enumerate(picks):
            ip = (f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(65536):x}" if n % 5 == 0
                  else f"203.0.{rng.randrange(256)}.{rng.randrange(256)}")
            ts = f"Nov 22 {n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}"
            out.write(f"{ts} web01 " + template.format(pid=1000 + n % 50000, user=rng.choice(USERS),
                                                       bad=rng.choice(BAD), ip=ip, port=rng.randrange(1024, 65536),
                                                       tty=rng.randrange(10)) + "\n")


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def in_process(path: Path) -> int:
    parser = LineParser()
    with open(path, "rb") as fh:
        return sum(1 for _ in parse_stream(fh, "auth", parser))


def cli(path: Path) -> int:
    # JSON goes to /dev/null (as to a file or pipe reader); the event count comes from -v on stderr.
    done = subprocess.run([sys.executable, "-m", "agent", "parse-log", "-v", "--source", "auth", str(path)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True, cwd=ROOT)
    return int(re.search(rb"events: (\d+)", done.stderr)[1])


def baseline_re(path: Path) -> int:
    pattern = re.compile(r"Failed password|Accepted|sudo")
    with open(path, encoding="utf-8", errors="replace") as fh:
        return sum(1 for line in fh if pattern.search(line))


def baseline_grep(path: Path) -> int:
    done = subprocess.run(["grep", "-cE", "Failed password|Accepted|sudo", str(path)], capture_output=True,
                          check=True)
    return int(done.stdout)


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--lines", type=int, default=200_000)
    args.add_argument("--seed", type=int, default=7)
    opts = args.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "auth.log"
        generate(path, opts.lines, opts.seed)
        size = path.stat().st_size
        print(f"log: {opts.lines} lines, {size / 1e6:.1f} MB  (python {sys.version.split()[0]})")
        contenders = [("parse-log in-process (events)", in_process), ("parse-log CLI, JSON to /dev/null (events)", cli),
                      ("python re.search baseline (matches)", baseline_re)]
        if shutil.which("grep"):
            contenders.append(("grep -cE baseline (matches)", baseline_grep))
        for name, fn in contenders:
            seconds, count = min((timed(lambda fn=fn: fn(path)) for _ in range(3)), key=lambda r: r[0])
            print(f"{name:42s} {opts.lines / seconds:>12,.0f} lines/s  {seconds:7.3f} s  ({count} found)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
