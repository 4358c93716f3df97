#!/usr/bin/python3
"""Runs bnorm_bench and torch_bench.py and prints one comparison table.

Per row (shape, layout, mode, threads, policy): bnorm's median time, oneDNN's
and PyTorch's with their ratio to bnorm (peer time / bnorm time: above 1 means
bnorm is faster), the memory-bandwidth roof time and bnorm's fraction of it
(roof time / bnorm time: 100% means bnorm moves its minimal bytes as fast as a
plain copy), the naive loop's ratio where measured, and geometric means.

PyTorch's ratios come from torch_bench.py, which times bnorm in the same
process; "pt" lets freed blocks be reused (MALLOC_MMAP_MAX_=0), "pt+mmap" runs
with glibc's defaults, where each large output is fresh pages.

A second table, the residual block (bn + add + ReLU, as at the end of a ResNet
block): bnorm's fused calls against bnorm's plain call with a separate
add+ReLU pass, PyTorch's batch_norm + add_ + relu_ (and their backward), and
the memory-bandwidth roof of the block's minimal traffic. oneDNN's fused form
(fuse_norm_add_relu) is not in the oneDNN the benchmark uses (2.6): that
column stays empty, with the benchmark's reason.

A third table, bf16 and f16 tensors (per-channel vectors stay float32): bnorm
against oneDNN's primitive and PyTorch's batch norm in the same dtype, against
bnorm's own f32 row, and against the roof of 2-byte elements (the same copy or
add on half the f32 roof's bytes). A peer without the dtype (oneDNN 2.6 and
PyTorch 1.13 have no f16 CPU batch norm) shows "missing", with its error.

Default: two shapes (residual rows for one, bf16/f16 rows for one: 1 thread,
cold, both layouts, all modes), 3 repetitions (about 45 s on the 2-core dev
machine before the residual rows, which added about 15%; the bf16/f16 rows add
about 20% more). --full: the whole table, residual and bf16/f16 rows for every
shape, the naive baseline and the per-SIMD-target rows, 5 repetitions (about
7.5 minutes there before the residual rows, which add 65% more benchmark rows;
the bf16/f16 rows add 70% more timed rows again).
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The default run: one ResNet-50 layer from DRAM and one that fits in cache.
QUICK_SHAPES = ["32x1024x14x14", "1x256x56x56"]
# In the quick run, only the rows the table compares.
QUICK_IMPLS = ["bnorm", "onednn", "roof_plain", "roof_stream"]
ROOF_IMPLS = ["roof_plain", "roof_stream"]
# The residual block's rows; in the quick run, for these shapes only.
RESIDUAL_IMPLS = ["bnorm_res", "bnorm_then_addrelu"]
QUICK_RESIDUAL_SHAPES = ["32x1024x14x14"]
# bf16 / f16 rows: their names end in the dtype ("bnorm/.../t1/cold/bf16"),
# their roof rows' in HALF_ROOF. In the quick run, these shapes, one thread,
# cold only: one row per layout and mode.
HALF_DTYPES = ["bf16", "f16"]
HALF_ROOF = "16bit"
QUICK_HALF_SHAPES = ["32x1024x14x14"]
QUICK_HALF_THREADS = [1]
# The end of an f32 row's name (no dtype part); Google Benchmark appends
# "/real_time" to the names it filters.
F32_TAIL = "t[0-9]+/(cold|hot)(/real_time)?$"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="every shape, plus the naive and per-SIMD-target rows")
    parser.add_argument("--build-dir", default=os.environ.get(
        "BNORM_BUILD_DIR", os.path.join(HERE, "..", "build", "release")))
    parser.add_argument("--shapes", help="comma-separated shape names instead of the default "
                        "(the residual block's rows run for all of them)")
    parser.add_argument("--reps", type=int, help="repetitions (medians); default 5 (quick: 3)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch rows")
    parser.add_argument("--dtypes", default="f32,bf16,f16",
                        help="tensor dtypes (f32 always runs; bf16, f16 add the third table)")
    parser.add_argument("--json-out", help="write the merged rows here (default: in the build dir)")
    return parser.parse_args()


def fail(message):
    print("compare: " + message, file=sys.stderr)
    sys.exit(1)


def run_peer_check(binary):
    result = subprocess.run([binary, "--check"], capture_output=True, text=True)
    summary = result.stdout.strip().splitlines()[-1:] or ["no output"]
    if result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        fail("the benchmark's peer check failed (%s); its rows would be wrong" % summary[0])
    print("peer check: " + summary[0])


def bench_filter(shapes, full, residual_shapes, half_shapes, half_dtypes, half_policies,
                 half_threads):
    """The --benchmark_filter regex for the run (None: every row). Google
    Benchmark may use POSIX regex here: no (?:...) or lookahead."""
    def alternatives(items):
        return "|".join(re.escape(s) for s in items)

    if full and not shapes and len(half_dtypes) == len(HALF_DTYPES):
        return None
    if full:
        # Every row of the shapes whose name ends in a policy (f32) or in one
        # of the dtypes run.
        ends = ["cold", "hot"] + half_dtypes + ([HALF_ROOF] if half_dtypes else [])
        return "^[^/]+/(%s)/.*/(%s)(/real_time)?$" % (
            alternatives(shapes) if shapes else "[^/]+", "|".join(ends))
    names = alternatives(shapes)
    # Batch norm's f32 rows and roofs for the shapes, the residual block's (and
    # its roofs, including the add roof its forward is held to) for its shapes.
    parts = ["(%s)/(%s)/[^/]+/[^/]+/%s" % ("|".join(QUICK_IMPLS), names, F32_TAIL)]
    if residual_shapes:
        parts.append("(%s)/(%s)/[^/]+/[^/]+/%s" % ("|".join(RESIDUAL_IMPLS + ROOF_IMPLS),
                                                   alternatives(residual_shapes), F32_TAIL))
    if set(residual_shapes) != set(shapes):
        # Roof rows of the other shapes: not the residual block's 3-in-2-out one.
        parts[0] = "(%s)/(%s)/[^/]+/[^/]+/%s" % (
            "|".join(r for r in QUICK_IMPLS if r not in ROOF_IMPLS), names, F32_TAIL)
        parts.insert(1, "(%s)/(%s)/any/(fwd|bwd)/%s" % ("|".join(ROOF_IMPLS), names, F32_TAIL))
    # The bf16 / f16 rows and their 2-byte roof.
    if half_shapes and half_dtypes:
        policies = "|".join(half_policies or ["cold", "hot"])
        threads = "|".join(str(t) for t in half_threads) if half_threads else "[0-9]+"
        parts.append("(bnorm|onednn)/(%s)/[^/]+/[^/]+/t(%s)/(%s)/(%s)(/real_time)?$" % (
            alternatives(half_shapes), threads, policies, "|".join(half_dtypes)))
        parts.append("(%s)/(%s)/any/(fwd|bwd)/t(%s)/(%s)/%s(/real_time)?$" % (
            "|".join(ROOF_IMPLS), alternatives(half_shapes), threads, policies, HALF_ROOF))
    return "^(%s)" % "|".join(parts)


def run_bench(binary, shapes, full, residual_shapes, half, reps, out_path):
    """Runs bnorm_bench, returns {(impl, shape, layout, mode, threads, policy,
    dtype): entry}; dtype is "f32", "bf16", "f16" or HALF_ROOF. half: (shapes,
    dtypes, policies, threads) of the bf16 / f16 rows (None: all)."""
    argv = [binary, "--benchmark_format=json", "--benchmark_out_format=json",
            "--benchmark_out=" + out_path]
    regex = bench_filter(shapes, full, residual_shapes, *half)
    if regex:
        argv.append("--benchmark_filter=" + regex)
    if reps:
        argv.append("--benchmark_repetitions=%d" % reps)
    count = len(subprocess.run(argv + ["--benchmark_list_tests"], capture_output=True,
                               text=True, check=True).stdout.split())
    print("bnorm_bench: %d benchmarks ..." % count, flush=True)
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    with open(out_path) as f:
        report = json.load(f)
    rows = {}
    for b in report["benchmarks"]:
        parts = b["run_name"].split("/")
        if len(parts) < 6:
            continue
        impl, shape, layout, mode, threads, policy = parts[:6]
        # After the policy: the dtype of bf16 / f16 rows, or Google Benchmark's
        # own suffixes ("real_time") on f32 rows, which have no dtype part.
        dtype = parts[6] if len(parts) > 6 and parts[6] in HALF_DTYPES + [HALF_ROOF] else "f32"
        key = (impl, shape, layout, mode, int(threads[1:]), policy, dtype)
        if b.get("error_occurred"):
            rows[key] = {"error": b.get("error_message", "error")}
        elif b.get("aggregate_name") == "median":
            scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b["time_unit"]]
            rows[key] = {"us": b["real_time"] * scale, "label": b.get("label", ""),
                         "bytes_per_second": b.get("bytes_per_second")}
    return rows, report["context"]


def torch_filter(shapes, half_shapes, half_dtypes, half_policies, half_threads):
    """torch_bench.py's --filter for the quick run's rows: f32 for the shapes,
    bf16 / f16 for the half shapes, threads and policies (Python regex)."""
    def alternatives(items):
        return "|".join(re.escape(str(s)) for s in items)

    parts = ["^(%s)/.*/f32$" % alternatives(shapes)]
    if half_shapes and half_dtypes:
        parts.append("^(%s)/[^/]+/[^/]+/t(%s)/(%s)/(%s)$" % (
            alternatives(half_shapes), alternatives(half_threads), alternatives(half_policies),
            alternatives(half_dtypes)))
    return "|".join(parts)


def run_torch(lib, shapes, residual_shapes, reps, out_path, dtypes=("f32",), row_filter=None):
    """Runs torch_bench.py (both allocator settings); returns
    ({(shape, layout, mode, threads, policy, alloc, dtype): row}, the same for
    the residual block's rows, info), or Nones if it failed."""
    argv = [sys.executable, os.path.join(HERE, "torch_bench.py"), "--shapes", ",".join(shapes),
            "--residual-shapes", ",".join(residual_shapes) or "none",
            "--dtypes", ",".join(dtypes), "--json", out_path, "--quiet", "--lib", lib]
    if reps:
        argv += ["--reps", str(reps)]
    if row_filter:
        argv += ["--filter", row_filter]
    print("torch_bench.py: %d shapes (%d with the residual block) in %s x 2 allocator "
          "settings ..." % (len(shapes), len(residual_shapes), "/".join(dtypes)), flush=True)
    if subprocess.run(argv).returncode != 0:
        print("compare: torch_bench.py failed; no PyTorch columns", file=sys.stderr)
        return None, None, {}
    with open(out_path) as f:
        report = json.load(f)
    rows = {"bn": {}, "res": {}}
    for r in report["rows"]:
        key = (r["shape"], r["layout"], r["mode"], r["threads"], r["policy"], r["alloc"],
               r.get("dtype", "f32"))
        rows[r.get("block", "bn")][key] = r
    return rows["bn"], rows["res"], report["info"]


class OtherLoad:
    """CPU time other processes used while we ran: /proc/stat's busy time minus
    our own and our children's. On this 2-core machine one busy neighbour is
    enough to stall every 2-thread parallel region for whole time slices."""

    def __enter__(self):
        self.start = (self.busy_seconds(), self.own_seconds(), time.time())
        return self

    def __exit__(self, *exc):
        busy, own, now = self.busy_seconds(), self.own_seconds(), time.time()
        other = (busy - self.start[0]) - (own - self.start[1])
        self.cpus = max(0.0, other / max(now - self.start[2], 1e-9))

    @staticmethod
    def busy_seconds():
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
        return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait

    @staticmethod
    def own_seconds():
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system


def geomean(values):
    values = [v for v in values if v is not None and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values)), len(values)


