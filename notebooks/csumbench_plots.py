"""Figures and text for the notebooks, from a csumbench_results.Run.

Every strategy keeps one colour in every figure: its backend's hue (BACKEND_COLOURS),
in shades from dark to light when a run has several specs of one backend.
"""

import math
import os
import zlib
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import to_hex, to_rgb
from matplotlib.ticker import FixedLocator, FuncFormatter, LogFormatter, NullLocator

import csumbench_stats as stats
from csumbench_results import METRICS, STAGES, parse_spec

BACKEND_COLOURS = {
    "inline": "#3a3a3a",
    "kthread": "#1f77b4",
    "workqueue": "#ff7f0e",
    "btrfs-wq": "#2ca02c",
    "steal": "#d62728",
    "rayon": "#9467bd",
    "tokio": "#8c564b",
    "tokio-blocking": "#e377c2",
    "async-std": "#bcbd22",
    "smol": "#17becf",
}
STAGE_TITLES = {
    "e2e": "e2e: whole bio, submit to endio done",
    "csum_wait": "csum_wait: queued for a checksum worker",
    "csum_run": "csum_run: computing checksums",
    "io": "io: the read or write itself",
    "endio_wait": "endio_wait: queued for an endio worker",
    "endio_run": "endio_run: endio work",
}
PROBLEM_COLOUR = "#c00000"
# The metrics the interval figure and verdict table show: IOPS follows throughput for a
# fixed block size and csw is vcsw + ivcsw, so those two would only repeat (the harness's
# table and sentences leave them out the same way).
SPOKEN = ("mib_s", "e2e_p50", "e2e_p99", "e2e_p999", "cpu_s_per_gib", "vcsw_per_gib",
          "ivcsw_per_gib", "min_interval_mib_s")
VERDICT_COLOURS = {"faster": "#2ca02c", "less": "#2ca02c", "slower": "#c00000",
                   "more": "#c00000", "same": "#555555", "unknown": "#999999",
                   "baseline": "#999999"}


def _backend_colour(backend):
    if backend in BACKEND_COLOURS:
        return BACKEND_COLOURS[backend]
    spare = plt.get_cmap("tab20b").colors
    return to_hex(spare[zlib.crc32(backend.encode()) % len(spare)])


def colours(strategies):
    """{strategy: colour} for strategies in run order."""
    by_backend = {}
    for s in strategies:
        by_backend.setdefault(parse_spec(s)[0], []).append(s)
    out = {}
    for backend, members in by_backend.items():
        base = np.array(to_rgb(_backend_colour(backend)))
        for i, s in enumerate(members):
            t = 0.0 if len(members) == 1 else -0.4 + 0.9 * i / (len(members) - 1)
            shade = base * (1 + t) if t < 0 else base + (1 - base) * t
            out[s] = to_hex(shade)
    return out


