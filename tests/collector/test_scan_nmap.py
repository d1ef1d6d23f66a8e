"""The nmap runner against real loopback services (127.0.0.1 and ::1 only, never another address).

One module-scoped standard scan covers the HTTP, TLS and SSH facts, so the slow part (nmap's service
probes wait up to 6 s for a banner) is paid once. The other scans are small: one port, or stopped early.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.scans.nmap import (
    PROFILES,
    NmapMissing,
    ScanError,
    ScanInterrupted,
    clean,
    nmap_command,
    run_nmap,
    ssh_methods,
    tls_info,
)
from collector.scans.targets import TargetError
from tests import scanhelpers

# tests/run installs nmap: a machine without it fails these tests rather than skipping them.
pytestmark = [pytest.mark.timeout(60)]

LEGACY_TLS = scanhelpers.legacy_tls_supported()
# sshd's privilege separation needs root; tests/run installs openssh-server, so as root a missing
# sshd fails the test instead of skipping it.
HAS_SSHD = os.geteuid() == 0


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """HTTP, an expired-certificate TLS server, a TLS 1.0/1.1 server and sshd, all on 127.0.0.1."""
    base = tmp_path_factory.mktemp("scan-services")
    with (scanhelpers.http_server() as http, scanhelpers.tls_server(base / "expired") as expired,
          scanhelpers.tls_server(base / "legacy", expired=False, legacy=True) as legacy):
        found = {"http": http, "expired": expired, "legacy": legacy, "dir": base}
        if HAS_SSHD:
            with scanhelpers.sshd_server(base / "sshd") as ssh:
                yield {**found, "ssh": ssh}
        else:
            yield found


@pytest.fixture(scope="module")
def standard(services):
    """One standard-profile scan of every service port; returns (output, progress values)."""
    ports = [services[k].port for k in ("http", "expired", "legacy", "ssh") if k in services]
    progress: list[float] = []
    out = run_nmap(["127.0.0.1"], profile="standard", ports=",".join(map(str, ports)), host_timeout="50s",
                   on_progress=progress.append)
    return out, progress


def _port(out, port: int):
    (host,) = out.hosts
    return next(p for p in host.ports if p.port == port)


# --- the standard scan ---------------------------------------------------------------------------------


def test_standard_scan_reports_host_and_command(standard, services):
    out, _ = standard
    (host,) = out.hosts
    assert host.address == "127.0.0.1" and host.state == "up" and not host.timed_out
    assert {p.port for p in host.ports if p.state == "open"} >= {services["http"].port, services["expired"].port}
    assert "-sV" in out.command and "--host-timeout" in out.command and out.command[-1] == "127.0.0.1"
    assert out.nmap_version and out.nmap_version[0].isdigit()
    assert out.started <= out.finished and out.elapsed_s > 0


def test_http_title_and_server_header(standard, services):
    port = _port(standard[0], services["http"].port)
    assert port.service == "http" and port.tls is None
    assert port.http_title == scanhelpers.HTTP_TITLE
    assert port.http_server == scanhelpers.HTTP_SERVER
    assert port.product == "SimpleHTTPServer"


def test_expired_certificate(standard, services):
    port = _port(standard[0], services["expired"].port)
    assert port.tls is not None and port.tls.expired is True
    expected = scanhelpers.expired_not_after(services["dir"] / "expired")
    assert abs(port.tls.not_after - expected) < timedelta(seconds=1)
    assert port.tls.subject == f"commonName={scanhelpers.TLS_SUBJECT_CN}"
    assert port.tls.weak_protocols == () and "TLSv1.2" in port.tls.protocols


@pytest.mark.skipif(not LEGACY_TLS, reason="this OpenSSL cannot serve TLS 1.0/1.1 even at SECLEVEL=0")
def test_weak_tls_protocols(standard, services):
    # OpenSSL 3 still speaks TLS 1.0/1.1 when the server lowers minimum_version and SECLEVEL=0; where a
    # build removed them entirely this test is skipped and only the expired-certificate case is checked.
    port = _port(standard[0], services["legacy"].port)
    assert port.tls is not None and port.tls.expired is False
    assert port.tls.weak_protocols == ("TLSv1.0", "TLSv1.1")
    assert port.tls.protocols[:2] == ("TLSv1.0", "TLSv1.1")


@pytest.mark.skipif(not HAS_SSHD, reason="sshd's privilege separation needs root")
def test_ssh_auth_methods_show_password(standard, services):
    port = _port(standard[0], services["ssh"].port)
    assert port.service == "ssh" and port.product == "OpenSSH"
    assert port.ssh_auth_methods is not None and "password" in port.ssh_auth_methods


def test_progress_rises_to_one(standard):
    # The standard scan runs > 10 s (TLS service probes), so --stats-every 2s reports at least once.
    out, progress = standard
    assert out.elapsed_s > 2
    assert len(progress) >= 2, progress
    assert progress == sorted(set(progress)) and progress[-1] == 1.0
    assert all(0 < v <= 1 for v in progress)


# --- other scans ---------------------------------------------------------------------------------------


def test_ipv6_loopback_scan():
    with scanhelpers.http_server("::1") as http:
        out = run_nmap(["::1"], profile="standard", ports=str(http.port), host_timeout="30s")
    assert "-6" in out.command
    (host,) = out.hosts
    assert host.address == "::1"
    port = next(p for p in host.ports if p.port == http.port)
    assert port.state == "open" and port.http_title == scanhelpers.HTTP_TITLE


def test_discovery_profile(services):
    out = run_nmap(["127.0.0.1"], profile="discovery", ports=str(services["http"].port), host_timeout="30s")
    assert "-sV" not in out.command and "--script" not in out.command
    (host,) = out.hosts
    (port,) = host.ports
    assert port.state == "open" and port.product is None and port.http_title is None


def test_connect_scan_when_unprivileged(services):
    out = run_nmap(["127.0.0.1"], profile="discovery", ports=str(services["http"].port), host_timeout="30s",
                   privileged=False)
    assert "-sT" in out.command and "-sS" not in out.command
    assert [p.state for p in out.hosts[0].ports] == ["open"]


def test_hang_up_listener_is_tcpwrapped():
    with scanhelpers.closing_listener() as closer:
        out = run_nmap(["127.0.0.1"], ports=str(closer.port), host_timeout="30s")
    (port,) = out.hosts[0].ports
    assert port.state == "open" and port.service == "tcpwrapped" and out.elapsed_s < 10


def test_host_timeout_is_flagged(services):
    # nmap drops a timed-out host's ports; the flag keeps "no open ports" from reading as "all closed".
    out = run_nmap(["127.0.0.1"], ports=str(services["expired"].port), host_timeout="2s")
    (host,) = out.hosts
    assert host.timed_out is True and host.ports == ()


def test_deadline_already_passed_starts_nothing():
    started: list[int] = []
    with pytest.raises(ScanInterrupted, match="window had already closed"):
        run_nmap(["127.0.0.1"], deadline=time.monotonic() - 1, on_start=started.append)
    assert started == []


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_deadline_mid_scan_stops_nmap(services):
    pids: list[int] = []
    t0 = time.monotonic()
    with pytest.raises(ScanInterrupted, match="deadline"):
        run_nmap(["127.0.0.1"], ports=str(services["expired"].port), host_timeout="30s",
                 deadline=time.monotonic() + 1.0, on_start=pids.append)
    assert time.monotonic() - t0 < 1.0 + 5 + 2  # SIGTERM, at worst SIGKILL after the 5 s grace
    (pid,) = pids
    assert _gone(pid)


def test_nmap_killed_mid_scan(services):
    pids: list[int] = []

    def kill_soon(pid: int) -> None:
        pids.append(pid)
        threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()

    with pytest.raises(ScanError, match="killed by SIGKILL") as err:
        run_nmap(["127.0.0.1"], ports=str(services["expired"].port), host_timeout="30s", on_start=kill_soon)
    assert not isinstance(err.value, ScanInterrupted)
    assert _gone(pids[0])


def test_nmap_missing_names_the_package(tmp_path, monkeypatch):
    with pytest.raises(NmapMissing, match="apt-get install nmap") as err:
        run_nmap(["127.0.0.1"], nmap="/nonexistent/nmap")
    assert "dnf install nmap" in str(err.value)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NmapMissing, match="nmap is not installed"):
        run_nmap(["127.0.0.1"])


def _fake_nmap(tmp_path: Path, body: str) -> str:
    """A stand-in nmap: answers -V like nmap, otherwise runs ``body`` with ``out`` = the -oX path."""
    script = tmp_path / "nmap"
    script.write_text(f"#!{sys.executable}\nimport sys\nargs = sys.argv[1:]\n"
                      "if args == ['-V']:\n    print('Nmap version 7.93 ( https://nmap.org )'); sys.exit(0)\n"
                      "out = args[args.index('-oX') + 1]\n" + body)
    script.chmod(0o755)
    return str(script)


def test_nonzero_exit_reports_status_and_stderr(tmp_path):
    fake = _fake_nmap(tmp_path, "sys.stderr.write('Failed to open device lo\\nQUITTING!\\n'); sys.exit(1)\n")
    with pytest.raises(ScanError, match=r"status 1: Failed to open device lo; QUITTING!"):
        run_nmap(["127.0.0.1"], nmap=fake)


HOSTILE_XML = """<?xml version="1.0"?>
<nmaprun scanner="nmap" args="nmap" start="1" version="7.93">
<host><status state="up" reason="syn-ack"/><address addr="127.0.0.1" addrtype="ipv4"/>
<hostnames><hostname name="evil&#x202e;gpj.example" type="PTR"/></hostnames>
<ports><port protocol="tcp" portid="80"><state state="open" reason="syn-ack"/>
<service name="http" product="Evil&#x9;httpd" version="1.0"/>
<script id="http-title" output="{title}"/>
<script id="http-server-header" output="nginx&#xa;Set-Cookie: x"/>
</port></ports></host>
<runstats><finished time="2" timestr="x" elapsed="0.1"/><hosts up="1" down="0" total="1"/></runstats>
</nmaprun>
"""


def test_hostile_strings_are_cleaned_and_clipped(tmp_path):
    # Control characters XML 1.0 allows (DEL, NEL, tab, newline, bidi overrides); nmap itself escapes the rest.
    xml = HOSTILE_XML.format(title="A&#x7f;]0;pwn&#x85;" + "x" * 600)
    fake = _fake_nmap(tmp_path, f"open(out, 'w').write({xml!r})\n")
    out = run_nmap(["127.0.0.1"], nmap=fake)
    (host,) = out.hosts
    (port,) = host.ports
    assert host.hostnames == ("evil gpj.example",)
    assert port.product == "Evil httpd" and port.http_server == "nginx Set-Cookie: x"
    assert port.http_title is not None and len(port.http_title) == 255 and port.http_title.startswith("A ]0;pwn x")
    assert out.nmap_version == "7.93" and host.timed_out is False


# --- command building and parsing (no network) ---------------------------------------------------------


def test_commands_per_profile():
    cmds = {p: nmap_command(["127.0.0.1"], profile=p, nmap="nmap", output="/tmp/x.xml", privileged=True)
            for p in PROFILES}
    assert cmds["discovery"] == ["nmap", "-n", "-sS", "--top-ports", "100", "--host-timeout", "5m",
                                 "--stats-every", "2s", "-oX", "/tmp/x.xml", "127.0.0.1"]
    assert cmds["standard"][:7] == ["nmap", "-n", "-sS", "--top-ports", "1000", "-sV", "--script"]
    assert "ssh-auth-methods" in cmds["standard"][7] and "-O" not in cmds["standard"]
    assert cmds["full"][3:5] == ["-p-", "-sV"] and "-O" in cmds["full"]
    unprivileged = nmap_command(["127.0.0.1"], profile="full", privileged=False)
    assert "-sT" in unprivileged and "-sS" not in unprivileged and "-O" not in unprivileged
    assert "--script" not in nmap_command(["127.0.0.1"], profile="standard", extra_scripts=False)
    v6 = nmap_command(["::1", "0:0:0:0:0:0:0:1"], profile="standard", ports="22,80")
    assert "-6" in v6 and v6[-2:] == ["::1", "::1"] and v6[v6.index("-p") + 1] == "22,80"


@pytest.mark.parametrize("addresses", [["-iL/etc/shadow"], ["127.0.0.0/8"], ["localhost"], [],
                                       ["127.0.0.1", "::1"], ["fe80::1%lo"]])
def test_command_rejects_non_addresses(addresses):
    with pytest.raises(TargetError):
        nmap_command(addresses, profile="standard")


def test_command_rejects_bad_options():
    with pytest.raises(ValueError, match="profile"):
        nmap_command(["127.0.0.1"], profile="aggressive")
    with pytest.raises(ValueError, match="port list"):
        nmap_command(["127.0.0.1"], profile="standard", ports="80;rm -rf")
    with pytest.raises(ValueError, match="port list"):
        nmap_command(["127.0.0.1"], profile="standard", ports="70000")
    with pytest.raises(ValueError, match="host timeout"):
        nmap_command(["127.0.0.1"], profile="standard", host_timeout="1m --script=all")
    with pytest.raises(ValueError, match="UDP"):
        nmap_command(["127.0.0.1"], profile="standard", ports="U:161", privileged=False)
    assert "-sU" in nmap_command(["127.0.0.1"], profile="standard", ports="T:22,U:161", privileged=True)


def test_script_parsers():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    cert = "Subject: commonName=a\x1b\nNot valid before: 2020-01-01T00:00:00\nNot valid after:  2021-01-01T00:00:00\n"
    ciphers = "\n  SSLv3: \n    ciphers: \n  TLSv1.2: \n    ciphers: \n  least strength: C"
    info = tls_info(cert, ciphers, now=now)
    assert info is not None and info.expired is True and info.subject == "commonName=a"
    assert info.protocols == ("SSLv3", "TLSv1.2") and info.weak_protocols == ("SSLv3",)
    assert tls_info(None, None, now=now) is None
    assert tls_info(None, ciphers, now=now).expired is None  # type: ignore[union-attr]
    out = "\n  Banner: hi\n  Supported authentication methods: \n    publickey\n    password\n  Other: x"
    assert ssh_methods(out) == ("publickey", "password")
    assert ssh_methods("ERROR: failed") == () and ssh_methods(None) is None
    assert clean("\x00\x1b[1m ok \u202e\n") == "[1m ok" and clean("") is None and len(clean("y" * 999)) == 255
