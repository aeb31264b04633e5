#!/usr/bin/env bash
# vs-fio.sh: fio against `harness run --strategy inline --csum none` on the same jobs, the
# same files, interleaved (fio, harness, fio, harness, ...), REPEAT times each. Prints, per
# case, each tool's median, its spread (min-max) and the ratio harness/fio, then what each
# tool spent per I/O (CPU, context switches) and how deep its queue really was.
#
# Cases (fio's names and meanings; the harness gets the same options):
#   null       rw=randread bs=4k ioengine=null, $RUNTIME s: IOPS. No I/O at all: each
#              tool's own cost per I/O and nothing else
#   seq-write  rw=write bs=1m size=$WRITE_SIZE end_fsync=1 ioengine=psync, buffered: MiB/s
#   rr-psync   rw=randread bs=4k direct=1 ioengine=psync iodepth=1, $RUNTIME s: IOPS
#   rr-uring   rw=randread bs=4k direct=1 ioengine=io_uring iodepth=32, $RUNTIME s: IOPS
#
# Measured span, seq-write: both tools count data bytes over a span that ends after the
# end_fsync. fio calls the end_fsync inside do_io() and only then updates the job's runtime
# (backend.c, thread_main -> update_runtime), so its write bw includes the fsync; the
# harness's elapsed_s runs to the end of its end_fsync (README "MiB/s"). fio's runtime is in
# whole milliseconds, so this script computes fio MiB/s as io_bytes / runtime, as fio does.
#
# Files: one temporary directory (VSFIO_DIR, default a new one under /tmp), on the same
# filesystem for both tools. The harness lays each file out first (an unmeasured warm-up
# run), then both tools use that same file: the write case overwrites allocated blocks, the
# read cases read a file the harness has a checksum store for.
#
# Page cache, seq-write: fio's default invalidate=1 drops the file's cached pages when it
# opens the file, for writes as well as reads (ioengines.c, td_io_open_file); the harness
# invalidates only for read jobs. Left alone, fio would write into a cold cache and the
# harness into the warm one the previous run left: a different job (the harness came out
# up to 1.5x "faster" that way). Two ways to give both the same job:
#   WRITE_CACHE=warm (default): fio runs with invalidate=0 and nothing is dropped, so both
#     overwrite the cached pages of a file the previous run left clean (after its fsync).
#   WRITE_CACHE=cold: sync and drop the page cache right before every run of either tool
#     (root needed), so both allocate fresh page-cache pages. On a VM that hands free memory
#     back to its host (virtio-balloon free page reporting, DAMON pageout: this project's
#     VM), touching memory the guest has returned costs a host fault per page, and how much
#     of it a run hits depends on timing, not on the tool: the same harness job wrote
#     3231-3883 MiB/s started right after the drop, 614-723 MiB/s started 4 s after it.
#     Use cold where memory is not ballooned.
# The read cases are O_DIRECT; nothing is dropped for them (the harness runs with
# --drop-caches false).
#
# Environment: REPEAT (3), WRITE_SIZE (1g), READ_SIZE (1g), RUNTIME (10, seconds),
# UR_DEPTH (32), WRITE_CACHE (warm|cold, above), CASES (default "null seq-write rr-psync
# rr-uring"), GOAL (1.0: the least ratio harness/fio that passes), VSFIO_DIR (directory for the data files, default a new one under /tmp; the
# data files are removed at the end), RAW (where the raw fio JSON, logs and harness results
# go and stay; default $VSFIO_DIR/raw), HARNESS (default target/release/harness, built if
# missing). Defaults take about 3.5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

REPEAT=${REPEAT:-3}
WRITE_SIZE=${WRITE_SIZE:-1g}
READ_SIZE=${READ_SIZE:-1g}
RUNTIME=${RUNTIME:-10}
UR_DEPTH=${UR_DEPTH:-32}
CASES=${CASES:-null seq-write rr-psync rr-uring}
GOAL=${GOAL:-1.0}
HARNESS=${HARNESS:-target/release/harness}
WRITE_CACHE=${WRITE_CACHE:-warm}
case $WRITE_CACHE in
    cold) WRITE_FIO_EXTRA="" ;;
    warm) WRITE_FIO_EXTRA=" --invalidate=0" ;;
    *) echo "WRITE_CACHE must be cold or warm" >&2; exit 2 ;;
esac
if [ "$WRITE_CACHE" = cold ] && [ ! -w /proc/sys/vm/drop_caches ]; then
    echo "WRITE_CACHE=cold needs root (it writes /proc/sys/vm/drop_caches)" >&2
    exit 2
fi

if ! command -v fio >/dev/null; then
    echo "fio is missing: installing it" >&2
    apt-get update -qq && apt-get install -y -qq fio >/dev/null
fi
if [ ! -x "$HARNESS" ]; then
    echo "building the harness" >&2
    cargo build --release -p harness >&2
fi

if [ -z "${VSFIO_DIR:-}" ]; then
    VSFIO_DIR=$(mktemp -d /tmp/vs-fio.XXXXXX)
