#!/usr/bin/env python3
"""Sampling speed of BigGAN-deep: `biggan-fast bench` against pytorch-pretrained-BigGAN.

For each resolution (128, 256, 512 by default) this script builds
pytorch-pretrained-BigGAN's BigGAN-deep at full width (channel_width 128,
z_dim 128, 1000 classes) with seeded random, valid weights
(tools/pretrained_hf.py), saves it as pytorch_model.bin + config.json in a
temporary folder and converts it with tools/convert_pretrained.py. Sampling
speed does not depend on the weights, so random ones stand in for the
released files. Then, for R interleaved rounds, each batch size is timed on
both sides:

    ours: biggan-fast bench --checkpoint G.safetensors --pass g-forward
              --batch B --repeats N --truncation 0.4 --threads T --json
          -> results[0].median_s (seconds per batch), peak_rss_bytes
    HF:   a child Python process (this script with --hf-worker) that runs
          BigGAN.from_pretrained(folder), torch.set_num_threads(T), and times
          model(z, y, 0.4) in eval mode under torch.no_grad(): one warm-up
          call, then N calls timed with time.perf_counter; z is
          truncation * truncnorm(-2, 2) (truncated_noise_sample), y random
          one-hot classes; it reports the median and its own peak RSS
          (getrusage ru_maxrss), model loading included

Each round gives one median per side; the report takes the median over the
rounds, as seconds per image and images/s, the speed-up HF time / our time
(above 1: ours is faster) and the largest peak RSS of each side. Both sides
use the same thread count. Only the generator forward is timed, not z and y
sampling or image encoding.

`--peer-only` times pytorch-pretrained-BigGAN alone (no binary needed).
Run from the repository root; see Benchmarks/README.md. Shared helpers are
in benchcommon.py and tools/pretrained_*.py.
"""

import argparse
import datetime
import gc
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from benchcommon import (
    BenchError, PooledTimings, add_output_options, add_timing_options, append_markdown,
    cpu_model, render_markdown, require_binary, require_positive, run_bench_json,
    time_calls, write_json,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import pretrained_hf as hf  # noqa: E402
from pretrained_common import STAGE_PLANS, run_converter  # noqa: E402

TRUNCATION = 0.4
SEED = 0
#: Timed calls per side, batch and round when --repeats is not given: fewer
#: where one call is long (HF at 512 px and batch 8 takes about 20 s a call
#: on 2 cores), so that a default run stays near 20 minutes.
AUTO_REPEATS = {(128, 1): 5, (128, 8): 3, (256, 1): 3, (256, 8): 2, (512, 1): 2, (512, 8): 1}


# ------------------------------------------------------------------ sides --


def run_ours(binary: Path, checkpoint: Path, batch: int, repeats: int,
             threads: int) -> tuple[float, int]:
    """One `biggan-fast bench` run: (median seconds per batch, peak RSS bytes)."""
    doc = run_bench_json(
        binary,
        ["--checkpoint", str(checkpoint), "--pass", "g-forward", "--batch", str(batch),
         "--repeats", str(repeats), "--truncation", str(TRUNCATION),
         "--threads", str(threads)],
        "biggan-fast")
    try:
        median = doc["results"][0]["median_s"]
        rss = doc["peak_rss_bytes"]
    except (KeyError, IndexError, TypeError):
        raise BenchError("biggan-fast bench --json printed no results[0].median_s or no "
                         "peak_rss_bytes; this script needs a build whose bench loads "
                         "--checkpoint and reports both") from None
    if not (isinstance(median, (int, float)) and median > 0 and isinstance(rss, int)):
        raise BenchError(f"biggan-fast bench --json: median_s {median!r}, "
                         f"peak_rss_bytes {rss!r}")
    return float(median), rss


def run_hf(folder: Path, batch: int, repeats: int, threads: int) -> tuple[float, int]:
    """One HF measurement in a child process: (median seconds per batch, its
    peak RSS bytes)."""
    proc = subprocess.run(
        [sys.executable, __file__, "--hf-worker", str(folder), "--batches", str(batch),
         "--repeats", str(repeats), "--threads", str(threads)],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"the HF worker failed: {proc.stderr.strip()[-2000:]}")
    try:
        doc = json.loads(proc.stdout)
        return statistics.median(doc["times_s"]), doc["peak_rss_bytes"]
    except (ValueError, KeyError, TypeError) as e:
        raise BenchError(f"the HF worker printed {proc.stdout[:200]!r} ({e})") from None


def hf_worker(folder: Path, batch: int, repeats: int, threads: int) -> None:
    """The child process of `run_hf`: prints {"times_s", "peak_rss_bytes"}."""
    import numpy as np  # only the worker needs it
    torch.set_num_threads(threads)
    model = hf.BigGAN.from_pretrained(str(folder)).eval()
    config = model.config
    z = torch.from_numpy(hf.truncated_noise(batch, config.z_dim, TRUNCATION, SEED))
    y = torch.zeros(batch, config.num_classes)
    y[torch.arange(batch), torch.from_numpy(
        np.random.RandomState(SEED).randint(config.num_classes, size=batch))] = 1

    def sample() -> None:
        with torch.no_grad():
            model(z, y, TRUNCATION)

    times = time_calls(lambda: sample, repeats)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"times_s": times, "peak_rss_bytes": rss}))


