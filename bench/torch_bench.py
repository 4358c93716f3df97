#!/usr/bin/python3
"""PyTorch's CPU batch norm beside bnorm, timed in one process.

For each row (shape, layout, mode, threads, policy) it times
torch.nn.functional.batch_norm (eval: mode "infer", training: "train") or
torch.ops.aten.native_batch_norm_backward ("bwd"), and bnorm called through
ctypes on the same input tensors, interleaving the two per repetition, and
reports the median time per call of each and their ratio.

PyTorch allocates its outputs on every call. With glibc's defaults, large
blocks come from fresh mmap()ed pages that the kernel must zero and fault in,
a cost a real training loop pays too; with MALLOC_MMAP_MAX_=0 and a large
MALLOC_TRIM_THRESHOLD_, freed blocks are reused instead. By default
(--alloc both) the script re-runs itself once per allocator setting and
reports both ("default" and "reuse" rows). bnorm writes into one preallocated
output per row, reused by every call (its inputs cycle like PyTorch's).

Policies as in bnorm_bench: cold cycles through a ring of input tensors larger
than 2 x LLC (inputs come from DRAM); hot reuses the same tensors and is run
only where one call's data fits in the LLC.

bf16 / f16 rows (--dtypes, "dtype" in each row): the tensors x, y, dy, dx in
torch.bfloat16 / torch.float16 (the f32 rows' values rounded), the
per-channel tensors (weight, bias, running and saved statistics) float32, as
in bnorm and as PyTorch 1.13 accepts for CPU batch norm. Where PyTorch (or
bnorm) refuses a dtype, e.g. "batch_norm" not implemented for 'Half', the row
has no times and carries the error ("torch_error", "bnorm_error"). The
residual block runs in f32 only. --filter picks batch-norm rows by name.

Residual-block rows ("block": "res", shapes from --residual-shapes): the tail
of a ResNet block as its users write it, F.batch_norm then `add_(identity)`
then `relu_()` (torchvision's Bottleneck), and its backward as autograd runs
it: threshold_backward (ReLU's backward from its output, which is also the
residual's gradient) then native_batch_norm_backward; against bnorm's fused
bnorm_forward_*_residual / bnorm_backward_residual with FUSE_RELU.

Python adds a few microseconds per call to both sides (torch's dispatcher,
ctypes), which matters only for the smallest shapes.

Usage: torch_bench.py [--shapes 32x256x56x56,...] [--residual-shapes ...] [--dtypes f32,bf16]
                      [--json rows.json]
"""

import argparse
import ctypes
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

import bnorm_ctypes

# A copy of the table in bench/shapes.cc, (N, C, H, W) or (N, C); keep in step.
SHAPES = [
    (32, 64, 112, 112), (32, 256, 56, 56), (32, 512, 28, 28), (32, 1024, 14, 14),
    (32, 2048, 7, 7),
    (1, 64, 112, 112), (1, 256, 56, 56), (1, 2048, 7, 7),
    (256, 1024), (4096, 512),
    (8, 3, 224, 224),
    (4, 32, 17, 17),
]
LAYOUTS = ["nchw", "nhwc"]
MODES = ["infer", "train", "bwd"]
TORCH_DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}
EPS = 1e-5
MOMENTUM = 0.1
# Environment that makes glibc reuse freed blocks instead of unmapping them.
REUSE_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 36)}


def shape_name(shape):
    return "x".join(str(d) for d in shape)


def row_name(shape, layout, mode, threads, policy, dtype):
    """What --filter matches, e.g. "32x256x56x56/nhwc/train/t2/cold/bf16"."""
    return "%s/%s/%s/t%d/%s/%s" % (shape_name(shape), layout, mode, threads, policy, dtype)


def llc_bytes():
    """Same rule as bench/buffers.cc: 32 MiB unless BNORM_BENCH_LLC_BYTES says otherwise."""
    value = int(os.environ.get("BNORM_BENCH_LLC_BYTES", "0") or 0)
    return value if value > 0 else 32 << 20


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def element_bytes(dtype):
    return 4 if dtype == "f32" else 2