def fmt_us(v):
    if v is None:
        return "-"
    return "%.0f" % v if v >= 100 else "%.1f" % v


def fmt_ratio(v):
    return "-" if v is None else "%.2f" % v


def fmt_pct(v):
    return "-" if v is None else "%.0f%%" % (100 * v)


def build_table(bench, torch_rows):
    """Joins the results into one list of dicts, one per bnorm row."""
    table = []
    for key, entry in bench.items():  # registration order: shape table, layout, mode, ...
        impl, shape, layout, mode, threads, policy, dtype = key
        if impl != "bnorm" or dtype != "f32":
            continue
        row = {"shape": shape, "layout": layout, "mode": mode, "threads": threads,
               "policy": policy, "bnorm_us": entry.get("us"), "error": entry.get("error"),
               "target": entry.get("label")}
        bn = row["bnorm_us"]

        def peer(name):
            e = bench.get((name,) + key[1:], {})
            return e.get("us")

        row["onednn_us"] = peer("onednn")
        row["onednn_impl"] = bench.get(("onednn",) + key[1:], {}).get("label")
        row["naive_us"] = peer("naive")
        roof_key = (shape, "any", "bwd" if mode == "bwd" else "fwd", threads, policy, "f32")
        roofs = [bench.get((r,) + roof_key, {}).get("us") for r in ("roof_plain", "roof_stream")]
        roofs = [r for r in roofs if r is not None]
        row["roof_us"] = min(roofs) if roofs else None
        for alloc, name in (("reuse", "torch"), ("default", "torch_mmap")):
            t = (torch_rows or {}).get((shape, layout, mode, threads, policy, alloc, "f32"))
            row[name + "_us"] = t["torch_us"] if t else None
            # Measured against bnorm in the same process.
            row[name + "_ratio"] = t["torch_over_bnorm"] if t else None
        ok = bn is not None and bn > 0
        row["onednn_ratio"] = row["onednn_us"] / bn if ok and row["onednn_us"] else None
        row["naive_ratio"] = row["naive_us"] / bn if ok and row["naive_us"] else None
        row["roof_fraction"] = row["roof_us"] / bn if ok and row["roof_us"] else None
        peers = [r for r in (row["onednn_ratio"], row["torch_ratio"]) if r is not None]
        row["best_peer_ratio"] = min(peers) if peers else None
        table.append(row)
    return table