def prepare(resolution: int, folder: Path) -> Path:
    """Saves a random valid full-width HF model in `folder` and converts it;
    returns the converted checkpoint."""
    model = hf.random_model(hf.hf_config(resolution), SEED)
    hf.save_folder(model, folder)
    del model
    gc.collect()
    checkpoint = folder / "G.safetensors"
    print(f"  {run_converter(folder, checkpoint)}", file=sys.stderr)
    return checkpoint


# ------------------------------------------------------------- comparison --


@dataclass
class Result(PooledTimings):
    """Per-round medians (seconds per batch) and peak RSS of one resolution
    and batch, both sides."""

    resolution: int
    batch: int
    repeats: int
    ours_s: list[float] = field(default_factory=list)
    torch_s: list[float] = field(default_factory=list)
    ours_rss: int = 0
    torch_rss: int = 0

    def to_json(self) -> dict:
        """Raw round medians and the derived numbers, for --json."""
        doc = {"resolution": self.resolution, "batch": self.batch, "repeats": self.repeats,
               "ours_round_medians_s": self.ours_s, "hf_round_medians_s": self.torch_s,
               "ours_peak_rss_bytes": self.ours_rss or None,
               "hf_peak_rss_bytes": self.torch_rss or None}
        if self.torch_s:
            doc["hf_seconds_per_image"] = self.torch_median / self.batch
        if self.ours_s:
            doc["ours_seconds_per_image"] = self.ours_median / self.batch
        if self.ours_s and self.torch_s:
            doc["speedup"] = self.speedup
        return doc


def compare(args: argparse.Namespace) -> tuple[list[Result], Optional[str]]:
    """All resolutions, interleaved rounds; the results and the first error."""
    results = []
    for resolution in args.resolutions:
        print(f"BigGAN-deep {resolution}: building and converting", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix=f"compare-sampling-{resolution}-") as tmp:
            folder = Path(tmp)
            rows = [Result(resolution, b, args.repeats or AUTO_REPEATS.get((resolution, b), 3))
                    for b in args.batches]
            results += rows
            try:
                checkpoint = prepare(resolution, folder)
                for round_ in range(1, args.rounds + 1):
                    for r in rows:
                        if not args.peer_only:
                            median, rss = run_ours(args.binary, checkpoint, r.batch,
                                                   r.repeats, args.threads)
                            r.ours_s.append(median)
                            r.ours_rss = max(r.ours_rss, rss)
                        median, rss = run_hf(folder, r.batch, r.repeats, args.threads)
                        r.torch_s.append(median)
                        r.torch_rss = max(r.torch_rss, rss)
                        print(f"  round {round_}/{args.rounds}, batch {r.batch}: HF "
                              f"{median:.3f} s" + (f", ours {r.ours_s[-1]:.3f} s"
                                                   if r.ours_s else ""), file=sys.stderr)
            except (BenchError, RuntimeError) as e:
                return results, str(e)
    return results, None


# ----------------------------------------------------------------- report --


HEADER = ["model", "batch", "HF s/img", "HF img/s", "HF peak MiB", "ours s/img",
          "ours img/s", "ours peak MiB", "HF t / our t"]
TEXT_COLUMNS = 1


