#!/usr/bin/env python3
"""Compare the biggan-fast CPU kernels with PyTorch on the same shapes.

For every selected `bgkernels bench` case this script times our kernel (as a
`bgkernels bench --case ID --json` subprocess) and the equivalent PyTorch
operation in this process, interleaved round by round so that both sides see
the same machine state:

    for each case:
        for round in 1..R:
            ours:    bgkernels bench --case ID --json --repeats N --threads T --no-peak
            PyTorch: one warm-up call, then N calls timed with time.perf_counter

All timings of a side over all rounds are pooled and their median reported.
Both sides use the FLOP count from our JSON, so GFLOP/s are comparable, and
the speed ratio is torch_time / our_time (above 1: ours is faster).

PyTorch peers, in the case's dtype (float32, or bfloat16 for bf16 cases):

* gemm: `torch.mm(a, b)`, or `torch.mm(a, b.t())` with b stored [n, k]
  contiguous when transb = 1.
* conv: NCHW tensors in `torch.channels_last` memory format. For forward cases
  plain contiguous NCHW is also timed once before the rounds and the faster
  layout is used. Forward is `F.conv2d` on `F.interpolate(x, 2, 'nearest')`
  when upsample = 1 (the interpolation is timed, our kernel fuses it);
  backward passes call `torch.ops.aten.convolution_backward` on the
  upsampled input, and backward_data with upsample also sums the gradient
  over 2x2 blocks (the nearest-upsample backward) inside the timed region.
* attention: bmm-softmax-bmm (`S = theta phi^T`, `P = softmax(S)`,
  `O = P g`); backward times only `O.backward(dout)` on a graph built before
  each timed call. A second peer, `F.scaled_dot_product_attention` with the
  flash backend, is reported in extra columns and not used for the ratio. The
  CPU flash kernel needs equal head dimensions, so when dk != dv theta and
  phi are zero-padded to dv outside the timed region (scores are unchanged).

Run from the repository root after `swift build -c release`; see
Benchmarks/README.md. What this script shares with compare_networks.py is in
benchcommon.py.
"""

import argparse
import datetime
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from benchcommon import (
    BenchError, PooledTimings, add_output_options, add_timing_options,
    append_markdown, cpu_model, render_markdown, render_text, require_binary,
    require_positive, run_bench, run_bench_json, time_calls, write_json,
)

#: The case whose JSON carries the measured FMA and bf16 peaks.
PEAK_CASE = "gemm/square256/fp32"

#: Shape names of `bgkernels bench --quick` (gemm with m*n*k <= 2^30, the
#: CIFAR convolutions, the 32x32 attention), used by --quick.
QUICK_SHAPES = {
    "square256", "square512", "square1024", "g128_linear",
    "cifar_g_up3x3_16", "cifar_g_3x3_32", "cifar_g_skip1x1_32",
    "attn32",
}

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}

SDPA_NOTE = (
    "SDPA: `F.scaled_dot_product_attention(..., scale=1.0)` with the flash "
    "backend on [B, 1, L, E] views; \"flash+pad\" means theta and phi were "
    "zero-padded from dk to dv outside the timed region because the CPU flash "
    "kernel requires equal head dimensions. Not included in the geometric means."
)


# --------------------------------------------------------------- bgkernels --


def measure_peak(binary: Path, threads: int) -> dict:
    """Our measured peaks: the JSON document of a one-run PEAK_CASE bench.

    Its `peak_gflops` (FMA), `bf16_peak_gflops` (the bf16 dot product of the
    path, or the FMAs that emulate it), `cpu` and `isa` fields describe the
    machine.
    """
    return run_bench_json(
        binary, ["--case", PEAK_CASE, "--repeats", "1", "--threads", str(threads)],
        "bgkernels",
    )


def run_ours(binary: Path, case_id: str, repeats: int, threads: int) -> dict:
    """One round of our kernel: the JSON result entry of `case_id`."""
    doc = run_bench_json(
        binary,
        ["--case", case_id, "--repeats", str(repeats), "--threads", str(threads),
         "--no-peak"],
        "bgkernels",
    )
    (result,) = doc["results"]
    return result


