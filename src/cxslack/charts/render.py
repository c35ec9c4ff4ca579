"""The alert evaluation chart as a PNG a person reads at a glance on a phone.

Drawn with matplotlib's Agg backend (the `charts` extra: `pip install 'cxslack[charts]'`), imported
only here and only when a chart is drawn, so no other command pays for it. The picture is an
opaque light card — readable on Slack's light and dark themes alike — 1200×675 px with large type:
the alert's name and the time range on top, the series, the threshold as a dashed line with the
breaching side shaded, and the trigger (and resolve) as labelled vertical markers; colours are
the colour-blind-safe Okabe–Ito set. `Picture.drawn` is read back from what matplotlib plotted,
not from the input, so tests can check that the picture shows the data it was given.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cxslack.charts.model import ChartData, ChartUnavailable, rfc3339
from cxslack.errors import UsageError

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.5, 150  # 1200 × 675 px: Slack's preview width, legible on a phone
MAX_PNG_BYTES = 1_000_000  # a chart is ~50-120 kB; anything near this is a bug
ALT_TEXT_MAX = 1000  # files.getUploadURLExternal: alt_txt_too_large past 1,000 characters
INK, MUTED, GRID, CARD = "#1d1c1d", "#616061", "#dddddd", "#ffffff"
SERIES_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#000000")
THRESHOLD, TRIGGERED, RESOLVED = "#D55E00", "#A50026", "#009E73"
SECONDS_PER_DAY = 86400.0  # matplotlib's date numbers are days since 1970-01-01 UTC
_LOCK = threading.Lock()  # matplotlib's font and text caches are shared by every figure


@dataclass(frozen=True)
class Picture:
    png: bytes
    width: int
    height: int
    alt_text: str
    title: str
    filename: str
    drawn: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"bytes": len(self.png), "width": self.width, "height": self.height, "title": self.title,
                "alt_text": self.alt_text, "drawn": self.drawn}  # fmt: skip


def charts_available() -> bool:
    """Whether the charts extra is installed (looked up without importing it)."""
    from importlib.util import find_spec

    return find_spec("matplotlib") is not None


def require_charts() -> None:
    if not charts_available():
        raise ChartUnavailable(
            "charts_extra_missing",
            "drawing charts needs matplotlib, which cxslack's charts extra installs",
            "Install it: pip install 'cxslack[charts]'",
        )


def render(data: ChartData) -> Picture:
    """The chart of `data` as a PNG, with its alt text and what was drawn."""
    require_charts()
    with _LOCK:
        return _render(data)


def _render(data: ChartData) -> Picture:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, DateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, facecolor=CARD)
    axes = figure.add_axes((0.085, 0.2, 0.885, 0.62), facecolor=CARD)
    for index, series in enumerate(data.series):
        xs = [t / SECONDS_PER_DAY for t, _ in series.points]
        axes.plot(xs, [v for _, v in series.points], color=SERIES_COLOURS[index % len(SERIES_COLOURS)],
                  linewidth=2.4, marker="o" if len(xs) <= 40 else None, markersize=3.5, label=series.label,
                  gid=f"series:{index}")  # fmt: skip
    alert = data.alert
    if alert.threshold is not None:
        axes.axhline(alert.threshold, color=THRESHOLD, linewidth=1.8, linestyle=(0, (6, 4)), gid="threshold",
                     label=f"threshold {alert.operator or ''} {_number(alert.threshold)}".replace("  ", " "))  # fmt: skip
    low, high = _y_limits(data)
    axes.set_ylim(low, high)
    axes.set_xlim(data.start / SECONDS_PER_DAY, data.end / SECONDS_PER_DAY)
    if alert.threshold is not None and alert.operator:
        breach = (alert.threshold, high) if alert.operator.startswith(">") else (low, alert.threshold)
        axes.axhspan(*breach, color=THRESHOLD, alpha=0.07, linewidth=0, gid="breach")
    _marker(axes, data, data.trigger.at, "triggered", TRIGGERED, high)
    if data.trigger.resolved is not None and data.start <= data.trigger.resolved <= data.end:
        _marker(axes, data, data.trigger.resolved, "resolved", RESOLVED, high)
    span = data.end - data.start
    axes.xaxis.set_major_locator(AutoDateLocator(tz=UTC, minticks=4, maxticks=7))
    axes.xaxis.set_major_formatter(DateFormatter("%H:%M" if span <= 86400 else "%d %b %H:%M", tz=UTC))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _tick(value)))
    axes.grid(True, color=GRID, linewidth=0.8)
    axes.tick_params(colors=INK, labelsize=12, length=0)
    for side, spine in axes.spines.items():
        spine.set_visible(side == "bottom")
        spine.set_color(MUTED)
    figure.text(0.085, 0.93, _clip(alert.name, 60), fontsize=17, fontweight="bold", color=INK, va="center")
    figure.text(0.085, 0.865, subtitle(data), fontsize=11.5, color=MUTED, va="center")
    handles, labels = axes.get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.075, 0.0), ncol=min(3, len(labels)),
                  frameon=False, fontsize=11, labelcolor=INK, handlelength=2.2)  # fmt: skip
    drawn = _drawn(axes)
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    png = buffer.getvalue()
    if len(png) > MAX_PNG_BYTES:
        raise UsageError("chart_too_large", f"the chart came out at {len(png)} bytes (limit {MAX_PNG_BYTES})")
    width, height = round(WIDTH_IN * DPI), round(HEIGHT_IN * DPI)
    case = data.case or "case"
    return Picture(png, width, height, alt_text(data), f"{alert.name} — alert evaluation chart",
                   f"{case}-alert-evaluation.png", drawn)  # fmt: skip


def _marker(axes: Any, data: ChartData, at: float, label: str, colour: str, top: float) -> None:
    """A vertical line at `at`, labelled with what happened and when (left of it near the right edge)."""
    x = at / SECONDS_PER_DAY
    axes.axvline(x, color=colour, linewidth=2, gid=f"marker:{label}", label="_nolegend_")
    right = (at - data.start) > 0.72 * (data.end - data.start)
    axes.annotate(f"{label} {_clock(at).removesuffix(' UTC')}", (x, top), xytext=(-5 if right else 5, -4),
                  textcoords="offset points", ha="right" if right else "left", va="top", fontsize=11,
                  fontweight="bold", color=colour)  # fmt: skip


def _tick(value: float) -> str:
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if abs(value) >= size:
            return f"{value / (size if unit != 'k' else 1e3):g}{unit}"
    return f"{value:g}"


def _y_limits(data: ChartData) -> tuple[float, float]:
    values = [v for s in data.series for _, v in s.points]
    if data.alert.threshold is not None:
        values.append(data.alert.threshold)
    low, high = min(values), max(values)
    pad = (high - low) * 0.12 or abs(high) * 0.1 or 1.0
    low = 0.0 if low >= 0 and low - pad < 0 else low - pad
    return low, high + pad


def _drawn(axes: Any) -> dict[str, Any]:
    """What the axes hold, read back from matplotlib's artists (x back in unix seconds)."""
    series, threshold, markers = [], None, []
    for line in axes.get_lines():
        gid = line.get_gid() or ""
        xs, ys = line.get_xdata(), line.get_ydata()
        if gid.startswith("series:"):
            points = [[round(float(x) * SECONDS_PER_DAY, 3), float(y)] for x, y in zip(xs, ys, strict=True)]
            series.append({"label": line.get_label(), "points": points})
        elif gid == "threshold":
            threshold = {"value": float(ys[0]), "label": line.get_label()}
        elif gid.startswith("marker:"):
            markers.append(
                {"kind": gid.removeprefix("marker:"), "at": rfc3339(float(xs[0]) * SECONDS_PER_DAY)}
            )
    low, high = axes.get_ylim()
    left, right = axes.get_xlim()
    return {"series": series, "threshold": threshold, "markers": markers,
            "x_range": [rfc3339(left * SECONDS_PER_DAY), rfc3339(right * SECONDS_PER_DAY)],
            "y_range": [float(low), float(high)]}  # fmt: skip