def save(fig, name):
    """Writes the figure to $FIGURES_DIR/<name>.png when that variable is set."""
    folder = os.environ.get("FIGURES_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        fig.savefig(Path(folder) / f"{name}.png", dpi=110, bbox_inches="tight")


def _escape(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def header(run):
    """Markdown: what ran, where, and whether the run finished."""
    m = run.manifest
    machine, software, config = m.get("machine", {}), m.get("software", {}), m.get("config", {})
    job, options = config.get("job", {}), config.get("options", {})
    gib = machine.get("memory_bytes", 0) / 2**30
    lines = [
        f"### Run `{run.folder.name}`: {run.status}",
        f"- **machine**: {machine.get('cpu_model', '?')}, {machine.get('cpus_online', '?')} CPUs, "
        f"{gib:.0f} GiB, {machine.get('os', '?')}, kernel {machine.get('kernel', '?')}; "
        f"CPU flags {' '.join(machine.get('cpu_flags', []))}",
        f"- **software**: csumbench {software.get('csumbench', '?')} "
        f"at {software.get('git_revision', '?')}; "
        + "; ".join(f"{k}: {v}" for k, v in software.get("checksum_implementations", {}).items()),
        f"- **job**: {job.get('name', '?')}: rw={job.get('rw')} bs={job.get('bs', 0) // 1024}k "
        f"size={job.get('size', 0) / 2**20:.0f}MiB numjobs={job.get('numjobs')} "
        f"iodepth={job.get('iodepth')} ioengine={job.get('ioengine')} direct={job.get('direct')} "
        f"end_fsync={job.get('end_fsync')} csum={job.get('csum')}",
        "- **strategies** (first is the baseline): "
        + ", ".join(f"`{s}`" for s in config.get("strategies", [])),
        f"- **endio topology** {config.get('topology')}, **repeats** {config.get('repeat')} "
        f"interleaved, **interval** {options.get('interval', float('nan')) * 1000:.0f} ms, "
        f"started {m.get('started')}, finished {m.get('finished')}",
        f"- **command**: `{' '.join(m.get('command', []))}`",
    ]
    if len(run.problems):
        lines.append(f"\n**⚠ {len(run.problems)} problem(s)**: see *Problems* at the end.")
    return "\n".join(lines)


def problems_markdown(run):
    """Markdown: every case that did not end ok, as a table, or a line saying all did."""
    problems = run.problems
    if problems.empty:
        return f"All {len(run.cases)} cases ended ok."
    lines = [
        f"### ⚠ {len(problems)} problem(s)",
        "These cases are left out of the medians above but not out of this report.",
        "",
        "| case | strategy | repeat | status | detail |",
        "|---|---|---|---|---|",
    ]
    for p in problems.itertuples():
        repeat = "" if pd.isna(p.repeat) else p.repeat
        label = "" if pd.isna(p.label) else _escape(p.label)
        lines.append(f"| {p.case} | {label} | {repeat} "
                     f"| **{p.status}** | {_escape(p.detail)} |")
    return "\n".join(lines)


def verdicts_markdown(run, noise_threshold=stats.NOISE_THRESHOLD):
    """Markdown: every strategy's verdict per metric, `ratio [95 % CI] verdict`, the real
    differences in bold; then the repeats to read with care."""
    summary = run.summary(noise_threshold)
    if len(summary) < 2:
        return "One strategy: nothing to compare with."
    heads = [METRICS[m][2] for m in SPOKEN]
    lines = [f"Against **{_escape(run.labels[run.baseline])}**: paired ratio [95 % CI] verdict "
             f"(noise threshold ±{100 * noise_threshold:g} %, at least {stats.MIN_PAIRS} "
             "paired ok repeats for a verdict).", "",
             "| strategy | " + " | ".join(heads) + " |",
             "|---" * (len(heads) + 1) + "|"]
    notes = []
    for _, row in summary.iloc[1:].iterrows():
        cells = []
        for m in SPOKEN:
            text = ratio_text(row, m)
            differs = row[f"{m}_verdict"] in ("faster", "slower", "more", "less")
            cells.append(f"**{text}**" if differs else text)
        lines.append(f"| {_escape(row['label'])} | " + " | ".join(cells) + " |")
    for _, row in summary.iterrows():
        for key, what in (("outlier_repeats", "outlier throughput (1.5 IQR)"),
                          ("interference_repeats", "measured under interference"),
                          ("unsteady_repeats", "never reached steady state")):
            if row[key]:
                repeats = ", ".join(f"r{r}" for r in row[key])
                notes.append(f"- {_escape(row['label'])} {repeats}: {what} (kept in the figures)")
        if row["warmups"]:
            notes.append(f"- {_escape(row['label'])}: {row['warmups']} warm-up case(s), "
                         "not counted")
    return "\n".join(lines + ([""] + notes if notes else []))


def noise_markdown(run):
    """Markdown: what else the machine did during each case, where the harness recorded it
    (steal, others' CPU, PSI, dirty pages, steady state); a line saying so where not."""
    cases = run.cases
    recorded = cases["interference"].notna() | cases["steady_attained"].notna()
    if not recorded.any():
        return ("No noise or steady-state record in this run (results from before the "
                "harness recorded them).")
    lines = ["| case | steal % | others' CPU % | PSI cpu/io/mem % | dirty KiB start→end "
             "| flag | steady state |", "|---|---:|---:|---:|---:|---|---|"]

    def pct(v):
        return "-" if pd.isna(v) else f"{v:.1f}"

    for c in cases[recorded].itertuples():
        psi = "/".join(pct(v) for v in (c.psi_cpu_some_pct, c.psi_io_some_pct,
                                         c.psi_memory_some_pct))
        dirty = "-" if pd.isna(c.dirty_kib_start) else (
            f"{c.dirty_kib_start:.0f}→{c.dirty_kib_end:.0f}")
        flag = "**interference**" if c.interference is True else ""
        steady = ("-" if c.steady_attained is None else
                  f"reached at {c.steady_at_s:.1f} s" if c.steady_attained else
                  f"**never** ({c.steady_criterion})")
        lines.append(f"| {c.case}{' (warm-up)' if c.warmup else ''} | {pct(c.steal_pct)} "
                     f"| {pct(c.others_cpu_pct)} | {psi} | {dirty} | {flag} | {steady} |")
    return "\n".join(lines)


def _mark_problems(ax, summary):
    """Writes each strategy's non-ok runs ("deadlock x1") in red at the foot of its bar."""
    for i, problems in enumerate(summary["problems"]):
        if problems:
            ax.text(i, 0.03, problems.replace(", ", "\n"), transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", color=PROBLEM_COLOUR, fontsize=9,
                    fontweight="bold")


def ratio_text(row, metric="mib_s"):
    """'1.02 [0.99, 1.05] same' for a summary row; 'baseline'; '1.13 unknown'."""
    ratio, verdict = row[f"{metric}_ratio"], row[f"{metric}_verdict"]
    if verdict == "baseline":
        return "baseline"
    if np.isnan(ratio):
        return "-"
    if verdict == "unknown":
        return f"{ratio:.2f} unknown"
    return f"{ratio:.2f} [{row[f'{metric}_ci95_lo']:.2f}, {row[f'{metric}_ci95_hi']:.2f}] {verdict}"


def _repeat_dots(ax, run, i, strategy, flags):
    """Each ok repeat of a strategy as a dot beside its bar: hollow red for an outlier
    repeat, a cross for one measured under interference."""
    ok = run.cases[(run.cases["status"] == "ok") & ~run.cases["warmup"]
                   & (run.cases["strategy"] == strategy)]
    for case in ok.itertuples():
        style = dict(ms=4, color="#555555")
        if case.repeat in flags["outlier_repeats"]:
            style = dict(ms=7, mfc="none", mec=PROBLEM_COLOUR, mew=1.5)
        marker = "x" if case.repeat in flags["interference_repeats"] else "o"
        ax.plot([i + 0.28], [case.mib_s], marker, **style)


def throughput(run):
    """Median throughput per strategy, bars min-max over counted ok repeats, each repeat a
    dot (outliers hollow red, repeats under interference a cross), and above each bar
    its paired ratio to the baseline with the 95 % interval and verdict."""
    summary = run.summary()
    palette = colours(run.strategies)
    fig, ax = plt.subplots(figsize=(max(6, 1.9 * len(summary) + 2), 4.5))
    x = np.arange(len(summary))
    median = summary["mib_s_median"].to_numpy(dtype=float)
    low = median - summary["mib_s_min"].to_numpy(dtype=float)
    high = summary["mib_s_max"].to_numpy(dtype=float) - median
    ax.bar(x, np.nan_to_num(median), color=[palette[s] for s in summary["strategy"]],
           yerr=[np.nan_to_num(low), np.nan_to_num(high)], capsize=6, ecolor="#555555")
    for i, row in summary.iterrows():
        _repeat_dots(ax, run, i, row["strategy"], row)
    top = np.nanmax(np.append(summary["mib_s_max"].to_numpy(dtype=float), 1))
    for i, row in summary.iterrows():
        if row["ok"]:
            ax.text(i, row["mib_s_max"] + top * 0.02, ratio_text(row).replace(" [", "\n["),
                    ha="center", va="bottom", fontsize=9, fontweight="bold",
                    color=VERDICT_COLOURS[row["mib_s_verdict"]])
    _mark_problems(ax, summary)
    ax.set_ylim(0, top * 1.25)
    ax.set_xticks(x, summary["label"], rotation=15 if len(summary) > 3 else 0, ha="right"
                  if len(summary) > 3 else "center")
    ax.set_xlabel("strategy (first = baseline; above each bar: paired ratio to the baseline "
                  "[95 % CI] verdict; dots: single repeats)")
    ax.set_ylabel("throughput (MiB/s)")
    ax.set_title(f"Throughput per strategy: median of ok repeats, bars min–max "
                 f"({run.manifest.get('config', {}).get('job', {}).get('name', '')})")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


RATIO_TICKS = (0.001, 0.01, 0.1, 0.2, 0.5, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2, 5, 10, 100, 1000)


def _ratio_axis(ax, lo, hi, ratio, noise_threshold):
    """A log axis spanning every interval and the noise band, ticked at round ratios."""
    ends = np.concatenate([np.asarray(v, dtype=float) for v in (lo, hi, ratio)])
    ends = ends[np.isfinite(ends) & (ends > 0)]
    band = 1 + noise_threshold
    left, right = min(ends.min(initial=1), 1 / band) / 1.1, max(ends.max(initial=1), band) * 1.1
    ax.set_xscale("log")
    ax.set_xlim(left, right)
    ticks = [t for t in RATIO_TICKS if left <= t <= right]
    if len(ticks) > 6:
        ticks = [t for t in ticks if math.log10(t).is_integer() or t in (0.5, 2)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def ratios(run, noise_threshold=stats.NOISE_THRESHOLD):
    """Each strategy's paired ratio to the baseline per metric, with its 95 % interval as
    an error bar on a log axis; the grey band is the noise threshold within which a
    difference counts as `same`. None with fewer than two strategies."""
    summary = run.summary(noise_threshold).iloc[1:]
    if summary.empty:
        return None
    palette = colours(run.strategies)
    fig, axes = plt.subplots(2, 4, figsize=(16, 1.1 * len(summary) + 5), squeeze=False)
    y = np.arange(len(summary))[::-1]
    for ax, metric in zip(axes.flat, SPOKEN):
        ratio = summary[f"{metric}_ratio"].to_numpy(dtype=float)
        lo = ratio - summary[f"{metric}_ci95_lo"].to_numpy(dtype=float)
        hi = summary[f"{metric}_ci95_hi"].to_numpy(dtype=float) - ratio
        ax.axvspan(1 / (1 + noise_threshold), 1 + noise_threshold, color="#dddddd")
        ax.axvline(1, color="#777777", lw=0.8)
        for yi, r, l, h, (_, row) in zip(y, ratio, lo, hi, summary.iterrows()):
            if np.isnan(r):
                continue
            ax.errorbar([r], [yi], xerr=[[np.nan_to_num(l)], [np.nan_to_num(h)]], fmt="o",
                        color=palette[row["strategy"]], capsize=4)
            ax.annotate(row[f"{metric}_verdict"], (r, yi), xytext=(0, 6),
                        textcoords="offset points", ha="center", fontsize=8,
                        color=VERDICT_COLOURS[row[f"{metric}_verdict"]])
        _ratio_axis(ax, summary[f"{metric}_ci95_lo"], summary[f"{metric}_ci95_hi"], ratio,
                    noise_threshold)
        ax.set_yticks(y, summary["label"])
        ax.set_ylim(-0.7, len(summary) - 0.3)
        ax.set_title(METRICS[metric][2], fontsize=10)
        ax.set_xlabel("ratio to the baseline (log)")
        ax.set_ylabel("strategy")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Paired ratio to {run.labels[run.baseline]} with 95 % confidence interval "
                 f"(grey: ±{100 * noise_threshold:g} % noise band, 'same' inside it)")
    fig.tight_layout()
    return fig


def _percentile_axis(ax, xmax):
    """Log x axis of 1/(1-p) labelled with the percentiles 0%, 50%, 90%, 99%, ..."""
    xmax = max(xmax, 10) * 1.3
    ticks, labels = [1, 2], ["0%", "50%"]
    for d in range(1, int(np.log10(xmax)) + 1):
        ticks.append(10**d)
        labels.append(f"{100 - 10 ** (2 - d):.{max(d - 2, 0)}f}%")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels(labels)
    ax.set_xlim(1, xmax)


def latency_spectra(run, stages=STAGES):
    """Latency against percentile for each stage, e2e first, one line per strategy
    (its ok repeats' histograms merged)."""
    palette = colours(run.strategies)
    spectra = {stage: run.latency_spectrum(stage) for stage in stages}
    shown = [s for s in stages if not spectra[s].empty] or list(stages[:1])
    cols = min(3, len(shown))
    rows = int(np.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.9 * rows + 0.8), squeeze=False)
    for ax in axes.flat[len(shown):]:
        ax.remove()
    for ax, stage in zip(axes.flat, shown):
        spectrum = spectra[stage]
        for strategy in run.strategies:
            line = spectrum[spectrum["strategy"] == strategy]
            if len(line):
                ax.plot(line["x"], line["latency_us"], color=palette[strategy],
                        label=run.labels[strategy], lw=1.8)
        _percentile_axis(ax, spectrum["x"].max() if len(spectrum) else 10)
        if len(spectrum):
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(LogFormatter(minor_thresholds=(2, 0.5)))
        else:
            ax.text(0.5, 0.5, "no ok case recorded this stage", ha="center",
                    transform=ax.transAxes, color=PROBLEM_COLOUR)
        ax.set_title(STAGE_TITLES.get(stage, stage), fontsize=10)
        ax.set_xlabel("percentile (log scale of 1/(1−p))")
        ax.set_ylabel("latency (µs, log)")
        ax.grid(True, alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5),
                   frameon=False)
    fig.suptitle("Latency by percentile per pipeline stage "
                 "(HDR histograms, ok repeats merged; last point = max)")
    fig.tight_layout(rect=(0, 0.07 if handles else 0, 1, 1))
    return fig