def minimal_bytes(shape, mode, block="bn", dtype="f32"):
    """Forward reads x and writes y; backward reads x and dy and writes dx.
    The residual block also reads the residual (forward), and reads y and
    writes d_residual (backward)."""
    if block == "res":
        return (5 if mode == "bwd" else 3) * 4 * numel(shape)
    return (3 if mode == "bwd" else 2) * element_bytes(dtype) * numel(shape)


def policies_for(shape, mode, block="bn", dtype="f32"):
    """Hot only where one call's data fits in the LLC; otherwise it equals cold."""
    fits = minimal_bytes(shape, mode, block, dtype) <= llc_bytes()
    return ["cold", "hot"] if fits else ["cold"]


class RingData:
    """Tensors for one shape, layout and dtype: a ring of input sets for the
    cold policy (set 0 alone serves hot), bnorm's preallocated outputs, and the
    per-channel vectors (float32 in every dtype). With residual (f32 only),
    each set also has the residual "res" and "yr", a block output (about half
    zeros) for the backward, and set 0 bnorm's d_residual output "dres"; made
    after the rest, so the other tensors hold the same values either way."""

    def __init__(self, shape, layout, residual=False, dtype="f32"):
        self.shape, self.layout, self.dtype = shape, layout, dtype
        channels_last = layout == "nhwc" and len(shape) == 4
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        tensor_dtype = TORCH_DTYPES[dtype]
        set_bytes = minimal_bytes(shape, "infer", dtype=dtype)
        count = max(2, -(-2 * llc_bytes() // set_bytes))
        gen = torch.Generator().manual_seed(0)

        def tensor():  # the f32 values, rounded to the dtype
            x = torch.empty(shape, memory_format=fmt).uniform_(-1, 1, generator=gen)
            return x.to(tensor_dtype)

        def zeros():  # written once, so no call pays for first-touch page faults
            return torch.empty(shape, memory_format=fmt, dtype=tensor_dtype).zero_()

        self.sets = [{"x": tensor(), "dy": tensor(), "y": zeros(), "dx": zeros()}
                     for _ in range(count)]
        if residual:
            for s in self.sets:
                s["res"] = tensor()
                s["yr"] = tensor().clamp_(min=0)
            self.sets[0]["dres"] = zeros()
        c = shape[1]
        self.weight = 0.5 + 0.1 * (torch.arange(c) % 7).float()
        self.bias = -0.2 + 0.05 * (torch.arange(c) % 9).float()
        self.running_mean = torch.zeros(c)
        self.running_var = torch.full((c,), 1.0 / 3.0)
        # Backward's saved statistics: those of set 0, from PyTorch's own forward
        # (in float32, which is what it saves for bf16 input too, and which works
        # for the dtypes it has no batch norm for).
        _, self.save_mean, self.save_invstd = torch.ops.aten.native_batch_norm(
            self.sets[0]["x"].float(), self.weight, self.bias, None, None, True, MOMENTUM, EPS)
        # bnorm's own per-channel outputs, so the two never share a buffer.
        self.bn_running_mean = self.running_mean.clone()
        self.bn_running_var = self.running_var.clone()
        self.bn_save_mean = torch.empty(c)
        self.bn_save_invstd = torch.empty(c)
        self.bn_dgamma = torch.empty(c)
        self.bn_dbeta = torch.empty(c)
        self.cursor = 0

    def next_index(self, policy):
        """The set the next call uses: hot always set 0; cold cycles through the
        ring with one cursor shared by every call on it (torch and bnorm alike,
        across rows), so each call gets the least recently used set and neither
        side reads what the other just brought into cache."""
        if policy == "hot":
            return 0
        i = self.cursor
        self.cursor = (i + 1) % len(self.sets)
        return i

    def bnorm_dims(self):
        """bnorm's dims are in memory order: (N, H, W, C) for channels last."""
        if len(self.shape) == 4 and self.layout == "nhwc":
            n, c, h, w = self.shape
            return (n, h, w, c)
        return self.shape


def torch_call(data, mode, policy, block="bn"):
    """A zero-argument function doing one PyTorch call on the next set."""
    sets, w, b = data.sets, data.weight, data.bias
    rm, rv = data.running_mean, data.running_var
    if block == "res":
        return torch_residual_call(data, mode, policy)
    if mode in ("infer", "train"):
        training = mode == "train"
        return lambda: F.batch_norm(sets[data.next_index(policy)]["x"], rm, rv, w, b, training,
                                    MOMENTUM, EPS)
    backward = torch.ops.aten.native_batch_norm_backward
    mean, invstd = data.save_mean, data.save_invstd

    def call():
        s = sets[data.next_index(policy)]
        return backward(s["dy"], s["x"], w, rm, rv, mean, invstd, True, EPS, [True, True, True])

    return call


def torch_residual_call(data, mode, policy):
    """The residual block as PyTorch users write it: batch norm, then the
    identity added in place, then ReLU in place; backward as autograd runs it
    (ReLU's backward from its output, whose result the add passes unchanged
    to the residual and to batch norm's backward)."""
    sets, w, b = data.sets, data.weight, data.bias
    rm, rv = data.running_mean, data.running_var
    if mode in ("infer", "train"):
        training = mode == "train"

        def forward():
            s = sets[data.next_index(policy)]
            y = F.batch_norm(s["x"], rm, rv, w, b, training, MOMENTUM, EPS)
            return y.add_(s["res"]).relu_()

        return forward
    threshold_backward = torch.ops.aten.threshold_backward
    backward = torch.ops.aten.native_batch_norm_backward
    mean, invstd = data.save_mean, data.save_invstd

    def call():
        s = sets[data.next_index(policy)]
        g = threshold_backward(s["dy"], s["yr"], 0)  # d_residual
        return g, backward(g, s["x"], w, rm, rv, mean, invstd, True, EPS, [True, True, True])

    return call


def bnorm_call(bn, data, mode, threads, policy, block="bn"):
    """A zero-argument function doing one bnorm call on the next set. The
    arguments are converted to ctypes objects once, outside the timing."""
    layout = bnorm_ctypes.LAYOUT_NHWC if data.layout == "nhwc" else bnorm_ctypes.LAYOUT_NCHW
    desc = ctypes.byref(bn.desc(data.shape[1], layout, threads, EPS, MOMENTUM, dtype=data.dtype))
    shape = ctypes.byref(bn.shape(data.bnorm_dims()))

    def p(t):
        return ctypes.c_void_p(t.data_ptr())

    lib, d = bn.lib, data
    # Inputs cycle through the ring, but the output is one buffer reused by
    # every call, as a program reuses its own output and as PyTorch's
    # allocator hands back the block it freed the call before: both sides then
    # write to memory of the same temperature.
    out = d.sets[0]
    if block == "res":
        # The fused calls, with FUSE_RELU.
        desc = ctypes.byref(bn.desc(data.shape[1], layout, threads, EPS, MOMENTUM, relu=True))
        if mode == "infer":
            fn = lib.bnorm_forward_inference_residual
            per_set = [(desc, shape, p(s["x"]), p(s["res"]), p(out["y"]), p(d.running_mean),
                        p(d.running_var), p(d.weight), p(d.bias)) for s in d.sets]
        elif mode == "train":
            fn = lib.bnorm_forward_training_residual
            per_set = [(desc, shape, p(s["x"]), p(s["res"]), p(out["y"]), p(d.weight), p(d.bias),
                        p(d.bn_running_mean), p(d.bn_running_var), p(d.bn_save_mean),
                        p(d.bn_save_invstd)) for s in d.sets]
        else:
            fn = lib.bnorm_backward_residual
            per_set = [(desc, shape, p(s["x"]), p(s["dy"]), p(s["yr"]), p(d.weight),
                        p(d.save_mean), p(d.save_invstd), p(out["dx"]), p(out["dres"]),
                        p(d.bn_dgamma), p(d.bn_dbeta)) for s in d.sets]
    elif mode == "infer":
        fn = lib.bnorm_forward_inference
        per_set = [(desc, shape, p(s["x"]), p(out["y"]), p(d.running_mean), p(d.running_var),
                    p(d.weight), p(d.bias)) for s in d.sets]
    elif mode == "train":
        fn = lib.bnorm_forward_training
        per_set = [(desc, shape, p(s["x"]), p(out["y"]), p(d.weight), p(d.bias),
                    p(d.bn_running_mean), p(d.bn_running_var), p(d.bn_save_mean),
                    p(d.bn_save_invstd)) for s in d.sets]
    else:
        fn = lib.bnorm_backward
        per_set = [(desc, shape, p(s["x"]), p(s["dy"]), None, p(d.weight), p(d.save_mean),
                    p(d.save_invstd), p(out["dx"]), p(d.bn_dgamma), p(d.bn_dbeta))
                   for s in d.sets]
    # One call on set 0: fails before any timing, and leaves set 0's output for
    # check_against_torch.
    bn.check(fn(*per_set[0]), fn.__name__)
    # per_set keeps the ctypes objects alive as long as the closure.
    return lambda: fn(*per_set[d.next_index(policy)])


def relative_diff(got, want):
    return float((got - want).abs().max() / want.abs().max().clamp_min(1e-30))


def check_against_torch(data, mode, block="bn"):
    """Relative max difference of bnorm's output vs PyTorch's on set 0: a
    plumbing check (layout, argument order), not an accuracy test. bf16 / f16:
    against PyTorch's float32 batch norm on the same values (so also where
    PyTorch has no such dtype); the difference is then the output's rounding."""
    if data.dtype != "f32":
        s = {k: v.float() for k, v in data.sets[0].items()}
        if mode == "bwd":
            want = torch.ops.aten.native_batch_norm_backward(
                s["dy"], s["x"], data.weight, None, None, data.save_mean, data.save_invstd,
                True, EPS, [True, False, False])[0]
            return relative_diff(s["dx"], want)
        want = F.batch_norm(s["x"], data.running_mean.clone(), data.running_var.clone(),
                            data.weight, data.bias, mode == "train", MOMENTUM, EPS)
        return relative_diff(s["y"], want)
    s = data.sets[0]
    if block == "res":
        if mode == "bwd":
            g = torch.ops.aten.threshold_backward(s["dy"], s["yr"], 0)
            want = torch.ops.aten.native_batch_norm_backward(
                g, s["x"], data.weight, None, None, data.save_mean, data.save_invstd, True,
                EPS, [True, False, False])[0]
            return max(relative_diff(s["dx"], want), relative_diff(s["dres"], g))
        want = F.batch_norm(s["x"], data.running_mean.clone(), data.running_var.clone(),
                            data.weight, data.bias, mode == "train", MOMENTUM, EPS)
        return relative_diff(s["y"], want.add_(s["res"]).relu_())
    if mode == "bwd":
        want = torch.ops.aten.native_batch_norm_backward(
            s["dy"], s["x"], data.weight, None, None, data.save_mean, data.save_invstd, True,
            EPS, [True, False, False])[0]
        got = s["dx"]
    else:
        want = F.batch_norm(s["x"], data.running_mean.clone(), data.running_var.clone(),
                            data.weight, data.bias, mode == "train", MOMENTUM, EPS)
        got = s["y"]
    return relative_diff(got, want)


def median_seconds_per_call(calls, reps, min_batch_seconds):
    """calls: name -> zero-argument function. Each repetition times a batch of
    each call in turn (order alternating), so slow drifts of the machine hit
    both alike. Returns name -> median seconds per call."""
    batch = {}
    for name, fn in calls.items():
        fn()  # warm up (first touch, caches, thread pool)
        start = time.perf_counter()
        fn()
        once = max(time.perf_counter() - start, 1e-9)
        batch[name] = max(1, int(min_batch_seconds / once))
    samples = {name: [] for name in calls}
    names = list(calls)
    for rep in range(reps):
        for name in (names if rep % 2 == 0 else names[::-1]):
            fn, k = calls[name], batch[name]
            start = time.perf_counter_ns()
            for _ in range(k):
                fn()
            samples[name].append((time.perf_counter_ns() - start) / k / 1e9)
    return {name: statistics.median(v) for name, v in samples.items()}


def first_line(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def time_row(bn, data, mode, threads, policy, block, args):
    """Times one row: PyTorch and bnorm interleaved. Where a side refuses the
    row (PyTorch without a kernel for the dtype, bnorm without the dtype), the
    row has its error and no times: there is no ratio to measure, and bnorm's
    own time is bnorm_bench's."""
    calls, errors = {}, {}
    try:
        fn = torch_call(data, mode, policy, block)
        fn()  # PyTorch says at the first call whether it has the dtype
        calls["torch"] = fn
    except RuntimeError as e:
        errors["torch"] = first_line(e)
    diff = None
    try:
        calls["bnorm"] = bnorm_call(bn, data, mode, threads, policy, block)
        diff = check_against_torch(data, mode, block)  # on the output bnorm_call just wrote
    except RuntimeError as e:
        errors["bnorm"] = first_line(e)
    t = median_seconds_per_call(calls, args.reps, args.min_batch_ms / 1e3) if not errors else {}
    torch_us = t["torch"] * 1e6 if "torch" in t else None
    bnorm_us = t["bnorm"] * 1e6 if "bnorm" in t else None
    return {
        "dtype": data.dtype, "torch_us": torch_us, "bnorm_us": bnorm_us,
        "torch_over_bnorm": torch_us / bnorm_us if torch_us and bnorm_us else None,
        "bnorm_vs_torch_max_rel_diff": diff,
        "torch_error": errors.get("torch"), "bnorm_error": errors.get("bnorm"),
    }


def run_rows(args, alloc):
    bn = bnorm_ctypes.Bnorm(args.lib)
    if args.residual_shapes and not bn.has_residual:
        raise SystemExit("torch_bench.py: %s is bnorm %s, without the residual calls (1.2)"
                         % (bn.path, bn.version))
    rows = []
    # Shape by shape, the batch-norm rows dtype by dtype, then the residual
    # block's (f32) on a ring of their own (so the batch-norm rows run on the
    # same tensors as before).
    for shape in args.shapes + [s for s in args.residual_shapes if s not in args.shapes]:
        rings = [("bn", dtype) for dtype in args.dtypes if shape in args.shapes]
        if shape in args.residual_shapes:
            rings.append(("res", "f32"))
        for block, dtype in rings:
            for layout in args.layouts:
                todo = [(mode, threads, policy) for mode in args.modes
                        for threads in args.threads
                        for policy in policies_for(shape, mode, block, dtype)
                        if policy in args.policies and (block == "res" or args.filter.search(
                            row_name(shape, layout, mode, threads, policy, dtype)))]
                if not todo:
                    continue
                data = RingData(shape, layout, residual=block == "res", dtype=dtype)
                for mode, threads, policy in todo:
                    torch.set_num_threads(threads)
                    row = {"shape": shape_name(shape), "layout": layout, "mode": mode,
                           "threads": threads, "policy": policy, "alloc": alloc,
                           "block": block}
                    row.update(time_row(bn, data, mode, threads, policy, block, args))
                    rows.append(row)
                    if not args.quiet:
                        print_row(rows[-1])
                del data
                gc.collect()
    return rows, {"torch": torch.__version__, "bnorm": bn.version, "bnorm_target": bn.target,
                  "bnorm_lib": bn.path}


def print_header():
    print("%-16s %-5s %-4s %-6s %-5s %3s %-5s %-7s %12s %12s %8s %9s" %
          ("shape", "block", "dt", "layout", "mode", "thr", "pol", "alloc", "torch_us",
           "bnorm_us", "torch/bn", "diff"), flush=True)


def print_row(r):
    def cell(value, fmt, width):
        return fmt % value if value is not None else "%*s" % (width, "-")

    line = "%-16s %-5s %-4s %-6s %-5s %3d %-5s %-7s %s %s %s %s" % (
        r["shape"], r["block"], r["dtype"], r["layout"], r["mode"], r["threads"], r["policy"],
        r["alloc"], cell(r["torch_us"], "%12.1f", 12), cell(r["bnorm_us"], "%12.1f", 12),
        cell(r["torch_over_bnorm"], "%8.2f", 8), cell(r["bnorm_vs_torch_max_rel_diff"], "%9.1e", 9))
    for side in ("torch", "bnorm"):
        if r[side + "_error"]:
            line += "  %s: %s" % (side, r[side + "_error"])
    print(line, flush=True)


def child_argv(args, alloc, json_path):
    """This script's command line for one allocator setting."""
    return [sys.executable, os.path.abspath(__file__),
            "--shapes", ",".join(shape_name(s) for s in args.shapes),
            "--residual-shapes", ",".join(shape_name(s) for s in args.residual_shapes) or "none",
            "--dtypes", ",".join(args.dtypes), "--filter", args.filter.pattern,
            "--layouts", ",".join(args.layouts), "--modes", ",".join(args.modes),
            "--threads", ",".join(str(t) for t in args.threads),
            "--policies", ",".join(args.policies), "--reps", str(args.reps),
            "--min-batch-ms", str(args.min_batch_ms), "--alloc", alloc, "--json", json_path,
            "--no-header"] + (["--lib", args.lib] if args.lib else []) + \
        (["--quiet"] if args.quiet else [])


def run_both_allocators(args):
    """Runs this script once per allocator setting, in fresh processes (glibc
    reads its malloc settings at start), and merges their rows."""
    rows, info = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for alloc in ("default", "reuse"):
            env = {k: v for k, v in os.environ.items() if k not in REUSE_ENV}
            if alloc == "reuse":
                env.update(REUSE_ENV)
            path = os.path.join(tmp, alloc + ".json")
            subprocess.run(child_argv(args, alloc, path), env=env, check=True)
            with open(path) as f:
                result = json.load(f)
            rows += result["rows"]
            info = result["info"]
    return rows, info


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="all",
                        help="comma-separated, e.g. 32x256x56x56,256x1024; default: the table")
    parser.add_argument("--residual-shapes", default="same",
                        help="shapes for the residual-block rows: comma-separated, 'same' "
                        "(default: those of --shapes) or 'none'")
    parser.add_argument("--dtypes", default="f32",
                        help="tensor dtypes of the batch-norm rows: f32, bf16, f16 "
                        "(comma-separated; the residual block's rows are f32)")
    parser.add_argument("--filter", default="",
                        help="only the batch-norm rows whose name (e.g. "
                        "32x256x56x56/nhwc/train/t2/cold/bf16) this regex matches")
    parser.add_argument("--layouts", default=",".join(LAYOUTS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--policies", default="cold,hot")
    parser.add_argument("--reps", type=int, default=5, help="repetitions; medians are reported")
    parser.add_argument("--min-batch-ms", type=float, default=20,
                        help="each repetition times at least this long a batch of calls")
    parser.add_argument("--alloc", choices=["both", "default", "reuse"], default="both",
                        help="PyTorch output allocation: glibc defaults, reuse, or both")
    parser.add_argument("--lib", help="libbnorm.so (default: $BNORM_LIB or the build dir)")
    parser.add_argument("--json", help="write the rows here as JSON")
    parser.add_argument("--quiet", action="store_true", help="no table on stdout")
    parser.add_argument("--no-header", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    def parse_shapes(text):
        if text == "all":
            return list(SHAPES)
        return [tuple(int(d) for d in s.split("x")) for s in text.split(",") if s]

    args.shapes = parse_shapes(args.shapes)
    if args.residual_shapes == "same":
        args.residual_shapes = list(args.shapes)
    elif args.residual_shapes == "none":
        args.residual_shapes = []
    else:
        args.residual_shapes = parse_shapes(args.residual_shapes)
    args.dtypes = args.dtypes.split(",")
    unknown = [d for d in args.dtypes if d not in TORCH_DTYPES]
    if unknown:
        parser.error("unknown dtype %s (known: %s)" % (",".join(unknown), ",".join(TORCH_DTYPES)))
    args.filter = re.compile(args.filter)
    args.layouts = args.layouts.split(",")
    args.modes = args.modes.split(",")
    args.threads = [int(t) for t in args.threads.split(",")]
    args.policies = args.policies.split(",")
    return args


def main():
    args = parse_args()
    if not args.quiet and not args.no_header:
        print_header()
    if args.alloc == "both":
        rows, info = run_both_allocators(args)
    else:
        with torch.no_grad():
            rows, info = run_rows(args, args.alloc)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
