"""Official warnings (khien-warnings/1) in JSON and CSV: Vietnamese text, BOM, yes/no words, errors."""

from __future__ import annotations

import json
import unicodedata
from datetime import date
from pathlib import Path

import pytest

from rules.feeds import FeedError, OfficialWarning, parse_feed

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
HEADER = "id,title,cves,source,date,exploited,url"


def write_json(tmp_path: Path, data) -> Path:
    path = tmp_path / "canh-bao.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def write_csv(tmp_path: Path, *rows: str, bom: bool = True) -> Path:
    path = tmp_path / "canh-bao.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + "\r\n".join([HEADER, *rows]).encode("utf-8"))
    return path


def test_json_document_exactly():
    feed = parse_feed(FIXTURES / "warnings.json")
    assert (feed.kind, feed.source, feed.version) == ("warnings", "warnings:NCSC", "2026-11-20")
    assert feed.warnings == (
        OfficialWarning("CB-2026-0142", "Cảnh báo lỗ hổng bảo mật nghiêm trọng trong thư viện Apache Log4j",
                        ("CVE-2021-44228",), "NCSC", date(2026, 11, 18), True,
                        "https://khonggianmang.vn/bai-viet/canh-bao-cb-2026-0142"),
        OfficialWarning("CB-2026-0143",
                        "Cảnh báo chiến dịch tấn công khai thác lỗ hổng trên tường lửa Palo Alto PAN-OS",
                        ("CVE-2024-3400",), "A05", date(2026, 11, 19), True, None),   # per-row source override
        OfficialWarning("CB-2026-0150",
                        "Cảnh báo các lỗ hổng trong OpenSSL ảnh hưởng đến máy chủ Linux của cơ quan nhà nước",
                        ("CVE-2024-5535", "CVE-2024-6119"), "NCSC", date(2026, 11, 20), False, None),
    )


def test_csv_with_bom_crlf_and_vietnamese_words():
    feed = parse_feed(FIXTURES / "warnings.csv")
    assert (feed.kind, feed.source, feed.version) == ("warnings", "warnings:NCSC", "2026-11-21")  # max date
    assert [(w.id, w.cves, w.exploited, w.url) for w in feed.warnings] == [
        ("CB-2026-0142", ("CVE-2021-44228",), True, "https://khonggianmang.vn/bai-viet/canh-bao-cb-2026-0142"),
        ("CB-2026-0150", ("CVE-2024-5535", "CVE-2024-6119"), False, None),
        ("CB-2026-0151", ("CVE-2024-2961", "CVE-2024-33599"), True, None),
    ]
    assert feed.warnings[1].title == "Cảnh báo các lỗ hổng trong OpenSSL, ảnh hưởng đến máy chủ Linux"


def test_csv_decomposed_diacritics_and_mixed_sources(tmp_path):
    nfd = unicodedata.normalize("NFD", "Có")
    path = write_csv(tmp_path, f"A05-01,{unicodedata.normalize('NFD', 'Lỗ hổng')},CVE-2024-3400,A05,2026-10-01,{nfd},",
                     "NC-02,Tiêu đề,CVE-2024-1709,NCSC,2026-10-02,KHÔNG,", bom=False)
    feed = parse_feed(path)
    assert feed.source == "warnings:A05+NCSC"
    assert [w.exploited for w in feed.warnings] == [True, False]
    assert feed.warnings[0].title == "Lỗ hổng"                         # NFC
    calls = []
    parse_feed(path, on_progress=lambda d, t: calls.append((d, t)))
    assert calls == [(2, None)]