def bandwidth_timeline(run):
    """Bandwidth per interval over each case's time, one panel per strategy, one step
    line per repeat, faded in the tail where no bio completed any more (end_fsync)."""
    bw = run.bandwidth
    palette = colours(run.strategies)
    medians = run.summary().set_index("strategy")["mib_s_median"]
    strategies = [s for s in run.strategies if (bw["strategy"] == s).any()] or [None]
    fig, axes = plt.subplots(len(strategies), 1, figsize=(10, 2.3 * len(strategies) + 1),
                             sharex=True, sharey=True, squeeze=False)
    styles = ["-", "--", ":", "-."]
    for ax, strategy in zip(axes[:, 0], strategies):
        cases = bw[bw["strategy"] == strategy]
        for n, (_, intervals) in enumerate(cases.groupby("case", sort=False)):
            edges = np.append(intervals["start_s"], intervals["start_s"].iloc[-1]
                              + intervals["length_s"].iloc[-1])
            status = intervals["status"].iloc[0]
            label = f"repeat {intervals['repeat'].iloc[0]}" + (
                f" ({status})" if status != "ok" else "")
            tail = np.flatnonzero(intervals["bytes"].to_numpy() > 0)
            split = tail[-1] + 1 if len(tail) else 0
            style = dict(color=palette[strategy], ls=styles[n % len(styles)], lw=1.5)
            ax.stairs(intervals["mib_s"].iloc[:split], edges[:split + 1], label=label, **style)
            ax.stairs(intervals["mib_s"].iloc[split:], edges[split:], alpha=0.3, **style)
            if status != "ok":
                ax.axvline(edges[-1], color=PROBLEM_COLOUR, lw=1)
                ax.text(edges[-1], 0.5, f"{status} ", transform=ax.get_xaxis_transform(),
                        ha="right", color=PROBLEM_COLOUR, fontweight="bold")
        median = medians.get(strategy, np.nan)
        if not np.isnan(median):
            ax.axhline(median, color=palette[strategy], lw=0.8, alpha=0.7)
            ax.text(1.0, median, f" median {median:.0f}", transform=ax.get_yaxis_transform(),
                    va="center", fontsize=8, color=palette[strategy])
        ax.set_title(run.labels.get(strategy, "no case"), fontsize=10, loc="left")
        ax.set_ylabel("MiB/s")
        ax.grid(alpha=0.3)
        if cases.empty:
            ax.text(0.5, 0.5, "no bandwidth log", ha="center", transform=ax.transAxes,
                    color=PROBLEM_COLOUR)
            continue
        ax.legend(loc="upper right", fontsize=8, ncol=4)
        if cases.groupby("case")["streaming"].sum().max() < 3:
            ax.text(0.5, 0.5, "under 3 full intervals per case: too short to show dips;\n"
                    "use a shorter --interval or a larger --size", ha="center",
                    va="center", transform=ax.transAxes, fontsize=9, color="#777777")
    axes[0, 0].set_ylim(0, np.nanmax([bw["mib_s"].max(), medians.max(), 1]) * 1.3)
    interval = run.manifest.get("config", {}).get("options", {}).get("interval", float("nan"))
    axes[-1, 0].set_xlabel("time since the case started (s); faded: after the last bio "
                           "completed (end_fsync)")
    fig.suptitle(f"Bandwidth per {interval * 1000:.0f} ms interval, per strategy "
                 "(line: median throughput of the whole case)")
    fig.tight_layout()
    return fig


