"""Data-parallel training on this machine: N ranks x T/N threads against one
process x T threads, on one training iteration of a preset.

Each round runs `biggan-fast bench --pass iteration` twice, interleaved: as
one process with --threads T, then under `mpirun -np N` with T/N threads per
rank and the same global --batch (each rank takes batch/N images, gradients
and batch-norm statistics are shared). Reports the medians over all rounds of
the iteration time, the ratio one-process time / N-rank time (above 1: the
ranks are faster), the time an iteration spends in collective calls
(communication and waiting for the slower rank), and the rank-order sum of a
gradient as large as both networks' (`sum`: bytes of gradient per second).

Usage, from the repository root after `swift build -c release`:

    python3 Benchmarks/compare_distributed.py --config cifar32 --batch 50 \\
        --ranks 2 --threads 2 --rounds 5 --markdown Benchmarks/RESULTS.md
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

from benchcommon import (add_output_options, add_timing_options, append_markdown,
                         cpu_model, render_markdown, render_text, require_binary,
                         require_positive, run_bench_json, write_json)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="cifar32", help="preset (default: %(default)s)")
    p.add_argument("--batch", type=int, default=50, help="global batch (default: %(default)s)")
    p.add_argument("--ranks", type=int, default=2, help="MPI ranks (default: %(default)s)")
    p.add_argument("--binary", type=Path, default=Path(".build/release/biggan-fast"))
    p.add_argument("--mpirun", default="mpirun", help="launcher (default: %(default)s)")
    add_timing_options(p, "interleaved rounds of both", "timed iterations per run")
    add_output_options(p)
    args = p.parse_args()
    require_positive(p, args, ("batch", "ranks", "threads", "rounds", "repeats"))
    require_binary(p, args.binary, "--binary")
    if args.threads % args.ranks or args.batch % args.ranks:
        p.error("--threads and --batch must be multiples of --ranks")

    common = ["--config", args.config, "--pass", "iteration", "--batch", str(args.batch),
              "--repeats", str(args.repeats)]
    launcher = (args.mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                "-np", str(args.ranks))
    one, many, communication, sums, raw = [], [], [], [], []
    for r in range(args.rounds):
        single = run_bench_json(args.binary, [*common, "--threads", str(args.threads)], "biggan-fast")
        ranked = run_bench_json(args.binary, [*common, "--threads", str(args.threads // args.ranks)],
                                "biggan-fast", launcher)
        one += single["results"][0]["times_s"]
        iteration = ranked["results"][0]
        many += iteration["times_s"]
        communication.append(iteration["communication_s"])
        sums += ranked["results"][1]["times_s"]
        raw.append({"one_process": single, "ranks": ranked})
        print(f"round {r + 1}/{args.rounds}: one process {statistics.median(single['results'][0]['times_s']):.3f} s, "
              f"{args.ranks} ranks {iteration['median_s']:.3f} s", file=sys.stderr)

    values = raw[0]["ranks"]["results"][1]["values"]
    t1, tn, tc, ts = (statistics.median(x) for x in (one, many, communication, sums))
    header = ["run", "iteration", "images/s", "communication", "ratio"]
    images = 5 * args.batch
    rows = [
        [f"1 process x {args.threads} threads", f"{t1 * 1e3:.1f} ms", f"{images / t1:.1f}", "-", "1.00"],
        [f"{args.ranks} ranks x {args.threads // args.ranks} threads", f"{tn * 1e3:.1f} ms", f"{images / tn:.1f}",
         f"{tc * 1e3:.1f} ms ({100 * tc / tn:.1f}%)", f"{t1 / tn:.2f}"],
        [f"sum of {values:,} floats over {args.ranks} ranks", f"{ts * 1e3:.2f} ms",
         f"{4 * values / ts / 1e9:.2f} GB/s", "-", "-"],
    ]
    print(render_text(header, rows, 1))
    if args.markdown:
        section = (f"## Data-parallel iteration, {args.config}, global batch {args.batch} "
                   f"({time.strftime('%Y-%m-%d')})\n\n{cpu_model()}, {args.threads} threads in all; "
                   f"medians of {args.rounds} interleaved rounds x {args.repeats} iterations. "
                   "Ratio: one-process time / ranks' time.\n\n"
                   + render_markdown(header, rows, 1))
        append_markdown(args.markdown, section)
    if args.json:
        write_json(args.json, {"config": args.config, "batch": args.batch, "ranks": args.ranks,
                               "threads": args.threads, "rounds": raw})
    return 0


if __name__ == "__main__":
    sys.exit(main())
