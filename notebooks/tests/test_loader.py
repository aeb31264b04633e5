import json
import math

import numpy as np
import pandas as pd
import pytest

from csumbench_results import COMPARISON_FIELDS, METRICS, STAGES, load, parse_spec


def test_sample_loads_every_case_in_config_order(sample_dir):
    run = load(sample_dir)
    manifest = json.loads((sample_dir / "manifest.json").read_text())
    assert run.status == "complete"
    assert list(run.cases["case"]) == manifest["cases"]
    assert [run.labels[s] for s in run.strategies] == manifest["config"]["strategies"]
    assert run.baseline == "inline"
    assert set(run.cases["status"]) == {"ok"}
    assert run.problems.empty
    assert run.cases["hlog"].notna().all() and run.cases["bw_csv"].notna().all()


def test_cases_flatten_the_case_files(sample_dir):
    run = load(sample_dir)
    case = run.cases.iloc[1]
    result = json.loads((sample_dir / f"{case['case']}.json").read_text())
    assert case["strategy"] == result["strategy"]
    assert case["mib_s"] == result["mib_s"]
    assert case["voluntary_csw"] == result["usage"]["voluntary_csw"]
    assert case["bw_cov"] == result["bandwidth"]["cov"]
    for stage in STAGES:
        assert case[f"{stage}_p99_us"] == result["latency_us"][stage]["p99_us"]
    assert case["backend"] == "kthread"


def test_summary_follows_the_harness_rules(sample_dir):
    run = load(sample_dir)
    summary = run.summary()
    assert list(summary["strategy"]) == run.strategies
    assert summary["mib_s_ratio"].iloc[0] == 1.0
    assert set(summary["mib_s_verdict"].iloc[:1]) == {"baseline"}
    base = run.cases[run.cases["strategy"] == run.baseline].set_index("repeat")["mib_s"]
    for row in summary.itertuples():
        repeats = run.cases.loc[run.cases["strategy"] == row.strategy].set_index("repeat")
        assert row.mib_s_median == repeats["mib_s"].median()
        assert row.mib_s_min <= row.mib_s_median <= row.mib_s_max
        # The geometric mean of the paired ratios, repeat i against the baseline's repeat i.
        paired = np.exp(np.log(repeats["mib_s"] / base).mean())
        assert row.mib_s_ratio == pytest.approx(paired)
        assert row.mib_s_pairs == 3
        if row.strategy != run.baseline:
            assert row.mib_s_ci95_lo <= row.mib_s_ratio <= row.mib_s_ci95_hi
        assert row.runs == row.ok == 3 and row.problems == "" and row.warmups == 0
    assert list(summary["mib_s_verdict"].iloc[1:]) == ["slower", "same", "same"]


def test_every_metric_has_ratio_interval_verdict_and_pairs(sample_dir):
    summary = load(sample_dir).summary()
    for metric in METRICS:
        for field in COMPARISON_FIELDS:
            assert f"{metric}_{field}" in summary, (metric, field)
    verdicts = load(sample_dir).verdicts()
    assert len(verdicts) == 3 * len(METRICS)
    assert set(verdicts["verdict"]) <= {"faster", "slower", "more", "less", "same"}
    row = verdicts[(verdicts["label"] == "kthread:max_workers=1")
                   & (verdicts["metric"] == "cpu_s_per_gib")].iloc[0]
    assert row["verdict"] == "more" and row["ci95_lo"] > 1.02


def test_pairs_follow_repeats_and_need_both_ok(copy):
    copy.deadlock(copy.cases[5])  # kthread:max_workers=1, repeat 2
    summary = load(copy.folder).summary().set_index("label")
    assert summary.at["kthread:max_workers=1", "mib_s_pairs"] == 2
    assert summary.at["kthread:max_workers=1", "mib_s_verdict"] == "unknown"
    assert np.isnan(summary.at["kthread:max_workers=1", "mib_s_ci95_lo"])
    assert summary.at["kthread", "mib_s_pairs"] == 3


def test_warm_ups_are_listed_but_not_counted(copy):
    copy.edit_case(copy.cases[0], warmup=True, mib_s=1.0)
    summary = load(copy.folder).summary().set_index("label")
    assert summary.at["inline", "warmups"] == 1 and summary.at["inline", "runs"] == 2
    assert summary.at["inline", "mib_s_min"] > 1.0
    assert summary.at["kthread", "mib_s_pairs"] == 2