def by_mode(rows, label=""):
    """(label + mode, rows of that mode) for each mode, in table order."""
    return [((label + " " + m).strip(), [r for r in rows if r["mode"] == m])
            for m in ("infer", "train", "bwd")]


def print_geomean_rows(groups, columns, label_width):
    """A header of column names, then per (name, rows) group with rows, each
    column's geometric mean and how many rows had a value."""
    print("%-*s" % (label_width, "") + "".join("%14s" % c for c, _ in columns))
    for name, rows in groups:
        if not rows:
            continue
        cells = []
        for _, field in columns:
            g = geomean([r[field] for r in rows])
            cells.append("-" if g is None else "%.2f (%d)" % g)
        print("%-*s" % (label_width, name) + "".join("%14s" % c for c in cells))


def print_table(table):
    header = ("%-14s %-4s %-5s %2s %-4s %9s | %9s %5s | %9s %5s %7s | %8s %5s | %5s" %
              ("shape", "lay", "mode", "t", "pol", "bnorm_us", "onednn_us", "x", "pt_us", "x",
               "x+mmap", "roof_us", "roof", "naive"))
    print(header)
    print("-" * len(header))
    for r in table:
        if r["error"]:
            print("%-14s %-4s %-5s %2d %-4s bnorm error: %s" %
                  (r["shape"], r["layout"], r["mode"], r["threads"], r["policy"], r["error"]))
            continue
        print("%-14s %-4s %-5s %2d %-4s %9s | %9s %5s | %9s %5s %7s | %8s %5s | %5s" % (
            r["shape"], r["layout"], r["mode"], r["threads"], r["policy"], fmt_us(r["bnorm_us"]),
            fmt_us(r["onednn_us"]), fmt_ratio(r["onednn_ratio"]), fmt_us(r["torch_us"]),
            fmt_ratio(r["torch_ratio"]), fmt_ratio(r["torch_mmap_ratio"]), fmt_us(r["roof_us"]),
            fmt_pct(r["roof_fraction"]), fmt_ratio(r["naive_ratio"])))
    print("x = peer time / bnorm time (above 1: bnorm faster). PyTorch's x are measured against "
          "bnorm in\nthe same Python process; pt = PyTorch with freed blocks reused, x+mmap = with "
          "glibc's default\nallocator (fresh pages for each output). roof = roof time / bnorm "
          "time (the faster of plain\nand streaming stores). naive: 1 thread only, --full.")