def cpu_and_switches(run):
    """Whole-process CPU seconds (user + sys) and context switches per GiB moved:
    medians over ok repeats, bars min-max."""
    summary = run.summary()
    palette = [colours(run.strategies)[s] for s in summary["strategy"]]
    fig, axes = plt.subplots(1, 3, figsize=(max(11, 3.2 * len(summary) + 4), 4.3))
    x = np.arange(len(summary))

    def spread(col):
        mid = summary[col].to_numpy(dtype=float)
        return np.nan_to_num([mid - summary[f"{col}_min"], summary[f"{col}_max"] - mid])

    ax = axes[0]
    user = np.nan_to_num(summary["user_s_per_gib"].to_numpy(dtype=float))
    sys_ = np.nan_to_num(summary["sys_s_per_gib"].to_numpy(dtype=float))
    ax.bar(x, user, color=palette, label="user")
    ax.bar(x, sys_, bottom=user, color=palette, alpha=0.45, hatch="//", label="sys")
    ax.errorbar(x, np.nan_to_num(summary["cpu_s_per_gib"]), yerr=spread("cpu_s_per_gib"),
                fmt="none", ecolor="#555555", capsize=5, label="user+sys min–max")
    ax.set_title("CPU time per GiB (all threads)")
    ax.set_ylabel("CPU seconds per GiB")
    ax.set_ylim(0, np.nanmax(np.append(summary["cpu_s_per_gib_max"], 0.01)) * 1.35)
    if summary["ok"].any():
        ax.legend(fontsize=8, ncol=3, loc="upper center")
    for ax, col, title in ((axes[1], "vcsw_per_gib", "Voluntary context switches per GiB"),
                           (axes[2], "ivcsw_per_gib", "Involuntary context switches per GiB")):
        ax.bar(x, np.nan_to_num(summary[col]), color=palette, yerr=spread(col), capsize=5,
               ecolor="#555555")
        ax.set_title(title)
        ax.set_ylabel("switches per GiB")
    for ax in axes:
        ax.set_ylim(bottom=0)
        _mark_problems(ax, summary)
        ax.set_xticks(x, summary["label"], rotation=30, ha="right")
        ax.set_xlabel("strategy")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Cost per GiB moved: whole-process getrusage, medians of ok repeats, "
                 "bars min–max")
    fig.tight_layout()
    return fig


