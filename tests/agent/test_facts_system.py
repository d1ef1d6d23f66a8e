"""firewall, services, auditd and timesync fact kinds on canned command output."""

from __future__ import annotations

from pathlib import Path

from agent.collectors.facts._common import CommandResult
from agent.collectors.facts.auditd import collect_auditd, parse_rules
from agent.collectors.facts.firewall import collect_firewall, parse_iptables, parse_nft, parse_ufw
from agent.collectors.facts.services import collect_services
from agent.collectors.facts.timesync import collect_timesync, parse_ntpq
from tests.agent.test_facts_support import DEBIAN, RHEL, FakeRunner, output

NOTHING = FakeRunner()


def test_nft_input_policy_and_rules():
    assert parse_nft(output("nft_ruleset.txt")) == {"active": True, "default_inbound": "drop", "rule_count": 5,
                                                    "input_chains": 1}
    assert parse_nft(output("nft_accept.txt"))["default_inbound"] == "accept"
    assert parse_nft(output("nft_accept.txt"))["active"] is False
    assert parse_nft("") == {"active": False, "default_inbound": None, "rule_count": 0, "input_chains": 0}


def test_iptables_trailing_drop_counts_as_default_and_garbage_is_ignored():
    assert parse_iptables(output("iptables_S.txt")) == {"active": True, "default_inbound": "drop", "rule_count": 6}
    assert parse_iptables("-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n") == {
        "active": False, "default_inbound": "accept", "rule_count": 0}
    assert parse_iptables("\x00garbage\n-P\n-P INPUT WHATEVER\n")["default_inbound"] is None


def test_ufw_status_verbose():
    assert parse_ufw(output("ufw_status.txt")) == {"active": True, "default_inbound": "drop", "rule_count": 3}
    assert parse_ufw("Status: inactive\n") == {"active": False, "default_inbound": None, "rule_count": 0}


def test_firewall_summary_prefers_ufw_over_the_nft_rules_it_writes():
    runner = FakeRunner({("nft",): output("nft_ruleset.txt"), ("iptables",): output("iptables_S.txt"),
                         ("ufw",): output("ufw_status.txt")})
    facts = collect_firewall(DEBIAN, runner)
    assert (facts["available"], facts["active"], facts["backend"], facts["default_inbound"]) == \
        (True, True, "ufw", "drop")
    assert facts["tools"]["firewalld"] == {"installed": False, "active": None}


def test_ufw_not_root_falls_back_to_its_config():
    runner = FakeRunner({("ufw",): CommandResult(1, "", "ERROR: You need to be root to run this script")})
    facts = collect_firewall(DEBIAN, runner)
    assert facts["backend"] == "ufw" and facts["tools"]["ufw"]["source"] == "config"
    assert "need to be root" in facts["tools"]["ufw"]["error"]


def test_firewalld_zone_target():
    runner = FakeRunner({("firewall-cmd", "--state"): "running\n", ("firewall-cmd", "--get-default-zone"): "public\n"})
    facts = collect_firewall(RHEL, runner)
    assert facts["backend"] == "firewalld" and facts["default_inbound"] == "drop"
    runner.table[("firewall-cmd", "--get-default-zone")] = "work\n"  # no zone file: firewalld's default rejects
    assert collect_firewall(RHEL, runner)["default_inbound"] == "reject"


def test_no_firewall_tool(tmp_path: Path):
    facts = collect_firewall(tmp_path, NOTHING)
    assert facts["available"] is False and facts["active"] is None and "no firewall tool" in facts["error"]