def test_noise_and_steady_state_are_read_where_recorded(copy, sample_dir):
    run = load(sample_dir)
    assert run.cases["interference"].isna().all() and run.cases["steal_pct"].isna().all()
    assert run.cases["steady_attained"].isna().all() and not run.cases["warmup"].any()
    copy.edit_case(copy.cases[1], noise={"steal_pct": 12.5, "others_cpu_pct": 1.0,
                                          "dirty_kib_start": 10, "dirty_kib_end": 900,
                                          "loadavg_end": [1.5, 1.0, 0.5],
                                          "interference": True})
    copy.edit_case(copy.cases[2], steady={"criterion": "iops:1%", "attained": False,
                                           "attained_at_s": None})
    run = load(copy.folder)
    case = run.cases.set_index("case").loc[copy.cases[1]]
    assert (case["steal_pct"], case["dirty_kib_end"], case["loadavg_1m_end"]) == (12.5, 900, 1.5)
    assert case["interference"] is True and np.isnan(case["psi_io_some_pct"])
    summary = run.summary().set_index("label")
    assert summary.at["kthread:max_workers=1", "interference_repeats"] == [1]
    assert summary.at["kthread:max_workers=2", "unsteady_repeats"] == [1]
    # Flagged, not dropped.
    assert summary.at["kthread:max_workers=1", "mib_s_pairs"] == 3


def test_an_outlier_repeat_is_named(copy):
    # Three repeats cannot hold an outlier (Tukey's fences always contain them): give
    # kthread a fourth, a copy of its repeat 2, and slow its repeat 1 to a crawl.
    extra = json.loads((copy.folder / f"{copy.cases[7]}.json").read_text())
    extra.update(case="13-kthread-r4", repeat=4)
    (copy.folder / "13-kthread-r4.json").write_text(json.dumps(extra))
    copy.edit_case(copy.cases[3], mib_s=100.0)
    summary = load(copy.folder).summary().set_index("label")
    assert summary.at["kthread", "outlier_repeats"] == [1]
    assert summary.at["kthread", "ok"] == 4 and summary.at["kthread", "mib_s_pairs"] == 3
    assert summary.at["inline", "outlier_repeats"] == []


def test_bandwidth_intervals_add_up_to_each_case(sample_dir):
    run = load(sample_dir)
    bw = run.bandwidth
    assert {"case", "strategy", "label", "start_s", "length_s", "mib_s", "streaming"} <= set(bw)
    totals = bw.groupby("case")["bytes"].sum()
    assert totals.to_dict() == run.cases.set_index("case")["bytes"].to_dict()
    for case in run.cases.itertuples():
        streaming = bw[(bw["case"] == case.case) & bw["streaming"]]
        assert len(streaming) == case.bw_samples
        assert streaming["mib_s"].min() == pytest.approx(case.bw_min_mib_s, rel=1e-3)


def test_merged_histograms_match_the_case_files(sample_dir):
    run = load(sample_dir)
    for case in run.cases.itertuples():
        for stage in STAGES:
            h = run.hdr(case.case, stage)
            assert h.get_total_count() == getattr(case, f"{stage}_count")
            for p, col in ((50, "p50_us"), (99, "p99_us"), (100, "max_us")):
                assert h.get_value_at_percentile(p) / 1000 == pytest.approx(
                    getattr(case, f"{stage}_{col}"), rel=2e-3)
    assert run.hdr(run.cases["case"].iloc[0], "no_such_stage") is None


def test_latency_spectrum_is_a_rising_curve_per_strategy(sample_dir):
    run = load(sample_dir)
    spectrum = run.latency_spectrum("e2e")
    assert list(spectrum["strategy"].unique()) == run.strategies
    for strategy, line in spectrum.groupby("strategy"):
        assert line["x"].iloc[0] == 1 and line["percentile"].iloc[0] == 0
        assert line["latency_us"].is_monotonic_increasing
        assert line["x"].is_monotonic_increasing
        assert line["percentile"].iloc[-1] == 100
        cases = run.cases[run.cases["strategy"] == strategy]
        assert line["x"].iloc[-1] == cases["e2e_count"].sum()
        assert line["latency_us"].iloc[-1] == pytest.approx(cases["e2e_max_us"].max(), rel=2e-3)
    by_case = run.latency_spectrum("io", by="case")
    assert set(by_case["case"]) == set(run.cases["case"])


def test_parse_spec():
    assert parse_spec("inline") == ("inline", {})
    assert parse_spec("kthread:idle_thresh=64,max_workers=2,ordered=0") == (
        "kthread", {"idle_thresh": "64", "max_workers": "2", "ordered": "0"})


def test_sweeps_vary_the_knob_that_differs(sample_dir):
    run = load(sample_dir)
    sweeps = run.sweeps()
    assert set(sweeps["backend"]) == {"kthread"} and set(sweeps["knob"]) == {"max_workers"}
    assert list(sweeps["value"]) == [1, 2, 4]
    summary = run.summary().set_index("strategy")
    for row in sweeps.itertuples():
        assert row.mib_s_median == summary.at[row.strategy, "mib_s_median"]
        assert row.e2e_p99_us == summary.at[row.strategy, "e2e_p99_us"]
        assert row.mib_s_ci95_lo == summary.at[row.strategy, "mib_s_ci95_lo"]
        assert row.e2e_p99_verdict == summary.at[row.strategy, "e2e_p99_verdict"]


def test_sweeps_with_two_varying_knobs_split_into_series(copy):
    for case in copy.cases:
        if "max_workers_2" in case:
            copy.edit_case(case, strategy="kthread:idle_thresh=16,max_workers=2,ordered=0")
    sweeps = load(copy.folder).sweeps()
    assert set(sweeps["knob"]) == {"max_workers", "idle_thresh"}
    by_knob = sweeps[sweeps["knob"] == "max_workers"]
    assert set(by_knob["series"]) == {"idle_thresh=64", "idle_thresh=16"}