def table_rows(results: list[Result]) -> list[list[str]]:
    """One row of formatted cells per resolution and batch (see HEADER)."""
    rows = []
    for r in results:
        cells = [f"deep-{r.resolution}", str(r.batch)]
        for times, rss in ((r.torch_s, r.torch_rss), (r.ours_s, r.ours_rss)):
            if times:
                median = statistics.median(times)
                cells += [f"{median / r.batch:.3f}", f"{r.batch / median:.2f}",
                          f"{rss / 2**20:,.0f}"]
            else:
                cells += ["-"] * 3
        cells.append(f"{r.speedup:.2f}x" if r.ours_s and r.torch_s else "-")
        rows.append(cells)
    return rows


def environment(args: argparse.Namespace) -> dict:
    """Machine and library facts recorded with the results."""
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "threads": args.threads,
        "rounds": args.rounds,
        "truncation": TRUNCATION,
        "torch_version": torch.__version__,
        "peer_only": args.peer_only,
    }


def markdown_section(env: dict, results: list[Result], error: Optional[str]) -> str:
    """The report: environment, then the table."""
    repeats = ", ".join(f"{r.repeats} at deep-{r.resolution} batch {r.batch}" for r in results)
    parts = [
        f"## BigGAN-deep sampling against pytorch-pretrained-BigGAN, {env['date']}",
        "",
        f"- CPU: {env['cpu_model']}; threads: {env['threads']} on both sides",
        f"- {env['rounds']} interleaved round(s); timed calls per round after one warm-up: "
        f"{repeats}; medians over the rounds",
        f"- PyTorch {env['torch_version']}, pytorch-pretrained-BigGAN BigGAN-deep (ch 128, "
        f"z 128, 1000 classes, random valid weights), eval mode, no_grad, truncation "
        f"{env['truncation']}; ours: `biggan-fast bench --pass g-forward` on the "
        f"converted checkpoint",
        "- peak MiB: peak RSS of the process (model loading included); HF t / our t "
        "above 1 means ours is faster",
        *([f"- FAILED: {error}"] if error else []),
        "",
        render_markdown(HEADER, table_rows(results), TEXT_COLUMNS),
        "",
    ]
    return "\n".join(parts)


# ------------------------------------------------------------------- main --


def parse_args() -> argparse.Namespace:
    """Command-line options (see --help)."""
    p = argparse.ArgumentParser(
        description="Time BigGAN-deep sampling: biggan-fast bench against "
                    "pytorch-pretrained-BigGAN, interleaved round by round.",
        epilog="Default repeats (timed calls per round) by (resolution, batch): "
               + ", ".join(f"{r}/{b}: {n}" for (r, b), n in AUTO_REPEATS.items())
               + "; 3 otherwise.")
    p.add_argument("--binary", type=Path, default=Path(".build/release/biggan-fast"),
                   help="the biggan-fast binary (default: %(default)s)")
    p.add_argument("--resolutions", type=int, nargs="+", choices=sorted(STAGE_PLANS),
                   default=sorted(STAGE_PLANS), metavar="R",
                   help="BigGAN-deep resolutions (default: 128 256 512)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8], metavar="B",
                   help="batch sizes (default: 1 8)")
    p.add_argument("--peer-only", action="store_true",
                   help="time pytorch-pretrained-BigGAN only (no binary needed)")
    p.add_argument("--hf-worker", type=Path, help=argparse.SUPPRESS)
    add_timing_options(p, rounds_help="interleaved rounds",
                       repeats_help="timed calls per side, batch and round; None: by "
                                    "resolution and batch, see below")
    p.set_defaults(repeats=None)
    add_output_options(p)
    args = p.parse_args()
    require_positive(p, args, ("threads", "rounds", "repeats"))
    if any(b < 1 for b in args.batches):
        p.error("--batches must be at least 1")
    if not args.peer_only and not args.hf_worker:
        require_binary(p, args.binary, "--binary")
    return args


def main() -> int:
    """Runs the comparison (or the HF worker); returns 1 on failure."""
    args = parse_args()
    if args.hf_worker:
        hf_worker(args.hf_worker, args.batches[0], args.repeats, args.threads)
        return 0
    env = environment(args)
    print(f"{env['cpu_model']}, {args.threads} threads; PyTorch {env['torch_version']}; "
          f"{args.rounds} round(s)", file=sys.stderr)
    results, error = compare(args)
    section = markdown_section(env, results, error)
    print(section)
    if args.markdown:
        append_markdown(args.markdown, section)
    if args.json:
        write_json(args.json, {**env, "error": error,
                               "results": [r.to_json() for r in results]})
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