def _sweep_panel(ax, line, xs, metric, colour, label):
    """One series of a sweep: the paired ratio to the baseline against the knob, its 95 %
    interval as a band."""
    ratio = line[f"{metric}_ratio"].to_numpy(dtype=float)
    lo = line[f"{metric}_ci95_lo"].to_numpy(dtype=float)
    hi = line[f"{metric}_ci95_hi"].to_numpy(dtype=float)
    ax.plot(xs, ratio, color=colour, marker="o", label=label)
    ax.fill_between(xs, lo, hi, color=colour, alpha=0.2, lw=0)


def _knob_axis(ax, values, numeric, label):
    if numeric:
        if min(values) > 0 and max(values) / min(values) >= 4:
            ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(values))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(v) for v in values])
    else:
        ax.set_xticks(np.arange(len(values)), values)
    ax.set_xlabel(label)
    ax.grid(alpha=0.3)


def sweep(run, noise_threshold=stats.NOISE_THRESHOLD):
    """Throughput and e2e p99 against each knob that varies between one backend's specs,
    as paired ratios to the baseline with their 95 % intervals as bands: one panel pair
    per (backend, knob), one line per combination of the other knobs; the grey band is
    the noise threshold. None when nothing varies."""
    sweeps = run.sweeps()
    if sweeps.empty:
        return None
    panels = list(sweeps.groupby(["backend", "knob"], sort=False))
    palette = colours(run.strategies)
    baseline = run.labels.get(run.baseline, "the baseline")
    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 3.8 * len(panels)), squeeze=False)
    for (ax_bw, ax_p99), ((backend, knob), points) in zip(axes, panels):
        numeric = all(isinstance(v, (int, float)) for v in points["value"])
        values = sorted(set(points["value"])) if numeric else list(dict.fromkeys(points["value"]))
        for series, line in points.groupby("series", sort=False):
            line = line.sort_values("value") if numeric else line
            xs = line["value"] if numeric else line["value"].map(values.index)
            colour = palette[line["strategy"].iloc[0]]
            for ax, metric in ((ax_bw, "mib_s"), (ax_p99, "e2e_p99")):
                _sweep_panel(ax, line, xs, metric, colour, series)
                for xv, yv, s in zip(xs, line[f"{metric}_ratio"], line["strategy"]):
                    ax.plot([xv], [yv], "o", ms=9, color=palette[s], zorder=3)
        for ax in (ax_bw, ax_p99):
            ax.axhspan(1 / (1 + noise_threshold), 1 + noise_threshold, color="#dddddd",
                       label=f"{baseline} ±{100 * noise_threshold:g} %")
            ax.axhline(1, color="#777777", lw=0.8)
            _knob_axis(ax, values, numeric, f"{backend} {knob}")
            ax.legend(fontsize=8)
        ax_bw.set_ylabel(f"throughput / {baseline}")
        ax_bw.set_title(f"{backend}: throughput vs {knob} (band: 95 % CI)")
        ax_p99.set_ylabel(f"e2e p99 / {baseline}")
        ax_p99.set_title(f"{backend}: e2e p99 vs {knob} (band: 95 % CI)")
    fig.suptitle(f"Sweeps: one knob varied, the others fixed; paired ratios to {baseline}")
    fig.tight_layout()
    return fig