def test_no_sweep_without_two_specs_of_one_backend(copy):
    for case in copy.cases:
        if "max_workers" in case:
            copy.remove(case, ".json", ".hlog", ".bw.csv")
    copy.edit_manifest(cases=[c for c in copy.cases if "max_workers" not in c])
    assert load(copy.folder).sweeps().empty


def test_missing_hlog_and_bw_csv_are_skipped(copy):
    case = copy.cases[0]
    copy.remove(case, ".hlog", ".bw.csv")
    run = load(copy.folder)
    row = run.cases.set_index("case").loc[case]
    assert pd.isna(row["hlog"]) and pd.isna(row["bw_csv"])
    assert run.hdr(case, "e2e") is None
    assert case not in set(run.latency_spectrum("e2e", by="case")["case"])
    assert case not in set(run.bandwidth["case"])
    assert run.summary()["mib_s_median"].notna().all()
    assert run.problems.empty


def test_deadlocked_case_is_a_problem_and_left_out_of_medians(copy):
    case = copy.cases[1]
    copy.deadlock(case)
    run = load(copy.folder)
    problems = run.problems
    assert list(problems["case"]) == [case]
    assert problems["status"].iloc[0] == "deadlock"
    assert "1 queued behind 1 busy worker" in problems["detail"].iloc[0]
    row = run.summary().set_index("strategy").iloc[1]
    assert (row["runs"], row["ok"], row["problems"]) == (3, 2, "deadlock x1")
    ok = run.cases[(run.cases["strategy"] == row.name) & (run.cases["status"] == "ok")]
    assert row["mib_s_median"] == ok["mib_s"].median()
    assert run.latency_spectrum("e2e", by="case")["case"].ne(case).all()
    assert case in set(run.latency_spectrum("e2e", by="case", ok_only=False)["case"])


def test_a_failed_baseline_leaves_ratios_undefined(copy):
    for case in copy.cases:
        if "inline" in case:
            copy.deadlock(case)
    summary = load(copy.folder).summary()
    assert summary["strategy"].iloc[0] == "inline"
    assert summary["mib_s_ratio"].iloc[1:].isna().all()
    assert set(summary["mib_s_verdict"].iloc[1:]) == {"unknown"}


def test_interrupted_run_keeps_what_finished(copy):
    kept = copy.cases[:5]
    for case in copy.cases[5:]:
        copy.remove(case, ".json", ".hlog", ".bw.csv")
    copy.edit_case(kept[-1], status="interrupted")
    copy.edit_manifest(status="interrupted", cases=kept)
    run = load(copy.folder)
    assert list(run.cases["case"]) == kept
    assert run.strategies[0] == "inline" and len(run.strategies) == 4
    problems = run.problems.set_index("case")
    assert problems.at[kept[-1], "status"] == "interrupted"
    assert problems.at[kept[-1], "detail"] == "stopped by SIGINT/SIGTERM"
    assert problems.at["(run)", "status"] == "run interrupted"
    summary = run.summary()
    assert list(summary["runs"]) == [2, 1, 1, 1]
    assert list(summary["ok"]) == [1, 1, 1, 1]


def test_a_run_with_no_case_yet(copy):
    for case in copy.cases:
        copy.remove(case, ".json", ".hlog", ".bw.csv")
    copy.edit_manifest(status="running", cases=[])
    run = load(copy.folder)
    assert run.cases.empty and run.strategies == [] and run.baseline is None
    assert run.summary().empty and "mib_s_median" in run.summary()
    assert run.bandwidth.empty and run.latency_spectrum("e2e").empty and run.sweeps().empty
    assert list(run.problems["status"]) == ["run running"]


def test_case_listed_but_never_written_is_reported(copy):
    case = copy.cases[-1]
    copy.remove(case, ".json")
    problems = load(copy.folder).problems
    assert list(problems["case"]) == [case]
    assert problems["status"].iloc[0] == "missing"


def test_a_case_written_after_the_last_manifest_update_still_counts(copy):
    copy.edit_manifest(status="running", cases=copy.cases[:-1])
    run = load(copy.folder)
    assert len(run.cases) == len(copy.cases)
    assert list(run.problems["status"]) == ["run running"]


def test_other_json_files_are_not_cases(copy):
    (copy.folder / "summary.json").write_text(json.dumps([{"strategy": "inline"}]))
    assert len(load(copy.folder).cases) == len(copy.cases)


def test_a_folder_without_manifest_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path)


def test_numeric_columns_are_numeric(sample_dir):
    cases = load(sample_dir).cases
    for col in ("mib_s", "cpu_s_per_gib", "e2e_p999_us", "bw_cov", "user_s"):
        assert pd.api.types.is_float_dtype(cases[col]), col
    assert not any(math.isnan(v) for v in cases["e2e_p50_us"])
