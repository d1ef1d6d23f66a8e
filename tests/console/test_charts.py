"""Server-side SVG charts: well-formed XML, escaped labels, classes instead of inline style, accessible."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from console.charts import Bar, bar_chart, line_chart

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '</text><script>alert(1)</script><text style="x" onload="y">&amp;"\''


def parse(markup) -> ET.Element:
    return ET.fromstring(str(markup))  # raises on anything that is not well-formed XML


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_line_chart_is_well_formed_with_axis_labels_and_a_title():
    points = [(f"{d:02d}/11", 50 + d) for d in range(1, 31)]
    root = parse(line_chart(points, title="Điểm 180 ngày"))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img" and root.get("aria-label") == "Điểm 180 ngày"
    assert root.find(f"{SVG}title").text == "Điểm 180 ngày"
    labels = texts(root)
    assert {"0", "25", "50", "75", "100"} <= set(labels)  # the y axis
    assert "01/11" in labels and "30/11" in labels and len([t for t in labels if "/11" in t]) <= 7
    (line,) = root.iter(f"{SVG}polyline")
    coords = [tuple(map(float, p.split(","))) for p in line.get("points").split()]
    assert len(coords) == 30 and coords[0][1] > coords[-1][1]  # rising values are drawn higher (smaller y)


def test_missing_days_break_the_line_instead_of_dropping_to_zero():
    root = parse(line_chart([("a", 80), ("b", 82), ("c", None), ("d", 84), ("e", None), ("f", 90), ("g", 91)],
                            title="t"))
    assert len(list(root.iter(f"{SVG}polyline"))) == 2  # a–b and f–g
    assert len(list(root.iter(f"{SVG}circle"))) == 1  # d alone is a dot
    lowest_y = max(float(c) for line in root.iter(f"{SVG}polyline") for p in line.get("points").split()
                   for c in p.split(",")[1:])
    assert lowest_y < 200  # nothing was drawn at 0


def test_an_empty_line_chart_says_so():
    root = parse(line_chart([("a", None), ("b", None)], title="t", empty_text="Chưa có dữ liệu"))
    assert "Chưa có dữ liệu" in texts(root) and not list(root.iter(f"{SVG}polyline"))


def test_hostile_labels_and_titles_are_escaped():
    for markup in (line_chart([(HOSTILE, 10), ("b", 20)], title=HOSTILE, empty_text=HOSTILE),
                   bar_chart([Bar(HOSTILE, 3, css='bar-A" onload="x'), Bar("B", 0)], title=HOSTILE)):
        text = str(markup)
        root = parse(markup)
        assert "<script" not in text and "<text style" not in text  # only as escaped text
        assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
        assert all(not k.startswith("on") and k != "style" for el in root.iter() for k in el.attrib)
        assert HOSTILE in texts(root) or HOSTILE in [el.text for el in root.iter(f"{SVG}title")]
        assert root.get("aria-label") == HOSTILE


def test_bar_chart_scales_bars_and_labels_values():
    root = parse(bar_chart([Bar("A · Tốt", 4, "bar-A"), Bar("B · Khá", 2, "bar-B"), Bar("Chưa đủ dữ liệu", 0)],
                           title="Phân bố xếp loại"))
    rects = list(root.iter(f"{SVG}rect"))
    assert [r.get("class") for r in rects] == ["chart-bar bar-A", "chart-bar bar-B", "chart-bar"]
    heights = [float(r.get("height")) for r in rects]
    assert heights[0] == 2 * heights[1] and heights[2] == 0
    assert [r.find(f"{SVG}title").text for r in rects] == ["A · Tốt: 4", "B · Khá: 2", "Chưa đủ dữ liệu: 0"]
    assert {"A · Tốt", "B · Khá", "4", "2", "0"} <= set(texts(root))


def test_a_bar_chart_of_zeros_is_still_drawn():
    root = parse(bar_chart([Bar("A", 0), Bar("B", 0)], title="t"))
    assert [float(r.get("height")) for r in root.iter(f"{SVG}rect")] == [0, 0]
