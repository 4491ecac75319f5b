"""Inline SVG charts, drawn here (no charting library, nothing fetched). Coordinates are
rounded to a tenth of a pixel and series are single paths, which keeps long runs small."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

W, H = 1000, 260  # chart size in px (the page is about as wide)
PAD_L, PAD_R, PAD_T, PAD_B = 70, 16, 14, 34


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(v: float) -> str:
    if float(v).is_integer() and abs(v) < 1e6:
        return f"{v:,.0f}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}" if abs(v) >= 1 else f"{v:.3g}"


def ticks(lo: float, hi: float, n: int = 5, integers: bool = False) -> list[float]:
    if hi == lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in ((1, 2, 5, 10) if integers else (1, 2, 2.5, 5, 10)) if m * mag >= raw)
    if integers:
        step = max(step, 1.0)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def empty(what: str) -> str:
    return f'<p class="empty">No trades: nothing to draw for {esc(what)}.</p>'


def frame(title: str, body: str, kind: str, height: int = H, legend: str = "") -> str:
    return (f'<figure class="fig">{legend}<svg class="chart" data-chart="{kind}" viewBox="0 0 {W} {height}" '
            f'width="{W}" height="{height}" role="img" aria-label="{esc(title)}" '
            f'xmlns="http://www.w3.org/2000/svg">{body}</svg></figure>')


def legend(entries: list[tuple[str, str]]) -> str:
    """(css class of the swatch, label); a class may also be an inline colour (``#rrggbb``)."""
    items = "".join(
        f'<span><i style="background:{cls}"></i>{esc(label)}</span>' if cls.startswith("#")
        else f'<span><i class="{cls}"></i>{esc(label)}</span>' for cls, label in entries)
    return f'<figcaption class="legend">{items}</figcaption>'


@dataclass(frozen=True)
class Scale:
    x0: float
    x1: float
    lo: float
    hi: float
    height: int = H

    def x(self, v: float) -> float:
        return PAD_L + (v - self.x0) / ((self.x1 - self.x0) or 1) * (W - PAD_L - PAD_R)

    def y(self, v: float) -> float:
        return PAD_T + (self.hi - v) / ((self.hi - self.lo) or 1) * (self.height - PAD_T - PAD_B)


def scale(xs: list[float], ys: list[float], height: int = H, pad: float = 0.05) -> Scale:
    lo, hi = min(ys), max(ys)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    margin = (hi - lo) * pad
    return Scale(min(xs), max(xs), lo - margin, hi + margin, height)


def axes(s: Scale, suffix: str = "", integers: bool = False) -> str:
    out = []
    for v in ticks(s.lo, s.hi, integers=integers):
        yy = s.y(v)
        out.append(f'<line class="grid" x1="{PAD_L}" x2="{W - PAD_R}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
                   f'<text class="tick" x="{PAD_L - 6}" y="{yy + 4:.1f}" text-anchor="end">{fmt(v)}{suffix}</text>')
    labels = 6 if s.x1 > s.x0 else 1
    when = "%Y-%m-%d %H:%M" if s.x1 - s.x0 < 5 * 86400 else "%Y-%m-%d"  # a few days: the hours tell ticks apart
    for i in range(labels):
        ts = s.x0 + (s.x1 - s.x0) * i / max(labels - 1, 1)
        anchor = "start" if i == 0 else "end" if i == labels - 1 else "middle"
        out.append(f'<text class="tick" x="{s.x(ts):.1f}" y="{s.height - 12}" text-anchor="{anchor}">'
                   f'{datetime.fromtimestamp(ts, tz=UTC):{when}}</text>')
    return "".join(out)


def path(points: list[tuple[float, float]], s: Scale, step: bool = False) -> str:
    """One path through ``points``; ``step``: the value holds until the next point (a balance
    changes when a trade closes)."""
    out = [f"M{s.x(points[0][0]):.1f},{s.y(points[0][1]):.1f}"]
    for when, value in points[1:]:
        out.append(f"H{s.x(when):.1f}V{s.y(value):.1f}" if step else f"L{s.x(when):.1f},{s.y(value):.1f}")
    return "".join(out)


@dataclass(frozen=True)
class Series:
    label: str
    points: list[tuple[float, float]]  # (epoch s, value)
    css: str = "line"  # class of the path, or a colour (#rrggbb) for many series
    step: bool = False


def line_chart(series: list[Series], kind: str, title: str, *, suffix: str = "", baseline: float | None = None,
               area: bool = False) -> str:
    drawn = [s for s in series if s.points]
    if not drawn:
        return empty(title.lower())
    xs = [p[0] for s in drawn for p in s.points]
    ys = [p[1] for s in drawn for p in s.points] + ([baseline] if baseline is not None else [])
    sc = scale(xs, ys)
    body = [axes(sc, suffix)]
    if baseline is not None:
        body.append(f'<line class="base" x1="{PAD_L}" x2="{W - PAD_R}" y1="{sc.y(baseline):.1f}" y2="{sc.y(baseline):.1f}"/>')
    for s in drawn:
        d = path(s.points, sc, s.step)
        if area:
            body.append(f'<path class="area" d="{d}V{sc.y(baseline or 0.0):.1f}H{sc.x(s.points[0][0]):.1f}Z"/>')
        paint = f'class="line" style="stroke:{s.css}"' if s.css.startswith("#") else f'class="{s.css}"'
        body.append(f'<path {paint} d="{d}"><title>{esc(s.label)}</title></path>')
    key = legend([(s.css, s.label) for s in drawn]) if len(drawn) > 1 else ""
    return frame(title, "".join(body), kind, legend=key)


def bar_chart(bars: list[tuple[str, float, str]], kind: str, title: str, *, suffix: str = "",
              counts: bool = False, negative: set[int] | None = None) -> str:
    """bars: (label, value, tooltip); negative values (or bars listed in ``negative``) in red."""
    if not bars:
        return empty(title.lower())
    values = [b[1] for b in bars]
    lo, hi = min(0.0, *values), max(0.0, *values)
    if hi == lo:
        hi = lo + 1
    sc = Scale(0, 1, lo - (hi - lo) * 0.05 * (lo < 0), hi + (hi - lo) * 0.05)
    slot = (W - PAD_L - PAD_R) / len(bars)
    width = max(slot * 0.8, 1.0)
    body = []
    for v in ticks(sc.lo, sc.hi, integers=counts):
        yy = sc.y(v)
        body.append(f'<line class="grid" x1="{PAD_L}" x2="{W - PAD_R}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
                    f'<text class="tick" x="{PAD_L - 6}" y="{yy + 4:.1f}" text-anchor="end">{fmt(v)}{suffix}</text>')
    every = max(1, math.ceil(len(bars) / 12))
    for i, (label, value, tip) in enumerate(bars):
        x = PAD_L + i * slot + (slot - width) / 2
        top, bottom = sc.y(max(value, 0.0)), sc.y(min(value, 0.0))
        cls = "neg" if value < 0 or i in (negative or set()) else "pos"
        body.append(f'<rect class="bar {cls}" x="{x:.1f}" y="{top:.1f}" width="{width:.1f}" '
                    f'height="{max(bottom - top, 0.5):.1f}"><title>{esc(tip)}</title></rect>')
        if i % every == 0:
            body.append(f'<text class="tick" x="{x + width / 2:.1f}" y="{H - 12}" text-anchor="middle">{esc(label)}</text>')
    body.append(f'<line class="base" x1="{PAD_L}" x2="{W - PAD_R}" y1="{sc.y(0):.1f}" y2="{sc.y(0):.1f}"/>')
    return frame(title, "".join(body), kind)


def histogram_chart(bins: list[tuple[float, float, int]], kind: str, title: str, unit: str,
                    red_below_zero: bool = False) -> str:
    bars = [(fmt((a + b) / 2), float(c), f"{fmt(a)} to {fmt(b)} {unit}: {c} trades") for a, b, c in bins]
    negative = {i for i, (a, b, _c) in enumerate(bins) if (a + b) / 2 < 0} if red_below_zero else set()
    return bar_chart(bars, kind, title, counts=True, negative=negative)


CANDLE_H = 300
#: kind -> (css class, marker shape around its point, legend label). A chart draws each kind as
#: one invisible path with a marker on every vertex: about 8 bytes a trade.
MARKERS = {
    "long": ("m-long", "M-3.5,3H3.5L0,-3.5z", "long entry"),
    "short": ("m-short", "M-3.5,-3H3.5L0,3.5z", "short entry"),
    "win": ("m-win", "M-2.5,-2.5H2.5V2.5H-2.5z", "exit in profit"),
    "loss": ("m-loss", "M-2.5,-2.5H2.5V2.5H-2.5z", "exit at a loss"),
}


def marker_defs() -> str:
    """The marker shapes, once per page (referenced by every candle chart)."""
    shapes = "".join(f'<marker id="mk-{name}" viewBox="-5 -5 10 10" markerWidth="10" markerHeight="10" '
                     f'markerUnits="userSpaceOnUse"><path class="{cls}" d="{shape}"/></marker>'
                     for name, (cls, shape, _label) in MARKERS.items())
    return f'<svg class="defs" width="0" height="0" aria-hidden="true"><defs>{shapes}</defs></svg>'


def candle_chart(candles: dict[str, list[float]], markers: dict[str, list[tuple[float, float]]], kind: str,
                 title: str) -> str:
    """OHLC candles (columns ``ts, open, high, low, close``; already merged) as two paths (up,
    down), and the trades' entries and exits marked. Markers on the same pixel are drawn once."""
    ts = candles["ts"]
    if not ts:
        return '<p class="empty">No candles in the backtest period.</p>'
    step = (ts[-1] - ts[0]) / max(len(ts) - 1, 1)
    prices = [p for _t, p in (m for ms in markers.values() for m in ms)]
    sc = scale([ts[0], ts[-1]], [min(candles["low"] + prices), max(candles["high"] + prices)], height=CANDLE_H, pad=0.03)
    half = max((sc.x(ts[0] + step) - sc.x(ts[0])) * 0.35, 0.4)
    up, down = [], []
    for t, o, h, lo, c in zip(ts, candles["open"], candles["high"], candles["low"], candles["close"], strict=True):
        x, top, bottom = sc.x(t), sc.y(max(o, c)), sc.y(min(o, c))
        body = max(bottom - top, 0.6)
        (up if c >= o else down).append(f"M{x:.1f},{sc.y(h):.1f}V{sc.y(lo):.1f}M{x - half:.1f},{top:.1f}"
                                        f"h{2 * half:.1f}v{body:.1f}h{-2 * half:.1f}z")
    out = [axes(sc), f'<path class="c-up" d="{"".join(up)}"/>', f'<path class="c-down" d="{"".join(down)}"/>']
    shown = []
    for name, (cls, _shape, label) in MARKERS.items():
        spots = list(dict.fromkeys((round(sc.x(when)), round(sc.y(price))) for when, price in markers.get(name, [])))
        if spots:
            d = "M" + "L".join(f"{x},{y}" for x, y in spots)
            out.append(f'<path class="marks" style="marker:url(#mk-{name})" d="{d}"><title>{esc(label)}</title></path>')
            shown.append((cls, label))
    return frame(title, "".join(out), kind, height=CANDLE_H,
                 legend=legend([("c-up", "candle up"), ("c-down", "candle down"), *shown]))