def select_cases(all_ids: list[str], args: argparse.Namespace) -> list[str]:
    """The case ids to compare, with bgkernels' own selection rules.

    Explicit --case ids win (and must exist); otherwise --kernel,
    --precision and --quick filter the full list.
    """
    if args.case:
        unknown = [c for c in args.case if c not in all_ids]
        if unknown:
            sys.exit(f"unknown case id(s): {', '.join(unknown)}; "
                     f"see `bgkernels bench --list`")
        return [c for c in all_ids if c in args.case]
    chosen = []
    for case_id in all_ids:
        kernel, name, *_, precision = case_id.split("/")
        if args.kernel not in ("all", kernel) or args.precision not in ("all", precision):
            continue
        if args.quick and name not in QUICK_SHAPES:
            continue
        chosen.append(case_id)
    return chosen


# ----------------------------------------------------------------- PyTorch --


@dataclass
class Peer:
    """A PyTorch implementation of one case.

    `make_call` runs untimed before every timed call (building autograd
    graphs, for instance) and returns the zero-argument callable to time;
    it is what `time_calls` takes.
    """

    label: str
    make_call: Callable[[], Callable[[], object]]


def uniform(*shape: int, dtype: torch.dtype,
            memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """A tensor of uniform values in [-1, 1), like our benchmark's operands."""
    t = torch.rand(*shape, dtype=torch.float32) * 2 - 1
    return t.to(dtype=dtype).contiguous(memory_format=memory_format)


def fixed(call: Callable[[], object]) -> Callable[[], Callable[[], object]]:
    """A `make_call` for peers that need no per-call preparation."""
    return lambda: call


def gemm_peer(s: dict, dtype: torch.dtype) -> Peer:
    """`torch.mm` on row-major A [m, k] and B [k, n] (or [n, k] if transb)."""
    a = uniform(s["m"], s["k"], dtype=dtype)
    if s["transb"]:
        b = uniform(s["n"], s["k"], dtype=dtype)
        return Peer("mm(a, b.t())", fixed(lambda: torch.mm(a, b.t())))
    b = uniform(s["k"], s["n"], dtype=dtype)
    return Peer("mm(a, b)", fixed(lambda: torch.mm(a, b)))


def conv_peer(s: dict, pass_: str, dtype: torch.dtype,
              memory_format: torch.memory_format) -> Peer:
    """One convolution pass on NCHW tensors in `memory_format`."""
    up = bool(s["upsample"])
    scale = 2 if up else 1
    out_h = (s["h"] * scale + 2 * s["pad_h"] - s["kernel_h"]) // s["stride"] + 1
    out_w = (s["w"] * scale + 2 * s["pad_w"] - s["kernel_w"]) // s["stride"] + 1
    stride, pad = [s["stride"]] * 2, [s["pad_h"], s["pad_w"]]

    def make(*shape: int) -> torch.Tensor:
        return uniform(*shape, dtype=dtype, memory_format=memory_format)

    x = make(s["batch"], s["cin"], s["h"], s["w"])
    w = make(s["cout"], s["cin"], s["kernel_h"], s["kernel_w"])
    bias = uniform(s["cout"], dtype=dtype)
    label = "channels_last" if memory_format == torch.channels_last else "nchw"

    if pass_ == "forward":
        def forward() -> torch.Tensor:
            src = F.interpolate(x, scale_factor=2, mode="nearest") if up else x
            return F.conv2d(src, w, bias, stride, pad)
        return Peer(label, fixed(forward))

    x_up = F.interpolate(x, scale_factor=2, mode="nearest") if up else x
    x_up = x_up.contiguous(memory_format=memory_format)
    grad_out = make(s["batch"], s["cout"], out_h, out_w)

    def backward(mask: list[bool]) -> tuple:
        return torch.ops.aten.convolution_backward(
            grad_out, x_up, w, [s["cout"]], stride, pad, [1, 1], False, [0, 0], 1, mask)

    if pass_ == "backward_data":
        def backward_data() -> torch.Tensor:
            grad_in = backward([True, False, False])[0]
            # Nearest-upsample backward: sum over each 2x2 block.
            return F.avg_pool2d(grad_in, 2) * 4 if up else grad_in
        return Peer(label, fixed(backward_data))
    return Peer(label, fixed(lambda: backward([False, True, True])))


def fastest_conv_peer(s: dict, pass_: str, dtype: torch.dtype,
                      repeats: int) -> tuple[Peer, dict[str, float]]:
    """The conv peer in the faster memory format, and each format's median.

    Only forward compares channels_last with contiguous NCHW; backward passes
    use channels_last.
    """
    formats = [torch.channels_last]
    if pass_ == "forward":
        formats.append(torch.contiguous_format)
    peers = [conv_peer(s, pass_, dtype, f) for f in formats]
    if len(peers) == 1:
        return peers[0], {}
    probe = {p.label: statistics.median(time_calls(p.make_call, repeats)) for p in peers}
    return min(peers, key=lambda p: probe[p.label]), probe


def attention_inputs(s: dict, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """theta [B, n, dk], phi [B, m, dk], g [B, m, dv] and dout [B, n, dv]."""
    b, n, m, dk, dv = s["batch"], s["n"], s["m"], s["dk"], s["dv"]
    return (uniform(b, n, dk, dtype=dtype), uniform(b, m, dk, dtype=dtype),
            uniform(b, m, dv, dtype=dtype), uniform(b, n, dv, dtype=dtype))


def autograd_peer(label: str, forward: Callable[..., torch.Tensor],
                  inputs: tuple[torch.Tensor, ...], dout: torch.Tensor,
                  pass_: str) -> Peer:
    """Times `forward(*inputs)`, or for backward only `out.backward(dout)`.

    For backward, every timed call gets a fresh graph built untimed, with
    the inputs' gradients cleared first so they are written, not added.
    """
    if pass_ == "forward":
        return Peer(label, fixed(lambda: forward(*inputs)))
    leaves = [t.detach().requires_grad_() for t in inputs]

    def make_call() -> Callable[[], None]:
        for t in leaves:
            t.grad = None
        out = forward(*leaves)
        return lambda: out.backward(dout)
    return Peer(label, make_call)


def bmm_attention(theta: torch.Tensor, phi: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """softmax(theta phi^T) g with batched matrix products."""
    scores = torch.bmm(theta, phi.transpose(1, 2))
    return torch.bmm(torch.softmax(scores, -1), g)


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Unscaled attention through PyTorch's fused CPU flash kernel."""
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        return F.scaled_dot_product_attention(q, k, v, scale=1.0)


def attention_peers(s: dict, pass_: str, dtype: torch.dtype) -> tuple[Peer, Peer]:
    """The bmm-softmax-bmm peer and the scaled_dot_product_attention one."""
    theta, phi, g, dout = attention_inputs(s, dtype)
    main = autograd_peer("bmm-softmax-bmm", bmm_attention, (theta, phi, g), dout, pass_)
    pad = s["dv"] - s["dk"]
    q, k = theta.unsqueeze(1), phi.unsqueeze(1)
    if pad:
        q, k = F.pad(q, (0, pad)), F.pad(k, (0, pad))
    sdpa = autograd_peer("flash+pad" if pad else "flash", sdpa_attention,
                         (q, k, g.unsqueeze(1)), dout.unsqueeze(1), pass_)
    return main, sdpa


# ------------------------------------------------------------- comparison --


@dataclass
class Comparison(PooledTimings):
    """All timings of one case, both sides, over all rounds."""

    id: str
    kernel: str = ""
    precision: str = ""
    pass_: str = ""
    shape: dict = field(default_factory=dict)
    flops: float = 0.0
    torch_label: str = ""
    ours_s: list[float] = field(default_factory=list)
    torch_s: list[float] = field(default_factory=list)
    sdpa_label: Optional[str] = None
    sdpa_s: list[float] = field(default_factory=list)
    layout_probe_s: dict[str, float] = field(default_factory=dict)
    error: Optional[str] = None

    @property
    def sdpa_median(self) -> float:
        """Median of the SDPA peer's times over all rounds."""
        return statistics.median(self.sdpa_s)

    def gflops(self, seconds: float) -> float:
        """GFLOP/s of our FLOP count done in `seconds`."""
        return self.flops / seconds / 1e9

    def to_json(self) -> dict:
        """Raw numbers plus the derived medians, for --json."""
        doc = {
            "id": self.id, "kernel": self.kernel, "precision": self.precision,
            "pass": self.pass_, "shape": self.shape, "flops": self.flops,
            "torch_impl": self.torch_label, "ours_times_s": self.ours_s,
            "torch_times_s": self.torch_s,
        }
        if self.error:
            doc["error"] = self.error
            return doc
        doc.update(ours_median_s=self.ours_median, torch_median_s=self.torch_median,
                   speedup=self.speedup)
        if self.layout_probe_s:
            doc["layout_probe_median_s"] = self.layout_probe_s
        if self.sdpa_label:
            doc.update(sdpa_impl=self.sdpa_label, sdpa_times_s=self.sdpa_s,
                       sdpa_median_s=self.sdpa_median)
        return doc


def build_peers(result: dict, repeats: int) -> tuple[Peer, Optional[Peer], dict]:
    """PyTorch peers for a case described by our JSON result entry.

    Returns the main peer, the optional extra (SDPA) peer and, for conv
    forward, the layout probe medians.
    """
    dtype = DTYPES[result["precision"]]
    shape, pass_ = result["shape"], result["pass"]
    if result["kernel"] == "gemm":
        return gemm_peer(shape, dtype), None, {}
    if result["kernel"] == "conv":
        peer, probe = fastest_conv_peer(shape, pass_, dtype, repeats)
        return peer, None, probe
    main, sdpa = attention_peers(shape, pass_, dtype)
    return main, sdpa, {}


def compare_case(case_id: str, args: argparse.Namespace) -> Comparison:
    """Interleaved rounds of ours and PyTorch on one case."""
    c = Comparison(case_id)
    try:
        for round_ in range(args.rounds):
            ours = run_ours(args.bgkernels, case_id, args.repeats, args.threads)
            if round_ == 0:
                c.kernel, c.precision, c.pass_ = ours["kernel"], ours["precision"], ours["pass"]
                c.shape, c.flops = ours["shape"], ours["flops"]
                main, extra, c.layout_probe_s = build_peers(ours, args.repeats)
                c.torch_label = main.label
                c.sdpa_label = extra.label if extra else None
            c.ours_s += ours["times_s"]
            c.torch_s += time_calls(main.make_call, args.repeats)
            if extra:
                c.sdpa_s += time_calls(extra.make_call, args.repeats)
    except RuntimeError as e:  # BenchError, or an error inside PyTorch
        c.error = str(e)
    return c


# ----------------------------------------------------------------- report --


def shape_summary(c: Comparison) -> str:
    """A compact description of the case's shape."""
    s = c.shape
    if c.kernel == "gemm":
        return f"{s['m']}x{s['n']}x{s['k']}" + (" B^T" if s["transb"] else "")
    if c.kernel == "conv":
        up = " up2" if s["upsample"] else ""
        kh, kw = s["kernel_h"], s["kernel_w"]
        kernel = f"k{kh}" if kh == kw else f"k{kh}x{kw}"
        return f"{s['batch']}x{s['h']}x{s['w']}x{s['cin']}->{s['cout']} {kernel}{up}"
    return f"B{s['batch']} n{s['n']} m{s['m']} dk{s['dk']} dv{s['dv']}"


HEADER = ["case", "shape", "torch impl", "torch ms", "torch GF/s", "ours ms",
          "ours GF/s", "ours/torch", "% peak", "SDPA ms", "SDPA GF/s", "ours/SDPA"]
#: Columns that hold text (left-aligned); the others are right-aligned numbers.
TEXT_COLUMNS = 3


def table_rows(comparisons: list[Comparison], peaks: dict[str, float]) -> list[list[str]]:
    """One row of formatted cells per case (see HEADER); % peak is of the
    case's precision's peak (`peaks` by precision)."""
    rows = []
    for c in comparisons:
        if c.error:
            rows.append([c.id, "FAILED (see below)"] + ["-"] * (len(HEADER) - 2))
            continue
        ours, torch_t = c.ours_median, c.torch_median
        row = [c.id, shape_summary(c), c.torch_label,
               f"{torch_t * 1e3:.3f}", f"{c.gflops(torch_t):.1f}",
               f"{ours * 1e3:.3f}", f"{c.gflops(ours):.1f}",
               f"{c.speedup:.2f}x", f"{100 * c.gflops(ours) / peaks[c.precision]:.1f}%"]
        if c.sdpa_label:
            sdpa = c.sdpa_median
            row += [f"{sdpa * 1e3:.3f} ({c.sdpa_label})", f"{c.gflops(sdpa):.1f}",
                    f"{sdpa / ours:.2f}x"]
        else:
            row += ["-"] * 3
        rows.append(row)
    return rows


def geometric_means(comparisons: list[Comparison]) -> list[tuple[str, float, int]]:
    """Geometric mean of the speed ratio per kernel and per kernel/precision."""
    groups: dict[str, list[float]] = {}
    for c in comparisons:
        if c.error:
            continue
        for key in (c.kernel, f"{c.kernel}/{c.precision}"):
            groups.setdefault(key, []).append(c.speedup)
    return [(key, math.exp(statistics.fmean(map(math.log, ratios))), len(ratios))
            for key, ratios in sorted(groups.items())]


def precision_ratios(comparisons: list[Comparison]) -> list[str]:
    """Our bf16 speed over our fp32 speed, for every case measured in both."""
    medians = {c.id: c.ours_median for c in comparisons if not c.error}
    lines = []
    for case_id, bf16 in medians.items():
        if not case_id.endswith("/bf16"):
            continue
        fp32 = medians.get(case_id[:-len("bf16")] + "fp32")
        if fp32:
            lines.append(f"ours bf16 / ours fp32, {case_id[:-len('/bf16')]}: {fp32 / bf16:.2f}x")
    return lines


def peaks_by_precision(env: dict) -> dict[str, float]:
    """The peak each precision's % peak is taken of."""
    return {"fp32": env["peak_gflops"],
            "bf16": env.get("bf16_peak_gflops", env["peak_gflops"])}


def environment(args: argparse.Namespace, peak_doc: dict) -> dict:
    """Machine and library facts recorded with the results."""
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "bgkernels_cpu": peak_doc.get("cpu", ""),
        "isa": peak_doc.get("isa", ""),
        "threads": args.threads,
        "rounds": args.rounds,
        "repeats": args.repeats,
        "peak_gflops": peak_doc["peak_gflops"],
        "bf16_peak_gflops": peak_doc.get("bf16_peak_gflops", peak_doc["peak_gflops"]),
        "torch_version": torch.__version__,
        "torch_mkl": torch.backends.mkl.is_available(),
        "torch_onednn": torch.backends.mkldnn.is_available(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def summary_lines(comparisons: list[Comparison]) -> list[str]:
    """Geometric means and failures, one line each."""
    lines = [f"geometric mean ours/torch, {key}: {g:.2f}x over {n} case(s)"
             for key, g, n in geometric_means(comparisons)]
    lines += precision_ratios(comparisons)
    lines += [f"FAILED {c.id}: {c.error}" for c in comparisons if c.error]
    return lines


def markdown_section(env: dict, comparisons: list[Comparison]) -> str:
    """The results section appended to --markdown."""
    yes_no = {True: "yes", False: "no"}
    rows = table_rows(comparisons, peaks_by_precision(env))
    parts = [
        f"## PyTorch comparison, {env['date']}",
        "",
        f"- CPU: {env['cpu_model']} (bgkernels path: {env['isa']})",
        f"- Threads: {env['threads']}; {env['rounds']} interleaved rounds of "
        f"{env['repeats']} timed calls per side, medians over all rounds",
        f"- PyTorch {env['torch_version']}: MKL {yes_no[env['torch_mkl']]}, "
        f"oneDNN {yes_no[env['torch_onednn']]}, CPU capability "
        f"{env['torch_cpu_capability']}",
        f"- Measured peaks (bgkernels, {env['threads']} threads): FMA "
        f"{env['peak_gflops']:.1f} GFLOP/s, bf16 {env['bf16_peak_gflops']:.1f} GFLOP/s",
        "",
        "ours/torch is the speed ratio torch time / our time (above 1: ours is "
        "faster); both sides use our FLOP count. % peak is ours, of the FMA peak "
        "for fp32 cases and of the bf16 peak for bf16 ones.",
        "",
        render_markdown(HEADER, rows, TEXT_COLUMNS),
        "",
        *(f"- {line}" for line in summary_lines(comparisons)),
        "",
    ]
    if any(c.sdpa_label for c in comparisons):
        parts += [SDPA_NOTE, ""]
    return "\n".join(parts)


# ------------------------------------------------------------------- main --


def parse_args() -> argparse.Namespace:
    """Command-line options (see --help)."""
    p = argparse.ArgumentParser(
        description="Time biggan-fast's kernels (bgkernels bench) against PyTorch "
                    "on the same shapes, interleaved round by round.")
    p.add_argument("--bgkernels", type=Path, default=Path(".build/release/bgkernels"),
                   help="the bgkernels binary (default: %(default)s)")
    add_timing_options(p, rounds_help="interleaved rounds per case",
                       repeats_help="timed calls per side per round")
    p.add_argument("--kernel", choices=["gemm", "conv", "attention", "all"], default="all",
                   help="kernel group to compare (default: %(default)s)")
    p.add_argument("--precision", choices=["fp32", "bf16", "all"], default="all",
                   help="precision to compare (default: %(default)s)")
    p.add_argument("--case", action="append", default=[], metavar="ID",
                   help="compare only this case (repeatable; overrides --kernel, "
                        "--precision and --quick); see `bgkernels bench --list`")
    p.add_argument("--quick", action="store_true",
                   help="only the small shapes of `bgkernels bench --quick`")
    add_output_options(p)
    args = p.parse_args()
    require_positive(p, args, ("threads", "rounds", "repeats"))
    require_binary(p, args.bgkernels, "--bgkernels")
    return args


def main() -> int:
    """Runs the comparison; returns 1 if any case failed."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    try:
        all_ids = run_bench(args.bgkernels, ["--list"]).split()
        cases = select_cases(all_ids, args)
        if not cases:
            sys.exit("no case matches the selection")
        peak_doc = measure_peak(args.bgkernels, args.threads)
    except BenchError as e:
        sys.exit(str(e))
    env = environment(args, peak_doc)
    print(f"{env['cpu_model']}, {args.threads} threads, measured FMA peak "
          f"{env['peak_gflops']:.1f} GFLOP/s, bf16 peak {env['bf16_peak_gflops']:.1f} GFLOP/s ({env['isa']}); "
          f"PyTorch {env['torch_version']}; "
          f"{len(cases)} case(s), {args.rounds} round(s) x {args.repeats} call(s)",
          file=sys.stderr)

    comparisons = []
    for i, case_id in enumerate(cases, 1):
        c = compare_case(case_id, args)
        comparisons.append(c)
        status = (f"FAILED: {c.error}" if c.error else
                  f"torch {c.torch_median * 1e3:.3f} ms, ours {c.ours_median * 1e3:.3f} ms, "
                  f"ours/torch {c.speedup:.2f}x")
        print(f"[{i}/{len(cases)}] {case_id}: {status}", file=sys.stderr)

    print(render_text(HEADER, table_rows(comparisons, peaks_by_precision(env)), TEXT_COLUMNS))
    print()
    print("\n".join(summary_lines(comparisons)))
    if any(c.sdpa_label for c in comparisons):
        print(SDPA_NOTE)

    if args.markdown:
        append_markdown(args.markdown, markdown_section(env, comparisons))
    if args.json:
        write_json(args.json, {**env, "results": [c.to_json() for c in comparisons]})
    return 1 if any(c.error for c in comparisons) else 0


if __name__ == "__main__":
    sys.exit(main())
