"""Match expressions, loaded from real rule files and evaluated through the engine."""

from __future__ import annotations

import textwrap

import pytest

from rules.detect import Engine
from tests.rules.test_detect_support import ev, load_one


def matcher(tmp_path, match: str):
    body = "event_type: x.y\nmatch:\n" + textwrap.indent(textwrap.dedent(match).strip("\n"), "  ")
    engine = Engine(load_one(tmp_path, "net_any_expr_case", body))
    return lambda event: bool(engine.process(event))


def test_eq_strict_types_and_nocase(tmp_path):
    m = matcher(tmp_path, "{field: user, eq: root}")
    assert m(ev("x.y", user="root"))
    assert not m(ev("x.y", user="Root"))
    assert not m(ev("x.y", other="root"))  # missing field
    m = matcher(tmp_path, "{field: user, eq: ROOT, nocase: true}")
    assert m(ev("x.y", user="root")) and m(ev("x.y", user="RooT"))
    m = matcher(tmp_path, "{field: port, eq: 22}")
    assert m(ev("x.y", port=22))
    assert not m(ev("x.y", port="22"))  # no coercion of numeric strings
    m = matcher(tmp_path, "{field: flag, eq: 1}")
    assert not m(ev("x.y", flag=True))  # True == 1 in Python, not here


def test_in_literal_list_and_ref(tmp_path):
    m = matcher(tmp_path, "{field: action, in: [failed_password, invalid_user]}")
    assert m(ev("x.y", action="invalid_user"))
    assert not m(ev("x.y", action="accepted"))
    m = matcher(tmp_path, "{field: action, in: [Failed_Password], nocase: true}")
    assert m(ev("x.y", action="FAILED_password"))
    m = matcher(tmp_path, '{field: port, in: {ref: "@ctx.allowed_ports"}}')
    assert m(ev("x.y", port=443, ctx={"allowed_ports": [22, 443]}))
    assert not m(ev("x.y", port=8080, ctx={"allowed_ports": [22, 443]}))
    assert not m(ev("x.y", port=443))  # no ctx: ref missing -> false
    assert not m(ev("x.y", port=443, ctx={"allowed_ports": "22,443"}))  # ref not a list -> false
    m = matcher(tmp_path, "{field: n, in: [1, 2]}")
    assert not m(ev("x.y", n=True))


def test_contains_on_strings_and_lists(tmp_path):
    m = matcher(tmp_path, "{field: cmd, contains: wget}")
    assert m(ev("x.y", cmd="sh -c 'wget http://x'"))
    assert m(ev("x.y", cmd=["bash", "wget"]))  # list value: membership
    assert not m(ev("x.y", cmd=["bash", "wget2"]))  # membership, not substring of an item
    assert not m(ev("x.y", cmd="curl"))
    m = matcher(tmp_path, "{field: cmd, contains: WGET, nocase: true}")
    assert m(ev("x.y", cmd="Wget -q")) and m(ev("x.y", cmd=["WgEt"]))
    m = matcher(tmp_path, "{field: groups, contains: {ref: user}}")
    assert m(ev("x.y", groups=["sudo", "alice"], user="alice"))
    assert not m(ev("x.y", groups=["sudo"], user="alice"))


def test_startswith_endswith(tmp_path):
    m = matcher(tmp_path, "{all: [{field: path, startswith: /etc/}, {field: path, endswith: .conf}]}")
    assert m(ev("x.y", path="/etc/ssh/sshd.conf"))
    assert not m(ev("x.y", path="/etc/passwd"))
    assert not m(ev("x.y", path=42))
    m = matcher(tmp_path, "{field: path, startswith: /ETC/, nocase: true}")
    assert m(ev("x.y", path="/etc/x"))


def test_regex_search_semantics_and_nocase(tmp_path):
    m = matcher(tmp_path, r"{field: line, regex: 'COMMAND=/bin/(ba)?sh\b'}")
    assert m(ev("x.y", line="sudo: alice : COMMAND=/bin/bash"))
    assert not m(ev("x.y", line="command=/bin/bash"))
    assert not m(ev("x.y", line=["COMMAND=/bin/sh"]))  # not a string
    m = matcher(tmp_path, r"{field: line, regex: 'command=/bin/sh', nocase: true}")
    assert m(ev("x.y", line="COMMAND=/bin/sh"))


def test_cidr_single_list_invalid_and_mixed_versions(tmp_path):
    m = matcher(tmp_path, "{field: ip, cidr: 10.0.0.0/8}")
    assert m(ev("x.y", ip="10.1.2.3"))
    assert not m(ev("x.y", ip="11.1.2.3"))
    assert not m(ev("x.y", ip="not-an-ip"))
    assert not m(ev("x.y", ip=167837955))  # an int is not an address string
    m = matcher(tmp_path, '{field: ip, cidr: ["192.168.0.0/16", "fd00::/8"]}')
    assert m(ev("x.y", ip="fd12::1")) and m(ev("x.y", ip="192.168.5.5"))
    assert not m(ev("x.y", ip="::ffff:0a01:0203"))
    m = matcher(tmp_path, "{field: ip, cidr: '::/0'}")
    assert not m(ev("x.y", ip="10.0.0.1"))  # IPv4 is never inside an IPv6 network