def print_geomeans(table):
    print("\nGeometric means (peer time / bnorm time; roof: roof time / bnorm time):")
    groups = [("all", table)] + by_mode(table)
    groups += [(p, [r for r in table if r["policy"] == p]) for p in ("cold", "hot")]
    columns = [("faster peer", "best_peer_ratio"), ("oneDNN", "onednn_ratio"),
               ("PyTorch", "torch_ratio"), ("PyTorch+mmap", "torch_mmap_ratio"),
               ("naive", "naive_ratio"), ("roof", "roof_fraction")]
    print_geomean_rows(groups, columns, 6)


def build_residual_table(bench, torch_rows):
    """One dict per bnorm_res row (the residual block fused), with its peers."""
    table = []
    for key, entry in bench.items():
        impl, shape, layout, mode, threads, policy, dtype = key
        if impl != "bnorm_res":
            continue
        row = {"shape": shape, "layout": layout, "mode": mode, "threads": threads,
               "policy": policy, "bnorm_res_us": entry.get("us"), "error": entry.get("error"),
               "target": entry.get("label")}
        fused = row["bnorm_res_us"]
        ok = fused is not None and fused > 0

        def ratio(us):
            return us / fused if ok and us else None

        row["separate_us"] = bench.get(("bnorm_then_addrelu",) + key[1:], {}).get("us")
        row["separate_ratio"] = ratio(row["separate_us"])
        # No such rows with oneDNN 2.6; kept so a future peer shows up here.
        row["onednn_us"] = bench.get(("onednn_res",) + key[1:], {}).get("us")
        row["onednn_ratio"] = ratio(row["onednn_us"])
        # Forward: the 2-in-1-out add roof; backward: the 3-in-2-out one.
        roof_key = (shape, "any", "bwd_res" if mode == "bwd" else "bwd", threads, policy, dtype)
        roofs = [bench.get((r,) + roof_key, {}).get("us") for r in ROOF_IMPLS]
        roofs = [r for r in roofs if r is not None]
        row["roof_us"] = min(roofs) if roofs else None
        row["roof_fraction"] = ratio(row["roof_us"])
        for alloc, name in (("reuse", "torch"), ("default", "torch_mmap")):
            t = (torch_rows or {}).get((shape, layout, mode, threads, policy, alloc, dtype))
            row[name + "_us"] = t["torch_us"] if t else None
            row[name + "_ratio"] = t["torch_over_bnorm"] if t else None
        table.append(row)
    return table


