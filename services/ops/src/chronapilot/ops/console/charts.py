"""Charts drawn on the server as inline SVG from the recorded samples (no script, no external
resource: the page's Content-Security-Policy allows neither).

:func:`series` turns samples into points (rates from counters, averages from histogram sums);
:func:`svg` draws one line chart. Both are pure.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 170, 56, 22, 10


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    unit: str
    points: list[tuple[datetime, float]]

    @property
    def svg(self) -> Markup:
        return svg(self)


def series(samples: Sequence[dict[str, Any]]) -> list[Chart]:
    """The console's charts from samples (oldest first)."""
    return [
        Chart(
            "notifications", "Webhook notifications / s", "/s", _rate(samples, "webhook_notifications_total")
        ),
        Chart(
            "sync_latency",
            "Sync latency (mean)",
            "s",
            _ratio(samples, "sync_seconds_sum", "sync_seconds_count"),
        ),
        Chart("staleness", "Oldest last sync (staleness)", "s", _gauge(samples, "staleness_s")),
        Chart("errors", "Connections in error", "", _gauge(samples, "connections_error")),
        Chart("outbox", "Outbox: oldest unsent", "s", _gauge(samples, "outbox_oldest_s")),
    ]


def _gauge(samples: Sequence[dict[str, Any]], key: str) -> list[tuple[datetime, float]]:
    return [(s["at"], float(s["values"][key])) for s in samples if s["values"].get(key) is not None]


def _deltas(samples: Sequence[dict[str, Any]], key: str) -> list[tuple[datetime, float, float]]:
    """(time, seconds since the previous sample, increase) for counter ``key``; a reset
    (a decrease: a process restarted) or a gap gives no point."""
    out = []
    for before, after in itertools.pairwise(samples):
        a, b = before["values"].get(key), after["values"].get(key)
        dt = (after["at"] - before["at"]).total_seconds()
        if a is None or b is None or dt <= 0 or b < a:
            continue
        out.append((after["at"], dt, float(b) - float(a)))
    return out


def _rate(samples: Sequence[dict[str, Any]], key: str) -> list[tuple[datetime, float]]:
    return [(at, inc / dt) for at, dt, inc in _deltas(samples, key)]


def _ratio(samples: Sequence[dict[str, Any]], num: str, den: str) -> list[tuple[datetime, float]]:
    counts = {at: inc for at, _, inc in _deltas(samples, den)}
    return [(at, inc / counts[at]) for at, _, inc in _deltas(samples, num) if counts.get(at)]


def svg(chart: Chart) -> Markup:
    """One line chart, ``role="img"`` with a label saying its last value."""
    if not chart.points:
        empty = escape(f"{chart.title}: no data")
        return _safe(
            f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{empty}">'
            f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle" class="empty">'
            "no samples yet</text></svg>"
        )
    times = [p[0].timestamp() for p in chart.points]
    values = [p[1] for p in chart.points]
    t0, t1 = min(times), max(times)
    top = max(values) or 1.0
    plot_w, plot_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_BOTTOM - PAD_TOP

    def x(t: float) -> float:
        return PAD_LEFT + (plot_w * (t - t0) / (t1 - t0) if t1 > t0 else plot_w)

    def y(v: float) -> float:
        return PAD_TOP + plot_h * (1 - v / top)

    line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(times, values, strict=True))
    last = values[-1]
    label = f"{chart.title}: last {_fmt(last)}{chart.unit}, max {_fmt(top)}{chart.unit}"
    start, end = chart.points[0][0], chart.points[-1][0]
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">',
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH - 8}" '
        f'y2="{PAD_TOP + plot_h}"/>',
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{PAD_TOP + plot_h}"/>',
        f'<text class="tick" x="{PAD_LEFT - 4}" y="{PAD_TOP + 8}" text-anchor="end">'
        f"{escape(_fmt(top))}</text>",
        f'<text class="tick" x="{PAD_LEFT - 4}" y="{PAD_TOP + plot_h}" text-anchor="end">0</text>',
        f'<text class="tick" x="{PAD_LEFT}" y="{HEIGHT - 4}">{start:%H:%M} UTC</text>',
        f'<text class="tick" x="{WIDTH - 8}" y="{HEIGHT - 4}" text-anchor="end">{end:%H:%M} UTC</text>',
        f'<polyline class="line" points="{line}"/>' if len(values) > 1 else "",
        f'<circle class="dot" cx="{x(times[-1]):.1f}" cy="{y(last):.1f}" r="3"/>',
        "</svg>",
    ]
    return _safe("".join(parts))


def _safe(html: str) -> Markup:
    """The drawn SVG as markup: every value put into it is a number or was escaped."""
    return Markup(html)  # noqa: S704


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.3g}"