def subtitle(data: ChartData) -> str:
    start = datetime.fromtimestamp(data.start, UTC)
    end = datetime.fromtimestamp(data.end, UTC)
    when = f"{start:%d %b %Y %H:%M}–{end:%H:%M} UTC" if start.date() == end.date() else \
        f"{start:%d %b %H:%M} – {end:%d %b %Y %H:%M} UTC"  # fmt: skip
    return f"{data.case} · {when} · one point per {_duration(data.alert.window)} evaluation window"


def alt_text(data: ChartData) -> str:
    """What the picture shows, in words (screen readers; Slack's alt_txt, at most 1,000 characters)."""
    alert = data.alert
    parts = [f"Line chart of alert {alert.name} ({'metric' if alert.kind == 'metric' else 'log count'}) "
             f"for {data.case}, {subtitle(data).split(' · ', 1)[1]}."]  # fmt: skip
    for series in data.series[:3]:
        values = [v for _, v in series.points]
        peak_at, peak = max(series.points, key=lambda p: p[1])
        parts.append(f"{series.label}: {len(values)} points from {_number(min(values))} to {_number(peak)}, "
                     f"highest at {_clock(peak_at)}.")  # fmt: skip
    if len(data.series) > 3:
        parts.append(f"{len(data.series) - 3} more series.")
    if alert.threshold is not None:
        parts.append(f"Threshold: {alert.operator or ''} {_number(alert.threshold)}.".replace("  ", " "))
    parts.append(f"Triggered at {_clock(data.trigger.at)}.")
    if data.trigger.resolved is not None:
        parts.append(f"Resolved at {_clock(data.trigger.resolved)}.")
    return _clip(" ".join(parts), ALT_TEXT_MAX)


def _clock(epoch: float) -> str:
    return f"{datetime.fromtimestamp(epoch, UTC):%H:%M} UTC"


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:,.3g}"


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''}"
    return f"{seconds} s"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