# One line style per submitter count on the crossover map (the colour is the strategy's).
NUMJOBS_STYLES = ("-", "--", ":", "-.")


def crossover_header(cx):
    """Markdown: what the sweep ran, on what, and the harness's answer in words."""
    m = cx.manifest
    machine, config = m.get("machine", {}), m.get("config", {})
    job = (config.get("groups") or [[{}]])[0][0]
    floor = config.get("floor_ns")
    lines = [
        f"### Crossover `{cx.folder.name}`: {cx.status}",
        f"- **machine**: {machine.get('cpu_model', '?')}, {machine.get('cpus_online', '?')} "
        f"CPUs, kernel {machine.get('kernel', '?')}",
        f"- **job** (every point): rw={job.get('rw')} bs={job.get('bs', 0) // 1024}k "
        f"iodepth={job.get('iodepth')} ioengine={job.get('ioengine')} "
        f"runtime={job.get('runtime')}s time_based={job.get('time_based')}",
        f"- **strategies** against `{cx.baseline}`: "
        + ", ".join(f"`{s}`" for s in config.get("strategies", [])[1:])
        + f"; **numjobs** {', '.join(map(str, config.get('numjobs', [])))}; "
        f"**repeats** {config.get('repeat')} per point",
        f"- **synthetic floor** (a sector's crc32c alone): "
        + (f"{floor:.0f} ns" if floor else "-")
        + (f"; left out below it: {', '.join(config.get('below_floor', []))}"
           if config.get("below_floor") else ""),
        f"- **command**: `{' '.join(m.get('command', []))}`, {m.get('duration_s', 0):.0f} s",
        "",
        "**The answer:**",
        "",
    ]
    lines += [f"- {_escape(a)}" for a in cx.answer] or ["- (no answer: the sweep did not finish)"]
    return "\n".join(lines)