def print_residual(table, context):
    if not table:
        return
    print("\nResidual block (bn + add + ReLU): y = max(bn(x) + residual, 0), and its backward "
          "(dx, d_residual)")
    header = ("%-14s %-4s %-5s %2s %-4s %9s | %9s %5s | %9s %5s | %9s %5s %7s | %8s %5s" %
              ("shape", "lay", "mode", "t", "pol", "fused_us", "split_us", "x", "onednn_us", "x",
               "pt_us", "x", "x+mmap", "roof_us", "roof"))
    print(header)
    print("-" * len(header))
    for r in table:
        if r["error"]:
            print("%-14s %-4s %-5s %2d %-4s bnorm_res error: %s" %
                  (r["shape"], r["layout"], r["mode"], r["threads"], r["policy"], r["error"]))
            continue
        onednn = ("%9s %5s" % (fmt_us(r["onednn_us"]), fmt_ratio(r["onednn_ratio"]))
                  if r["onednn_us"] else "%15s" % "missing")
        print("%-14s %-4s %-5s %2d %-4s %9s | %9s %5s | %s | %9s %5s %7s | %8s %5s" % (
            r["shape"], r["layout"], r["mode"], r["threads"], r["policy"],
            fmt_us(r["bnorm_res_us"]), fmt_us(r["separate_us"]), fmt_ratio(r["separate_ratio"]),
            onednn, fmt_us(r["torch_us"]), fmt_ratio(r["torch_ratio"]),
            fmt_ratio(r["torch_mmap_ratio"]), fmt_us(r["roof_us"]), fmt_pct(r["roof_fraction"])))
    print("fused = bnorm_res: bnorm_forward_{inference,training}_residual and "
          "bnorm_backward_residual\nwith FUSE_RELU, one call each. split = bnorm_then_addrelu: "
          "the plain bnorm call, then a\nseparate y = max(y + residual, 0) pass (forward); a "
          "d_residual = dy * (y > 0) pass, then\nbnorm_backward on it (backward). x = peer time "
          "/ fused time (above 1: fused faster).\npt = F.batch_norm + add_ + relu_, backward "
          "threshold_backward + native_batch_norm_backward\n(x measured in the same process, as "
          "above). roof = roof time / fused time: forward against\nthe 2-in-1-out add (x, "
          "residual in; y out: 12 B/element), backward against a 3-in-2-out\npair of adds (x, "
          "dy, y in; dx, d_residual out: 20 B/element); the faster of plain and\nstreaming "
          "stores.")
    if not any(r["onednn_us"] for r in table):
        print(textwrap.fill("onednn: missing: %s." % context.get("onednn_residual",
                                                                  "no oneDNN rows"), 92))
    print("Geometric means:")
    columns = [("split", "separate_ratio"), ("oneDNN", "onednn_ratio"), ("PyTorch", "torch_ratio"),
               ("PyTorch+mmap", "torch_mmap_ratio"), ("roof", "roof_fraction")]
    groups = [("all", table)] + by_mode(table)
    groups += [(p, [r for r in table if r["policy"] == p]) for p in ("cold", "hot")]
    print_geomean_rows(groups, columns, 6)


