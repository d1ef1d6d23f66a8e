"""Rate limits against a real server, from real loopback addresses (127.0.0.x), with concurrent clients.

- Login: 20 refused attempts from one address, then 429 with Retry-After, the right password included;
  another address is unaffected; a forged X-Forwarded-For changes nothing (the server trusts no proxy
  unless KHIEN_TRUSTED_PROXIES names one).
- Enrollment: the same for wrong enrollment tokens (collector/agents: 20 refusals per 15 minutes per
  address), and a valid token used while throttled is not spent.
- An agent flooding batches gets 429 with Retry-After while another agent's batches, sent at the same
  time, are all accepted; only the accepted batches are stored.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select

from collector.agents.models import EnrollmentToken
from collector.agents.service import ENROLL_MAX_FAILURES
from collector.ingest.models import IngestBatch
from collector.users.throttle import MAX_FAILURES as LOGIN_MAX_FAILURES
from tests.collector import helpers as ch
from tests.console import helpers as console
from tests.hostile.conftest import Live

RATE_PER_S, BURST = 2, 5
CALM_BATCHES = 6  # sent at the allowed rate while another agent floods: three seconds of flood
SERVER_ENV = {"KHIEN_AGENT_RATE_PER_S": str(RATE_PER_S), "KHIEN_AGENT_RATE_BURST": str(BURST)}


def from_address(live: Live, address: str, **kwargs) -> httpx.Client:
    """A client whose connections leave from ``address`` (any of 127.0.0.0/8 is this machine)."""
    return httpx.Client(base_url=live.url, transport=httpx.HTTPTransport(local_address=address), timeout=30,
                        follow_redirects=False, **kwargs)


def login(client: httpx.Client, username: str, password: str, **headers: str) -> httpx.Response:
    form = client.get("/login")
    assert form.status_code == 200, form.text
    return client.post("/login", headers=headers, data={"username": username, "password": password,
                                                         "csrf_token": console.csrf_token(form.text)})


def assert_throttled(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text[:500]
    assert 1 <= int(answer.headers["Retry-After"]) <= 15 * 60


def test_login_brute_force_is_throttled_per_address(live: Live):
    with from_address(live, "127.0.0.11") as attacker, from_address(live, "127.0.0.12") as bystander:
        for n in range(LOGIN_MAX_FAILURES):  # many accounts, so no account lockout is what stops it
            assert login(attacker, f"guess{n}", "hunter2").status_code == 401
        assert_throttled(login(attacker, "guess-next", "hunter2"))
        assert_throttled(login(attacker, "admin", console.PASSWORD))  # the right password waits too
        for forged in ("203.0.113.9", "127.0.0.12", "127.0.0.12, 10.0.0.1"):
            assert_throttled(login(attacker, "admin", console.PASSWORD, **{"X-Forwarded-For": forged,
                                                                            "X-Real-IP": forged}))
        answer = login(bystander, "admin", console.PASSWORD)
        assert answer.status_code == 303, answer.text[:500]  # the other address logs in at once


def enroll(client: httpx.Client, token: str, machine_id: str, **headers: str) -> httpx.Response:
    return client.post("/api/v1/agent/enroll", headers=headers,
                       json={"token": token, **ch.identity(machine_id, hostname=f"h-{machine_id[:6]}")})


def token_uses(live: Live) -> int:
    return live.scalar(select(func.sum(EnrollmentToken.uses)))


def test_enrollment_token_guessing_is_throttled_per_address(live: Live):
    valid = live.enroll_token("D1")
    with from_address(live, "127.0.0.21") as guesser, from_address(live, "127.0.0.22") as installer:
        for n in range(ENROLL_MAX_FAILURES):
            assert enroll(guesser, f"khien_enr_guess{n}", "c" * 32).status_code == 401
        assert_throttled(enroll(guesser, "khien_enr_guess-next", "c" * 32))
        uses = token_uses(live)
        assert_throttled(enroll(guesser, valid, "c" * 32))  # a right token, from the throttled address
        assert_throttled(enroll(guesser, valid, "c" * 32, **{"X-Forwarded-For": "127.0.0.22"}))
        assert token_uses(live) == uses  # refused before the token was looked at: not spent
        answer = enroll(installer, valid, "d" * 32)
        assert answer.status_code == 201, answer.text  # another address enrolls at once, with the same token


def test_a_flooding_agent_is_slowed_while_another_is_not(live: Live):
    flooder = ch.identity("f" * 32, hostname="flood01")
    with from_address(live, "127.0.0.31") as c:
        answer = c.post("/api/v1/agent/enroll", json={"token": live.enroll_token("D2"), **flooder})
    assert answer.status_code == 201, answer.text
    flood_id = answer.json()["agent_id"]
    flood_auth = {"Authorization": f"Bearer {flood_id}.{answer.json()['secret']}"}
    calm_auth = {"Authorization": f"Bearer {live.agent_credential}"}
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    stop = threading.Event()

    def post(client: httpx.Client, auth: dict[str, str]) -> httpx.Response:
        return client.post("/api/v1/agent/batches", headers=headers | auth,
                           content=ch.gz(ch.batch([ch.heartbeat(), ch.heartbeat()])))

    def flood() -> list[httpx.Response]:
        answers: list[httpx.Response] = []
        with from_address(live, "127.0.0.31") as client:
            while not stop.is_set() and len(answers) < 500:  # bounded, whatever the machine's speed
                answers.append(post(client, flood_auth))
        return answers

    def calm() -> list[httpx.Response]:
        answers = []
        with from_address(live, "127.0.0.32") as client:
            for _ in range(CALM_BATCHES):
                answers.append(post(client, calm_auth))
                time.sleep(1 / RATE_PER_S)  # exactly its allowed rate, while the flood goes on
        return answers

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        floods = [pool.submit(flood) for _ in range(3)]  # three connections at once from the one agent
        calmed = pool.submit(calm).result()
        stop.set()
        flooded = [answer for f in floods for answer in f.result()]
    elapsed = time.monotonic() - started

    statuses = Counter(a.status_code for a in flooded)
    assert set(statuses) == {202, 429}, statuses
    for answer in flooded:
        if answer.status_code == 429:
            assert_throttled(answer)
            assert "too fast" in answer.json()["detail"]
    # The bucket: the burst, then the sustained rate over the time the flood lasted (one token of slack).
    assert statuses[202] <= BURST + RATE_PER_S * elapsed + 1, (statuses, elapsed)
    assert [a.status_code for a in calmed] == [202] * CALM_BATCHES, Counter(a.status_code for a in calmed)
    stored = live.scalar(select(func.count()).select_from(IngestBatch).where(IngestBatch.agent_id == flood_id))
    assert stored == statuses[202]  # a refused batch left nothing behind (the agent resends it later)
    assert not live.server.server_errors()
