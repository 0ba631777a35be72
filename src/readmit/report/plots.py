"""Every figure of the report as an inline SVG string (matplotlib, Agg backend, no display).

Text stays text (``svg.fonttype = none``: the browser draws it with a local font, nothing is
fetched) and the XML prolog, DOCTYPE, metadata and namespace URLs are stripped, so a figure holds
no URL at all. Each figure gets its own id salt, so ids never clash between figures on one page.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

_COUNTER = itertools.count()
COLORS = {"logistic_regression": "#1f77b4", "random_forest": "#2ca02c", "xgboost": "#d62728"}
_OTHER = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
WINDOW_COLORS = {"train": "#c6dbef", "test": "#fdd0a2", "oot": "#c7e9c0"}
_STRIP = [
    re.compile(r"<\?xml[^>]*\?>\s*"),
    re.compile(r"<!DOCTYPE[^>]*>\s*"),
    re.compile(r"<metadata>.*?</metadata>\s*", re.S),
    re.compile(r'\s+xmlns(:\w+)?="[^"]*"'),
]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def color(name: str, i: int = 0) -> str:
    return COLORS.get(name, _OTHER[i % len(_OTHER)])


def figure(width: float = 7.5, height: float = 3.2, ncols: int = 1, nrows: int = 1, **kw: Any):
    plt = _plt()
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, **kw)
    for ax in axes.flat:
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.25, linewidth=0.6)
    return fig, axes


def to_svg(fig: Any) -> str:
    """The figure as an ``<svg>`` element without any URL; closes the figure."""
    plt = _plt()
    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"readmit-fig-{next(_COUNTER)}"}):
        fig.tight_layout()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buf.getvalue()
    for pattern in _STRIP:
        text = pattern.sub("", text)
    return text.strip()


def _legend(ax: Any, **kw: Any) -> None:
    ax.legend(fontsize=7, frameon=False, **kw)


# -- 1 data ---------------------------------------------------------------------------------------


def timeline(months: Sequence[str], rows: Sequence[int], rates: Sequence[float | None],
             windows: Mapping[str, tuple[str, str]]) -> str:
    """Encounters per month (bars) and the 30-day readmission rate (line), windows shaded."""
    fig, axes = figure(9.0, 3.0)
    ax = axes[0, 0]
    x = list(range(len(months)))
    index = {m: i for i, m in enumerate(months)}
    for name, (first, last) in windows.items():
        lo = index.get(first, 0 if first < (months[0] if months else "") else None)
        hi = index.get(last, len(months) - 1 if months and last > months[-1] else None)
        if lo is None or hi is None:
            continue
        ax.axvspan(lo - 0.5, hi + 0.5, color=WINDOW_COLORS.get(name, "#eeeeee"), alpha=0.6, lw=0)
        ax.text((lo + hi) / 2, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                fontsize=8)
    ax.bar(x, rows, color="#6b6b6b", width=0.8, label="encounters")
    ax.set_ylabel("encounters / month", fontsize=8)
    twin = ax.twinx()
    twin.plot(x, [r if r is not None else float("nan") for r in rates], color="#d62728", lw=1.2,
              label="30-day readmission rate")
    twin.set_ylabel("30-day rate", fontsize=8, color="#d62728")
    twin.tick_params(labelsize=8, colors="#d62728")
    twin.set_ylim(0, max([r for r in rates if r is not None] + [0.01]) * 1.4)
    twin.spines[["top"]].set_visible(False)
    step = max(1, len(months) // 10)
    ax.set_xticks(x[::step], [months[i] for i in x[::step]], rotation=0)
    ax.set_xlim(-0.5, len(months) - 0.5)
    return to_svg(fig)


# -- 2 models ------------------------------------------------------------------------------------


def _per_window(curves: Mapping[str, Mapping[str, Any]], draw: Any, title: str) -> str:
    windows = list(curves)
    fig, axes = figure(4.0 * max(len(windows), 1), 3.4, ncols=max(len(windows), 1))
    for ax, window in zip(axes.flat, windows, strict=False):
        for i, (alg, c) in enumerate(curves[window].items()):
            draw(ax, alg, c, color(alg, i))
        ax.set_title(f"{title} - {window}", fontsize=9)
        _legend(ax, loc="best")
    return to_svg(fig)


def roc(curves: Mapping[str, Mapping[str, Any]]) -> str:
    def draw(ax: Any, alg: str, c: Mapping[str, Any], col: str) -> None:
        ax.plot(c["fpr"], c["tpr"], color=col, lw=1.3, label=f"{alg} ({c['auc_roc']:.3f})")
        ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls="--")
        ax.set_xlabel("false-positive rate", fontsize=8)
        ax.set_ylabel("true-positive rate (recall)", fontsize=8)

    return _per_window(curves, draw, "ROC")


def precision_recall(curves: Mapping[str, Mapping[str, Any]]) -> str:
    def draw(ax: Any, alg: str, c: Mapping[str, Any], col: str) -> None:
        ax.plot(c["recall"], c["precision"], color=col, lw=1.3, label=f"{alg} ({c['pr_auc']:.3f})")
        ax.axhline(c["prevalence"], color="#999999", lw=0.8, ls="--")
        ax.set_xlabel("recall", fontsize=8)
        ax.set_ylabel("precision", fontsize=8)
        ax.set_ylim(0, 1)

    return _per_window(curves, draw, "Precision-recall")


def reliability(bins: Mapping[str, Mapping[str, list[dict[str, Any]]]]) -> str:
    def draw(ax: Any, alg: str, c: list[dict[str, Any]], col: str) -> None:
        xs = [b["mean_predicted"] for b in c]
        ys = [b["observed_rate"] for b in c]
        top = max(xs + ys + [0.05]) * 1.1
        ax.plot([0, top], [0, top], color="#999999", lw=0.8, ls="--")
        ax.plot(xs, ys, marker="o", ms=3, color=col, lw=1.2, label=alg)
        ax.set_xlabel("mean predicted risk (decile of risk)", fontsize=8)
        ax.set_ylabel("observed 30-day rate", fontsize=8)

    return _per_window(bins, draw, "Reliability")


def score_distributions(hists: Mapping[str, Mapping[str, Any]], window: str) -> str:
    algs = list(hists)
    fig, axes = figure(3.2 * max(len(algs), 1), 2.8, ncols=max(len(algs), 1))
    for ax, alg in zip(axes.flat, algs, strict=False):
        h = hists[alg]
        edges = h["edges"]
        # one filled step outline per outcome (a bar per bin is hundreds of patches to draw)
        ax.stairs(h["not_readmitted"], edges, fill=True, color="#7f7f7f", alpha=0.55, label="not readmitted")
        ax.stairs(h["readmitted"], edges, fill=True, color="#d62728", alpha=0.55, label="readmitted < 30 d")
        ax.set_title(f"{alg} - {window}", fontsize=9)
        ax.set_xlabel("predicted risk", fontsize=8)
        ax.set_ylabel("share of the outcome's patients", fontsize=8)
        _legend(ax)
    return to_svg(fig)


# -- 3 clinical usefulness -----------------------------------------------------------------------


def decision_curve(curves: Mapping[str, Mapping[str, Any]], threshold: float | None, window: str) -> str:
    fig, axes = figure(7.0, 3.4)
    ax = axes[0, 0]
    first = next(iter(curves.values()))
    ts = first["thresholds"]
    ax.plot(ts, first["everyone"], color="#555555", lw=1.0, ls="--", label="flag everyone")
    ax.axhline(0, color="#000000", lw=0.9, ls=":", label="flag no one")
    top = 0.0
    for i, (alg, c) in enumerate(curves.items()):
        ax.plot(ts, c["model"], color=color(alg, i), lw=1.4, label=alg)
        top = max(top, *c["model"])
    if threshold is not None:
        ax.axvline(threshold, color="#444444", lw=0.8, alpha=0.6)
        ax.text(threshold, 1.0, " stored threshold", transform=ax.get_xaxis_transform(), fontsize=7,
                va="top")
    ax.set_ylim(-max(top, 0.01) * 0.3, max(top, 0.01) * 1.25)
    ax.set_xlabel("threshold probability (risk at which follow-up is worth it)", fontsize=8)
    ax.set_ylabel("net benefit", fontsize=8)
    ax.set_title(f"Decision curve - {window}", fontsize=9)
    _legend(ax)
    return to_svg(fig)


# -- 4 why ---------------------------------------------------------------------------------------


def bars(items: Sequence[tuple[str, float]], xlabel: str, title: str, errors: Sequence[float] | None = None) -> str:
    fig, axes = figure(7.0, 0.28 * max(len(items), 3) + 0.9)
    ax = axes[0, 0]
    names = [n for n, _ in items][::-1]
    values = [v for _, v in items][::-1]
    ax.barh(names, values, xerr=None if errors is None else list(errors)[::-1], color="#4c72b0",
            error_kw={"lw": 0.8})
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    return to_svg(fig)


# -- 5 fairness ----------------------------------------------------------------------------------


def group_auc(tables: Mapping[str, list[dict[str, Any]]], overall: float | None) -> str:
    names = list(tables)
    fig, axes = figure(3.3 * max(len(names), 1), 3.0, ncols=max(len(names), 1))
    for ax, name in zip(axes.flat, names, strict=False):
        rows = [r for r in tables[name] if r["auc_roc"] is not None]
        labels = [r["group"] for r in rows][::-1]
        values = [r["auc_roc"] for r in rows][::-1]
        small = [r["small"] for r in rows][::-1]
        ax.scatter(values, labels, c=["#bbbbbb" if s else "#4c72b0" for s in small], s=18, zorder=3)
        if overall is not None:
            ax.axvline(overall, color="#d62728", lw=0.8, ls="--")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("ROC-AUC", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    return to_svg(fig)


# -- 6 over time ---------------------------------------------------------------------------------


def auc_over_time(series: Mapping[str, Mapping[str, float | None]], min_auc: float | None) -> str:
    """ROC-AUC per month, one line per series (test, oot, monitored observed / estimated)."""
    months = sorted({m for s in series.values() for m in s})
    index = {m: i for i, m in enumerate(months)}
    fig, axes = figure(9.0, 3.0)
    ax = axes[0, 0]
    styles = {"estimated": {"ls": "--"}}
    for name, points in series.items():
        xs = [index[m] for m in sorted(points) if points[m] is not None]
        ys = [points[m] for m in sorted(points) if points[m] is not None]
        ax.plot(xs, ys, marker="o", ms=2.5, lw=1.1, label=name, **styles.get(name.split()[-1], {}))
    if min_auc is not None:
        ax.axhspan(0, min_auc, color="#fcbba1", alpha=0.35, lw=0, label=f"below min_auc {min_auc}")
    values = [v for s in series.values() for v in s.values() if v is not None]
    if values:
        ax.set_ylim(min(min(values), min_auc or 1) - 0.03, max(values) + 0.03)
    step = max(1, len(months) // 10)
    ax.set_xticks(list(range(0, len(months), step)), months[::step])
    ax.set_ylabel("ROC-AUC", fontsize=8)
    _legend(ax, ncols=3)
    return to_svg(fig)


def drift(months: Sequence[str], psi: Sequence[float | None], csi: Mapping[str, Sequence[float | None]],
          warning: float, alert: float) -> str:
    """Score PSI and the top features' CSI per month, the warning and alert bands shaded."""
    fig, axes = figure(9.0, 3.0)
    ax = axes[0, 0]
    x = list(range(len(months)))
    values = [v for v in psi if v is not None] + [v for s in csi.values() for v in s if v is not None]
    top = max(values + [alert * 1.3])
    ax.axhspan(warning, alert, color="#fee391", alpha=0.6, lw=0, label=f"warning >= {warning}")
    ax.axhspan(alert, top * 1.05, color="#fcbba1", alpha=0.6, lw=0, label=f"alert >= {alert}")
    ax.plot(x, [v if v is not None else float("nan") for v in psi], color="#000000", lw=1.5, marker="o",
            ms=2.5, label="score PSI")
    for i, (name, values_) in enumerate(csi.items()):
        ax.plot(x, [v if v is not None else float("nan") for v in values_], lw=1.0, ls="--",
                color=_OTHER[i % len(_OTHER)], label=f"CSI {name}")
    ax.set_ylim(0, top * 1.05)
    step = max(1, len(months) // 10)
    ax.set_xticks(x[::step], [months[i] for i in x[::step]])
    ax.set_ylabel("stability index", fontsize=8)
    _legend(ax, ncols=3)
    return to_svg(fig)
