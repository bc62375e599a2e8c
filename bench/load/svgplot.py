"""Line charts as SVG, written by hand (matplotlib is not installed): stacked panels sharing
one time axis, each with its own y axis, grid, ticks, labels and legend, and vertical markers
(the worker kill and restart)."""

import math
from xml.sax.saxutils import escape

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"]


def nice_ticks(lo, hi, target=6):
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(1, target)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, v = [], start
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def fmt_tick(v):
    if abs(v - round(v)) < 1e-9:
        return f"{int(round(v)):,}"
    return f"{v:g}"


def chart(title, panels, markers=(), x_label="seconds since the emails were dropped", width=960):
    """panels: [{"title", "y_label", "series": [{"name", "points": [(x, y)...], "dash"?}]}]
    markers: [(x, label)]. Returns the SVG text."""
    left, right, top_pad, panel_h, gap, bottom = 80, 250, 48, 220, 56, 56
    height = top_pad + len(panels) * panel_h + (len(panels) - 1) * gap + bottom
    plot_w = width - left - right
    xs = [x for p in panels for s in p["series"] for x, _ in s["points"]] + [m[0] for m in markers]
    x_hi = max(xs) if xs else 1.0
    x_ticks = nice_ticks(0.0, max(1.0, x_hi))
    x_max = x_ticks[-1]

    def sx(x):
        return left + plot_w * (x / x_max)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">{escape(title)}</text>']
    for pi, panel in enumerate(panels):
        y0 = top_pad + pi * (panel_h + gap)
        ys = [y for s in panel["series"] for _, y in s["points"]]
        y_ticks = nice_ticks(0.0, max(1.0, max(ys) if ys else 1.0), 5)
        y_max = y_ticks[-1]

        def sy(y, y0=y0, y_max=y_max):
            return y0 + panel_h - panel_h * (y / y_max)

        out.append(f'<text x="{left}" y="{y0 - 8}" font-size="13" font-weight="bold">{escape(panel["title"])}</text>')
        for t in y_ticks:  # horizontal grid + y labels
            out.append(f'<line x1="{left}" y1="{sy(t):.1f}" x2="{left + plot_w}" y2="{sy(t):.1f}" stroke="#e5e5e5"/>')
            out.append(f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{fmt_tick(t)}</text>')
        for t in x_ticks:  # vertical grid + x labels
            out.append(f'<line x1="{sx(t):.1f}" y1="{y0}" x2="{sx(t):.1f}" y2="{y0 + panel_h}" stroke="#f0f0f0"/>')
            out.append(f'<text x="{sx(t):.1f}" y="{y0 + panel_h + 16}" text-anchor="middle">{fmt_tick(t)}</text>')
        out.append(f'<rect x="{left}" y="{y0}" width="{plot_w}" height="{panel_h}" fill="none" stroke="#333"/>')
        cy = y0 + panel_h / 2
        out.append(f'<text x="{left - 58}" y="{cy}" text-anchor="middle" transform="rotate(-90 {left - 58} {cy})">'
                   f'{escape(panel["y_label"])}</text>')
        for mi, (mx, label) in enumerate(markers):
            out.append(f'<line x1="{sx(mx):.1f}" y1="{y0}" x2="{sx(mx):.1f}" y2="{y0 + panel_h}" stroke="#000" '
                       f'stroke-dasharray="4 3"/>')
            if pi == 0:  # labels staggered so two close markers do not overwrite each other
                out.append(f'<text x="{sx(mx) + 3:.1f}" y="{y0 + 12 + 14 * mi}" font-size="11">{escape(label)}</text>')
        for si, s in enumerate(panel["series"]):
            colour = s.get("colour") or COLOURS[si % len(COLOURS)]
            pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s["points"])
            dash = ' stroke-dasharray="6 3"' if s.get("dash") else ""
            if pts:
                out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.8"{dash}/>')
            ly = y0 + 14 + si * 18  # legend, right of the plot
            lx = left + plot_w + 14
            out.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 22}" y2="{ly - 4}" stroke="{colour}" stroke-width="2.5"{dash}/>')
            out.append(f'<text x="{lx + 28}" y="{ly}">{escape(s["name"])}</text>')
        out.append(f'<text x="{left + plot_w / 2}" y="{y0 + panel_h + 34}" text-anchor="middle">{escape(x_label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
