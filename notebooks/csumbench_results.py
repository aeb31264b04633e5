"""Loads a csumbench results folder (layout: results/README.md) into pandas.

    run = load("results/sample")
    run.cases            one row per case, numeric columns flattened (noise, steady state
                         and warm-up where the harness recorded them)
    run.summary()        per strategy: medians over the counted ok repeats, spread, and for
                         every metric the paired ratio to the baseline, its 95 % interval
                         and verdict (csumbench_stats, the harness's method)
    run.verdicts()       the same comparisons, one row per (strategy, metric)
    run.problems         every case that did not end ok (and the run itself, if unfinished)
    run.bandwidth        the bandwidth timelines, long format
    run.latency_spectrum("e2e")   percentile vs latency from the merged HDR histograms
    run.sweeps()         throughput and p99 against a knob that varies between specs

    cx = load_crossover("results/crossover-sample")   a `harness crossover` folder
    cx.points            crossover.csv: one row per (cost, numjobs, strategy) point
    cx.crossings         crossings.csv: each crossing, or how a series without one lies
    cx.series()          ((strategy, numjobs), its points cheapest first) per line of the map
    cx.answer            the harness's answer, one sentence per series
    cx.point(folder)     one point's compare, as load() reads it

Strategies are ordered as the harness orders them: by the manifest's config.strategies,
whose first entry is the baseline.
"""

import json
import math
import re
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

import csumbench_stats as stats

STAGES = ("e2e", "csum_wait", "csum_run", "io", "endio_wait", "endio_run")
STAGE_STATS = ("count", "mean_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us")
# The harness records nanoseconds, 1 ns to 1 hour, 3 significant digits.
HDR_BOUNDS = (1, 3600 * 10**9, 3)
# The metrics compared with the baseline, as the harness names them (summary::Metric):
# name -> (column of Run.cases, polarity, label).
METRICS = {
    "mib_s": ("mib_s", stats.HIGHER_IS_FASTER, "throughput"),
    "iops": ("iops", stats.HIGHER_IS_FASTER, "IOPS"),
    "e2e_p50": ("e2e_p50_us", stats.LOWER_IS_FASTER, "e2e p50"),
    "e2e_p99": ("e2e_p99_us", stats.LOWER_IS_FASTER, "e2e p99"),
    "e2e_p999": ("e2e_p999_us", stats.LOWER_IS_FASTER, "e2e p99.9"),
    "cpu_s_per_gib": ("cpu_s_per_gib", stats.COST, "CPU per GiB"),
    "csw_per_gib": ("csw_per_gib", stats.COST, "context switches per GiB"),
    "vcsw_per_gib": ("vcsw_per_gib", stats.COST, "voluntary context switches"),
    "ivcsw_per_gib": ("ivcsw_per_gib", stats.COST, "involuntary context switches"),
    "min_interval_mib_s": ("min_interval_mib_s", stats.HIGHER_IS_FASTER,
                           "worst-interval bandwidth"),
}
COMPARISON_FIELDS = ("ratio", "ci95_lo", "ci95_hi", "verdict", "pairs")
# What a case's `noise` object holds (absent in results from before it was recorded).
NOISE_FIELDS = ("steal_pct", "others_cpu_pct", "irq_pct", "psi_cpu_some_pct",
                "psi_io_some_pct", "psi_memory_some_pct", "cpu_mhz_min", "cpu_mhz_max",
                "dirty_kib_start", "dirty_kib_end", "writeback_kib_start",
                "writeback_kib_end")


def parse_spec(spec):
    """'kthread:idle_thresh=64,max_workers=2' -> ('kthread', {'idle_thresh': '64', ...})."""
    backend, _, knobs = spec.partition(":")
    return backend, dict(kv.split("=", 1) for kv in knobs.split(",") if kv)


def _case_index(case_id):
    """The run-order number a case id starts with ('03-kthread-r1' -> 3), 0 if none."""
    m = re.match(r"(\d+)-", case_id)
    return int(m.group(1)) if m else 0