def crossover_table(cx):
    """The map's numbers: one row per point and strategy, the ratios with their intervals."""
    columns = ["numjobs", "strategy", "algorithm", "cost_ns_per_sector",
               "inline_csum_run_ns_per_sector", "mib_s_ratio", "mib_s_ci95_lo", "mib_s_ci95_hi",
               "verdict", "cpu_s_per_gib_ratio", "cpu_s_per_gib_ci95_lo",
               "cpu_s_per_gib_ci95_hi", "cpu_verdict", "problems"]
    if cx.points.empty:
        return pd.DataFrame(columns=columns)
    table = cx.points.sort_values(["numjobs", "strategy", "cost_ns_per_sector"])
    return table[columns].reset_index(drop=True)


def _crossover_series(ax, cx, metric):
    """One line per (strategy, numjobs) with its 95 % band; real algorithms as stars."""
    palette = colours(cx.manifest["config"]["strategies"])
    numjobs = sorted(cx.points["numjobs"].unique())
    for (strategy, n), points in cx.series():
        colour = palette.get(strategy, "#444444")
        style = NUMJOBS_STYLES[numjobs.index(n) % len(NUMJOBS_STYLES)]
        x = points["cost_ns_per_sector"]
        ax.fill_between(x, points[f"{metric}_ci95_lo"], points[f"{metric}_ci95_hi"],
                        color=colour, alpha=0.12, lw=0)
        ax.plot(x, points[f"{metric}_ratio"], style, color=colour, marker="o", ms=4,
                label=f"{strategy}, numjobs {n}")
        real = points[points["real"]]
        ax.plot(real["cost_ns_per_sector"], real[f"{metric}_ratio"], "*", color=colour,
                ms=12, mec="black", mew=0.5)