def build_half_table(bench, torch_rows):
    """One dict per bf16 / f16 bnorm row, with its peers in the same dtype, bnorm's
    own f32 row and the roof of 2-byte elements."""
    table = []
    for key, entry in bench.items():
        impl, shape, layout, mode, threads, policy, dtype = key
        if impl != "bnorm" or dtype not in HALF_DTYPES:
            continue
        row = {"shape": shape, "layout": layout, "mode": mode, "threads": threads,
               "policy": policy, "dtype": dtype, "bnorm_us": entry.get("us"),
               "error": entry.get("error"), "target": entry.get("label")}
        bn = row["bnorm_us"]
        ok = bn is not None and bn > 0

        def ratio(us):
            return us / bn if ok and us else None

        # The same call on f32 tensors: its time / this row's.
        row["f32_us"] = bench.get(("bnorm",) + key[1:6] + ("f32",), {}).get("us")
        row["f32_ratio"] = ratio(row["f32_us"])
        onednn = bench.get(("onednn",) + key[1:], {})
        row["onednn_us"], row["onednn_error"] = onednn.get("us"), onednn.get("error")
        row["onednn_impl"] = onednn.get("label")
        row["onednn_ratio"] = ratio(row["onednn_us"])
        roof_key = (shape, "any", "bwd" if mode == "bwd" else "fwd", threads, policy, HALF_ROOF)
        roofs = [bench.get((r,) + roof_key, {}).get("us") for r in ROOF_IMPLS]
        roofs = [r for r in roofs if r is not None]
        row["roof_us"] = min(roofs) if roofs else None
        row["roof_fraction"] = ratio(row["roof_us"])
        row["torch_error"] = None
        for alloc, name in (("reuse", "torch"), ("default", "torch_mmap")):
            t = (torch_rows or {}).get((shape, layout, mode, threads, policy, alloc, dtype))
            row[name + "_us"] = t["torch_us"] if t else None
            row[name + "_ratio"] = t["torch_over_bnorm"] if t else None
            if t and t.get("torch_error"):
                row["torch_error"] = t["torch_error"]
        peers = [r for r in (row["onednn_ratio"], row["torch_ratio"]) if r is not None]
        row["best_peer_ratio"] = min(peers) if peers else None
        table.append(row)
    return table


