"""Hostile bytes into the collector's batch decoder and the agent's log parsers (hypothesis).

Properties, for every input:
- only the documented error comes out (InvalidInput / PayloadTooLarge from the decoder and the batch
  validator; the log parsers never raise: an item or None, counted);
- bounded time and memory: < 1 s and < 50 MB of resident-set growth for inputs up to 1 MB (the batch
  validator: < 100 MB, see PARSE_1MB_GROWTH), and a gzip bomb costs the decompression cap, not what it
  would expand to;
- what the decoder accepts can be stored: no NaN/Infinity, no integer past 64 bits, no NUL in text;
- what the parsers emit stays within the caps the collector enforces (a hostile line must not get a
  whole batch refused).
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import io
import json
import math
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent.collectors.authlog import journal
from agent.collectors.authlog.events import FIELDS, MAX_COUNT, MAX_STR, MAX_TEXT
from agent.collectors.authlog.logfile import parse_stream
from agent.collectors.authlog.parser import PARSERS, LineParser
from agent.collectors.authlog.syslog import frame
from agent.collectors.netwatch import sniffer
from collector.errors import InvalidInput, PayloadTooLarge
from collector.ingest.schema import BatchIn, parse_batch
from collector.ingest.service import decode_body
from collector.settings import Settings
from tests.collector import helpers as h
from tests.hostile.budget import MiB, can_measure, spend

pytestmark = pytest.mark.skipif(not can_measure(), reason="needs Linux /proc/self/clear_refs to measure peak RSS")

FIXTURES = Path(__file__).parents[1] / "agent" / "fixtures" / "authlog"
DEFAULT_CAP = {f.name: f.default for f in dataclasses.fields(Settings)}["max_decompressed_bytes"]
CAP = 1 * MiB  # the decompression cap for the random cases: small, so inputs beyond it are cheap to make
DECODE_ERRORS = (InvalidInput, PayloadTooLarge)
SECONDS, GROWTH = 1.0, 50 * MiB
# The batch validator builds the JSON tree first, at up to ~100 bytes a value, and 1 MB of "1," holds
# 500,000 values: linear in the input, and capped for any body by schema.MAX_JSON_VALUES.
PARSE_1MB_GROWTH = 100 * MiB
# Derandomized, without an example database: the same inputs on every run and machine, nothing written to
# the work tree; a failure prints the input to turn into an @example.
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ENCODINGS = st.sampled_from([None, "gzip", "GZip ", "identity", "", "br", "deflate", "x-gzip", "gzip, gzip"])
INT64 = 2**63 - 1


def within_budget(call, *, expected=(), seconds: float = SECONDS, growth: int = GROWTH):
    spent = spend(call, expected=expected, seconds_bound=seconds)
    assert spent.seconds < seconds, f"took {spent.seconds:.2f} s"
    assert spent.peak_growth < growth, f"resident set grew {spent.peak_growth / MiB:.0f} MB"
    return spent.result


def storable(value: Any, path: str = "") -> None:
    """What PostgreSQL's jsonb and a 64-bit column can hold: finite numbers, int64, no NUL in text."""
    if isinstance(value, float):
        assert math.isfinite(value), path
    elif isinstance(value, int) and not isinstance(value, bool):
        assert -INT64 - 1 <= value <= INT64, path
    elif isinstance(value, str):
        assert "\x00" not in value, path
    elif isinstance(value, dict):
        for key, item in value.items():
            storable(key, path)
            storable(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            storable(item, f"{path}.{index}")


def valid_batch() -> dict[str, Any]:
    """A realistic batch: heartbeat, inventory, an auth failure, a file change."""
    return h.batch([
        h.heartbeat(spool_items=3, collectors={"authlog": {"runs": 2, "last_duration_ms": 1.5}}),
        h.inventory({"packages": [h.PKG], "listening_ports": [h.PORT], "users": [h.USER | {
            "last_change_days": 19000, "min_days": 0, "max_days": 99999, "warn_days": 7, "inactive_days": -1}]}),
        {"type": "auth.failure", "ts": h.now_iso(), "data": {
            "action": "failed_password", "outcome": "failure", "user": "root", "source_ip": "203.0.113.7",
            "source_port": 51022, "method": "password", "process": "sshd", "pid": 2301, "count": 1}},
        {"type": "file.change", "ts": h.now_iso(), "data": {"path": "/etc/passwd", "action": "modified",
                                                            "scan": "realtime"}},
    ], batch_id=str(uuid.UUID(int=7)))


# --- the body decoder -----------------------------------------------------------------------------

@FUZZ
@given(body=st.binary(max_size=4096), encoding=ENCODINGS)
def test_random_bodies_give_only_the_documented_errors(body, encoding):
    out = within_budget(lambda: decode_body(body, content_encoding=encoding, max_decompressed=CAP),
                        expected=DECODE_ERRORS)
    if isinstance(out, bytes):
        assert len(out) <= CAP


@FUZZ
@given(payload=st.binary(max_size=8192), cut=st.integers(min_value=0), flip=st.integers(min_value=0),
       tail=st.binary(min_size=1, max_size=64), how=st.sampled_from(["intact", "truncated", "flipped", "trailing"]))
def test_damaged_gzip_is_refused_and_intact_gzip_is_exact(payload, cut, flip, tail, how):
    body = gzip.compress(payload)
    if how == "truncated":
        body = body[: cut % len(body)]
    elif how == "flipped":
        at = flip % len(body)
        body = body[:at] + bytes([body[at] ^ 0xFF]) + body[at + 1:]
    elif how == "trailing":
        body += tail  # another member or garbage after the stream: the agent never sends that
    out = within_budget(lambda: decode_body(body, content_encoding="gzip", max_decompressed=CAP),
                        expected=DECODE_ERRORS)
    if how == "intact":
        assert out == payload
    elif how in ("truncated", "trailing"):
        assert isinstance(out, InvalidInput), how
    else:  # a flipped byte in a header field gzip does not check may still decode: then to the same bytes
        assert isinstance(out, DECODE_ERRORS) or out == payload


def zeros_bomb(expanded: int) -> bytes:
    """gzip of ``expanded`` zero bytes, built in chunks (about 5 KB of body per MB it expands to)."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # level 1: ten times faster to build
    chunk = bytes(MiB)
    parts = [packer.compress(chunk) for _ in range(expanded // MiB)]
    return b"".join([*parts, packer.flush()])


@pytest.mark.parametrize("expanded_mib", [2, 64, 256])
def test_gzip_bombs_cost_the_cap_not_their_expansion(expanded_mib):
    cap = DEFAULT_CAP  # the server's own default
    body = zeros_bomb(expanded_mib * MiB)
    if expanded_mib * MiB <= cap:
        out = within_budget(lambda: decode_body(body, content_encoding="gzip", max_decompressed=cap),
                            growth=cap + 16 * MiB)
        assert len(out) == expanded_mib * MiB
        return
    refused = within_budget(lambda: decode_body(body, content_encoding="gzip", max_decompressed=cap),
                            expected=(PayloadTooLarge,), growth=cap + 16 * MiB)
    assert isinstance(refused, PayloadTooLarge), refused


def test_a_bomb_inside_a_bomb_is_decoded_once_only():
    inner = zeros_bomb(64 * MiB)
    out = within_budget(lambda: decode_body(gzip.compress(inner), content_encoding="gzip", max_decompressed=CAP))
    assert out == inner  # the inner layer stays compressed: it is then refused as malformed JSON
    assert isinstance(within_budget(lambda: parse_batch(out), expected=(InvalidInput,)), InvalidInput)


# --- the batch validator --------------------------------------------------------------------------

def accepted_is_storable(raw: bytes) -> None:
    out = within_budget(lambda: parse_batch(raw), expected=(InvalidInput,))
    if isinstance(out, BatchIn):
        storable(out.model_dump(mode="json"))
    else:
        assert str(out)  # the message names what is wrong


@FUZZ
@given(raw=st.binary(max_size=4096))
@example(raw=b"\xff\xfe{}")
@example(raw=b'{"schema": 1, "batch_id": "\xff"}')
def test_random_bytes_are_refused_cleanly(raw):
    accepted_is_storable(raw)


JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80), st.floats(), st.text(max_size=64),
    st.sampled_from(["NaN", "-Infinity", "\x00", "\ud7ff\U0010ffff", "9" * 400]))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=16), inner, max_size=5), max_leaves=40)


def leaf_paths(value: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaf_paths(v, (*path, k))] or [path]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaf_paths(v, (*path, i))] or [path]
    return [path]


def replace_at(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replace_at(value[path[0]], path[1:], new)
    return copy


# Numbers JSON can spell but Python's encoder would not write: raw tokens spliced into the text.
RAW_TOKENS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" + "0" * 30, "-" + "9" * 5000, "1.5e-400",
              '"\\u0000"', '"\\ud800"', '"' + "\\\\" * 2000 + '"', "[" * 5000 + "]" * 5000, "{}" * 2]


@FUZZ
@given(where=st.integers(min_value=0), value=JSON_VALUES, token=st.sampled_from(RAW_TOKENS),
       spliced=st.booleans())
def test_mutated_valid_batches_are_accepted_only_when_storable(where, value, token, spliced):
    batch = valid_batch()
    paths = leaf_paths(batch)
    path = paths[where % len(paths)]
    if spliced:
        marker = "\u2063marker\u2063"
        raw = json.dumps(replace_at(batch, path, marker)).replace(json.dumps(marker), token).encode()
    else:
        raw = json.dumps(replace_at(batch, path, value), allow_nan=True).encode()
    accepted_is_storable(raw)


@pytest.mark.parametrize("raw", [
    b"[" * 200_000 + b"]" * 200_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    b'{"schema": 1, "items": [' + b"1," * 400_000 + b"1]}",
    b'{"schema": 1, "batch_id": "' + b"x" * MiB + b'"}',
    b'{"schema": ' + b"9" * MiB + b"}",
    json.dumps(h.batch([h.heartbeat()] * 20_000)).encode()[:MiB],
], ids=["nested-lists", "nested-objects", "many-numbers", "long-string", "long-number", "truncated-items"])
def test_a_1mb_hostile_body_is_refused_within_budget(raw):
    refused = within_budget(lambda: parse_batch(raw), expected=(InvalidInput,), growth=PARSE_1MB_GROWTH)
    assert isinstance(refused, InvalidInput)


def test_a_body_denser_than_any_agents_is_refused_before_it_is_parsed():
    """50 MB (the default cap) of "1," would cost the validator about 3 GB; the value budget refuses it first."""
    raw = b'{"schema": 1, "items": [' + b"1," * (DEFAULT_CAP // 2 - 16) + b"1]}"
    refused = within_budget(lambda: parse_batch(raw), expected=(InvalidInput,), growth=16 * MiB)
    assert "more than 2000000 JSON values" in str(refused)


def test_a_valid_batch_of_1mb_is_accepted_within_budget():
    items = [{"type": "auth.failure", "ts": h.now_iso(), "data": {
        "action": "failed_password", "outcome": "failure", "user": f"user{i}", "source_ip": "203.0.113.7",
        "source_port": 1024 + i, "raw": "x" * 150}} for i in range(3000)]
    raw = json.dumps(h.batch(items)).encode()
    assert MiB * 0.8 < len(raw) < 1.2 * MiB
    assert len(within_budget(lambda: parse_batch(raw), growth=PARSE_1MB_GROWTH).items) == 3000


# --- the agent's log parsers ----------------------------------------------------------------------

def fixture_lines() -> list[str]:
    return [line for path in sorted(FIXTURES.glob("*.log"))
            for line in path.read_text().splitlines() if line.strip()]


REAL_LINES = fixture_lines()
PROGRAMS = sorted(PARSERS)
HOSTILE_TEXT = st.one_of(
    st.text(max_size=200), st.sampled_from(["²", "٣", "\x00", "\ufeff", " from 1.2.3.4 port 22", " port ",
                                            "[", "]", ": ", "\n", "\r", "'", "=", " ; ", "9" * 30, "ssh2"]))


def emitted_within_caps(item) -> None:
    """The agent-side caps: strings cut, counts bounded, only declared fields (events.py)."""
    if item is None:
        return
    assert set(item.data) <= set(FIELDS[item.type]), item.data
    for key, value in item.data.items():
        if isinstance(value, str):
            assert len(value) <= (MAX_TEXT if key in ("raw", "command", "cwd") else MAX_STR), key
            assert "\x00" not in value, key
        elif isinstance(value, int) and not isinstance(value, bool):
            assert 0 <= value <= max(MAX_COUNT, 2**32), (key, value)
    json.dumps(item.data, allow_nan=False)


def parse_one(parser: LineParser, call) -> None:
    before = parser.recognised + sum(parser.ignored.values())
    item = within_budget(call)
    emitted_within_caps(item)
    assert parser.recognised + sum(parser.ignored.values()) > before  # every line is counted, one way or the other


@FUZZ
@given(line=st.text(max_size=2000))
@example(line="<13>1 2026-11-22T03:05:50Z web01 sshd ² - - Failed password for root from 1.2.3.4 port 2 ssh2")
@example(line="Nov 22 03:05:50 web01 sshd[2301]: Failed password for ro\x00ot from 203.0.113.7 port 51022 ssh2")
def test_random_lines_give_an_item_or_a_counted_reason(line):
    parser = LineParser()
    parse_one(parser, lambda: parser.parse_line(line))


@FUZZ
@given(base=st.sampled_from(REAL_LINES), at=st.integers(min_value=0), insert=HOSTILE_TEXT,
       repeat=st.integers(min_value=1, max_value=200), how=st.sampled_from(["insert", "cut", "repeat", "replace"]))
def test_real_lines_with_mutations_give_an_item_or_a_counted_reason(base, at, insert, repeat, how):
    at %= len(base) + 1
    if how == "insert":
        line = base[:at] + insert + base[at:]
    elif how == "cut":
        line = base[:at]
    elif how == "repeat":  # the part after the program tag repeated: long lines full of " from ... port "
        line = base[:at] + base[at:] * repeat
    else:
        line = base[:at] + insert + base[at + len(insert):]
    parser = LineParser()
    parse_one(parser, lambda: parser.parse_line(line[: 16 << 10]))


@pytest.mark.parametrize("message", [
    "Failed password for " + "x from 1.2.3.4 port 1 " * 700 + "from 203.0.113.7 port 22 ssh2",
    "Accepted password for " + " from " * 2700,
    "Invalid user " + "a" * 16_000 + " from",
    "Connection closed by authenticating user " + "u " * 8000 + "[preauth]",
    "pam_unix(sshd:auth): authentication failure;" + " rhost=" * 2300,
    "   alice : " + "TTY=" * 4000,
    "change user '" + "'" * 16_000,
    "new user: name=" + ", UID=1" * 2000,
    "message repeated 5 times: [ " + "[ " * 8000 + "]",
], ids=["from-port-repeated", "from-repeated", "long-user", "user-spaces", "pam-kv", "sudo-tty", "quotes",
        "useradd", "repeated-nested"])
@pytest.mark.parametrize("program", ["sshd", "sudo", "useradd", "su"])
def test_worst_case_16kb_lines_are_parsed_within_budget(message, program):
    parser = LineParser()
    line = f"Nov 22 03:05:50 web01 {program}[1]: {message}"[: 16 << 10]
    parse_one(parser, lambda: parser.parse_line(line))


JOURNAL_VALUES = st.one_of(st.none(), st.text(max_size=40), st.integers(), st.floats(),
                           st.lists(st.integers(min_value=-300, max_value=300), max_size=40),
                           st.lists(st.text(max_size=10), max_size=3),
                           st.sampled_from(["²", "99999999999999999999", "-1", "1795316750000000", "sshd", "sudo"]))


@FUZZ
@given(entry=st.fixed_dictionaries({}, optional={
    "SYSLOG_IDENTIFIER": st.one_of(st.sampled_from(PROGRAMS), JOURNAL_VALUES),
    "MESSAGE": st.one_of(st.sampled_from([line.split(": ", 1)[-1] for line in REAL_LINES]), JOURNAL_VALUES),
    "SYSLOG_PID": JOURNAL_VALUES, "_PID": JOURNAL_VALUES, "_HOSTNAME": JOURNAL_VALUES,
    "__REALTIME_TIMESTAMP": JOURNAL_VALUES}))
@example(entry={"SYSLOG_IDENTIFIER": "sshd", "MESSAGE": "Invalid user x from 1.2.3.4 port 2", "SYSLOG_PID": "²"})
@example(entry={"SYSLOG_IDENTIFIER": "sshd", "MESSAGE": "Invalid user x from 1.2.3.4 port 2",
                "__REALTIME_TIMESTAMP": "99999999999999999999"})
def test_hostile_journal_entries_give_an_item_or_a_counted_reason(entry):
    parser = LineParser("journal")
    parse_one(parser, lambda: parser.parse_journal(entry))


@FUZZ
@given(line=st.one_of(st.binary(max_size=512), st.sampled_from([b"[" * 60_000, b'{"a":' * 12_000, b"NaN", b"1e999",
                                                                b'{"MESSAGE": "\\ud800"}', b"\xff\xfe"])))
def test_journalctl_output_lines_decode_to_a_dict_or_none(line):
    out = within_budget(lambda: journal._decode(line))
    assert out is None or isinstance(out, dict)


@FUZZ
@given(blob=st.binary(max_size=8192), source=st.sampled_from(["auth", "syslog", "journal"]))
def test_any_byte_stream_parses_without_error(blob, source):
    parser = LineParser("journal" if source == "journal" else "file")
    items = within_budget(lambda: list(parse_stream(io.BytesIO(blob), source, parser)))
    for item in items:
        emitted_within_caps(item)


@FUZZ
@given(line=st.text(max_size=300))
def test_syslog_framing_gives_a_record_or_none(line):
    record = within_budget(lambda: frame(line))
    assert record is None or (isinstance(record.program, str) and (record.pid is None or record.pid >= 0))


# --- the packet watcher's packet -> record step (packets are attacker-chosen on the local network) ------

@functools.cache
def valid_frames() -> tuple[bytes, ...]:
    """One frame of each kind the kernel filter lets through. Addresses all given: scapy would otherwise look
    the destination MAC up on the network."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP, Ether

    link = Ether(src="52:54:00:12:34:56", dst="52:54:00:65:43:21")
    return (bytes(link / IP(src="203.0.113.7", dst="10.0.0.5") / TCP(sport=40000, dport=22, flags="S")),
            bytes(link / IPv6(src="2001:db8::7", dst="2001:db8::5") / TCP(sport=40000, dport=443, flags="S")),
            bytes(link / IP(src="203.0.113.7", dst="10.0.0.5") / UDP(sport=40000, dport=161)),
            bytes(link / ARP(op=2, psrc="10.0.0.1", hwsrc="52:54:00:12:34:56", pdst="10.0.0.5",
                             hwdst="52:54:00:65:43:21")))


@pytest.fixture(scope="module")
def scapy_loaded():
    try:
        loaded = sniffer.load_scapy()
    except sniffer.ScapyUnavailable as exc:
        pytest.skip(f"the packets extra is not installed: {exc}")
    valid_frames()
    return loaded


@FUZZ
@given(data=st.data())
def test_any_captured_frame_becomes_a_record_none_or_a_counted_malformed_packet(scapy_loaded, data):
    from scapy.layers.l2 import Ether

    frame = bytearray(data.draw(st.sampled_from(valid_frames())))
    for at, value in data.draw(st.lists(st.tuples(st.integers(0, len(frame) - 1), st.integers(0, 255)), max_size=8)):
        frame[at] = value
    frame = frame[: data.draw(st.integers(14, len(frame)))]  # the kernel hands over whole Ethernet headers
    packet = Ether(bytes(frame))
    packet.time = 1_795_316_750.0
    # Exactly what Sniffer._on_packet counts as malformed and goes on from; anything else would end capture.
    record = within_budget(lambda: sniffer.to_record(packet, scapy_loaded),
                           expected=(AttributeError, IndexError, TypeError, ValueError))
    assert record is None or isinstance(record, (sniffer.PacketRecord, Exception))