fi
mkdir -p "$VSFIO_DIR"
RAW=${RAW:-$VSFIO_DIR/raw}
mkdir -p "$RAW"
# The data files go; the raw results (a few hundred KiB) stay, for checking the figures.
cleanup() {
    rm -f "$VSFIO_DIR"/seq-write.dat "$VSFIO_DIR"/seq-write.dat.csum \
        "$VSFIO_DIR"/randread.dat "$VSFIO_DIR"/randread.dat.csum
}
trap cleanup EXIT

# Each case: its file, then the job in fio's words and in the harness's.
case_file() {
    case $1 in
        seq-write) echo "$VSFIO_DIR/seq-write.dat" ;;
        # The harness's null jobs still name a file (one it has a checksum store for, so
        # that nothing is laid out); fio's null engine opens none.
        *) echo "$VSFIO_DIR/randread.dat" ;;
    esac
}
case_fio() {
    case $1 in
        null) echo "--rw=randread --bs=4k --size=$READ_SIZE --ioengine=null --runtime=$RUNTIME --time_based=1" ;;
        seq-write) echo "--rw=write --bs=1m --size=$WRITE_SIZE --end_fsync=1 --ioengine=psync --iodepth=1 --direct=0" ;;
        rr-psync) echo "--rw=randread --bs=4k --size=$READ_SIZE --direct=1 --ioengine=psync --iodepth=1 --runtime=$RUNTIME --time_based=1" ;;
        rr-uring) echo "--rw=randread --bs=4k --size=$READ_SIZE --direct=1 --ioengine=io_uring --iodepth=$UR_DEPTH --runtime=$RUNTIME --time_based=1" ;;
        *) echo "unknown case $1" >&2; exit 2 ;;
    esac
}
# fio's "--opt=value" spelled as the harness's "--opt value".
case_harness() { case_fio "$1" | sed 's/=/ /g'; }
# Options only fio gets: how the write case treats the page cache (see the top).
fio_extra() { if [ "$1" = seq-write ]; then echo "$WRITE_FIO_EXTRA"; fi; }
# Before each run of either tool.
before_run() {
    if [ "$1" = seq-write ] && [ "$WRITE_CACHE" = cold ]; then
        sync
        echo 3 >/proc/sys/vm/drop_caches
    fi
}

run_fio() { # case i
    local c=$1 i=$2 f
    f=$(case_file "$c")
    before_run "$c"
    # shellcheck disable=SC2046
    fio --name="$c" --filename="$f" $(case_fio "$c") $(fio_extra "$c") \
        --output-format=json --output="$RAW/$c/fio-$i.json" >"$RAW/$c/fio-$i.log" 2>&1 \
        || { echo "fio failed ($c #$i):" >&2; cat "$RAW/$c/fio-$i.log" >&2; exit 1; }
}
run_harness() { # case i|warmup
    local c=$1 i=$2 f
    f=$(case_file "$c")
    before_run "$c"
    # shellcheck disable=SC2046
    "$HARNESS" run --strategy inline --csum none $(case_harness "$c") \
        --filename "$f" --drop-caches false --out "$RAW/$c/harness-$i" \
        >"$RAW/$c/harness-$i.log" 2>&1 \
        || { echo "harness failed ($c #$i):" >&2; cat "$RAW/$c/harness-$i.log" >&2; exit 1; }
}

echo "vs-fio: REPEAT=$REPEAT WRITE_SIZE=$WRITE_SIZE READ_SIZE=$READ_SIZE RUNTIME=${RUNTIME}s" \
    "UR_DEPTH=$UR_DEPTH WRITE_CACHE=$WRITE_CACHE, files in $VSFIO_DIR, raw results in $RAW" >&2
# Other work on the machine skews every figure: the load average says whether there was any.
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for c in $CASES; do
    mkdir -p "$RAW/$c"
    echo "== $c: fio $(case_fio "$c")$(fio_extra "$c")" >&2
    # Warm-up: the harness lays the file out (and, for the read cases, its checksum store).
    if [ "$c" = seq-write ]; then
        run_harness "$c" warmup
    elif [ ! -e "$(case_file "$c").csum" ]; then
        RUNTIME=1 run_harness "$c" warmup
    fi
    for i in $(seq 1 "$REPEAT"); do
        printf '   #%s fio' "$i" >&2
        run_fio "$c" "$i"
        printf ', harness\n' >&2
        run_harness "$c" "$i"
    done
done

echo "load average (1/5/15 min) before: $load_start, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "vs-fio: REPEAT=$REPEAT WRITE_SIZE=$WRITE_SIZE READ_SIZE=$READ_SIZE RUNTIME=${RUNTIME}s" \
    "UR_DEPTH=$UR_DEPTH WRITE_CACHE=$WRITE_CACHE; fio $(fio --version); harness $("$HARNESS" --version 2>/dev/null || echo "?")"
# shellcheck disable=SC2086  # CASES is a list of words
python3 - "$RAW" "$REPEAT" "$GOAL" $CASES <<'EOF'
import json, os, statistics, sys

raw, repeat, goal, cases = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
MIB = 1 << 20