def test_gt_lt_numbers_only(tmp_path):
    m = matcher(tmp_path, "{all: [{field: size, gt: 100}, {field: size, lt: 1000.5}]}")
    assert m(ev("x.y", size=101)) and m(ev("x.y", size=1000.25))
    assert not m(ev("x.y", size=100)) and not m(ev("x.y", size=1001))
    assert not m(ev("x.y", size="500"))  # numeric strings are not coerced
    assert not m(ev("x.y", size=True))
    m = matcher(tmp_path, "{field: used, gt: {ref: limit}}")
    assert m(ev("x.y", used=5, limit=4))
    assert not m(ev("x.y", used=5, limit="4"))


def test_exists_true_and_false(tmp_path):
    m = matcher(tmp_path, "{field: a.b, exists: true}")
    assert m(ev("x.y", a={"b": 0}))
    assert not m(ev("x.y", a={"c": 1}))
    assert not m(ev("x.y", a={"b": None}))  # JSON null counts as absent
    m = matcher(tmp_path, "{field: a.b, exists: false}")
    assert m(ev("x.y", a="scalar"))
    assert not m(ev("x.y", a={"b": 1}))


def test_missing_field_is_false_for_every_operator_even_under_not(tmp_path):
    for leaf in ("{field: nope, eq: 1}", "{field: nope, in: [1]}", "{field: nope, contains: a}",
                 "{field: nope, startswith: a}", "{field: nope, regex: a}", "{field: nope, cidr: 10.0.0.0/8}",
                 "{field: nope, gt: 0}", "{field: nope, lt: 0}", "{field: nope, exists: true}"):
        assert not matcher(tmp_path, leaf)(ev("x.y", other=1)), leaf
    m = matcher(tmp_path, "{not: {field: nope, eq: 1}}")
    assert m(ev("x.y"))


def test_dotted_paths_and_envelope_fields(tmp_path):
    m = matcher(tmp_path, """
        all:
          - {field: changed_attributes.mode.new, eq: "0777"}
          - {field: "@type", eq: x.y}
          - {field: "@host", startswith: web}
          - {field: "@unit", eq: hn01}
          - {field: "@ctx.env.tier", eq: prod}
    """)
    good = ev("x.y", host="web01", unit="hn01", ctx={"env": {"tier": "prod"}},
              changed_attributes={"mode": {"new": "0777"}})
    assert m(good)
    assert not m(ev("x.y", host="db01", unit="hn01", ctx={"env": {"tier": "prod"}},
                    changed_attributes={"mode": {"new": "0777"}}))
    assert not m(ev("x.y", host="web01", ctx={"env": {"tier": "prod"}}, changed_attributes={"mode": {"new": "0777"}}))


def test_all_any_not_nesting(tmp_path):
    m = matcher(tmp_path, """
        all:
          - any:
              - {field: user, eq: root}
              - {field: uid, eq: 0}
          - not:
              any:
                - {field: source_ip, cidr: 10.0.0.0/8}
                - {field: tty, exists: true}
    """)
    assert m(ev("x.y", user="root", source_ip="203.0.113.1"))
    assert m(ev("x.y", uid=0, source_ip="203.0.113.1"))
    assert not m(ev("x.y", user="alice", source_ip="203.0.113.1"))
    assert not m(ev("x.y", user="root", source_ip="10.0.0.1"))
    assert not m(ev("x.y", user="root", source_ip="203.0.113.1", tty="pts/0"))


def test_event_type_must_match(tmp_path):
    m = matcher(tmp_path, "{field: user, eq: root}")
    assert not m(ev("x.other", user="root"))


@pytest.mark.parametrize(("match", "message"), [
    # The expression sits on line 7 (id, title, status, severity, event_type, "match:" come first).
    ("{field: a, eq: 1, in: [1]}", "exactly one operator"),
    ("{field: a}", "exactly one operator"),
    ("{field: a, like: x}", "unknown operator 'like'"),
    ("{eq: 1}", "needs 'field'"),
    ("{field: a, gt: '5'}", "takes a number"),
    ("{field: a, in: 5}", "takes a list"),
    ("{field: a, exists: yes please}", "true or false"),
    ("{field: a, cidr: 10.0.0.0/33}", "bad network"),
    ("{field: a, gt: 5, nocase: true}", "nocase applies only"),
    ("{field: a, regex: {ref: b}}", "does not take a ref"),
    ("{field: '@nope', eq: 1}", "unknown field"),
    ("{all: []}", "non-empty list"),
    ("{all: [{field: a, eq: 1}], any: [{field: a, eq: 1}]}", "only key"),
    ("[{field: a, eq: 1}]", "must be a mapping"),
])
def test_bad_expressions_are_load_errors(tmp_path, match, message):
    from rules.detect import RuleLoadErrors

    with pytest.raises(RuleLoadErrors) as info:
        matcher(tmp_path, match)
    assert any(message in e.message and e.line == 7 for e in info.value.errors), info.value.errors