def print_half(table, context):
    if not table:
        return
    print("\nbf16 / f16 tensors (x, y, dy, dx; per-channel vectors float32)")
    header = ("%-14s %-4s %-5s %2s %-4s %-4s %9s | %9s %5s | %9s %5s | %9s %5s %7s | %8s %5s" %
              ("shape", "lay", "mode", "t", "pol", "dt", "bnorm_us", "f32_us", "x", "onednn_us",
               "x", "pt_us", "x", "x+mmap", "roof_us", "roof"))
    print(header)
    print("-" * len(header))

    def peer(us, ratio, error):
        if error:
            return "%15s" % "missing"
        return "%9s %5s" % (fmt_us(us), fmt_ratio(ratio))

    # A row bnorm failed keeps its peers' times (their ratios stay empty); the
    # error is printed once below.
    for r in table:
        torch = ("%23s" % "missing" if r["torch_error"] else "%9s %5s %7s" % (
            fmt_us(r["torch_us"]), fmt_ratio(r["torch_ratio"]), fmt_ratio(r["torch_mmap_ratio"])))
        print("%-14s %-4s %-5s %2d %-4s %-4s %9s | %9s %5s | %s | %s | %8s %5s" % (
            r["shape"], r["layout"], r["mode"], r["threads"], r["policy"], r["dtype"],
            "error" if r["error"] else fmt_us(r["bnorm_us"]), fmt_us(r["f32_us"]),
            fmt_ratio(r["f32_ratio"]), peer(r["onednn_us"], r["onednn_ratio"], r["onednn_error"]),
            torch, fmt_us(r["roof_us"]), fmt_pct(r["roof_fraction"])))
    print("x = other time / bnorm time in this dtype (above 1: bnorm faster); f32 = bnorm's own "
          "f32 row\n(about 2 where the call is memory-bound: half the bytes). onednn = its "
          "data_type::bf16 / f16\nprimitive; pt = F.batch_norm / native_batch_norm_backward on "
          "torch.bfloat16 / float16\ntensors, as above. roof = the 2-byte roof's time / bnorm "
          "time: the copy (forward) or\nadd (backward) of 2-byte elements, half the f32 roof's "
          "bytes.")
    for dtype in HALF_DTYPES:
        rows = [r for r in table if r["dtype"] == dtype]
        errors = sorted({r["error"] for r in rows if r["error"]})
        if errors:
            print(textwrap.fill("bnorm %s: error in %d of %d rows: %s." % (
                dtype, sum(1 for r in rows if r["error"]), len(rows), "; ".join(errors)), 92))
        if any(r["onednn_error"] for r in rows):
            print(textwrap.fill("onednn %s: %s." % (dtype, context.get(
                "onednn_" + dtype, sorted({r["onednn_error"] for r in rows
                                           if r["onednn_error"]})[0])), 92))
        errors = sorted({r["torch_error"] for r in rows if r["torch_error"]})
        if errors:
            print(textwrap.fill("PyTorch %s: missing: %s." % (dtype, "; ".join(errors)), 92))
    print("Geometric means:")
    columns = [("faster peer", "best_peer_ratio"), ("oneDNN", "onednn_ratio"),
               ("PyTorch", "torch_ratio"), ("PyTorch+mmap", "torch_mmap_ratio"),
               ("f32", "f32_ratio"), ("roof", "roof_fraction")]
    groups = []
    for dtype in HALF_DTYPES:
        of_dtype = [r for r in table if r["dtype"] == dtype]
        groups += [(dtype, of_dtype)] + by_mode(of_dtype, dtype)
    print_geomean_rows(groups, columns, 11)


def print_folded(bench):
    rows = sorted((k, v) for k, v in bench.items() if k[0] == "bnorm_folded" and v.get("us"))
    if not rows:
        return
    print("\nFolded inference (bnorm_forward_scale_shift after bnorm_fold_scale_shift), hot:\n"
          "time / bnorm_forward_inference time")
    ratios = []
    for key, v in rows:
        plain = bench.get(("bnorm",) + key[1:], {}).get("us")
        if not plain:
            continue
        ratios.append(v["us"] / plain)
        print("  %-14s %s t%d: %s us vs %s us (%.2f)" % (key[1], key[2], key[4], fmt_us(v["us"]),
                                                       fmt_us(plain), v["us"] / plain))
    g = geomean(ratios)
    if g:
        print("  geometric mean %.2f over %d rows" % g)


def print_targets(bench):
    rows = [(k, v) for k, v in bench.items() if k[0].startswith("bnorm@")]
    if not rows:
        return
    print("\nPer SIMD target (bnorm capped with bnorm_set_max_target; speed-up over SCALAR):")
    for shape, mode in sorted({(k[1], k[3]) for k, _ in rows}):
        line = [(k[0][len("bnorm@"):], v.get("us")) for k, v in rows
                if k[1] == shape and k[3] == mode]
        scalar = dict(line).get("SCALAR")
        cells = ["%s %s us%s" % (t, fmt_us(us), " (x%.1f)" % (scalar / us) if scalar and us else "")
                 for t, us in line]
        print("  %-14s nchw %-5s t1 hot: %s" % (shape, mode, ", ".join(cells)))


