"""Loading checks and policies: the good fixtures, and every error of a broken set with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.collectors.facts import KIND_NAMES
from rules.checks import (
    DEFAULT_CHECKS_DIR,
    DEFAULT_POLICIES_DIR,
    DEFAULT_POLICY,
    FACT_KINDS,
    UNKNOWN_LEVEL,
    checks_lint_report,
    load_checks,
)
from rules.detect import LoadError, RuleLoadErrors
from tests.rules.test_checks_support import DEMO, GOOD_CHECKS, GOOD_POLICIES, write, write_check

SSH = "assert: {field: sshd.settings.permitrootlogin, eq: \"no\"}\n"


def errors_of(checks, policies) -> list[LoadError]:
    with pytest.raises(RuleLoadErrors) as info:
        load_checks(checks, policies)
    return info.value.errors


def line_of(path: Path, marker: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if marker in line)


def test_constants():
    assert DEFAULT_CHECKS_DIR.parts[-3:] == ("rules", "data", "checks")
    assert DEFAULT_POLICIES_DIR.parts[-3:] == ("rules", "data", "policies")
    assert (DEFAULT_POLICY, UNKNOWN_LEVEL) == ("tcvn_11930_2017_server", 3)
    # rules/ may not import the agent; the copy must not drift ("os" is added by the evaluator itself)
    assert tuple(k for k in FACT_KINDS if k != "os") == KIND_NAMES


def test_good_fixtures_load():
    checkset = load_checks([GOOD_CHECKS], [GOOD_POLICIES])
    assert list(checkset.checks) == sorted(checkset.checks) and len(checkset.checks) == 9
    ssh = checkset.checks["ssh_lnx_root_login_disabled"]
    assert (ssh.severity, ssh.critical, ssh.os, ssh.kinds) == ("high", True, ("debian", "ubuntu", "rhel"), ("sshd",))
    assert ssh.title["en"] == "SSH root login disabled" and ssh.remediation["vi"].startswith("Đặt")
    assert [e.expect for e in ssh.tests] == ["pass", "fail", "not_applicable", "error", "not_applicable"]
    assert ssh.tests[0].os == "debian" and ssh.tests[0].facts["sshd"]["available"] is True
    assert checkset.checks["acct_lnx_password_max_age"].params == {"max_days": 90}
    policy = checkset.policies[DEMO]
    assert policy.framework == "TCVN 11930:2017" and policy.groups[0].id == "authentication"
    password = policy.requirements[0]
    assert password.levels == frozenset({2, 3, 4, 5})
    assert password.params["max_days"] == {2: 180, 3: 90, 4: 90, 5: 60}
    assert policy.requirements[2].params == {"max_days": {3: 30, 4: 30, 5: 30}}  # a plain value: every level
    assert checks_lint_report([GOOD_CHECKS], [GOOD_POLICIES]) == (0, "9 checks, 1 policies OK")


def test_every_error_of_every_broken_check_in_one_run(tmp_path):
    d = tmp_path / "checks"
    write_check(d, "ssh_lnx_fine", SSH)
    no_fail = write_check(d, "ssh_lnx_no_fail", SSH, tests="""\
        tests:
          - name: passes
            facts: {sshd: {settings: {permitrootlogin: "no"}}}
            expect: pass
        """)
    mismatch = write_check(d, "ssh_lnx_other_name", SSH, stem="ssh_lnx_mismatch")
    kind = write_check(d, "ssh_lnx_bad_kind", "assert:\n  all:\n    - {field: sshd.x, eq: 1}\n"
                                              "    - {field: shd.settings.x, eq: 1}   # kind typo\n")
    param = write_check(d, "ssh_lnx_bad_param", "params: {max: 3}\n"
                                                "assert: {field: sshd.x, lte: {ref: '@param.maxx'}}\n")
    fields = write_check(d, "ssh_lnx_bad_fields", "critical: maybe\napplies_to:\n  os: [Debian]\n"
                                                  "  facts: [sshd, firewal]\n" + SSH, severity="urgent")
    examples = write_check(d, "ssh_lnx_bad_examples", "params: {n: 1}\n" + SSH, tests="""\
        tests:
          - name: passes
            facts: {sshd: {settings: {permitrootlogin: "no"}}, ssh: {}}
            expect: pass
          - name: fails
            facts: {sshd: {settings: {permitrootlogin: "yes"}}}
            params: {m: 2}
            expect: fail
          - name: weird
            facts: {sshd: {}}
            expect: broken
        """)
    syntax = write(d, "ssh_lnx_syntax", "id: ssh_lnx_syntax\ntitle: [unclosed\nstatus: test\n")
    write_check(tmp_path / "more", "ssh_lnx_fine", SSH)  # the same id from a second directory
    errors = errors_of([d, tmp_path / "more"], [])
    found = {(Path(e.file).name, e.line) for e in errors}
    expected = {
        (no_fail.name, line_of(no_fail, "- name: passes")),  # the tests list
        (mismatch.name, 1),
        (kind.name, line_of(kind, "kind typo")),
        (param.name, line_of(param, "@param.maxx")),
        (fields.name, line_of(fields, "critical:")),
        (fields.name, line_of(fields, "severity:")),
        (fields.name, line_of(fields, "os: [Debian]")),
        (fields.name, line_of(fields, "firewal")),
        (examples.name, line_of(examples, "ssh: {}")),
        (examples.name, line_of(examples, "m: 2")),
        (examples.name, line_of(examples, "broken")),
        (syntax.name, 3),
        ("ssh_lnx_fine.yaml", 1),
    }
    assert expected <= found, "\n".join(map(str, errors))
    text = "\n".join(str(e) for e in errors)
    for message in ("at least one example with expect: fail", "does not match the file name",
                    "'shd.settings.x' does not start with a fact kind", "unknown parameter 'maxx'",
                    "critical must be true or false", "unknown fact kind 'firewal'", "unknown fact kind 'ssh'",
                    "unknown parameter 'm'", "expect must be one of", "duplicate id 'ssh_lnx_fine'",
                    "YAML syntax error"):
        assert message in text


def test_policy_errors_name_file_and_line(tmp_path):
    checks = tmp_path / "checks"
    write_check(checks, "ssh_lnx_fine", "params: {n: 1}\n" + SSH)
    write(checks, "ssh_lnx_broken", "id: ssh_lnx_broken\n")  # reported once, not again by the policy
    # Cross-file checks run on policies whose own structure is valid; structural errors come first.
    refs = write(tmp_path / "policies", "bad_refs", """\
        id: bad_refs
        title: {vi: "x", en: "x"}
        framework: "TCVN 11930:2017"
        groups:
          - id: authentication
            title: {vi: "x", en: "x"}
            requirements:
              - id: one
                title: {vi: "x", en: "x"}
                levels: [1, 2]
                checks: [ssh_lnx_fine, ssh_lnx_missing, ssh_lnx_broken]
                params:
                  n: {1: 3, 2: 4}
              - id: two
                title: {vi: "x", en: "x"}
                levels: [3]
                checks: [ssh_lnx_fine]
                params:
                  nn: 5
        """)
    levels = write(tmp_path / "policies", "bad_levels", """\
        id: bad_levels
        title: {vi: "x", en: "x"}
        framework: "TCVN 11930:2017"
        groups:
          - id: authentication
            title: {vi: "x", en: "x"}
            requirements:
              - id: two
                title: {vi: "x", en: "x"}
                levels: [0, 3]
                checks: [ssh_lnx_fine]
              - id: three
                title: {vi: "x", en: "x"}
                levels: [4]
                checks: [ssh_lnx_fine]
                params:
                  n: {4: 1, 5: 2}
        """)
    other = write(tmp_path / "policies", "wrong_stem", """\
        id: not_the_stem
        title: {vi: "x", en: "x"}
        framework: "x"
        groups: []
        """)
    errors = errors_of([checks], [tmp_path / "policies"])
    found = {(Path(e.file).name, e.line) for e in errors}
    expected = {(refs.name, line_of(refs, "ssh_lnx_missing")), (refs.name, line_of(refs, "nn: 5")),
                (levels.name, line_of(levels, "levels: [0, 3]")), (levels.name, line_of(levels, "n: {4: 1, 5: 2}")),
                (other.name, 1), ("ssh_lnx_broken.yaml", 1)}
    assert expected <= found, "\n".join(map(str, errors))
    text = "\n".join(str(e) for e in errors)
    assert "unknown check 'ssh_lnx_missing'" in text and "unknown check 'ssh_lnx_broken'" not in text
    assert "parameter 'nn' is not a parameter of any of this requirement's checks" in text
    assert "security levels 1-5" in text and "levels [5] outside" in text
    assert "groups must be a non-empty list" in text and "match the file name 'wrong_stem'" in text


def test_duplicate_requirement_ids(tmp_path):
    write_check(tmp_path / "c", "ssh_lnx_fine", SSH)
    write(tmp_path / "p", "dup_policy", """\
        id: dup_policy
        title: {vi: "x", en: "x"}
        framework: "x"
        groups:
          - id: g
            title: {vi: "x", en: "x"}
            requirements:
              - {id: r, title: {vi: "x", en: "x"}, levels: [1], checks: [ssh_lnx_fine]}
          - id: g
            title: {vi: "x", en: "x"}
            requirements:
              - {id: r, title: {vi: "x", en: "x"}, levels: [2], checks: [ssh_lnx_fine]}
        """)
    text = "\n".join(str(e) for e in errors_of([tmp_path / "c"], [tmp_path / "p"]))
    assert "dup_policy.yaml:9: duplicate group id 'g'" in text
    assert "dup_policy.yaml:12: duplicate requirement id 'r'" in text


def test_missing_directory_and_lint_report(tmp_path):
    code, text = checks_lint_report([tmp_path / "nope"], [])
    assert code == 1 and "nope: no such file or directory" in text and text.endswith("1 load error(s)")


def test_parameter_values_must_match_the_default_kind(tmp_path):
    write_check(tmp_path / "c", "ssh_lnx_fine", "params: {n: 1}\n" + SSH, tests="""\
        tests:
          - name: passes
            facts: {sshd: {settings: {permitrootlogin: "no"}}}
            expect: pass
          - name: fails
            facts: {sshd: {settings: {permitrootlogin: "yes"}}}
            params: {n: "2"}
            expect: fail
        """)
    write(tmp_path / "p", "typed_policy", """\
        id: typed_policy
        title: {vi: "x", en: "x"}
        framework: "x"
        groups:
          - id: g
            title: {vi: "x", en: "x"}
            requirements:
              - id: r
                title: {vi: "x", en: "x"}
                levels: [1, 2]
                checks: [ssh_lnx_fine]
                params:
                  n: {1: 3, 2: "90"}
        """)
    text = "\n".join(str(e) for e in errors_of([tmp_path / "c"], [tmp_path / "p"]))
    assert "ssh_lnx_fine.yaml:13: parameter 'n' of this check is a number (default 1), not '2'" in text
    # The check file is broken, so the policy's cross-check skips it; once the check is fixed it shows.
    assert "typed_policy.yaml" not in text
    write_check(tmp_path / "c", "ssh_lnx_fine", "params: {n: 1}\n" + SSH)
    text = "\n".join(str(e) for e in errors_of([tmp_path / "c"], [tmp_path / "p"]))
    assert "typed_policy.yaml:13: parameter 'n' of ssh_lnx_fine is a number (default 1), not '90'" in text
