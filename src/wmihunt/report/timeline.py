"""Geometry of the report's timeline chart: one lane per host, one dot per finding.

The SVG itself is drawn by the HTML template from these numbers (so every label goes
through Jinja's autoescape); nothing here produces markup.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from .fields import as_int, parse_time, risk_band

WIDTH = 1000
LABEL_W = 190
RIGHT_PAD = 16
LANE_H = 26
TOP = 8
AXIS_H = 30
MAX_LANES = 40


def _tick_label(t: datetime, span: timedelta) -> str:
    if span <= timedelta(days=1):
        return t.strftime("%H:%M:%S" if span < timedelta(minutes=5) else "%H:%M")
    return t.strftime("%Y-%m-%d %H:%M")


def build_timeline(
    findings: Sequence[Mapping[str, Any]], anchors: Sequence[str], *, ticks: int = 5
) -> dict[str, Any] | None:
    """Lanes, dots and axis ticks for ``findings`` (``anchors[i]`` is finding i's element id).

    Hosts are lanes ordered by their first finding; beyond ``MAX_LANES`` hosts the rest
    share one lane. Findings without a time are left out (and counted in ``untimed``).
    None when no finding has a time.
    """
    timed = [(parse_time(f.get("time")), f, a) for f, a in zip(findings, anchors, strict=True)]
    points = [(t, f, a) for t, f, a in timed if t is not None]
    if not points:
        return None
    t0 = min(t for t, _, _ in points)
    t1 = max(t for t, _, _ in points)
    span = t1 - t0
    first_seen: dict[str, datetime] = {}
    for t, f, _ in points:
        host = str(f.get("dest") or "(no host)")
        first_seen[host] = min(t, first_seen.get(host, t))
    hosts = sorted(first_seen, key=lambda h: (first_seen[h], h))
    overflow = hosts[MAX_LANES - 1 :] if len(hosts) > MAX_LANES else []
    lane_hosts = hosts[: MAX_LANES - 1] if overflow else hosts
    lane_of = {h: i for i, h in enumerate(lane_hosts)}
    lanes = [
        {"host": h, "label": h if len(h) <= 28 else h[:27] + "…", "y": TOP + i * LANE_H}
        for i, h in enumerate(lane_hosts)
    ]
    if overflow:
        lanes.append(
            {"host": "", "label": f"{len(overflow)} other hosts", "y": TOP + len(lanes) * LANE_H}
        )
    plot_w = WIDTH - LABEL_W - RIGHT_PAD

    def x_of(t: datetime) -> float:
        if span.total_seconds() <= 0:
            return LABEL_W + plot_w / 2
        return LABEL_W + plot_w * ((t - t0) / span)

    dots = []
    per_lane: dict[int, int] = defaultdict(int)
    for t, f, anchor in sorted(points, key=lambda p: p[0]):
        host = str(f.get("dest") or "(no host)")
        lane = lane_of.get(host, len(lane_hosts))
        per_lane[lane] += 1
        dots.append(
            {
                "x": round(x_of(t), 1),
                "y": TOP + lane * LANE_H + LANE_H / 2,
                "r": 4 + min(as_int(f.get("risk_score")), 100) / 25,
                "band": risk_band(f.get("risk_score")),
                "anchor": anchor,
                "title": f"{t:%Y-%m-%d %H:%M:%S} UTC · {host} · {f.get('detection') or ''}"
                f" (risk {as_int(f.get('risk_score'))})",
            }
        )
    n = max(1, ticks - 1)
    tick_list = []
    for i in range(ticks if span.total_seconds() > 0 else 1):
        t = t0 + span * (i / n) if span.total_seconds() > 0 else t0
        tick_list.append({"x": round(x_of(t), 1), "label": _tick_label(t, span)})
    plot_h = len(lanes) * LANE_H
    return {
        "width": WIDTH,
        "height": TOP + plot_h + AXIS_H,
        "label_w": LABEL_W,
        "plot_right": WIDTH - RIGHT_PAD,
        "plot_top": TOP,
        "plot_bottom": TOP + plot_h,
        "lane_h": LANE_H,
        "lanes": lanes,
        "dots": dots,
        "ticks": tick_list,
        "first": f"{t0:%Y-%m-%d %H:%M:%S}",
        "last": f"{t1:%Y-%m-%d %H:%M:%S}",
        "untimed": len(findings) - len(points),
    }