def main():
    args = parse_args()
    if args.reps is not None and args.reps < 2:
        fail("--reps must be at least 2: the table is made of medians, which Google Benchmark "
             "reports only for repeated runs")
    binary = os.path.join(args.build_dir, "bench", "bnorm_bench")
    lib = os.environ.get("BNORM_LIB") or os.path.join(args.build_dir, "libbnorm.so")
    for path in (binary, lib):
        if not os.path.exists(path):
            fail("%s not found: build first (scripts/run.sh, or cmake --build %s), or set "
                 "BNORM_BUILD_DIR" % (path, args.build_dir))
    shapes = args.shapes.split(",") if args.shapes else (None if args.full else QUICK_SHAPES)
    quick = not args.full and not args.shapes
    # The residual block: every shape run, except in the default quick run.
    residual_shapes = QUICK_RESIDUAL_SHAPES if quick else shapes
    # bf16 / f16: likewise, and only 1-thread cold rows in the default quick run.
    half_dtypes = [d for d in args.dtypes.split(",") if d in HALF_DTYPES]
    half_shapes = QUICK_HALF_SHAPES if quick else shapes
    half_policies = ["cold"] if quick else None
    half_threads = QUICK_HALF_THREADS if quick else None
    reps = args.reps or (None if args.full else 3)
    start = time.time()
    run_peer_check(binary)
    with tempfile.TemporaryDirectory() as tmp, OtherLoad() as load:
        bench, context = run_bench(binary, shapes, args.full, residual_shapes,
                                   (half_shapes, half_dtypes, half_policies, half_threads), reps,
                                   os.path.join(tmp, "bench.json"))
        torch_rows, torch_residual_rows, torch_info = None, None, {}
        if not args.no_torch:
            # One torch_bench.py run for every dtype (each run imports torch
            # three times); in the quick run, its filter picks the rows.
            torch_shapes = shapes or sorted({k[1] for k in bench if k[0] == "bnorm"})
            torch_shapes += [s for s in half_shapes or [] if s not in torch_shapes]
            torch_residual_shapes = residual_shapes or sorted(
                {k[1] for k in bench if k[0] == "bnorm_res"})
            row_filter = (torch_filter(shapes, half_shapes, half_dtypes, half_policies,
                                       half_threads) if quick else None)
            torch_rows, torch_residual_rows, torch_info = run_torch(
                lib, torch_shapes, torch_residual_shapes, reps, os.path.join(tmp, "torch.json"),
                ["f32"] + half_dtypes, row_filter)
    table = build_table(bench, torch_rows)
    residual_table = build_residual_table(bench, torch_residual_rows)
    half_table = build_half_table(bench, torch_rows)
    print("\nbnorm %s (%s), oneDNN %s, PyTorch %s, LLC %d MiB, %s\n" % (
        context.get("bnorm_version"), context.get("bnorm_target"),
        context.get("onednn_version"), torch_info.get("torch", "-"),
        int(context.get("llc_bytes", 0)) >> 20, time.strftime("%Y-%m-%d %H:%M")))
    print_table(table)
    print_geomeans(table)
    print_residual(residual_table, context)
    print_half(half_table, context)
    print_folded(bench)
    print_targets(bench)
    print("\nOther processes kept %.2f of %d CPUs busy during the run%s" % (
        load.cpus, os.cpu_count(), ": timings (2-thread rows above all) are unreliable; rerun "
        "on a quiet machine" if load.cpus > 0.1 else "."))
    out = args.json_out or os.path.join(args.build_dir, "bench", "compare_results.json")
    with open(out, "w") as f:
        json.dump({"context": context, "other_load_cpus": load.cpus, "rows": table,
                   "residual_rows": residual_table, "half_rows": half_table}, f, indent=1)
    print("\nrows written to %s; took %.0f s" % (out, time.time() - start))


if __name__ == "__main__":
    main()
