"""Scan target parsing, range checks, caps and chunking (pure, no network)."""

from __future__ import annotations

import ipaddress

import pytest

from collector.scans.targets import (
    TargetError,
    address_count,
    check_size,
    check_within,
    expand_chunks,
    parse_targets,
)


def nets(*items: str):
    return parse_targets(list(items))


def test_parse_cidr_and_single_addresses():
    assert nets("10.1.0.0/16", "10.1.2.3", "fd00::/64", "::1") == [
        ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("10.1.2.3/32"),
        ipaddress.ip_network("fd00::/64"), ipaddress.ip_network("::1/128")]
    assert nets(" 127.0.0.1 ") == [ipaddress.ip_network("127.0.0.1/32")]


def test_host_bits_name_the_network_meant():
    with pytest.raises(TargetError, match=r"'10\.0\.0\.1/24' has host bits set: did you mean 10\.0\.0\.0/24"):
        nets("10.0.0.1/24")


@pytest.mark.parametrize("item", ["example.gov.vn", "db01", "localhost", "host-1.local."])
def test_hostnames_are_refused(item):
    with pytest.raises(TargetError, match=rf"{item!r} looks like a hostname: use addresses or CIDR"):
        nets(item)


@pytest.mark.parametrize("item", ["10.0.0.256", "10.0.0.0/33", "10.0.0.0/", "1.2.3", "-iL", "::g", ""])
def test_malformed_targets_name_the_item(item):
    with pytest.raises(TargetError) as err:
        nets("10.0.0.0/8", item)
    assert (repr(item.strip()) in str(err.value)) if item else "empty target" in str(err.value)


def test_zoned_ipv6_refused():
    with pytest.raises(TargetError, match="zone"):
        nets("fe80::1%eth0")


def test_address_count_collapses_overlaps():
    assert address_count(nets("10.0.0.0/24", "10.0.0.0/25", "10.0.1.0/24", "::1")) == 513
    assert address_count([]) == 0


def test_check_size():
    check_size(nets("10.0.0.0/24"), max_addresses=256)
    with pytest.raises(TargetError, match="257 addresses, more than the cap of 256"):
        check_size(nets("10.0.0.0/24", "10.0.1.1"), max_addresses=256)


def test_check_within_names_target_unit_and_ranges():
    allowed = nets("10.1.0.0/16")
    check_within(nets("10.1.2.0/24", "10.1.9.9"), allowed=allowed, unit="SO-TTTT")
    with pytest.raises(TargetError, match=r"10\.9\.0\.0/24 is outside unit SO-TTTT's declared ranges 10\.1\.0\.0/16"):
        check_within(nets("10.1.2.0/24", "10.9.0.0/24"), allowed=allowed, unit="SO-TTTT")
    with pytest.raises(TargetError, match=r"10\.0\.0\.0/8 is outside the declared ranges"):
        check_within(nets("10.0.0.0/8"), allowed=allowed)  # a superset is not inside
    with pytest.raises(TargetError, match="outside"):
        check_within(nets("::1"), allowed=allowed)  # other family
    with pytest.raises(TargetError, match=r"declared ranges \(none\)"):
        check_within(nets("10.1.0.1"), allowed=[])


def test_check_within_adjacent_ranges_and_excludes():
    allowed = nets("10.1.0.0/25", "10.1.0.128/25")
    check_within(nets("10.1.0.0/24"), allowed=allowed)  # spans both halves
    with pytest.raises(TargetError, match=r"10\.1\.0\.0/26 lies entirely in the exclusion list 10\.1\.0\.0/25"):
        check_within(nets("10.1.0.0/26"), allowed=allowed, excludes=nets("10.1.0.0/25"))


def test_chunks_remove_excludes_and_keep_order():
    chunks = expand_chunks(nets("10.0.0.0/29", "10.0.0.4"), excludes=nets("10.0.0.2", "10.0.0.4/31"), chunk_size=2)
    # /29 without network and broadcast: .1-.6; minus .2, .4, .5
    assert chunks == [["10.0.0.1", "10.0.0.3"], ["10.0.0.6"]]
    assert chunks == expand_chunks(nets("10.0.0.4", "10.0.0.0/29"), excludes=nets("10.0.0.4/31", "10.0.0.2"),
                                   chunk_size=2)


def test_chunks_never_mix_families():
    chunks = expand_chunks(nets("fd00::/126", "127.0.0.1", "::1", "127.0.0.2/31"), chunk_size=3)
    # chunks fill across networks of one family, but the IPv4 remainder never shares a chunk with IPv6
    assert chunks == [["127.0.0.1", "127.0.0.2", "127.0.0.3"], ["::1", "fd00::1", "fd00::2"], ["fd00::3"]]
    assert expand_chunks(nets("127.0.0.1", "::1")) == [["127.0.0.1"], ["::1"]]
    for chunk in chunks:
        assert len({ipaddress.ip_address(a).version for a in chunk}) == 1


def test_chunks_small_networks_keep_every_address():
    assert expand_chunks(nets("10.0.0.0/31", "10.0.0.9")) == [["10.0.0.0", "10.0.0.1", "10.0.0.9"]]


def test_chunks_guard_against_huge_expansion():
    with pytest.raises(TargetError, match="too many to expand"):
        expand_chunks(nets("fd00::/64"))
    with pytest.raises(TargetError, match="chunk_size"):
        expand_chunks(nets("10.0.0.1"), chunk_size=0)


def test_chunk_boundaries_for_resume():
    chunks = expand_chunks(nets("10.2.0.0/23"))
    assert [len(c) for c in chunks] == [256, 254]
    assert chunks[0][0] == "10.2.0.1" and chunks[1][0] == "10.2.1.1" and chunks[-1][-1] == "10.2.1.254"