def _mark_algorithms(ax, cx):
    """A dotted line and the name at each real algorithm's cost."""
    for algorithm, ns in cx.real_algorithms().items():
        ax.axvline(ns, color="#999999", ls=":", lw=0.8)
        ax.annotate(f"{algorithm}\n{ns:.0f} ns", (ns, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(2, -2), textcoords="offset points", va="top", fontsize=7,
                    color="#555555")


def _mark_crossings(ax, cx):
    """Each crossing: a dashed line at it, its 95 % interval shaded, its cost written."""
    palette = colours(cx.manifest["config"]["strategies"])
    crossings = cx.crossings[cx.crossings["kind"].isin(["rises", "falls"])]
    for c in crossings.itertuples():
        colour = palette.get(c.strategy, "#444444")
        ax.axvspan(c.ci95_lo_ns, c.ci95_hi_ns, color=colour, alpha=0.08)
        ax.axvline(c.cost_ns_per_sector, color=colour, ls="--", lw=1.2)
        winner = c.strategy if c.kind == "rises" else cx.baseline
        ax.annotate(f"{c.strategy} ×{c.numjobs}: ~{c.cost_ns_per_sector:.0f} ns\n"
                    f"({winner} wins above)", (c.cost_ns_per_sector, 1.0),
                    xytext=(4, 6), textcoords="offset points", fontsize=8, color=colour)


def _ratio_limits(ax, ratios):
    """A log ratio axis around the ratios and 1; the bands beyond it are cut, not the lines."""
    ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
    lo = min(ratios.min(), 1.0) if len(ratios) else 1.0
    hi = max(ratios.max(), 1.0) if len(ratios) else 1.0
    ax.set_yscale("log")
    ax.set_ylim(lo / 1.6, hi * 1.6)
    ax.yaxis.set_major_locator(FixedLocator([0.25, 0.5, 0.67, 0.8, 1, 1.25, 1.5, 2, 3, 4, 8]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())


def crossover_map(cx, noise_threshold=stats.NOISE_THRESHOLD):
    """The map: throughput of each strategy over the baseline's against what a 4 KiB
    sector's checksum costs (log axis), one line per strategy (colour) and submitter count
    (line style), bands the 95 % intervals, stars the real algorithms, dashed lines the
    crossings with their intervals shaded; below it the same for CPU per GiB. None when
    the sweep measured nothing."""
    if cx.points.empty:
        return None
    fig, (ax_t, ax_c) = plt.subplots(2, 1, figsize=(11, 9), sharex=True)
    for ax, metric, what in ((ax_t, "mib_s", "throughput"), (ax_c, "cpu_s_per_gib",
                                                               "CPU per GiB")):
        ax.axhspan(1 / (1 + noise_threshold), 1 + noise_threshold, color="#dddddd",
                   label=f"{cx.baseline} ±{100 * noise_threshold:g} %")
        ax.axhline(1, color="#777777", lw=0.8)
        _crossover_series(ax, cx, metric)
        _mark_algorithms(ax, cx)
        ax.set_xscale("log")
        _ratio_limits(ax, cx.points[f"{metric}_ratio"])
        ax.set_ylabel(f"{what} / {cx.baseline} (log scale)")
        ax.legend(fontsize=8, loc="lower right")
    _mark_crossings(ax_t, cx)
    ax_t.set_title(f"Throughput over {cx.baseline}'s: above 1 the offload wins "
                   "(band: 95 % CI, stars: real algorithms)")
    ax_c.set_title(f"CPU per GiB over {cx.baseline}'s: above 1 the offload costs more CPU")
    ax_c.set_xlabel("checksum cost per 4 KiB sector (ns, log scale; measured on a hot sector)")
    fig.suptitle("Where offloading checksums pays: the crossover map")
    fig.tight_layout()
    return fig