def test_csv_without_url_column(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("id,title,cves,source,date,exploited\nX-1,Tiêu đề,CVE-2024-1709,NCSC,2026-10-02,0\n")
    assert parse_feed(path).warnings[0].url is None


def doc(*warnings, **header) -> dict:
    return {"format": "khien-warnings/1", "source": "NCSC", "version": "2026-11-20", **header,
            "warnings": list(warnings)}


GOOD = {"id": "CB-1", "title": "Cảnh báo", "cves": ["CVE-2024-3400"], "date": "2026-11-18", "exploited": True}


@pytest.mark.parametrize(("data", "where", "reason"), [
    (doc({**GOOD, "cves": ["CVE-2024-3400", "CVE-24-1"]}), "warnings[0].cves[1]", "not a CVE id"),
    (doc({**GOOD, "cves": "CVE-2024-3400"}), "warnings[0].cves", "expected a list, got a string"),
    (doc({**GOOD, "date": "20/11/2026"}), "warnings[0].date", "expected a date like 2026-11-20"),
    (doc({**GOOD, "exploited": "có"}), "warnings[0].exploited", "expected true or false"),
    (doc({**GOOD, "title": " "}), "warnings[0].title", "required"),
    (doc({**GOOD, "url": "javascript:alert(1)"}), "warnings[0].url", "expected an http(s) URL"),
    (doc(GOOD, GOOD), "warnings[1].id", "duplicate id 'CB-1': also at warnings[0].id"),
    (doc(GOOD, format="khien-warnings/2"), "format", "unsupported format 'khien-warnings/2'"),
    (doc(GOOD, source=""), "source", "must not be empty"),
    (doc(GOOD, version=None), "version", "required"),
    ({"format": "khien-warnings/1", "source": "NCSC", "version": "1"}, "warnings", "required"),
])
def test_invalid_json(tmp_path, data, where, reason):
    path = write_json(tmp_path, data)
    with pytest.raises(FeedError) as err:
        parse_feed(path)
    assert str(err.value).startswith(f"{path}: {where}: {reason}"), str(err.value)


@pytest.mark.parametrize(("row", "where", "reason"), [
    ("CB-1,Tiêu đề,CVE-2024-3400 CVE-2024-34OO,NCSC,2026-11-18,có,", "line 2, column cves[1]", "not a CVE id"),
    ("CB-1,Tiêu đề,CVE-2024-3400,NCSC,2026-11-31,có,", "line 2, column date", "not a real date"),
    ("CB-1,Tiêu đề,CVE-2024-3400,NCSC,2026-11-18,chắc,", "line 2, column exploited",
     "expected true/false/1/0/có/không"),
    ("CB-1,Tiêu đề,CVE-2024-3400,,2026-11-18,có,", "line 2, column source", "required"),
    ("CB-1,Tiêu đề,CVE-2024-3400,NCSC,2026-11-18", "line 2", "expected 7 columns, got 5"),
    ("CB-1,Tiêu đề,CVE-2024-3400,NCSC,2026-11-18,có,ftp://x", "line 2, column url", "expected an http(s) URL"),
])
def test_invalid_csv_rows(tmp_path, row, where, reason):
    path = write_csv(tmp_path, row)
    with pytest.raises(FeedError) as err:
        parse_feed(path)
    assert str(err.value).startswith(f"{path}: {where}: {reason}"), str(err.value)


def test_csv_line_numbers_count_quoted_newlines_and_duplicates(tmp_path):
    path = write_csv(tmp_path, 'CB-1,"Tiêu đề\r\nhai dòng",CVE-2024-3400,NCSC,2026-11-18,có,',
                     "", "CB-1,Khác,CVE-2024-1709,NCSC,2026-11-19,không,")
    with pytest.raises(FeedError, match=r"line 5, column id: duplicate id 'CB-1': also at line 2, column id"):
        parse_feed(path)


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "w.csv"
    path.write_bytes((HEADER + "\nCB-1,C\xe1nh b\xe1o,CVE-2024-3400,NCSC,2026-11-18,1,\n").encode("latin-1"))
    with pytest.raises(FeedError, match=r"w\.csv: not UTF-8 \(byte \d+\); save the CSV as UTF-8"):
        parse_feed(path)


def test_csv_wrong_header_with_kind(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("ma,tieu_de,cves\n1,2,3\n")
    with pytest.raises(FeedError, match=r"w\.csv: unknown feed format"):
        parse_feed(path, kind="warnings")


def test_csv_with_only_a_header(tmp_path):
    path = write_csv(tmp_path)
    with pytest.raises(FeedError, match=r"canh-bao\.csv: no warning rows after the header"):
        parse_feed(path)


def test_json_without_warnings_is_valid_and_keeps_its_identity(tmp_path):
    feed = parse_feed(write_json(tmp_path, doc(source="A05", version="2026-12")))
    assert (feed.source, feed.version, feed.warnings) == ("warnings:A05", "2026-12", ())