def test_services_systemd_inetd_xinetd():
    runner = FakeRunner({("systemctl", "list-unit-files"): output("systemctl_unit_files.txt"),
                         ("systemctl", "list-units"): output("systemctl_units.txt")})
    facts = collect_services(DEBIAN, runner)
    risky = {(r["name"], r["source"]): r for r in facts["risky"]}
    assert set(risky) == {("inetd.service", "systemd"), ("snmpd.service", "systemd"), ("rsh.socket", "systemd"),
                          ("tftpd-hpa.service", "systemd"), ("telnet", "inetd"), ("tftp", "xinetd")}
    assert risky[("snmpd.service", "systemd")]["category"] == "snmp"
    assert risky[("tftpd-hpa.service", "systemd")]["active"] == "running"
    assert risky[("telnet", "inetd")]["category"] == "telnet"
    assert facts["manager"] == "systemd" and facts["enabled_count"] == 4 and facts["running_count"] == 5


def test_services_without_systemd(tmp_path: Path):
    failing = FakeRunner({("systemctl",): CommandResult(1, "", "System has not been booted with systemd as init "
                                                               "system (PID 1). Can't operate.\nFailed to connect")})
    facts = collect_services(tmp_path, failing)
    assert facts["available"] is False and facts["manager"] is None and "Failed to connect" in facts["error"]


def test_auditd_loaded_and_configured_rules():
    runner = FakeRunner({("auditctl", "-s"): output("auditctl_s.txt"), ("auditctl", "-l"): output("auditctl_l.txt")})
    facts = collect_auditd(DEBIAN, runner)
    assert facts["available"] and facts["enabled"] == 2 and facts["immutable"] and facts["running"]
    assert (facts["rule_count"], facts["configured_rule_count"], facts["backlog_limit"]) == (5, 5, 8192)
    assert facts["watches"][:3] == ["/etc/passwd", "/etc/shadow", "/etc/sudoers"]
    assert "/usr/bin/passwd" in facts["watches"]
    assert facts["config"]["max_log_file_action"] == "ROTATE" and facts["config"]["max_log_file"] == 8
    assert parse_rules("No rules\n") == []


def test_auditd_installed_but_not_root():
    runner = FakeRunner({("auditctl",): CommandResult(1, "", "You must be root to run this program.")})
    facts = collect_auditd(DEBIAN, runner)
    assert facts["available"] and facts["rule_count"] is None and facts["configured_rule_count"] == 5
    assert "must be root" in facts["errors"][0]


def test_auditd_absent(tmp_path: Path):
    facts = collect_auditd(tmp_path, NOTHING)
    assert facts["available"] is False and facts["error"] == "auditd not installed"


def test_timesync_chrony():
    runner = FakeRunner({("chronyc",): output("chronyc_tracking.txt"), ("timedatectl", "show"): output(
        "timedatectl_show.txt")})
    facts = collect_timesync(DEBIAN, runner)
    assert (facts["daemon"], facts["synchronized"], facts["source"]) == ("chrony", True, "192.168.1.1")
    assert facts["offset_s"] == -0.000123456 and facts["ntp_enabled"] is True
    assert facts["servers"] == ["2.debian.pool.ntp.org", "ntp.example.gov.vn"]
    runner.table[("chronyc",)] = output("chronyc_unsynced.txt")
    assert collect_timesync(DEBIAN, runner)["synchronized"] is False


def test_timesync_timesyncd_and_ntpd(tmp_path: Path):
    runner = FakeRunner({("timedatectl", "show"): output("timedatectl_show.txt"),
                         ("timedatectl", "timesync-status"): output("timesync_status.txt")})
    facts = collect_timesync(tmp_path, runner)
    assert (facts["daemon"], facts["synchronized"], facts["offset_s"]) == ("systemd-timesyncd", True, -0.001234)
    assert facts["source"] == "10.0.0.1 (ntp.example.gov.vn)"
    assert parse_ntpq(output("ntpq_pn.txt")) == {"synchronized": True, "offset_s": -0.0025, "source": "10.0.0.1"}
    assert parse_ntpq("garbage\n") == {"synchronized": False}
    facts = collect_timesync(tmp_path, NOTHING)
    assert facts["available"] is False and facts["daemon"] is None
