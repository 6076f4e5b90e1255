"""Matplotlib figures for reports, returned as self-contained ``data:`` URIs.

Generic on purpose (a bar chart of per-category values, a heatmap, training curves, a line
chart), so the class report can reuse them. Every function is pure: numbers and labels in,
one URI string out; nothing touches pyplot's global state, so figures can be drawn from threads.

Colours are colour-blind safe and survive greyscale printing: Okabe-Ito hues paired with
hatching and markers for series, cividis for heatmaps.
"""

from __future__ import annotations

import base64
import io
import warnings
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Mapping, Sequence

# Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
HATCHES = ("", "//", "..", "xx")
MARKERS = ("o", "s", "^", "D")
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Source Han Sans SC",
             "WenQuanYi Zen Hei", "Microsoft YaHei", "PingFang SC")


@dataclass(frozen=True)
class FigureStyle:
    """Tunables for every report figure.

    Attributes:
        fmt: "svg" (vector, crisp in print, text drawn as paths) or "png".
        dpi: dots per inch for PNG output (SVG ignores it).
        width_in: figure width in inches; heights are set per figure.
        font_size: base font size in points.
        latin_font: first font family tried for Latin text.
    """

    fmt: str = "png"
    dpi: int = 144
    width_in: float = 7.0
    font_size: float = 9.0
    latin_font: str = "DejaVu Sans"


STYLE = FigureStyle()


@lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """The first installed CJK font family (of CJK_FONTS) that matplotlib can use, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def warn_if_no_cjk_font() -> bool:
    """Warn (once per call) when no CJK font is installed; returns whether one is."""
    if find_cjk_font():
        return True
    warnings.warn("no CJK font found (install fonts-noto-cjk); Chinese text in the report may "
                  "show as empty boxes", RuntimeWarning, stacklevel=2)
    return False


def _rc(style: FigureStyle) -> dict:
    """rcParams that make output deterministic and pick fonts with a CJK fallback."""
    families = [style.latin_font] + ([find_cjk_font()] if find_cjk_font() else [])
    return {
        # Explicit families, not "sans-serif": matplotlib falls back glyph by glyph only along
        # an explicit list, so Han characters missing from DejaVu come from the CJK font.
        "font.family": families,
        "font.size": style.font_size,
        "svg.hashsalt": "grader-report",  # fixed ids: same numbers, same bytes
        "svg.fonttype": "path",  # glyphs as paths: the SVG needs no font where it is shown
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": style.font_size + 1,
        "legend.frameon": False,
    }


def styled(style: FigureStyle | None = None):
    """The context in which to build a figure drawn elsewhere (``grader.platforms``): the same fonts,
    CJK fallback included, as the report's own figures. A text takes its font when it is made."""
    import matplotlib

    return matplotlib.rc_context(_rc(style or STYLE))


def _new_figure(height_in: float, style: FigureStyle, margins_in: tuple[float, float, float, float]):
    """A Figure with fixed margins (left, bottom, right, top) in inches.

    Fixed margins, not constrained layout: the layout solver measured at about half of a
    figure's drawing time (bench/bench_report.py).
    """
    from matplotlib.figure import Figure

    left, bottom, right, top = margins_in
    fig = Figure(figsize=(style.width_in, height_in))
    fig.subplots_adjust(left=left / style.width_in, bottom=bottom / height_in,
                        right=1 - right / style.width_in, top=1 - top / height_in)
    return fig


