"""Plots and a self-contained HTML report of an evaluation results directory.

:func:`write_report` reads what :func:`dlsched_gym.evaluate.run_grid` wrote and produces, for
every setting (trace, cluster, load):

- the JCT CDF per scheduler (finished jobs of all seeds pooled);
- the mean JCT by job size (GPU-count bucket) per scheduler;
- queue length and GPU utilization over time per scheduler (the lowest seed);

as PNG files, plus ``report.html``, which embeds the same images (base64) and the leaderboard, so
the page can be mailed or archived on its own. Plots use matplotlib's Agg canvas (no display).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd

from dlsched_gym import __version__
from dlsched_gym.errors import ConfigError
from dlsched_gym.evaluate import (
    SETTING_COLUMNS,
    atomic_write,
    atomic_write_text,
    format_leaderboard,
    leaderboard,
    load_results,
)

#: Line styles cycled over schedulers, so that identical curves stay visible.
LINESTYLES = ("-", "--", ":", "-.")

#: Job-size buckets (inclusive GPU ranges) of the JCT-by-size plot.
SIZE_BUCKETS = ((1, 1), (2, 4), (5, 8), (9, 16), (17, 64), (65, 10**9))


def _bucket_name(lo: int, hi: int) -> str:
    if lo == hi:
        return str(lo)
    return f">{lo - 1}" if hi >= 10**9 else f"{lo}-{hi}"


def _time_unit(max_seconds: float) -> tuple[float, str]:
    """A divisor and unit name that keep time axes readable."""
    for size, unit in ((86400.0, "days"), (3600.0, "hours"), (60.0, "minutes")):
        if max_seconds >= 3 * size:
            return size, unit
    return 1.0, "seconds"


def _short(column: str, value: object) -> str:
    """A setting value for a plot title: trace and cluster files by their file name (a temporary
    directory's path would push the rest of the title off the figure), catalogue names as they
    are."""
    text = str(value)
    if column in ("trace", "cluster") and Path(text).suffix:
        return Path(text).name
    return text


def _figure(rows: int = 1, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, height * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, 1, i + 1) for i in range(rows)]
    return fig, axes


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def plot_jct_cdf(jobs: dict[str, pd.DataFrame], title: str) -> bytes:
    """PNG of the CDF of JCT (finished jobs) per scheduler, log-scaled time axis."""
    fig, (ax,) = _figure()
    for i, (label, frame) in enumerate(jobs.items()):
        jct = np.sort(frame["jct"].dropna().to_numpy(dtype=float))
        if len(jct):
            ax.step(jct, np.arange(1, len(jct) + 1) / len(jct), where="post", label=label,
                    linestyle=LINESTYLES[i % len(LINESTYLES)])
    ax.set_xscale("log")
    ax.set_xlabel("job completion time (s, log scale)")
    ax.set_ylabel("fraction of finished jobs")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(f"JCT CDF: {title}")
    return _png(fig)


def plot_jct_by_size(jobs: dict[str, pd.DataFrame], title: str) -> bytes:
    """PNG of the mean JCT per job-size bucket (GPUs requested), one bar per scheduler."""
    present = [b for b in SIZE_BUCKETS
               if any(frame["num_gpus"].between(*b).any() for frame in jobs.values())]
    fig, (ax,) = _figure()
    width = 0.8 / max(len(jobs), 1)
    x = np.arange(len(present))
    means = {label: [frame.loc[frame["num_gpus"].between(*b), "jct"].mean() for b in present]
             for label, frame in jobs.items()}
    for i, (label, values) in enumerate(means.items()):
        ax.bar(x + (i - (len(jobs) - 1) / 2) * width, values, width, label=label)
    counts = [sum(int(f["num_gpus"].between(*b).sum()) for f in jobs.values()) // max(len(jobs), 1)
              for b in present]
    ax.set_xticks(x, [f"{_bucket_name(*b)}\n({n} jobs)" for b, n in zip(present, counts)])
    ax.set_xlabel("GPUs requested (jobs per scheduler, all seeds)")
    positive = [v for values in means.values() for v in values if v > 0]
    if positive and max(positive) > 20 * min(positive):  # wide range: log scale
        ax.set_yscale("log")
        ax.set_ylabel("mean JCT (s, log scale)")
    else:
        ax.set_ylabel("mean JCT (s)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(f"JCT by job size: {title}")
    return _png(fig)


def plot_timeline(timelines: dict[str, pd.DataFrame], title: str) -> bytes:
    """PNG of queued jobs and GPU utilization over simulated time, one line per scheduler."""
    fig, (top, bottom) = _figure(rows=2, height=3.0)
    tmax = max((float(t["time"].max()) for t in timelines.values() if len(t)), default=0.0)
    div, unit = _time_unit(tmax)
    for i, (label, t) in enumerate(timelines.items()):
        style = LINESTYLES[i % len(LINESTYLES)]
        top.step(t["time"] / div, t["queued"], where="post", label=label, linestyle=style)
        bottom.step(t["time"] / div, 100 * t["utilization"], where="post", label=label, linestyle=style)
    top.set_ylabel("queued jobs")
    bottom.set_ylabel("GPU utilization (%)")
    bottom.set_ylim(0, 102)
    bottom.set_xlabel(f"simulated time ({unit})")
    top.set_xlabel(f"simulated time ({unit})")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    top.legend(fontsize="small")
    top.set_title(f"Queue and utilization over time: {title}")
    return _png(fig)


def write_report(results_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the PNG plots and ``report.html`` for the results in ``results_dir``.

    Args:
        results_dir: a directory written by :func:`dlsched_gym.evaluate.run_grid`.
        out_dir: where to write (default ``results_dir/report``).

    Returns:
        The path of ``report.html``.

    Raises:
        ConfigError: ``results_dir`` holds no results.
    """
    results = Path(results_dir)
    df = load_results(results)
    if df.empty:
        raise ConfigError(f"{results}: no results (expected {results / 'cells'}/*.json written by "
                          "`dlsched evaluate`)")
    out = Path(out_dir) if out_dir is not None else results / "report"
    lb = leaderboard(df)
    settings = list(df.groupby(list(SETTING_COLUMNS), sort=True))
    sections = []
    for i, (setting, sub) in enumerate(settings):
        title = ", ".join(f"{k} {_short(k, v)}" for k, v in zip(SETTING_COLUMNS, setting))
        jobs: dict[str, pd.DataFrame] = {}
        timelines: dict[str, pd.DataFrame] = {}
        for label, cells in sub.sort_values("seed").groupby("scheduler", sort=True):
            keys = cells["key"].tolist()
            jobs[label] = pd.concat([pd.read_parquet(results / "jobs" / f"{k}.parquet") for k in keys],
                                    ignore_index=True)
            timelines[label] = pd.read_parquet(results / "timeline" / f"{keys[0]}.parquet")
        suffix = "" if len(settings) == 1 else f"_{i}"
        images = []
        for name, png in (("jct_cdf", plot_jct_cdf(jobs, title)),
                          ("jct_by_size", plot_jct_by_size(jobs, title)),
                          ("timeline", plot_timeline(timelines, title))):
            path = out / f"{name}{suffix}.png"
            atomic_write(path, lambda tmp, data=png: tmp.write_bytes(data))
            images.append((path.name, png))
        sections.append((title, images))
    page = _html(results, df, lb, sections)
    target = out / "report.html"
    atomic_write_text(target, page)
    return target


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; display: block; margin: 1em 0; }
"""


def _html(results: Path, df: pd.DataFrame, lb: pd.DataFrame,
          sections: list[tuple[str, list[tuple[str, bytes]]]]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>dlsched-gym report: {html.escape(str(results))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>dlsched-gym report</h1>",
        f"<p>Results directory <code>{html.escape(str(results))}</code>: {len(df)} cells, "
        f"{df['scheduler'].nunique()} schedulers, seeds {sorted(df['seed'].unique().tolist())}; "
        f"dlsched-gym {html.escape(__version__)}.</p>",
        "<h2>Leaderboard</h2>",
        "<p>Mean &plusmn; half-width of the 95% confidence interval (Student's t) over seeds.</p>",
        format_leaderboard(lb).to_html(index=False, escape=True, border=0),
    ]
    for title, images in sections:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        for name, png in images:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
