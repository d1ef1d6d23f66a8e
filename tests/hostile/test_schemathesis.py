"""Schemathesis against a real server's own OpenAPI schema: the people API, the agent API, and nobody.

For every operation, generated valid and invalid requests (path, query, headers, body) must never get a
5xx, and every answer must be one the schema documents: status code, content type, headers and body
shape. The authenticated runs also check that each operation refuses the same request without a
credential or with a made-up one; the anonymous run that nothing but enrollment and the public ops
routes answers a caller without a credential.

Schemathesis runs as its CLI (``schemathesis run``) against the live server: its pytest plugin does not
work under pytest 9.2 (it writes ``Function._nodeid``, which pytest 9 no longer has). Runs are
deterministic and bounded (EXAMPLES): a fuller run on SQLite, a smaller one on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.collector import helpers as ch
from tests.hostile.conftest import Live

# Fuzzing sends many batches a second as one agent: the agent rate limit has its own test (test_rate_limits).
SERVER_ENV = {"KHIEN_AGENT_RATE_PER_S": "100000", "KHIEN_AGENT_RATE_BURST": "100000"}
CONFORMANCE = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
               "response_schema_conformance", "response_headers_conformance"]
# Random examples per operation and generation mode (valid, invalid). The agent API has three operations,
# the batch among them, so it gets more. The boundary-value (coverage) phase is left out: on the 40 KB batch
# schema alone it sends 3,400 requests (100 s) and found nothing the random phase had not.
EXAMPLES = {("people", "sqlite"): 25, ("people", "postgresql"): 5, ("agent", "sqlite"): 100,
            ("agent", "postgresql"): 20, ("nobody", "sqlite"): 3, ("nobody", "postgresql"): 3}
PEOPLE = r"^/api/v1/(?!agent/)"
AGENT = r"^/api/v1/agent/"
EVERYTHING = r"^/"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
HOOKS = "tests.hostile.schemathesis_hooks"  # real ids for path parameters; the refused_without_credential check


def schemathesis_run(live: Live, tmp_path: Path, *, who: str, include: str, checks: list[str],
                     headers: tuple[str, ...] = (), mode: str = "all") -> subprocess.CompletedProcess:
    examples = EXAMPLES[who, "sqlite" if live.db_url.startswith("sqlite") else "postgresql"]
    command = [str(SCHEMATHESIS), "run", f"{live.url}/openapi.json", "--include-path-regex", include,
               "--checks", ",".join(checks), "--phases", "examples,fuzzing", "--max-examples", str(examples),
               "--mode", mode,
               "--generation-deterministic", "--request-timeout", "30", "--workers", "1", "--no-color",
               "--continue-on-failure", "--suppress-health-check", "all"]
    for header in headers:
        command += ["--header", header]
    env = os.environ | {"SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": str(Path(__file__).parents[2]),
                        "KHIEN_FUZZ_REAL_IDS": ",".join(map(str, live.province.small_ids()))}
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


def assert_clean(run: subprocess.CompletedProcess, live: Live) -> None:
    """Exit 0 (no check failed); the report, with a curl line for each failure, is the assertion message."""
    assert run.returncode == 0, run.stdout[-30_000:] + run.stderr[-5_000:]
    assert "passed" in run.stdout and " generated" in run.stdout, run.stdout[-5_000:]  # it did test something
    assert not live.server.server_errors(), live.server.log_text()[-10_000:]  # a 5xx always logs a traceback


def test_people_api_as_an_administrator(live: Live, tmp_path: Path):
    assert_clean(schemathesis_run(live, tmp_path, who="people", include=PEOPLE,
                                  checks=[*CONFORMANCE, "ignored_auth"],
                                  headers=(f"Authorization: Bearer {live.admin_token}",)), live)


def test_agent_api_as_an_enrolled_agent(live: Live, tmp_path: Path):
    assert_clean(schemathesis_run(live, tmp_path, who="agent", include=AGENT, checks=[*CONFORMANCE, "ignored_auth"],
                                  headers=(f"Authorization: Bearer {live.agent_credential}",)), live)


def test_every_operation_without_a_credential(live: Live, tmp_path: Path):
    # Valid requests only: an invalid one is refused for its own sake, which says nothing about the credential.
    assert_clean(schemathesis_run(live, tmp_path, who="nobody", include=EVERYTHING, mode="positive",
                                  checks=[*CONFORMANCE, "refused_without_credential"]), live)


def test_metrics_schema_names_its_content_type(live: Live):
    documented = httpx.get(f"{live.url}/openapi.json", timeout=30).json()["paths"]["/metrics"]["get"]["responses"]
    served = httpx.get(f"{live.url}/metrics", timeout=30).headers["content-type"].split(";")[0]
    assert served in documented["200"]["content"]


@pytest.mark.parametrize("path", ["/api/v1/alerts/99999999999999999999999", "/api/v1/hosts/9223372036854775808",
                                  "/api/v1/findings/-99999999999999999999999/evidence/1"])
def test_an_id_beyond_64_bits_is_refused_not_a_server_error(live: Live, path: str):
    """Found by Schemathesis: SQLite raised OverflowError binding the id (500); now 422, nothing logged."""
    answer = httpx.get(f"{live.url}{path}", headers={"Authorization": f"Bearer {live.admin_token}"}, timeout=30)
    assert answer.status_code in (404, 422), answer.text
    assert answer.json()["detail"]
    assert not live.server.server_errors()


def test_the_schema_documents_the_error_shape_the_server_sends(live: Live):
    """Found by Schemathesis: FastAPI documented 422 as a list of errors; the server sends one line."""
    spec = httpx.get(f"{live.url}/openapi.json", timeout=30).json()
    invalid = httpx.get(f"{live.url}/api/v1/alerts", params={"limit": "many"}, timeout=30,
                        headers={"Authorization": f"Bearer {live.admin_token}"})
    assert invalid.status_code == 422 and isinstance(invalid.json()["detail"], str)
    documented = spec["paths"]["/api/v1/alerts"]["get"]["responses"]["422"]["content"]["application/json"]["schema"]
    assert documented == {"$ref": "#/components/schemas/Error"}
    assert spec["components"]["schemas"]["Error"]["properties"]["detail"] == {"type": "string"}
    assert "HTTPValidationError" not in spec["components"]["schemas"]


# --- what the fuzzers found, at the HTTP edge, on both backends ------------------------------------

def agent_post(live: Live, raw: bytes) -> httpx.Response:
    return httpx.post(f"{live.url}/api/v1/agent/batches", content=raw, timeout=30, headers={
        "Authorization": f"Bearer {live.agent_credential}", "Content-Type": "application/json"})


def test_a_batch_with_nan_or_nul_is_refused_naming_the_field(live: Live):
    """Both parsed before (NaN, Infinity, "\\u0000"); PostgreSQL's jsonb cannot store either (a 5xx there)."""
    heartbeat = json.dumps(ch.batch([ch.heartbeat(collectors={"authlog": {"last_duration_ms": 1.5}})]))
    nan = heartbeat.replace("1.5", "NaN").encode()
    infinite = heartbeat.replace("1.5", "Infinity").encode()
    nul = json.dumps(ch.batch([{"type": "auth.failure", "ts": ch.now_iso(), "data": {
        "action": "failed_password", "outcome": "failure", "user": "ro\x00ot"}}])).encode()
    for raw, field in ((nan, "last_duration_ms"), (infinite, "last_duration_ms"), (nul, "items.0.data.user")):
        answer = agent_post(live, raw)
        assert answer.status_code == 422, answer.text
        assert field in answer.json()["detail"], answer.json()
    assert not live.server.server_errors()


def test_a_nul_in_a_persons_text_is_not_a_server_error(live: Live):
    """PostgreSQL refuses NUL in text (DataError, a 500 before): now 422 there; SQLite stores the text."""
    answer = httpx.post(f"{live.url}/api/v1/incidents", timeout=30, headers={
        "Authorization": f"Bearer {live.admin_token}"}, json={
        "unit": "D1", "title": "Sự\x00cố", "severity": "normal", "detected_at": ch.now_iso()})
    assert answer.status_code == (201 if live.db_url.startswith("sqlite") else 422), answer.text
    assert not live.server.server_errors()
