"""sshd, login.defs and PAM fact kinds over fixture trees."""

from __future__ import annotations

from pathlib import Path

from agent.collectors.facts._common import CommandResult
from agent.collectors.facts.logindefs import collect_logindefs
from agent.collectors.facts.pam import collect_pam
from agent.collectors.facts.sshd import collect_sshd, parse_sshd_t
from tests.agent.test_facts_support import DEBIAN, LOOP, RHEL, FakeRunner, output

NO_SSHD = FakeRunner({("sshd",): None})


def test_sshd_t_output_wins_when_it_works():
    facts = collect_sshd(DEBIAN, FakeRunner({("sshd", "-T"): output("sshd_T.txt")}))
    assert facts["available"] and facts["source"] == "sshd -T"
    settings = facts["settings"]
    assert settings["permitrootlogin"] == "no" and settings["passwordauthentication"] == "no"
    assert settings["port"] == ["22"] and settings["listenaddress"] == ["[::]:22", "0.0.0.0:22"]
    assert len(settings["hostkey"]) == 3 and settings["acceptenv"] == ["LANG", "LC_*"]
    assert settings["kexalgorithms"].startswith("sntrup761")


def test_parsed_config_follows_includes_first_value_wins_and_keeps_match_blocks():
    facts = collect_sshd(DEBIAN, NO_SSHD)
    assert facts["available"] and facts["source"] == "config"
    assert facts["files"] == ["/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/50-hardening.conf",
                              "/etc/ssh/sshd_config.d/60-empty.conf"]
    settings = facts["settings"]
    assert settings["passwordauthentication"] == "no"  # the drop-in came first
    assert settings["logingracetime"] == "60" and settings["maxauthtries"] == "4"  # Key=value form
    assert settings["port"] == ["22", "2222"] and settings["allowusers"] == ["admin", "deploy@10.0.0.0/8"]
    assert settings["permitrootlogin"] == "no"  # the Match block's value does not leak
    assert settings["permitemptypasswords"] == "no" and "permitemptypasswords" in facts["defaults_applied"]
    assert [m["criteria"] for m in facts["match_blocks"]] == ["User backup", "Address 10.1.0.0/16"]
    assert facts["match_blocks"][0]["settings"]["forcecommand"] == "internal-sftp"


def test_sshd_t_failure_falls_back_to_config_and_says_why():
    runner = FakeRunner({("sshd",): CommandResult(255, "", "sshd: no hostkeys available -- exiting.")})
    facts = collect_sshd(DEBIAN, runner)
    assert facts["source"] == "config"
    assert any("no hostkeys" in e for e in facts["errors"])


def test_include_loops_are_cut_and_reported():
    facts = collect_sshd(LOOP, NO_SSHD)
    assert facts["available"]
    assert facts["settings"]["permitrootlogin"] == "yes" and facts["settings"]["passwordauthentication"] == "no"
    assert facts["settings"]["x11forwarding"] == "yes"
    assert sum("include loop" in e for e in facts["errors"]) >= 2
    assert any("does-not-exist.conf: missing" in e for e in facts["errors"])


def test_no_sshd_at_all_is_unavailable_not_an_error(tmp_path: Path):
    facts = collect_sshd(tmp_path, NO_SSHD)
    assert facts["available"] is False and facts["installed"] is False and "not installed" in facts["error"]


def test_unreadable_sshd_config_is_reported(tmp_path: Path):
    (tmp_path / "etc/ssh/sshd_config").mkdir(parents=True)  # a directory where the file should be
    facts = collect_sshd(tmp_path, NO_SSHD)
    assert facts["available"] is False and "unreadable" in facts["error"]


def test_parse_sshd_t_ignores_garbage():
    assert parse_sshd_t("\n   \n" + "x" * 100 + " y\nport 22\n") == {"port": ["22"]}


def test_logindefs():
    facts = collect_logindefs(DEBIAN)
    assert facts["available"]
    assert (facts["pass_max_days"], facts["pass_min_days"], facts["pass_warn_age"], facts["pass_min_len"]) == \
        (90, 1, 7, 12)
    assert facts["encrypt_method"] == "SHA512" and facts["umask"] == "027" and facts["usergroups_enab"] is True
    assert facts["settings"]["garbage-line-without-value"] == ""
    assert collect_logindefs(Path("/nonexistent-root"))["error"] == "/etc/login.defs: missing"


def test_pam_debian_pwquality_faillock_history():
    facts = collect_pam(DEBIAN)
    assert facts["available"]
    assert facts["files"] == ["/etc/pam.d/common-password", "/etc/pam.d/common-auth", "/etc/pam.d/common-extra"]
    pwq = facts["pwquality"]
    assert pwq["module"] == "pam_pwquality" and pwq["enabled"]
    assert (pwq["minlen"], pwq["ucredit"], pwq["dcredit"], pwq["retry"]) == (14, -1, -1, 3)  # args over conf
    assert pwq["difok"] == 1 and "difok" in pwq["defaults_applied"] and pwq["enforce_for_root"]
    lock = facts["lockout"]
    assert lock["module"] == "pam_faillock" and (lock["deny"], lock["unlock_time"]) == (5, 900)
    assert lock["fail_interval"] == 900 and lock["root_unlock_time"] == 60 and lock["even_deny_root"]
    assert facts["password"] == {"hashing": "yescrypt", "remember": 5, "nullok": True}


def test_pam_rhel_cracklib_and_substack():
    facts = collect_pam(RHEL)
    assert facts["pwquality"]["module"] == "pam_cracklib"
    assert (facts["pwquality"]["minlen"], facts["pwquality"]["dcredit"]) == (10, -1)
    assert facts["lockout"]["deny"] == 3 and facts["lockout"]["defaults_applied"] == ["deny", "unlock_time",
                                                                                      "fail_interval"]
    assert facts["password"] == {"hashing": "sha512", "remember": 24, "nullok": False}


def test_pam_missing_everywhere(tmp_path: Path):
    facts = collect_pam(tmp_path)
    assert facts["available"] is False and "no PAM stack" in facts["error"]
