"""`khien check` next to `lynis audit system --quick` on this machine (issue 4 benchmark).

Usage:
    .venv/bin/python -m bench.check_vs_lynis [--level 3]

Times both (wall clock, fresh processes), then lines up the settings both judge: a Lynis test counts
as "flagged" when its id appears among the report's warnings or suggestions, "ok" when it ran
without one, "skipped" when Lynis skipped it. Khiên "fail" should meet "flagged", "pass" meet "ok",
"not_applicable" meet "skipped" (or an unflagged test). Needs `apt-get install lynis`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

# Lynis test id -> the Khiên checks that judge the same setting.
PAIRS: dict[str, tuple[str, ...]] = {
    "AUTH-9286": ("acct_lnx_password_max_age", "acct_lnx_password_min_age"),  # login.defs password aging
    "AUTH-9328": ("acct_lnx_default_umask",),  # default umask in login.defs
    "AUTH-9262": ("pam_lnx_password_complexity",),  # PAM password strength module
    "AUTH-9230": ("acct_lnx_password_hash_strong",),  # password hashing method/rounds
    "FIRE-4512": ("fw_lnx_firewall_active",),  # iptables rules present
    "FIRE-4590": ("fw_lnx_firewall_active",),  # firewall active
    "ACCT-9628": ("log_lnx_auditd_running",),  # auditd
    "TIME-3104": ("time_lnx_synchronized",),  # NTP daemon
    "HRDN-7230": ("mal_lnx_antimalware_installed",),  # "install at least one malware scanner"
    "FILE-6310": ("disk_lnx_tmp_mount_options",),  # /tmp on its own partition
    "PKGS-7420": ("upd_lnx_automatic_security_updates",),  # automatic updates
    "LOGG-2154": ("log_lnx_remote_forwarding",),  # remote syslog
    "SSH-7408": ("ssh_lnx_root_login_disabled", "ssh_lnx_x11_forwarding_disabled", "ssh_lnx_max_auth_tries"),
    "AUTH-9208": ("acct_lnx_only_root_uid0",),  # accounts (UID 0 duplicates)
    "AUTH-9204": ("acct_lnx_only_root_uid0",),  # users with UID 0
    "AUTH-9234": ("acct_lnx_no_empty_passwords",),  # password-less accounts? (user accounts check)
}
# KRNL-6000 lists each sysctl key that differs from Lynis's profile; judged per key (flagged if any
# of the space-separated keys is).
SYSCTL_PAIRS: dict[str, str] = {
    "kernel.randomize_va_space": "kern_lnx_aslr_full",
    "net.ipv4.ip_forward": "kern_lnx_ip_forward_disabled",
    "net.ipv4.tcp_syncookies": "kern_lnx_tcp_syncookies_enabled",
    "net.ipv4.conf.all.accept_redirects": "kern_lnx_icmp_redirects_not_accepted",
    "net.ipv4.conf.all.send_redirects": "kern_lnx_send_redirects_disabled",
    "net.ipv4.conf.all.rp_filter": "kern_lnx_rp_filter_enabled",
    "net.ipv4.conf.all.log_martians": "kern_lnx_log_martians_enabled",
    "net.ipv4.conf.all.accept_source_route net.ipv4.conf.default.accept_source_route": "kern_lnx_source_route_disabled",
    "fs.protected_symlinks": "kern_lnx_protected_links",
    "fs.suid_dumpable": "kern_lnx_suid_dumpable_disabled",
    "kernel.dmesg_restrict": "kern_lnx_dmesg_restricted",
}
# FILE-7524 checks many paths at once; its log names each path that does not match. Judged per path.
FILE_PAIRS: dict[str, str] = {"/etc/passwd": "file_lnx_passwd_perms", "/etc/shadow": "file_lnx_shadow_perms",
                              "/etc/group": "file_lnx_group_perms", "/etc/gshadow": "file_lnx_gshadow_perms"}


def run_timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    return time.perf_counter() - start, done


def lynis_tests(report: Path) -> dict[str, str]:
    flagged, executed, skipped = set(), set(), set()
    for line in report.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key in ("warning[]", "suggestion[]"):
            flagged.add(value.split("|", 1)[0])
        elif key == "tests_executed":
            executed.update(t for t in value.split("|") if t)
        elif key == "tests_skipped":
            skipped.update(t for t in value.split("|") if t)
    out = {t: "ok" for t in executed}
    out |= {t: "skipped" for t in skipped}
    out |= {t: "flagged" for t in flagged}
    return out


def sysctl_flags(report: Path) -> set[str]:
    keys = set()
    for line in report.read_text(errors="replace").splitlines():
        if line.startswith("details[]=KRNL-6000|") and "field:" in line:
            keys.add(line.split("field:", 1)[1].split(";", 1)[0])
    return keys


def file_flags(log: Path) -> set[str]:
    text = log.read_text(errors="replace")
    return {m.group(1) for m in re.finditer(r"permissions of file (\S+) are not matching", text)}


def agreement(khien: str, lynis: str | None) -> str:
    if lynis is None:
        return "lynis did not run it"
    expected = {"fail": {"flagged"}, "pass": {"ok"}, "not_applicable": {"skipped", "ok"}, "error": set()}
    return "agree" if lynis in expected.get(khien, set()) else "DISAGREE"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("lynis") is None:
        print("lynis is not installed (apt-get install lynis)")
        return 1
    khien_s, khien = run_timed([sys.executable, "-m", "khien.cli", "check", "--level", str(args.level),
                                "--format", "json"])
    if khien.returncode != 0:
        print(khien.stderr)
        return 1
    results = {r["check_id"]: r["status"] for r in json.loads(khien.stdout)["results"]}
    RESULTS.mkdir(parents=True, exist_ok=True)  # the log stays for explaining disagreements
    report = RESULTS / "lynis-report.dat"
    lynis_s, _ = run_timed(["lynis", "audit", "system", "--quick", "--no-colors", "--logfile",
                            str(RESULTS / "lynis.log"), "--report-file", str(report)])
    tests = lynis_tests(report)
    krnl, files = sysctl_flags(report), file_flags(RESULTS / "lynis.log")
    print(f"khien check (level {args.level}): {khien_s:.2f}s wall, {len(results)} checks")
    print(f"lynis audit system --quick:    {lynis_s:.2f}s wall, {len(tests)} tests")
    print(f"{'LYNIS':<10} {'LYNIS SAYS':<10} {'KHIEN CHECK':<40} {'KHIEN SAYS':<15} VERDICT")
    for test, checks in PAIRS.items():
        for check in checks:
            if check not in results:
                continue
            print(f"{test:<10} {tests.get(test, '-'):<10} {check:<40} {results[check]:<15} "
                  f"{agreement(results[check], tests.get(test))}")
    for key, check in SYSCTL_PAIRS.items():
        if check in results and "KRNL-6000" in tests:
            says = "flagged" if set(key.split()) & krnl else "ok"
            print(f"{'KRNL-6000':<10} {says:<10} {check:<40} {results[check]:<15} {agreement(results[check], says)}"
                  f"  ({key})")
    for path, check in FILE_PAIRS.items():
        if check in results and "FILE-7524" in tests:
            says = "flagged" if path in files else "ok"
            print(f"{'FILE-7524':<10} {says:<10} {check:<40} {results[check]:<15} {agreement(results[check], says)}"
                  f"  ({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
