"""Operators added for checks (gte, lte, empty, every, some), @param/@os/@item, three-valued judging."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rules.detect import EngineEvent
from rules.detect.compile import Compiler
from tests.rules.test_checks_support import compile_expr, verdict

LOGIN = {"logindefs": {"available": True, "pass_max_days": 90, "umask": "027", "flag": True}}
USERS = {"accounts": {"available": True, "users": [{"name": "root", "uid": 0}, {"name": "an", "uid": 1000}],
                      "uid0": ["root"], "empty_password": [], "notes": "", "shells": {}}}


@pytest.mark.parametrize(("expr", "expected"), [
    ("{field: logindefs.pass_max_days, gte: 90}", True),
    ("{field: logindefs.pass_max_days, gte: 91}", False),
    ("{field: logindefs.pass_max_days, lte: 90}", True),
    ("{field: logindefs.pass_max_days, lte: 89}", False),
    ("{field: logindefs.umask, lte: 100}", False),  # numbers only, no coercion of numeric strings
    ("{field: logindefs.flag, gte: 0}", False),  # a boolean is not a number
])
def test_gte_lte(expr, expected):
    assert verdict(expr, LOGIN) is expected


@pytest.mark.parametrize(("expr", "expected"), [
    ("{field: accounts.empty_password, empty: true}", True),
    ("{field: accounts.uid0, empty: true}", False),
    ("{field: accounts.uid0, empty: false}", True),
    ("{field: accounts.notes, empty: true}", True),  # an empty string
    ("{field: accounts.shells, empty: true}", True),  # an empty mapping
    ("{field: accounts.users.0, empty: true}", None),  # no such key: cannot judge
])
def test_empty(expr, expected):
    assert verdict(expr, USERS) is expected


def test_every_and_some_over_mappings_and_scalars():
    assert verdict("{field: accounts.users, every: {field: uid, lt: 60000}}", USERS) is True
    assert verdict("{field: accounts.users, every: {field: uid, gt: 0}}", USERS) is False
    assert verdict("{field: accounts.users, some: {field: name, eq: an}}", USERS) is True
    assert verdict("{field: accounts.users, some: {field: name, eq: bo}}", USERS) is False
    assert verdict("{field: accounts.uid0, every: {field: '@item', eq: root}}", USERS) is True
    assert verdict("{field: accounts.empty_password, every: {field: '@item', eq: x}}", USERS) is True  # vacuous
    assert verdict("{field: accounts.empty_password, some: {field: '@item', eq: x}}", USERS) is False
    assert verdict("{field: accounts.notes, every: {field: '@item', eq: x}}", USERS) is False  # not a list


def test_every_three_valued_per_item():
    facts = {"accounts": {"available": True, "users": [{"name": "a", "uid": 5}, {"name": "b"}]}}
    assert verdict("{field: accounts.users, every: {field: uid, gt: 0}}", facts) is None  # b unknown
    assert verdict("{field: accounts.users, every: {field: uid, gt: 9}}", facts) is False  # a decides
    assert verdict("{field: accounts.users, some: {field: uid, gt: 0}}", facts) is True
    assert verdict("{field: accounts.users, some: {field: uid, gt: 9}}", facts) is None


def test_param_and_os_refs():
    params = {"max_days": 90, "allowed": ["SHA512", "YESCRYPT"]}
    facts = {"logindefs": {"available": True, "pass_max_days": 120, "encrypt_method": "SHA512"}}
    assert verdict("{field: logindefs.pass_max_days, lte: {ref: '@param.max_days'}}", facts, params) is False
    assert verdict("{field: logindefs.pass_max_days, lte: {ref: '@param.max_days'}}", facts,
                   {**params, "max_days": 180}) is True
    assert verdict("{field: logindefs.encrypt_method, in: {ref: '@param.allowed'}}", facts, params) is True
    assert verdict("{field: '@param.max_days', eq: 90}", facts, params) is True
    assert verdict("{field: '@os', eq: rhel}", facts, os="rhel") is True
    assert verdict("{field: '@os', in: [debian, ubuntu]}", facts, os="rhel") is False
    assert verdict("{field: '@os', eq: rhel}", facts, os=None) is None  # os unknown: cannot judge


def test_absent_key_is_unknown_but_null_is_a_value():
    facts = {"pam": {"available": True, "pwquality": {"enabled": False, "minlen": None}}}
    assert verdict("{field: pam.pwquality.minlen, gte: 8}", facts) is False  # null: not set
    assert verdict("{field: pam.pwquality.minlen, exists: false}", facts) is True
    assert verdict("{field: pam.pwquality.difok, gte: 8}", facts) is None  # absent: not collected
    assert verdict("{field: pam.pwquality.difok, exists: false}", facts) is True  # exists is always decided
    assert verdict("{not: {field: pam.pwquality.difok, eq: 1}}", facts) is None
    # Kleene logic: a decided part settles all/any whatever the unknown part says.
    assert verdict("{all: [{field: pam.pwquality.enabled, eq: true}, {field: pam.x, eq: 1}]}", facts) is False
    assert verdict("{any: [{field: pam.pwquality.enabled, eq: false}, {field: pam.x, eq: 1}]}", facts) is True
    assert verdict("{all: [{field: pam.pwquality.enabled, eq: false}, {field: pam.x, eq: 1}]}", facts) is None


def test_keys_with_dots_are_found():
    facts = {"sysctl": {"available": True, "values": {"net.ipv4.ip_forward": 0}},
             "files": {"available": True, "files": {"/etc/cron.d": {"mode": "0700"}}}}
    assert verdict("{field: sysctl.values.net.ipv4.ip_forward, eq: 0}", facts) is True
    assert verdict("{field: files.files./etc/cron.d.mode, eq: '0700'}", facts) is True
    assert verdict("{field: sysctl.values.net.ipv4.tcp_syncookies, eq: 1}", facts) is None


@pytest.mark.parametrize(("expr", "message"), [
    ("{field: nokind.x, eq: 1}", "does not start with a fact kind"),
    ("{field: sshd.x, eq: {ref: '@param.nope'}}", "unknown parameter 'nope'"),
    ("{field: '@item', eq: 1}", "only works inside every/some"),
    ("{field: '@host', eq: 1}", "unknown field '@host'"),
    ("{field: sshd.x, empty: yes please}", "empty takes true or false"),
    ("{field: sshd.x, empty: {ref: '@param.n'}}", "does not take a ref"),
    ("{field: sshd.x, gte: '5'}", "comparison takes a number"),
    ("{field: sshd.x, every: {field: y, eq: 1}, nocase: true}", "nocase applies only to string operators"),
    ("{field: sshd.x, every: [1]}", "expression must be a mapping"),
])
def test_compile_errors(expr, message):
    compiled, errors = compile_expr(expr, {"n": 1})
    assert compiled is None
    assert any(message in e for e in errors), errors


def test_item_paths_are_relative_and_not_kinds():
    compiled, errors = compile_expr("{field: accounts.users, every: {field: uid, gte: {ref: '@param.n'}}}", {"n": 1})
    assert compiled is not None and not errors


def test_detection_rules_get_the_new_operators_but_not_check_names():
    errors: list[str] = []
    compiler = Compiler(lambda path, message: errors.append(message), [])
    expr = compiler.compile({"all": [{"field": "ports", "some": {"field": "@item", "gte": 1024}},
                                     {"field": "tags", "empty": False}, {"field": "n", "lte": 3}]}, ())
    assert expr is None and "unknown field '@item'" in errors[0]
    expr = compiler.compile({"all": [{"field": "users", "every": {"field": "uid", "gte": 1000}},
                                     {"field": "tags", "empty": False}, {"field": "n", "lte": 3}]}, ())
    assert expr is not None

    def event(**data):
        return EngineEvent("x.y", datetime(2026, 3, 1, tzinfo=UTC), "h1", data)

    assert expr.matches(event(users=[{"uid": 1000}], tags=["a"], n=3))
    assert not expr.matches(event(users=[{"uid": 1000}, {"uid": 5}], tags=["a"], n=3))
    assert not expr.matches(event(users=[{"uid": 1000}], tags=[], n=3))
    assert not expr.matches(event(users="x", tags=["a"], n=3))
    assert compiler.compile({"field": "@param.x", "eq": 1}, ()) is None
