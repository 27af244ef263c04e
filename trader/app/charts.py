"""Self-contained inline SVG charts from exact decimals: no JavaScript, no external assets, no floats.

Two pure functions return an ``<svg>`` element as a string, ready to paste into an HTML page (the dashboard at
``GET /``, ``trader report``, a backtest report):

- ``line_chart(points, ...)``: a time series (``(datetime, Decimal)`` pairs, e.g. equity), with an optional
  drawdown panel beneath it (the distance below the running peak, shaded);
- ``bar_chart(bars, ...)``: horizontal bars of labelled values (e.g. PnL per day, market or strategy), positive
  bars green to the right of zero, negative red to the left.

``drawdown(points)`` is the series the drawdown panel draws, for callers that want the numbers too.

Values are ``Decimal`` and stay exact until they become pixel coordinates (rounded to 0.1 px); the labels show the
values themselves. All text is escaped, so market names and strategy labels may contain anything. Empty input gives
a chart that says "no data" rather than an error. Colours come from CSS classes with inline defaults, so a page can
restyle them (``.chart-line``, ``.chart-dd``, ``.chart-pos``, ``.chart-neg``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from html import escape

__all__ = ["bar_chart", "drawdown", "line_chart"]

_PX = Decimal("0.1")
_FONT = 'font-family="system-ui,sans-serif" font-size="11"'
_MARGIN_LEFT = 92
_MARGIN_RIGHT = 12
_MARGIN_TOP = 22
_AXIS_HEIGHT = 18


def drawdown(points: Sequence[tuple[datetime, Decimal]]) -> list[tuple[datetime, Decimal]]:
    """The distance of each point below the highest value so far (0 at a new peak, negative below it)."""
    out: list[tuple[datetime, Decimal]] = []
    peak: Decimal | None = None
    for ts, value in points:
        peak = value if peak is None or value > peak else peak
        out.append((ts, value - peak))
    return out


def line_chart(
    points: Sequence[tuple[datetime, Decimal]],
    *,
    title: str,
    unit: str = "",
    show_drawdown: bool = False,
    width: int = 640,
    height: int = 220,
) -> str:
    """An SVG line chart of `points` (sorted by time here), titled `title`; `unit` follows the value labels
    (e.g. "USD"). With `show_drawdown`, a panel a third of the height is added beneath, shading the drawdown."""
    series = sorted(points, key=lambda p: p[0])
    dd_height = height // 3 if show_drawdown else 0
    total = height + dd_height
    parts = [_open_svg(width, total, title), _title(title)]
    if not series:
        parts.append(_no_data(width, total))
        parts.append("</svg>")
        return "".join(parts)
    plot_w = width - _MARGIN_LEFT - _MARGIN_RIGHT
    main_top, main_bottom = _MARGIN_TOP, height - _AXIS_HEIGHT
    t0 = series[0][0]
    span = _micros(series[-1][0] - t0)

    def x_of(ts: datetime) -> Decimal:
        if span == 0:
            return Decimal(_MARGIN_LEFT + plot_w)
        return Decimal(_MARGIN_LEFT) + Decimal(_micros(ts - t0)) / span * plot_w

    lo = min(v for _, v in series)
    hi = max(v for _, v in series)
    parts.append(_frame(main_top, main_bottom, width))
    parts.append(_y_label(hi, main_top + 4, unit))
    parts.append(_y_label(lo, main_bottom, unit))
    coords = [(x_of(ts), _scale(v, lo, hi, main_top, main_bottom)) for ts, v in series]
    if len(coords) == 1:
        x, y = coords[0]
        parts.append(f'<circle class="chart-line" cx="{_px(x)}" cy="{_px(y)}" r="3" fill="#2563eb"/>')
    else:
        path = " ".join(f"{_px(x)},{_px(y)}" for x, y in coords)
        parts.append(f'<polyline class="chart-line" points="{path}" fill="none" stroke="#2563eb" stroke-width="1.5"/>')
    last = series[-1][1]
    parts.append(
        f'<text x="{width - _MARGIN_RIGHT}" y="{main_top - 6}" text-anchor="end" {_FONT}>'
        f"last {escape(_fmt(last, unit))}</text>"
    )
    axis_y = total - 4
    short = span < 86_400 * 1_000_000  # under a day: the date once, then times with seconds
    first, last_ts = _fmt_ts(t0), _fmt_ts(series[-1][0])
    if short and span:
        last_ts = series[-1][0].strftime("%H:%M:%S")
        first = t0.strftime("%Y-%m-%d %H:%M:%S")
    parts.append(f'<text x="{_MARGIN_LEFT}" y="{axis_y}" {_FONT} fill="#555">{escape(first)}</text>')
    parts.append(
        f'<text x="{width - _MARGIN_RIGHT}" y="{axis_y}" text-anchor="end" {_FONT} fill="#555">{escape(last_ts)}</text>'
    )
    if show_drawdown:
        dd = drawdown(series)
        dd_top, dd_bottom = height - 6, total - _AXIS_HEIGHT
        deepest = min(v for _, v in dd)
        parts.append(_frame(dd_top, dd_bottom, width))
        parts.append(_y_label(deepest, dd_bottom, unit))
        parts.append(
            f'<text x="{_MARGIN_LEFT - 4}" y="{dd_top + 10}" text-anchor="end" {_FONT} fill="#555">drawdown</text>'
        )
        if deepest < 0:
            pts = [(x_of(ts), _scale(v, deepest, Decimal(0), dd_top, dd_bottom)) for ts, v in dd]
            outline = " ".join(f"{_px(x)},{_px(y)}" for x, y in pts)
            area = f"{_px(pts[0][0])},{dd_top} {outline} {_px(pts[-1][0])},{dd_top}"
            parts.append(f'<polygon class="chart-dd" points="{area}" fill="#dc2626" fill-opacity="0.35"/>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    bars: Sequence[tuple[str, Decimal]],
    *,
    title: str,
    unit: str = "",
    width: int = 640,
    bar_height: int = 18,
) -> str:
    """An SVG chart of one horizontal bar per `(label, value)`, in the given order, titled `title`. Bars grow
    from a zero line: positive to the right (class ``chart-pos``), negative to the left (``chart-neg``)."""
    label_w = min(200, width // 3)
    value_w = 90
    rows = max(1, len(bars))
    total = _MARGIN_TOP + rows * (bar_height + 4) + 6
    parts = [_open_svg(width, total, title), _title(title)]
    if not bars:
        parts.append(_no_data(width, total))
        parts.append("</svg>")
        return "".join(parts)
    lo = min(Decimal(0), *(v for _, v in bars))
    hi = max(Decimal(0), *(v for _, v in bars))
    left = label_w + 8
    right = width - value_w
    zero = _scale_x(Decimal(0), lo, hi, left, right)
    for i, (label, value) in enumerate(bars):
        top = _MARGIN_TOP + i * (bar_height + 4)
        end = _scale_x(value, lo, hi, left, right)
        x, w = (zero, end - zero) if value >= 0 else (end, zero - end)
        cls, colour = ("chart-pos", "#16a34a") if value >= 0 else ("chart-neg", "#dc2626")
        text_y = top + bar_height - 5
        parts.append(
            f'<text x="{label_w}" y="{text_y}" text-anchor="end" {_FONT}>{escape(_shorten(label, 32))}'
            f"<title>{escape(label)}</title></text>"
        )
        parts.append(
            f'<rect class="{cls}" x="{_px(x)}" y="{top}" width="{_px(w)}" height="{bar_height}" fill="{colour}"/>'
        )
        parts.append(f'<text x="{right + 6}" y="{text_y}" {_FONT}>{escape(_fmt(value, unit))}</text>')
    bottom = _MARGIN_TOP + rows * (bar_height + 4)
    parts.append(f'<line x1="{_px(zero)}" y1="{_MARGIN_TOP - 2}" x2="{_px(zero)}" y2="{bottom}" stroke="#888"/>')
    parts.append("</svg>")
    return "".join(parts)


def _open_svg(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
    )


def _title(title: str) -> str:
    return f'<text x="4" y="14" {_FONT} font-weight="bold">{escape(title)}</text>'


def _no_data(width: int, height: int) -> str:
    return f'<text x="{width // 2}" y="{height // 2 + 6}" text-anchor="middle" {_FONT} fill="#888">no data</text>'


def _frame(top: int, bottom: int, width: int) -> str:
    return (
        f'<rect x="{_MARGIN_LEFT}" y="{top}" width="{width - _MARGIN_LEFT - _MARGIN_RIGHT}" '
        f'height="{bottom - top}" fill="none" stroke="#ddd"/>'
    )


def _y_label(value: Decimal, y: int, unit: str) -> str:
    return (
        f'<text x="{_MARGIN_LEFT - 4}" y="{y}" text-anchor="end" {_FONT} fill="#555">{escape(_fmt(value, unit))}</text>'
    )


def _scale(value: Decimal, lo: Decimal, hi: Decimal, top: int, bottom: int) -> Decimal:
    """Vertical pixel of `value` when `lo` sits at `bottom` and `hi` at `top` (middle when the range is flat)."""
    if hi == lo:
        return Decimal(top + bottom) / 2
    return Decimal(bottom) - (value - lo) / (hi - lo) * (bottom - top)


def _scale_x(value: Decimal, lo: Decimal, hi: Decimal, left: int, right: int) -> Decimal:
    if hi == lo:
        return Decimal(left)
    return Decimal(left) + (value - lo) / (hi - lo) * (right - left)


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _px(value: Decimal) -> str:
    return str(value.quantize(_PX))


def _fmt(value: Decimal, unit: str) -> str:
    text = f"{value:,.2f}" if value == value.quantize(Decimal("0.01")) or abs(value) >= 1 else f"{value:,.4f}"
    return f"{text} {unit}" if unit else text


def _fmt_ts(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
