"""Helpers shared by the compliance-check tests (no tests here): write check/policy files, compile expressions."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml

from rules.checks.check_schema import field_check
from rules.checks.evaluate import judge
from rules.detect.compile import Compiler
from rules.detect.fields import CHECK_NAMES

FIXTURES = Path(__file__).parent / "fixtures" / "checks"
GOOD_CHECKS = FIXTURES / "good" / "checks"
GOOD_POLICIES = FIXTURES / "good" / "policies"
DEMO = "demo_server_policy"

HEADER = """\
id: {id}
title: {{vi: "Kiểm tra thử", en: "Test check"}}
status: test
severity: {severity}
"""

DEFAULT_TESTS = """\
tests:
  - name: passes
    facts: {sshd: {settings: {permitrootlogin: "no"}}}
    expect: pass
  - name: fails
    facts: {sshd: {settings: {permitrootlogin: "yes"}}}
    expect: fail
"""


def check_text(check_id: str, body: str, tests: str | None = None, severity: str = "high") -> str:
    """A complete check file: header, the given body (YAML, dedented), and tests."""
    return HEADER.format(id=check_id, severity=severity) + textwrap.dedent(body).strip("\n") + "\n" + \
        (textwrap.dedent(tests).strip("\n") + "\n" if tests is not None else DEFAULT_TESTS)


def write(directory: Path, stem: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def write_check(directory: Path, check_id: str, body: str, tests: str | None = None, stem: str | None = None,
                severity: str = "high") -> Path:
    return write(directory, stem or check_id, check_text(check_id, body, tests, severity))


def compile_expr(text: str, params: dict[str, Any] | None = None):
    """Compile a YAML expression as a check would; returns (expr or None, [error messages])."""
    errors: list[str] = []
    compiler = Compiler(lambda path, message: errors.append(message), [], names=CHECK_NAMES,
                        field_check=field_check(params or {}))
    return compiler.compile(yaml.safe_load(text), ("assert",)), errors


def verdict(text: str, facts: dict[str, Any], params: dict[str, Any] | None = None, os: str | None = "debian"):
    """Three-valued verdict of a check expression over facts (kind -> facts)."""
    expr, errors = compile_expr(text, params)
    assert expr is not None, errors
    return judge(expr, facts, params or {}, os)
