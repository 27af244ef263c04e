"""The inline SVG charts: well-formed, self-contained, exact labels, escaped text, and shapes that follow the data."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trader.app.charts import bar_chart, drawdown, line_chart

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _series(*values: str) -> list[tuple[datetime, Decimal]]:
    return [(T0 + timedelta(hours=i), Decimal(v)) for i, v in enumerate(values)]


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    assert root.tag == f"{SVG}svg"
    return root


def _texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_drawdown_is_the_distance_below_the_running_peak() -> None:
    assert [v for _, v in drawdown(_series("100", "110", "99.5", "120", "118"))] == [
        Decimal(0),
        Decimal(0),
        Decimal("-10.5"),
        Decimal(0),
        Decimal(-2),
    ]


def test_line_chart_plots_every_point_left_to_right_and_labels_exact_extremes() -> None:
    root = _parse(line_chart(_series("1000", "1012.34", "995.5"), title="Equity", unit="USD"))
    (line,) = root.iter(f"{SVG}polyline")
    xs = [Decimal(p.split(",")[0]) for p in line.attrib["points"].split()]
    ys = [Decimal(p.split(",")[1]) for p in line.attrib["points"].split()]
    assert len(xs) == 3
    assert xs == sorted(xs)
    # SVG y grows downwards: the highest value has the smallest y.
    assert ys[1] < ys[0] < ys[2]
    texts = _texts(root)
    assert "Equity" in texts
    assert "1,012.34 USD" in texts
    assert "995.50 USD" in texts
    assert "last 995.50 USD" in texts


def test_line_chart_sorts_by_time() -> None:
    pts = _series("1", "2", "3")
    assert line_chart(list(reversed(pts)), title="x") == line_chart(pts, title="x")


def test_drawdown_panel_only_when_asked_and_shaded_only_below_a_peak() -> None:
    rising = _series("1", "2", "3")
    falling = _series("3", "1", "2")
    assert not list(_parse(line_chart(falling, title="e")).iter(f"{SVG}polygon"))
    assert not list(_parse(line_chart(rising, title="e", show_drawdown=True)).iter(f"{SVG}polygon"))
    root = _parse(line_chart(falling, title="e", show_drawdown=True))
    (area,) = root.iter(f"{SVG}polygon")
    assert area.attrib["class"] == "chart-dd"
    assert "-2.00" in _texts(root)
    assert int(root.attrib["height"]) > int(_parse(line_chart(falling, title="e")).attrib["height"])


def test_empty_and_single_point_series_still_render() -> None:
    assert "no data" in _texts(_parse(line_chart([], title="Equity", show_drawdown=True)))
    root = _parse(line_chart(_series("5"), title="Equity"))
    assert len(list(root.iter(f"{SVG}circle"))) == 1


def test_bar_chart_grows_positive_right_and_negative_left_of_zero() -> None:
    root = _parse(bar_chart([("2026-12-01", Decimal("12.5")), ("2026-12-02", Decimal("-5"))], title="Daily PnL"))
    pos, neg = list(root.iter(f"{SVG}rect"))
    assert pos.attrib["class"] == "chart-pos"
    assert neg.attrib["class"] == "chart-neg"
    assert Decimal(neg.attrib["x"]) + Decimal(neg.attrib["width"]) == Decimal(pos.attrib["x"])  # both touch zero
    assert abs(Decimal(pos.attrib["width"]) - Decimal(neg.attrib["width"]) * Decimal("2.5")) < 1  # 12.5 vs 5
    assert {"12.50", "-5.00"} <= set(_texts(root))


def test_text_is_escaped_and_nothing_external_is_referenced() -> None:
    name = 'Will <b>"X"</b> & Y win? ' + "z" * 40
    svg = bar_chart([(name, Decimal("0.0012"))], title="<script>alert(1)</script>") + line_chart(
        _series("1", "2"), title="a&b"
    )
    assert "<script>" not in svg
    assert "<b>" not in svg
    root = _parse(svg.split("</svg>")[0] + "</svg>")
    assert name in "".join(root.itertext())  # full name kept in a <title> tooltip
    assert "0.0012" in _texts(root)
    assert not re.search(r"(href|src|url\()", svg)