def _number(value):
    """A knob value as a number where it is one ('4' -> 4), else unchanged."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _flatten(result, folder):
    usage = result.get("usage") or {}
    bw = result.get("bandwidth") or {}
    stall = result.get("stall") or {}
    row = {
        "case": result["case"],
        "strategy": result["strategy"],
        "topology": result.get("topology"),
        "repeat": result.get("repeat"),
        "warmup": bool(result.get("warmup", False)),
        "status": result["status"],
        "error": result.get("error"),
        "bytes": result.get("bytes", 0),
        "bios": result.get("bios", 0),
        "elapsed_s": result.get("elapsed_s", math.nan),
        "mib_s": result.get("mib_s", math.nan),
        "iops": result.get("iops", math.nan),
        "user_s": usage.get("user_s", math.nan),
        "sys_s": usage.get("sys_s", math.nan),
        "voluntary_csw": usage.get("voluntary_csw", math.nan),
        "involuntary_csw": usage.get("involuntary_csw", math.nan),
        "cpu_s_per_gib": result.get("cpu_s_per_gib", math.nan),
        "vcsw_per_gib": result.get("vcsw_per_gib", math.nan),
        "ivcsw_per_gib": result.get("ivcsw_per_gib", math.nan),
        "mismatch_count": result.get("mismatch_count", 0),
        "stall_kind": stall.get("kind"),
        "stall_detail": stall.get("detail"),
    }
    for key in ("interval_s", "samples", "min_mib_s", "max_mib_s", "mean_mib_s", "cov"):
        row[f"bw_{key}"] = bw.get(key, math.nan)
    row["csw_per_gib"] = row["vcsw_per_gib"] + row["ivcsw_per_gib"]
    # The worst interval only where there were intervals, as the harness counts it.
    row["min_interval_mib_s"] = row["bw_min_mib_s"] if bw.get("samples", 0) > 0 else math.nan
    noise = result.get("noise") or {}
    for key in NOISE_FIELDS:
        row[key] = _or_nan(noise.get(key))
    row["loadavg_1m_end"] = _or_nan((noise.get("loadavg_end") or [None])[0])
    row["interference"] = noise.get("interference") if noise else None
    steady = result.get("steady") or {}
    row["steady_criterion"] = steady.get("criterion")
    row["steady_attained"] = steady.get("attained") if steady else None
    row["steady_at_s"] = _or_nan(steady.get("attained_at_s"))
    latency = result.get("latency_us") or {}
    for stage in STAGES:
        for stat in STAGE_STATS:
            row[f"{stage}_{stat}"] = latency.get(stage, {}).get(stat, math.nan)
    for key in ("hlog", "bw_csv"):
        path = folder / result[key] if result.get(key) else None
        row[key] = path if path is not None and path.is_file() else None
    return row


def _or_nan(value):
    return math.nan if value is None else value


STATUS_MEANING = {
    "verify_failed": "read verification found bad sectors",
    "error": "an I/O or setup error stopped the case",
    "deadlock": "work queued in a pool that could not run it",
    "stall": "no progress, for another reason",
    "interrupted": "stopped by SIGINT/SIGTERM",
}


def _detail(case):
    parts = [case.stall_detail, case.error]
    if case.mismatch_count:
        parts.append(f"{case.mismatch_count} bad sector(s)")
    return "; ".join(p for p in parts if p) or STATUS_MEANING.get(case.status, "")


class Run:
    """One results folder. Build it with load()."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / "manifest.json").read_text())
        results = {}
        for path in self.folder.glob("*.json"):
            data = json.loads(path.read_text()) if path.name != "manifest.json" else None
            if isinstance(data, dict) and {"case", "strategy", "status"} <= data.keys():
                results[data["case"]] = data
        self._missing = [c for c in self.manifest.get("cases", []) if c not in results]
        rows = [_flatten(r, self.folder) for r in results.values()]
        cases = pd.DataFrame(rows, columns=list(_flatten_columns()))
        # Boolean even when empty, so that it can select rows.
        cases["warmup"] = cases["warmup"].astype(bool)
        cases.insert(1, "order", cases["case"].map(_case_index))
        cases = cases.sort_values("order", kind="stable").reset_index(drop=True)
        self.strategies, self.labels = self._order(cases)
        cases.insert(2, "label", cases["strategy"].map(self.labels))
        cases.insert(3, "backend", cases["strategy"].map(lambda s: parse_spec(s)[0]))
        self.cases = cases
        self._hdr_cache = {}

    def _order(self, cases):
        """Strategies in config order, and their labels: as typed in the config.

        A case's result names its strategy in full ('kthread:idle_thresh=64,...'), the
        config as typed ('kthread'). The harness runs config.strategies in order each
        repeat, so case N ran spec (N-1) mod len(specs)."""
        specs = self.manifest.get("config", {}).get("strategies", [])
        typed = {}
        for case in cases.itertuples():
            if case.strategy not in typed:
                known = specs and case.order > 0
                typed[case.strategy] = specs[(case.order - 1) % len(specs)] if known else None
        position = {s: i for i, s in enumerate(specs)}
        order = sorted(typed, key=lambda s: position.get(typed[s], len(specs)))
        return order, {s: typed[s] or s for s in order}

    @property
    def baseline(self):
        return self.strategies[0] if self.strategies else None

    @property
    def status(self):
        return self.manifest.get("status", "unknown")

    @cached_property
    def problems(self):
        """Cases whose status is not ok, cases the manifest lists but whose file is
        missing, and the run itself if it did not complete."""
        rows = [
            {"case": c.case, "label": c.label, "repeat": c.repeat, "status": c.status,
             "detail": _detail(c)}
            for c in self.cases.itertuples()
            if c.status != "ok"
        ]
        rows += [
            {"case": c, "label": None, "repeat": None, "status": "missing",
             "detail": "listed in manifest.json but its .json file is absent"}
            for c in self._missing
        ]
        if self.status != "complete":
            error = self.manifest.get("error")
            rows.append({"case": "(run)", "label": None, "repeat": None,
                         "status": f"run {self.status}",
                         "detail": error or "the harness did not finish the run (still running, "
                                            "stopped or killed): later cases are absent"})
        table = pd.DataFrame(rows, columns=["case", "label", "repeat", "status", "detail"])
        return table.astype({"repeat": "Int64"})

    def summary(self, noise_threshold=stats.NOISE_THRESHOLD, seed=stats.SEED):
        """One row per strategy in config order, like the harness's comparison table:
        medians over the counted (not warm-up) runs that ended ok, min/max throughput,
        and per metric `<metric>_ratio`, `_ci95_lo`, `_ci95_hi`, `_verdict`, `_pairs`
        against the baseline (the baseline's own: ratio 1, verdict "baseline"). Outlier,
        interference and never-steady repeats are listed, not dropped."""
        settings = {"noise_threshold": noise_threshold, "seed": seed}
        counted = self.cases[~self.cases["warmup"]]
        base = counted[counted["strategy"] == self.baseline]
        rows = [self._summary_row(s, counted, base, settings) for s in self.strategies]
        columns = list(self._summary_row(None, counted, base, settings))
        return pd.DataFrame(rows, columns=columns)

    def _summary_row(self, strategy, counted, base, settings):
        all_runs = counted[counted["strategy"] == strategy]
        runs = all_runs[all_runs["status"] == "ok"]
        counts = all_runs.loc[all_runs["status"] != "ok", "status"].value_counts()
        row = {
            "strategy": strategy,
            "label": self.labels.get(strategy),
            "runs": len(all_runs),
            "ok": len(runs),
            "warmups": int(((self.cases["strategy"] == strategy) & self.cases["warmup"]).sum()),
            "problems": ", ".join(f"{s} x{n}" for s, n in counts.items()),
            "mib_s_median": runs["mib_s"].median(),
            "mib_s_min": runs["mib_s"].min(),
            "mib_s_max": runs["mib_s"].max(),
        }
        for col in ("e2e_p50_us", "e2e_p99_us", "e2e_p999_us", "cpu_s_per_gib",
                    "vcsw_per_gib", "ivcsw_per_gib"):
            row[col] = runs[col].median()
        row["user_s_per_gib"] = (runs["user_s"] / runs["bytes"] * 2**30).median()
        row["sys_s_per_gib"] = (runs["sys_s"] / runs["bytes"] * 2**30).median()
        for col in ("cpu_s_per_gib", "vcsw_per_gib", "ivcsw_per_gib"):
            row[f"{col}_min"] = runs[col].min()
            row[f"{col}_max"] = runs[col].max()
        row["min_interval_mib_s"] = runs["min_interval_mib_s"].min()
        row.update(self._vs_baseline(strategy, base, all_runs, settings))
        row["outlier_repeats"] = [int(runs["repeat"].iloc[i])
                                  for i in stats.tukey_outliers(runs["mib_s"])]
        row["interference_repeats"] = _repeats(all_runs, all_runs["interference"].eq(True))
        row["unsteady_repeats"] = _repeats(all_runs, all_runs["steady_attained"].eq(False))
        return row

    def _vs_baseline(self, strategy, base, cand, settings):
        """Every metric's comparison of `cand` (a strategy's counted cases) with the
        baseline's, flat: {"mib_s_ratio": ..., "mib_s_verdict": ..., ...}."""
        pairs = _ok_pairs(base, cand)
        out = {}
        for name, (column, polarity, _) in METRICS.items():
            if strategy == self.baseline:
                c = {"ratio": 1.0, "ci95_lo": math.nan, "ci95_hi": math.nan,
                     "verdict": "baseline", "pairs": len(pairs)}
            else:
                c = stats.compare(list(zip(pairs[f"{column}_base"], pairs[column])),
                                  polarity, **settings)
            out.update({f"{name}_{field}": c[field] for field in COMPARISON_FIELDS})
        return out

    def verdicts(self, noise_threshold=stats.NOISE_THRESHOLD, seed=stats.SEED):
        """Every metric of every strategy after the baseline against the baseline: one
        row per (strategy, metric) with ratio, 95 % interval, verdict and pairs."""
        summary = self.summary(noise_threshold, seed)
        rows = [
            {"strategy": r["strategy"], "label": r["label"], "metric": name,
             "metric_label": METRICS[name][2],
             **{field: r[f"{name}_{field}"] for field in COMPARISON_FIELDS}}
            for _, r in summary.iloc[1:].iterrows()
            for name in METRICS
        ]
        columns = ["strategy", "label", "metric", "metric_label", *COMPARISON_FIELDS]
        return pd.DataFrame(rows, columns=columns)

    @cached_property
    def bandwidth(self):
        """Every case's bandwidth intervals. `streaming` marks the intervals the harness
        counts in its min/max/CoV: up to the last one that completed any bytes (the empty
        tail is end_fsync) and at least half the nominal interval long."""
        frames = []
        for case in self.cases.itertuples():
            if pd.isna(case.bw_csv):
                continue
            bw = pd.read_csv(case.bw_csv)
            with_bytes = np.flatnonzero(bw["bytes"].to_numpy() > 0)
            last = with_bytes[-1] if len(with_bytes) else -1
            nominal = 0 if math.isnan(case.bw_interval_s) else case.bw_interval_s
            bw["streaming"] = (bw.index <= last) & (bw["length_s"] >= nominal / 2)
            bw.insert(0, "case", case.case)
            bw.insert(1, "strategy", case.strategy)
            bw.insert(2, "label", case.label)
            bw.insert(3, "repeat", case.repeat)
            bw.insert(4, "status", case.status)
            frames.append(bw)
        columns = ["case", "strategy", "label", "repeat", "status", "start_s", "length_s",
                   "bytes", "bios", "mib_s", "streaming"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

    def _hlog(self, case):
        """{tag: merged histogram} of one case's interval log ({} if it has none)."""
        if case not in self._hdr_cache:
            path = self.cases.set_index("case").at[case, "hlog"]
            merged = {}
            if pd.notna(path):
                reader = HistogramLogReader(str(path), HdrHistogram(*HDR_BOUNDS))
                while (h := reader.get_next_interval_histogram()) is not None:
                    merged.setdefault(h.get_tag(), HdrHistogram(*HDR_BOUNDS)).add(h)
                reader.close()
            self._hdr_cache[case] = merged
        return self._hdr_cache[case]

    def hdr(self, case, tag):
        """The case's histogram for a stage, all intervals merged (ns); None if absent."""
        return self._hlog(case).get(tag)

    def latency_spectrum(self, stage, by="strategy", ok_only=True):
        """Latency (µs) at percentiles 1 - 10^-k, k = 0, 0.05, ... while fewer than one
        sample lies beyond, with x = 1 / (1 - percentile) for a log axis on which 90%,
        99%, 99.9% are evenly spaced; the last point is the max, at x = sample count.
        by="strategy" merges a strategy's repeats, by="case" keeps each case apart.
        Cases without an hlog, or without this stage in it, are skipped."""
        cases = self.cases[self.cases["status"] == "ok"] if ok_only else self.cases
        groups = {}
        for case in cases.itertuples():
            h = self.hdr(case.case, stage)
            if h is None:
                continue
            key = case.strategy if by == "strategy" else case.case
            if key not in groups:
                groups[key] = (case, HdrHistogram(*HDR_BOUNDS))
            groups[key][1].add(h)
        frames = []
        for case, h in groups.values():
            count = h.get_total_count()
            ks = np.arange(0, math.log10(count), 0.05)
            percentiles = [100 * (1 - 10**-k) for k in ks]
            values = h.get_percentile_to_value_dict(percentiles)
            frames.append(pd.DataFrame({
                "case": case.case if by == "case" else None,
                "strategy": case.strategy,
                "label": case.label,
                "percentile": percentiles + [100.0],
                "x": list(10**ks) + [count],
                "latency_us": [values[p] / 1000 for p in percentiles] + [h.get_max_value() / 1000],
            }))
        columns = ["case", "strategy", "label", "percentile", "x", "latency_us"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

    def sweeps(self):
        """Throughput and e2e p99 against each knob that varies between the specs of one
        backend (e.g. kthread max_workers=1,2,4). One row per (backend, knob, strategy);
        `series` names the other knobs that vary too, so each combination is its own line.
        Empty when no backend has two specs that differ."""
        summary = self.summary().set_index("strategy")
        rows = []
        for strategy in self.strategies:
            backend, knobs = parse_spec(strategy)
            rows.append({"strategy": strategy, "backend": backend, "knobs": knobs})
        specs = pd.DataFrame(rows, columns=["strategy", "backend", "knobs"])
        out = []
        for backend, group in specs.groupby("backend", sort=False):
            knobs = pd.DataFrame(group["knobs"].tolist(), index=group.index)
            varying = [k for k in knobs if knobs[k].nunique() > 1]
            for knob in varying:
                others = [k for k in varying if k != knob]
                for i, strategy in group["strategy"].items():
                    stats = summary.loc[strategy]
                    out.append({
                        "backend": backend,
                        "knob": knob,
                        "value": _number(knobs.at[i, knob]),
                        "series": ",".join(f"{k}={knobs.at[i, k]}" for k in others) or backend,
                        "strategy": strategy,
                        "label": self.labels[strategy],
                        "ok": stats["ok"],
                        "mib_s_median": stats["mib_s_median"],
                        "mib_s_min": stats["mib_s_min"],
                        "mib_s_max": stats["mib_s_max"],
                        "e2e_p99_us": stats["e2e_p99_us"],
                        **{f"{m}_{f}": stats[f"{m}_{f}"] for m in ("mib_s", "e2e_p99")
                           for f in ("ratio", "ci95_lo", "ci95_hi", "verdict")},
                    })
        columns = ["backend", "knob", "value", "series", "strategy", "label", "ok",
                   "mib_s_median", "mib_s_min", "mib_s_max", "e2e_p99_us",
                   *(f"{m}_{f}" for m in ("mib_s", "e2e_p99")
                     for f in ("ratio", "ci95_lo", "ci95_hi", "verdict"))]
        return pd.DataFrame(out, columns=columns)


def _keyed(cases):
    """A strategy's cases keyed by (repeat, place among its cases of that repeat): with job
    groups, the k-th case of repeat i pairs with the baseline's k-th of repeat i."""
    cases = cases.sort_values("order", kind="stable")
    return cases.assign(place=cases.groupby("repeat").cumcount())


def _ok_pairs(base, cand):
    """The metric columns of (baseline, candidate) cases of the same repeat and place, both
    ok; the baseline's columns suffixed `_base`."""
    columns = ["repeat", "place", "status", *(c for c, _, _ in METRICS.values())]
    merged = _keyed(cand)[columns].merge(_keyed(base)[columns], on=["repeat", "place"],
                                         suffixes=("", "_base"))
    return merged[(merged["status"] == "ok") & (merged["status_base"] == "ok")]


def _repeats(cases, flagged):
    return [int(r) for r in cases.loc[flagged, "repeat"]]


def _flatten_columns():
    """The columns of Run.cases that come from a case file, in order."""
    return _flatten({"case": "", "strategy": "", "status": ""}, Path(".")).keys()


def load(folder):
    """Reads a results folder: manifest.json plus whatever case files it holds."""
    return Run(folder)


# crossings.csv's columns (harness/src/crossover/output.rs), for a sweep that has none yet.
CROSSING_COLUMNS = ("strategy", "numjobs", "kind", "cost_ns_per_sector", "ci95_lo_ns",
                    "ci95_hi_ns", "edge_ns", "sure_points", "lowest_ns", "highest_ns", "points",
                    "answer")


class Crossover:
    """A `harness crossover` folder: the map's points, its crossings, the answer, and each
    point's own compare folder. Build it with load_crossover()."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / "manifest.json").read_text())
        if self.manifest.get("kind") != "crossover":
            raise ValueError(f"{self.folder} is not a crossover folder: its manifest.json "
                             "is not a `harness crossover` one (use load() for a compare)")
        points_csv = self.folder / "crossover.csv"
        self.points = (pd.read_csv(points_csv, keep_default_na=False, na_values=[""])
                       if points_csv.is_file() else pd.DataFrame())
        if not self.points.empty:
            self.points["real"] = self.points["requested_ns"].isna()
        crossings_csv = self.folder / "crossings.csv"
        self.crossings = (pd.read_csv(crossings_csv, keep_default_na=False, na_values=[""])
                          if crossings_csv.is_file() else pd.DataFrame(columns=CROSSING_COLUMNS))
        self.answer = list(self.manifest.get("answer", []))

    @property
    def status(self):
        return self.manifest.get("status", "unknown")

    @property
    def baseline(self):
        return self.manifest.get("config", {}).get("strategies", ["inline"])[0]

    def series(self):
        """[((strategy, numjobs), points sorted by cost)], strategies in config order."""
        if self.points.empty:
            return []
        order = {s: i for i, s in enumerate(self.manifest["config"]["strategies"])}
        keys = sorted(self.points.groupby(["strategy", "numjobs"]).groups,
                      key=lambda k: (order.get(k[0], len(order)), k[1]))
        return [(k, self.points[(self.points["strategy"] == k[0])
                                & (self.points["numjobs"] == k[1])]
                 .sort_values("cost_ns_per_sector").reset_index(drop=True))
                for k in keys]

    def real_algorithms(self):
        """{algorithm: ns per sector} of the real checksums, cheapest first."""
        real = self.points[self.points["real"]] if not self.points.empty else self.points
        costs = real.groupby("algorithm")["cost_ns_per_sector"].first()
        return costs.sort_values().to_dict()

    def point(self, folder):
        """One point's compare folder, as load() reads it."""
        return load(self.folder / folder)


def load_crossover(folder):
    """Reads a `harness crossover` folder: manifest.json, crossover.csv, crossings.csv."""
    return Crossover(folder)