def to_data_uri(fig, style: FigureStyle | None = None) -> str:
    """Serialise ``fig`` as a base64 ``data:`` URI in ``style.fmt``; metadata fixed for repeatability."""
    import matplotlib

    style = style or STYLE
    buf = io.BytesIO()
    with matplotlib.rc_context(_rc(style)), warnings.catch_warnings():
        if not find_cjk_font():  # already warned once by warn_if_no_cjk_font; not once per glyph
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        if style.fmt == "svg":
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
            mime = "image/svg+xml"
        elif style.fmt == "png":
            buf.write(_opaque_png(fig, style.dpi))
            mime = "image/png"
        else:
            raise ValueError(f"figure format must be 'svg' or 'png', not {style.fmt!r}")
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _opaque_png(fig, dpi: float) -> bytes:
    """``fig`` as an RGB PNG without metadata (call inside ``matplotlib.rc_context``).

    The figures are opaque (a white background): without the alpha channel that savefig writes,
    weasyprint encodes one image per figure for the PDF, not an image and its alpha mask.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    size = canvas.get_width_height(physical=True)
    image = Image.frombuffer("RGBA", size, canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()


def bar_chart(categories: Sequence[str], series: Mapping[str, Sequence[float]], *,
              ylabel: str = "", ylim: tuple[float, float] | None = (0.0, 1.0),
              percent: bool = True, height_in: float = 3.0, style: FigureStyle | None = None) -> str:
    """Grouped vertical bars: one group per category, one hatched Okabe-Ito bar per series.

    Args:
        categories: group labels along x.
        series: legend label -> one value per category.
        percent: label the y axis ticks and bar tops as percentages of 1.
    Returns:
        a data URI.
    """
    style = style or STYLE
    import matplotlib
    from matplotlib.ticker import PercentFormatter

    with matplotlib.rc_context(_rc(style)):
        rotate = len(categories) > 6
        longest = max((len(c) for c in categories), default=0)
        bottom = 0.35 + (0.055 * style.font_size / 9 * longest if rotate else 0.0)  # rotated labels' depth
        fig = _new_figure(height_in, style, (0.65, bottom, 0.1, 0.35))
        ax = fig.add_subplot()
        n = max(len(series), 1)
        width = 0.8 / n
        for i, (label, values) in enumerate(series.items()):
            xs = [k + (i - (n - 1) / 2) * width for k in range(len(categories))]
            bars = ax.bar(xs, values, width, label=label, color=OKABE_ITO[i % len(OKABE_ITO)],
                          hatch=HATCHES[i % len(HATCHES)], edgecolor="white", linewidth=0.5)
            if percent:
                ax.bar_label(bars, labels=[f"{v * 100:.0f}" for v in values], fontsize=6.5, padding=1)
        ax.set_xticks(range(len(categories)), categories, rotation=30 if rotate else 0,
                      ha="right" if rotate else "center", rotation_mode="anchor")
        if ylim:
            ax.set_ylim(*ylim)
        if percent:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        if len(series) > 1:
            ax.legend(ncols=len(series), loc="lower center", bbox_to_anchor=(0.5, 1.0))
        return to_data_uri(fig, style)


def heatmap_cells(matrix: Sequence[Sequence[float]], *, cmap: str = "cividis") -> list[list[dict]]:
    """Colour each cell of ``matrix`` for an HTML heatmap (macros.html.j2 ``heatmap_table``).

    An HTML table instead of an image keeps the counts as selectable, searchable text in the PDF
    and costs no matplotlib drawing. cividis is colour-blind safe and monotonic in lightness, so
    the order survives greyscale; text is black or white by the cell's luminance.

    Returns:
        rows of ``{value, bg, fg}`` (``bg``/``fg`` are ``#rrggbb``).
    """
    import matplotlib

    colormap = matplotlib.colormaps[cmap]
    flat = [v for row in matrix for v in row]
    low, high = (min(flat), max(flat)) if flat else (0, 1)
    span = (high - low) or 1
    rows = []
    for row in matrix:
        cells = []
        for v in row:
            red, green, blue, _ = colormap((v - low) / span)
            light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
            cells.append({"value": v, "bg": "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in (red, green, blue))),
                          "fg": "#000000" if light else "#ffffff"})
        rows.append(cells)
    return rows


def training_curves(epochs: Sequence[int], *, loss: Sequence[float] | None,
                    accuracies: Mapping[str, Sequence[float]], best_epoch: int | None,
                    labels: Mapping[str, str], height_in: float = 2.5,
                    style: FigureStyle | None = None) -> str:
    """Loss on the left axis, accuracies on a right axis, per epoch; the best epoch marked.

    The gap between the first two accuracy series (train, test) is shaded so overfitting shows.

    Args:
        epochs: x values.
        loss: train loss per epoch, or None.
        accuracies: legend label -> accuracy (0..1) per epoch; the first is train, the second test.
        best_epoch: epoch to mark with a vertical line, or None.
        labels: ``epoch``, ``loss``, ``accuracy``, ``best`` (axis and marker text).
    Returns:
        a data URI.
    """
    style = style or STYLE
    import matplotlib

    with matplotlib.rc_context(_rc(style)):
        fig = training_curves_figure(epochs, loss=loss, accuracies=accuracies, best_epoch=best_epoch,
                                     labels=labels, height_in=height_in, style=style)
        return to_data_uri(fig, style)


def training_curves_figure(epochs: Sequence[int], *, loss: Sequence[float] | None,
                           accuracies: Mapping[str, Sequence[float]], best_epoch: int | None,
                           labels: Mapping[str, str], height_in: float = 2.5, style: FigureStyle | None = None):
    """The Figure of ``training_curves`` (call inside ``matplotlib.rc_context(_rc(style))``).

    The best-epoch label sits inside the axes, on the side of its line with more room: to the
    left of a best epoch in the right half, so it is never cut at the figure's edge.
    """
    style = style or STYLE
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    fig = _new_figure(height_in, style, (0.6, 0.45, 0.65, 0.35))
    ax_loss = fig.add_subplot()
    ax_loss.spines["right"].set_visible(True)
    handles = []
    if loss is not None:
        handles += ax_loss.plot(epochs, loss, color="#555555", linestyle="--", marker=".",
                                label=labels.get("loss", "loss"))
    ax_loss.set_xlabel(labels.get("epoch", "epoch"))
    ax_loss.set_ylabel(labels.get("loss", "loss"))
    ax_loss.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acc = ax_loss.twinx()
    ax_acc.spines["right"].set_visible(True)
    series = list(accuracies.items())
    for i, (label, values) in enumerate(series):
        handles += ax_acc.plot(epochs, values, color=OKABE_ITO[i % len(OKABE_ITO)],
                               marker=MARKERS[i % len(MARKERS)], markersize=3.5, label=label)
    if len(series) >= 2:
        ax_acc.fill_between(epochs, series[0][1], series[1][1], color=OKABE_ITO[3], alpha=0.15,
                            hatch="...", linewidth=0, label=labels.get("gap", "gap"))
    ax_acc.set_ylabel(labels.get("accuracy", "accuracy"))
    ax_acc.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    if best_epoch is not None:
        ax_acc.axvline(best_epoch, color="#000000", linestyle=":", linewidth=1)
        low, high = min(epochs), max(epochs)
        right_half = high > low and (best_epoch - low) / (high - low) > 0.5
        # halfway up: loss ends low and accuracy high on the right, so the middle is free there
        ax_acc.annotate(labels.get("best", "best"), xy=(best_epoch, 0.5), xycoords=("data", "axes fraction"),
                        xytext=(-4 if right_half else 4, 0), textcoords="offset points", fontsize=7.5,
                        ha="right" if right_half else "left", va="center", gid="best-epoch",
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0, "alpha": 0.85})
    ax_loss.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=len(handles))
    _clear_left_label(fig, ax_loss, style)
    return fig


def _clear_left_label(fig, ax, style: FigureStyle, em_per_char: float = 0.64) -> None:
    """Widen ``fig``'s left margin until ``ax``'s y label clears its widest tick label.

    A narrow loss range ticks at 0.031, five characters where the fixed margin holds three, and
    the label was cut at the figure's edge. Estimated from the tick texts (DejaVu's digits are
    0.64 em wide), not measured: measuring needs a draw, about half a figure's time.
    """
    low, high = sorted(ax.get_ylim())
    ticks = [v for v in ax.yaxis.get_majorticklocs() if low <= v <= high]
    texts = ax.yaxis.get_major_formatter().format_ticks(ticks)
    widest = max((len(text) for text in texts), default=0) * em_per_char * style.font_size / 72
    # tick, its pad and the label's pad (3.5 + 3.5 + 4 pt), the label's line, a little air
    needed = widest + (11 + 1.3 * style.font_size) / 72 + 0.05
    if needed > fig.subplotpars.left * style.width_in:
        fig.subplots_adjust(left=needed / style.width_in)


def reliability_diagram(bins: Sequence[Mapping[str, float]], *, labels: Mapping[str, str],
                        size_in: float = 2.9, style: FigureStyle | None = None) -> str:
    """Accuracy against confidence per confidence bin, beside the diagonal of perfect calibration.

    Args:
        bins: ``{lo, hi, count, accuracy, confidence}`` per non-empty bin (results' ``reliability``).
        labels: ``confidence``, ``accuracy``, ``ideal`` (the diagonal), ``gap`` (the shaded difference).
    Returns:
        a data URI of a square figure ``size_in`` inches wide.
    """
    style = replace(style or STYLE, width_in=size_in)
    import matplotlib
    from matplotlib.ticker import PercentFormatter

    with matplotlib.rc_context(_rc(style)):
        fig = _new_figure(size_in, style, (0.62, 0.45, 0.22, 0.35))
        ax = fig.add_subplot()
        lows = [b["lo"] for b in bins]
        widths = [b["hi"] - b["lo"] for b in bins]
        ax.bar(lows, [b["accuracy"] for b in bins], widths, align="edge", color=OKABE_ITO[0],
               edgecolor="white", linewidth=0.5, label=labels.get("accuracy", "accuracy"))
        gaps = [b["confidence"] - b["accuracy"] for b in bins]
        ax.bar(lows, gaps, widths, bottom=[b["accuracy"] for b in bins], align="edge", fill=False,
               hatch="///", edgecolor=OKABE_ITO[3], linewidth=0.5, label=labels.get("gap", "gap"))
        ax.plot([0, 1], [0, 1], color="#000000", linestyle=":", linewidth=1, label=labels.get("ideal", "ideal"))
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel(labels.get("confidence", "confidence"))
        ax.set_ylabel(labels.get("accuracy", "accuracy"))
        ax.legend(loc="lower center", bbox_to_anchor=(0.45, 1.0), ncols=3, fontsize=6.5,
                  handlelength=1.2, columnspacing=0.8)
        return to_data_uri(fig, style)
