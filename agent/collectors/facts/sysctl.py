"""Selected kernel parameters, read from /proc/sys (the running values, not sysctl.conf).

Keys of the result:
  available: bool (/proc/sys readable); values: {dotted key: int | str | None (missing here)};
  missing: [keys the kernel does not have]
"""

from __future__ import annotations

from pathlib import Path

from agent.collectors.facts._common import Run, clip, read_file, to_int, unavailable, under

KEYS = (
    "net.ipv4.ip_forward", "net.ipv4.conf.all.accept_redirects", "net.ipv4.conf.default.accept_redirects",
    "net.ipv4.conf.all.secure_redirects", "net.ipv4.conf.all.send_redirects",
    "net.ipv4.conf.default.send_redirects", "net.ipv4.conf.all.accept_source_route",
    "net.ipv4.conf.default.accept_source_route", "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter", "net.ipv4.conf.all.log_martians",
    "net.ipv4.icmp_echo_ignore_broadcasts", "net.ipv4.icmp_ignore_bogus_error_responses",
    "net.ipv4.tcp_syncookies", "net.ipv6.conf.all.forwarding", "net.ipv6.conf.all.accept_redirects",
    "net.ipv6.conf.default.accept_redirects", "net.ipv6.conf.all.accept_ra", "net.ipv6.conf.all.accept_source_route",
    "net.ipv6.conf.all.disable_ipv6", "kernel.randomize_va_space", "kernel.dmesg_restrict",
    "kernel.kptr_restrict", "kernel.yama.ptrace_scope", "kernel.sysrq", "kernel.unprivileged_bpf_disabled",
    "kernel.perf_event_paranoid", "kernel.core_pattern", "fs.suid_dumpable", "fs.protected_hardlinks",
    "fs.protected_symlinks", "fs.protected_fifos", "fs.protected_regular", "user.max_user_namespaces",
)


def collect_sysctl(root: Path = Path("/"), run: Run | None = None) -> dict:
    """Current values of the keys compliance checks read."""
    if not under(root, "/proc/sys").is_dir():
        return unavailable("/proc/sys: missing", values={}, missing=list(KEYS))
    values: dict[str, int | str | None] = {}
    missing: list[str] = []
    for key in KEYS:
        text, _problem = read_file(root, "/proc/sys/" + key.replace(".", "/"))
        if text is None:
            values[key] = None
            missing.append(key)
            continue
        raw = " ".join(text.split())
        number = to_int(raw)
        values[key] = number if number is not None else clip(raw, 256)
    return {"available": True, "values": values, "missing": missing}
