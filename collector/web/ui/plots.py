"""Baseline against current, drawn as inline SVG on the server: no JavaScript, no CDN, and the
page reads the same in any browser or screen reader (each plot has a title and a description
with its figures).

Continuous features get histograms of the share of each window in bins cut at the baseline's
quantiles, so each baseline bar is about as tall as the next and a shift shows as a tilt;
categorical features get paired bars per category.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from markupsafe import Markup, escape

WIDTH, HEIGHT = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 40
BINS = 12
BASELINE_CLASS, CURRENT_CLASS = "series-baseline", "series-current"


def histogram(name: str, baseline: Sequence[float], current: Sequence[float]) -> Markup:
    """Shares of baseline and current values in bins cut at the baseline's quantiles."""
    base = np.asarray(baseline, dtype=float)
    now = np.asarray(current, dtype=float)
    base, now = base[np.isfinite(base)], now[np.isfinite(now)]
    if base.size == 0 or now.size == 0:
        return _empty(name, "no values to compare")
    edges = np.unique(np.quantile(base, np.linspace(0, 1, BINS + 1)))
    if edges.size < 2:  # a constant baseline
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    inner = edges[1:-1]
    # Values beyond the baseline's range fall in the end bins, so nothing drops out of view.
    base_share = np.bincount(np.searchsorted(inner, base, "right"), minlength=edges.size - 1)
    now_share = np.bincount(np.searchsorted(inner, now, "right"), minlength=edges.size - 1)
    labels = [f"{edges[i]:.3g} to {edges[i + 1]:.3g}" for i in range(edges.size - 1)]
    return _paired_bars(
        name,
        labels,
        (base_share / base.size).tolist(),
        (now_share / now.size).tolist(),
        axis_note=f"bins at baseline quantiles, {edges[0]:.3g} to {edges[-1]:.3g}",
    )


def categories(name: str, baseline: Mapping[str, int], current: Mapping[str, int]) -> Markup:
    """Shares of each category, the baseline's most frequent first, new categories after."""
    base_total, now_total = sum(baseline.values()), sum(current.values())
    if base_total == 0 or now_total == 0:
        return _empty(name, "no values to compare")
    order = sorted(baseline, key=lambda c: -baseline[c])
    order += sorted(c for c in current if c not in baseline)
    return _paired_bars(
        name,
        order,
        [baseline.get(c, 0) / base_total for c in order],
        [current.get(c, 0) / now_total for c in order],
        axis_note="categories; new ones last",
        tick_labels=True,
    )


def _paired_bars(
    name: str,
    labels: Sequence[str],
    baseline: Sequence[float],
    current: Sequence[float],
    *,
    axis_note: str,
    tick_labels: bool = False,
) -> Markup:
    top = max([*baseline, *current, 1e-9])
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    slot = plot_width / len(labels)
    bar = max(1.0, slot * 0.38)
    parts = []
    for i, (label, b, c) in enumerate(zip(labels, baseline, current, strict=True)):
        x = LEFT + i * slot + slot * 0.1
        for offset, share, css in ((0.0, b, BASELINE_CLASS), (bar, c, CURRENT_CLASS)):
            height = plot_height * share / top
            parts.append(
                f'<rect class="{css}" x="{x + offset:.1f}" y="{TOP + plot_height - height:.1f}" '
                f'width="{bar:.1f}" height="{height:.1f}"><title>{escape(label)}: '
                f"{'baseline' if css == BASELINE_CLASS else 'current'} {share:.1%}</title></rect>"
            )
        if tick_labels:
            short = label if len(label) <= 12 else f"{label[:11]}…"
            parts.append(
                f'<text class="tick" x="{x + bar:.1f}" y="{TOP + plot_height + 11}" '
                f'text-anchor="middle">{escape(short)}</text>'
            )
    description = "; ".join(
        f"{label}: baseline {b:.1%}, current {c:.1%}"
        for label, b, c in zip(labels, baseline, current, strict=True)
    )
    axis_y = TOP + plot_height
    return Markup(
        f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="plot-{escape(name)}-title plot-{escape(name)}-desc" '
        f'data-feature="{escape(name)}">'
        f'<title id="plot-{escape(name)}-title">{escape(name)}: baseline against current</title>'
        f'<desc id="plot-{escape(name)}-desc">{escape(description)}</desc>'
        f'<line class="axis" x1="{LEFT}" y1="{axis_y}" x2="{WIDTH - RIGHT}" y2="{axis_y}"/>'
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">{top:.0%}</text>'
        f'<text class="tick" x="{LEFT - 4}" y="{axis_y}" text-anchor="end">0</text>'
        + "".join(parts)
        + f'<text class="note" x="{LEFT}" y="{HEIGHT - 22}">{escape(axis_note)}</text>'
        f'<rect class="{BASELINE_CLASS}" x="{LEFT}" y="{HEIGHT - 12}" width="10" height="10"/>'
        f'<text class="note" x="{LEFT + 14}" y="{HEIGHT - 3}">baseline</text>'
        f'<rect class="{CURRENT_CLASS}" x="{LEFT + 80}" y="{HEIGHT - 12}" width="10" height="10"/>'
        f'<text class="note" x="{LEFT + 94}" y="{HEIGHT - 3}">current</text>'
        "</svg>"
    )


def _empty(name: str, why: str) -> Markup:
    return Markup(
        f'<p class="plot-empty" data-feature="{escape(name)}">{escape(name)}: {escape(why)}</p>'
    )