def fio_run(path):
    job = json.load(open(path))["jobs"][0]
    d = job["write"] if job["write"]["io_bytes"] else job["read"]
    ios = d["total_ios"]
    runtime_s = d["runtime"] / 1000.0
    cpu_s = (job["usr_cpu"] + job["sys_cpu"]) / 100.0 * job["job_runtime"] / 1000.0
    return {
        "MiB/s": d["io_bytes"] / MIB / runtime_s,
        "IOPS": d["iops"],
        "cpu_us_per_io": cpu_s / ios * 1e6,
        "usr_pct": job["usr_cpu"], "sys_pct": job["sys_cpu"],
        "ctx_per_io": job["ctx"] / ios,
        "lat_mean_us": d["lat_ns"]["mean"] / 1000.0,
        "p99_us": d["clat_ns"]["percentile"].get("99.000000", 0) / 1000.0,
        "in_flight": d["iops"] * d["lat_ns"]["mean"] / 1e9,
    }

def harness_run(out):
    m = json.load(open(os.path.join(out, "manifest.json")))
    c = json.load(open(os.path.join(out, m["cases"][0] + ".json")))
    if c["status"] != "ok":
        sys.exit(f"{out}: status {c['status']}: {c.get('error')}")
    u = c["usage"]
    cpu_s = u["user_s"] + u["sys_s"]
    lat = c["latency_us"]
    return {
        "MiB/s": c["mib_s"],
        "IOPS": c["iops"],
        "cpu_us_per_io": cpu_s / c["bios"] * 1e6,
        "usr_pct": u["user_s"] / c["elapsed_s"] * 100, "sys_pct": u["sys_s"] / c["elapsed_s"] * 100,
        "ctx_per_io": (u["voluntary_csw"] + u["involuntary_csw"]) / c["bios"],
        "lat_mean_us": lat["io"]["mean_us"],
        "p99_us": lat["e2e"]["p99_us"],
        "in_flight": c["iops"] * lat["io"]["mean_us"] / 1e6,
    }

m0 = json.load(open(os.path.join(raw, cases[0], "harness-1", "manifest.json")))
print("harness git revision", m0["software"]["git_revision"], "| kernel", m0["machine"]["kernel"],
      "|", m0["machine"]["cpus_online"], "CPUs", m0["machine"]["cpu_model"])
metric = {"null": "IOPS", "seq-write": "MiB/s", "rr-psync": "IOPS", "rr-uring": "IOPS"}
med = lambda xs: statistics.median(xs)
rows, cpu_rows = [], []
for case in cases:
    d = os.path.join(raw, case)
    fio = [fio_run(os.path.join(d, f"fio-{i}.json")) for i in range(1, repeat + 1)]
    har = [harness_run(os.path.join(d, f"harness-{i}")) for i in range(1, repeat + 1)]
    k = metric[case]
    fv, hv = [r[k] for r in fio], [r[k] for r in har]
    ratio = med(hv) / med(fv)
    rows.append((case, k, med(fv), min(fv), max(fv), med(hv), min(hv), max(hv), ratio,
                 [round(x) for x in fv], [round(x) for x in hv]))
    for tool, rs in (("fio", fio), ("harness", har)):
        cpu_rows.append((case, tool) + tuple(med([r[x] for r in rs]) for x in
                        ("cpu_us_per_io", "usr_pct", "sys_pct", "ctx_per_io",
                         "lat_mean_us", "p99_us", "in_flight")))

print(f"\n{'case':<10} {'metric':<6} {'fio median':>10} {'fio min-max':>13} "
      f"{'harness median':>14} {'harness min-max':>15} {'ratio':>6}  goal")
for (case, k, fm, fl, fh, hm, hl, hh, ratio, _, _) in rows:
    ok = "ok" if ratio >= goal else f"BELOW {goal}"
    print(f"{case:<10} {k:<6} {fm:>10.0f} {f'{fl:.0f}-{fh:.0f}':>13} {hm:>14.0f} "
          f"{f'{hl:.0f}-{hh:.0f}':>15} {ratio:>6.3f}  {ok}")
print("\nper run, in order (fio / harness):")
for r in rows:
    print(f"  {r[0]:<10} fio {r[9]}  harness {r[10]}")
print(f"\n{'case':<10} {'tool':<8} {'CPU us/IO':>9} {'usr %':>6} {'sys %':>6} {'ctx/IO':>7} "
      f"{'lat mean us':>11} {'p99 us':>8} {'in flight':>9}")
for (case, tool, cpu, usr, sys_, ctx, lat, p99, infl) in cpu_rows:
    print(f"{case:<10} {tool:<8} {cpu:>9.2f} {usr:>6.1f} {sys_:>6.1f} {ctx:>7.3f} "
          f"{lat:>11.1f} {p99:>8.0f} {infl:>9.1f}")
print(f"raw results: {raw}")
print("(medians over the runs. CPU: fio's job process, the harness's whole process, per I/O "
      "(1 MiB for seq-write);\n lat mean: submit to reap (fio lat, harness io stage); p99: fio "
      "clat, harness e2e; in flight: IOPS x lat mean)")
EOF
