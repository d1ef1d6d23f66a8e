"""Scan assessment rules: exposed services, TLS, SSH, scan-versus-agent reconciliation, table validation."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from rules.scans.assess import (
    CHECK_RULES,
    DATA_FILE,
    ExposureDataError,
    ScannedHost,
    ScannedPort,
    assess_host,
    load_checks,
    load_exposure,
    reconcile_ports,
)

NOW = datetime(2026, 11, 22, tzinfo=UTC)
RISKY = load_exposure()


def rules_for(*ports: ScannedPort) -> list[tuple[str, str]]:
    return [(o.rule, o.location) for o in assess_host(ScannedHost("10.1.2.3", ports), risky=RISKY, now=NOW)]


# --- the shipped table ---------------------------------------------------------------------------------


def test_shipped_table_covers_the_brief():
    by_id = {s.id: s for s in RISKY}
    critical = {"rdp", "smb", "mysql", "postgresql", "mssql", "oracle", "mongodb", "redis", "elasticsearch",
                "memcached"}
    failed = {"telnet", "ftp", "vnc", "webmin", "ipmi", "docker-api", "kubelet", "snmp", "cockpit"}
    assert {i for i, s in by_id.items() if s.finding_class == "critical_misconfig"} == critical
    assert {i for i, s in by_id.items() if s.finding_class == "failed_check"} == failed
    assert ("tcp", 3389) in by_id["rdp"].ports and ("udp", 161) in by_id["snmp"].ports
    assert {("tcp", 445), ("tcp", 139)} <= set(by_id["smb"].ports)
    assert all(s.title_vi and s.remediation_vi and s.remediation_en for s in RISKY)
    assert set(load_checks()) == set(CHECK_RULES)


# --- exposed services ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("port", "expected"), [
    (ScannedPort("tcp", 3389, "open", "ms-wbt-server"), "exposed-service:rdp"),
    (ScannedPort("tcp", 33890, "open", "ms-wbt-server"), "exposed-service:rdp"),  # by name on any port
    (ScannedPort("tcp", 445, "open", "microsoft-ds"), "exposed-service:smb"),
    (ScannedPort("tcp", 139, "open", None), "exposed-service:smb"),  # unnamed: by default port
    (ScannedPort("tcp", 6379, "open", "unknown"), "exposed-service:redis"),
    (ScannedPort("tcp", 27017, "open", "tcpwrapped"), "exposed-service:mongodb"),
    (ScannedPort("tcp", 9200, "open", "http", product="Elasticsearch REST API"), "exposed-service:elasticsearch"),
    (ScannedPort("tcp", 23, "open", "telnet"), "exposed-service:telnet"),
    (ScannedPort("udp", 161, "open", "snmp"), "exposed-service:snmp"),
    (ScannedPort("tcp", 2375, "open", "http", product="Docker remote API"), "exposed-service:docker-api"),
])
def test_exposed_service_positive(port, expected):
    (obs,) = assess_host(ScannedHost("10.1.2.3", (port,)), risky=RISKY, now=NOW)
    assert obs.rule == expected and obs.location == f"{port.proto}/{port.port}"
    assert obs.finding_class == {s.id: s for s in RISKY}[expected.split(":")[1]].finding_class
    assert obs.title and obs.evidence.get("service") == port.service


def test_exposed_service_classes():
    found = {o.rule: o.finding_class for o in assess_host(ScannedHost("h", (
        ScannedPort("tcp", 3306, "open", "mysql"), ScannedPort("tcp", 21, "open", "ftp"))), risky=RISKY, now=NOW)}
    assert found == {"exposed-service:mysql": "critical_misconfig", "exposed-service:ftp": "failed_check"}


@pytest.mark.parametrize("port", [
    ScannedPort("tcp", 3389, "closed", "ms-wbt-server"),  # not open
    ScannedPort("tcp", 3389, "filtered", None),
    ScannedPort("tcp", 3389, "open|filtered", None),
    ScannedPort("tcp", 6379, "open", "http"),  # named something else: the port alone does not decide
    ScannedPort("tcp", 443, "open", "https"),
    ScannedPort("udp", 3389, "open", None),  # right number, wrong protocol
])
def test_exposed_service_negative(port):
    assert assess_host(ScannedHost("10.1.2.3", (port,)), risky=RISKY, now=NOW) == []


def test_evidence_is_small_and_json_ready():
    (obs,) = assess_host(ScannedHost("h", (ScannedPort("tcp", 5432, "open", "postgresql", product="PostgreSQL DB",
                                                       version="9.6.0 - 9.6.2"),)), risky=RISKY, now=NOW)
    assert obs.evidence == {"service": "postgresql", "product": "PostgreSQL DB", "version": "9.6.0 - 9.6.2"}


# --- TLS and SSH ---------------------------------------------------------------------------------------


def test_tls_weak_protocol():
    port = ScannedPort("tcp", 443, "open", "https", tls_weak=("TLSv1.0", "TLSv1.1"))
    (obs,) = assess_host(ScannedHost("h", (port,)), risky=RISKY, now=NOW)
    assert (obs.rule, obs.finding_class, obs.evidence["protocols"]) == (
        "tls-weak-protocol", "failed_check", ["TLSv1.0", "TLSv1.1"])
    assert rules_for(ScannedPort("tcp", 443, "open", "https", tls_weak=())) == []
    assert rules_for(ScannedPort("tcp", 443, "closed", "https", tls_weak=("SSLv3",))) == []


def test_tls_expired_certificate():
    assert rules_for(ScannedPort("tcp", 443, "open", "https", tls_expired=True)) == [
        ("tls-expired-certificate", "tcp/443")]
    assert rules_for(ScannedPort("tcp", 443, "open", "https", tls_expired=False)) == []
    assert rules_for(ScannedPort("tcp", 443, "open", "https", tls_expired=None)) == []


def test_tls_expiry_judged_against_now_when_date_known():
    expired = ScannedPort("tcp", 8443, "open", "https", tls_expired=False, tls_not_after=datetime(2026, 11, 1))
    (obs,) = assess_host(ScannedHost("h", (expired,)), risky=RISKY, now=NOW)
    assert obs.rule == "tls-expired-certificate" and obs.evidence["days_expired"] == 21
    assert obs.evidence["not_after"].startswith("2026-11-01")
    valid = ScannedPort("tcp", 8443, "open", "https", tls_expired=True, tls_not_after=datetime(2027, 1, 1, tzinfo=UTC))
    assert rules_for(valid) == []


def test_ssh_password_auth():
    assert rules_for(ScannedPort("tcp", 22, "open", "ssh", ssh_password=True)) == [("ssh-password-auth", "tcp/22")]
    assert rules_for(ScannedPort("tcp", 22, "open", "ssh", ssh_password=False)) == []
    assert rules_for(ScannedPort("tcp", 22, "open", "ssh", ssh_password=None)) == []


def test_one_port_can_carry_several_findings_in_port_order():
    found = rules_for(ScannedPort("tcp", 3389, "open", "ms-wbt-server", tls_weak=("TLSv1.0",), tls_expired=True),
                      ScannedPort("tcp", 22, "open", "ssh", ssh_password=True))
    assert found == [("ssh-password-auth", "tcp/22"), ("exposed-service:rdp", "tcp/3389"),
                     ("tls-weak-protocol", "tcp/3389"), ("tls-expired-certificate", "tcp/3389")]


# --- scan versus agent ---------------------------------------------------------------------------------


def row(port: int, address: str = "0.0.0.0", proto: str = "tcp", process: str | None = "svc") -> dict:
    return {"proto": proto, "family": "ipv6" if ":" in address else "ipv4", "address": address, "port": port,
            "process": process}


def test_open_but_not_listening():
    found = reconcile_ports(scanned_open={("tcp", 22), ("tcp", 8080), ("udp", 53)},
                            agent_listening=[row(22), row(53, "127.0.0.53", "tcp")], allowed=None)
    assert [(o.rule, o.location) for o in found] == [("port-open-not-listening", "tcp/8080"),
                                                     ("port-open-not-listening", "udp/53")]
    assert all(o.finding_class == "failed_check" for o in found)


def test_open_and_listening_on_any_address_is_fine():
    assert reconcile_ports(scanned_open={("tcp", 5432)}, agent_listening=[row(5432, "10.1.2.3")], allowed=None) == []


def test_listening_everywhere_but_not_allowed():
    agent = [row(22, "0.0.0.0", process="sshd"), row(22, "::", process="sshd"), row(443, "::"),
             row(5432, "127.0.0.1"), row(9000, "10.1.2.3"), row(5353, "0.0.0.0", "udp", "avahi-daemon"), row(111, "*")]
    found = reconcile_ports(scanned_open=set(), agent_listening=agent, allowed={443})
    assert [o.location for o in found] == ["tcp/22", "tcp/111", "udp/5353"]
    ssh = next(o for o in found if o.location == "tcp/22")
    assert ssh.rule == "port-listening-not-allowed" and ssh.evidence["addresses"] == ["0.0.0.0", "::"]
    assert ssh.evidence["processes"] == ["sshd"]


def test_allowlist_none_skips_the_check():
    assert reconcile_ports(scanned_open=set(), agent_listening=[row(22), row(3306)], allowed=None) == []
    assert reconcile_ports(scanned_open=set(), agent_listening=[row(22)], allowed={22}) == []


def test_reconcile_ignores_malformed_agent_rows():
    found = reconcile_ports(scanned_open={("tcp", 80)}, agent_listening=[{"proto": "tcp", "port": "x"}, {}],
                            allowed=set())
    assert [(o.rule, o.location) for o in found] == [("port-open-not-listening", "tcp/80")]


# --- table validation ----------------------------------------------------------------------------------


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "exposure.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["services"][0].update(finding_class="bad"), r"services\.rdp\.finding_class: 'bad' is not one of"),
    (lambda d: d["services"][0].update(ports=["3389"]), r"services\.rdp\.ports: '3389' is not proto/port"),
    (lambda d: d["services"][0].update(ports=["tcp/70000"]), r"services\.rdp\.ports: 'tcp/70000'"),
    (lambda d: d["services"][0].update(names=[]), r"services\.rdp\.names: expected a non-empty list"),
    (lambda d: d["services"][0].pop("title_vi"), r"services\.rdp\.title_vi: expected a non-empty string"),
    (lambda d: d["services"][0].update(colour="red"), r"services\.rdp: unknown keys \['colour'\]"),
    (lambda d: d["services"][0].update(id="RDP!"), r"services\[0\]\.id: 'RDP!' must be lower-case"),
    (lambda d: d["services"].append(dict(d["services"][0])), r"services\.rdp\.id: id is used twice"),
    (lambda d: d["checks"].pop("ssh-password-auth"), r"checks: missing \['ssh-password-auth'\]"),
    (lambda d: d["checks"].update(extra={}), r"checks: unknown checks \['extra'\]"),
    (lambda d: d["checks"]["tls-weak-protocol"].update(finding_class="info"),
     r"checks\.tls-weak-protocol\.finding_class"),
    (lambda d: d.pop("checks"), r"top level: expected a 'services' list and a 'checks' mapping"),
])
def test_validation_errors_name_file_and_key(tmp_path, raw, mutate, message):
    mutate(raw)
    path = write(tmp_path, raw)
    with pytest.raises(ExposureDataError, match=message) as err:
        load_exposure(path)
    assert str(err.value).startswith(str(path))


def test_unreadable_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("services: [\n", encoding="utf-8")
    with pytest.raises(ExposureDataError, match=str(path)):
        load_exposure(path)
    with pytest.raises(ExposureDataError, match="No such file"):
        load_exposure(tmp_path / "missing.yaml")


def test_custom_table_is_used(tmp_path, raw):
    raw["services"] = [s for s in raw["services"] if s["id"] == "telnet"]
    risky = load_exposure(write(tmp_path, raw))
    host = ScannedHost("h", (ScannedPort("tcp", 3389, "open", "ms-wbt-server"), ScannedPort("tcp", 23, "open", None)))
    assert [o.rule for o in assess_host(host, risky=risky, now=NOW)] == ["exposed-service:telnet"]
