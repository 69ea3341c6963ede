#!/usr/bin/env python3
"""FID Inception-v3 throughput: `biggan-fast bench --inception` against torch-fidelity.

Both sides run the full FID Inception-v3 (tools/fid_inception.py describes
the network) on batches of 32 x 32 uint8 RGB images, TF 1.x bilinear resize
to 299 x 299 included, and produce pool3 features and logits_unbiased. For
R interleaved rounds:

    ours:  biggan-fast bench --inception FILE --batch B --repeats N
               --threads T --json
           -> results[0].times_s (seconds per batch), peak_rss_bytes
    torch: a child Python process (this script with --torch-worker) that
           sets torch.set_num_threads(T), builds torch-fidelity's
           FeatureExtractorInceptionV3 with features ['2048',
           'logits_unbiased'] from the same weights (FILE saved back as a
           .pth, loaded through feature_extractor_weights_path) and times
           `extractor(x)` under torch.no_grad() on a fixed uint8 batch
           [B, 3, 32, 32], as torch-fidelity's own loop calls it: one
           warm-up call, then N calls timed with time.perf_counter; it
           reports the times and its peak RSS (getrusage ru_maxrss, model
           loading included)

Medians are taken over all timed calls of all rounds; the report gives
features (images) per second on each side, the speed ratio torch time / our
time (above 1: ours is faster) and each process's largest peak RSS. The
peer runs in eager mode in torch-fidelity's layout (contiguous NCHW).

FILE is a converted weights file (tools/convert_inception.py); without
--inception the script makes random full-width weights (speed does not
depend on the values) and converts them. `--peer-only` times torch-fidelity
alone. Run from the repository root; see Benchmarks/README.md.
"""

import argparse
import datetime
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
    cpu_model, render_markdown, render_text, require_binary, require_positive,
    run_bench_json, time_calls, write_json,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
IMAGE_SIZE = 32
SEED = 0


# ------------------------------------------------------------------ sides --


def run_ours(binary: Path, inception: Path, batch: int, repeats: int,
             threads: int) -> tuple[list[float], Optional[int]]:
    """One `biggan-fast bench --inception` run: (seconds per batch of each
    timed call, peak RSS bytes or None)."""
    doc = run_bench_json(binary, ["--inception", str(inception), "--batch", str(batch),
                                  "--repeats", str(repeats), "--threads", str(threads)],
                         "biggan-fast")
    try:
        result = doc["results"][0]
        times = result.get("times_s") or [result["median_s"]]
    except (KeyError, IndexError, TypeError, AttributeError):
        raise BenchError("biggan-fast bench --inception --json printed no results[0] with "
                         "times_s or median_s") from None
    if not times or not all(isinstance(t, (int, float)) and t > 0 for t in times):
        raise BenchError(f"biggan-fast bench --json: times {times!r}")
    images_per_s = result.get("images_per_s")
    median = statistics.median(times)
    if isinstance(images_per_s, (int, float)) and abs(images_per_s * result.get(
            "median_s", median) - batch) > 1e-6 * batch:
        raise BenchError(f"biggan-fast counts {images_per_s * median:.1f} images per call, "
                         f"this script {batch}")
    rss = doc.get("peak_rss_bytes")
    return [float(t) for t in times], rss if isinstance(rss, int) else None


def run_torch(pth: Path, batch: int, repeats: int, threads: int) -> tuple[list[float], int]:
    """One torch-fidelity measurement in a child process: (seconds per batch
    of each timed call, its peak RSS bytes)."""
    proc = subprocess.run(
        [sys.executable, __file__, "--torch-worker", str(pth), "--batch", str(batch),
         "--repeats", str(repeats), "--threads", str(threads)],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"the torch-fidelity worker failed: {proc.stderr.strip()[-2000:]}")
    try:
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
        return doc["times_s"], doc["peak_rss_bytes"]
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise BenchError(f"the torch-fidelity worker printed {proc.stdout[:200]!r} ({e})"
                         ) from None


def torch_worker(pth: Path, batch: int, repeats: int, threads: int) -> None:
    """The child process of `run_torch`: prints {"times_s", "peak_rss_bytes"}."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    torch.set_num_threads(threads)
    extractor = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                            feature_extractor_weights_path=str(pth))
    generator = torch.Generator().manual_seed(SEED)
    x = torch.randint(0, 256, (batch, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8,
                      generator=generator)

    def extract() -> None:
        with torch.no_grad():
            extractor(x)

    times = time_calls(lambda: extract, repeats)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"times_s": times, "peak_rss_bytes": rss}))


def prepare(inception: Optional[Path], folder: Path) -> tuple[Path, Path]:
    """(our weights file, the same weights as a .pth for torch-fidelity). Without
    `inception`, random full-width weights converted with convert_inception.py."""
    import fid_inception as fi
    import inception_common as ic
    if inception is None:
        images = torch.randint(0, 256, (8, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(SEED))
        model = fi.random_fid_inception(1, SEED, images)
        pth = folder / "inception.pth"
        torch.save(dict(model.state_dict()), pth)
        inception = folder / "inception.safetensors"
        print(f"  {ic.run_converter(pth, inception)}", file=sys.stderr)
        return inception, pth
    tensors, meta = ic.load_safetensors(inception)
    if meta.get("width_divisor", "1") != "1":
        raise BenchError(f"{inception} has width divisor {meta['width_divisor']}; "
                         "torch-fidelity's extractor needs the full network")
    pth = folder / "inception.pth"
    torch.save(tensors, pth)
    return inception, pth


# ------------------------------------------------------------- comparison --


@dataclass
class Result(PooledTimings):
    """All timed calls of both sides (seconds per batch) and peak RSS."""

    batch: int
    ours_s: list[float] = field(default_factory=list)
    torch_s: list[float] = field(default_factory=list)
    ours_rss: Optional[int] = None
    torch_rss: int = 0

    def to_json(self) -> dict:
        doc = {"batch": self.batch, "ours_times_s": self.ours_s,
               "torch_times_s": self.torch_s, "ours_peak_rss_bytes": self.ours_rss,
               "torch_peak_rss_bytes": self.torch_rss or None}
        if self.torch_s:
            doc["torch_median_s"] = self.torch_median
            doc["torch_images_per_s"] = self.batch / self.torch_median
        if self.ours_s:
            doc["ours_median_s"] = self.ours_median
            doc["ours_images_per_s"] = self.batch / self.ours_median
        if self.ours_s and self.torch_s:
            doc["speedup"] = self.speedup
        return doc


def compare(args: argparse.Namespace, folder: Path) -> tuple[Result, Optional[str]]:
    """Interleaved rounds; the result and the first error."""
    result = Result(args.batch)
    try:
        inception, pth = prepare(args.inception, folder)
        for round_ in range(1, args.rounds + 1):
            if not args.peer_only:
                times, rss = run_ours(args.binary, inception, args.batch, args.repeats,
                                      args.threads)
                result.ours_s += times
                if rss is not None:
                    result.ours_rss = max(result.ours_rss or 0, rss)
            times, rss = run_torch(pth, args.batch, args.repeats, args.threads)
            result.torch_s += times
            result.torch_rss = max(result.torch_rss, rss)
            print(f"  round {round_}/{args.rounds}: torch-fidelity "
                  f"{statistics.median(times):.3f} s" +
                  (f", ours {statistics.median(result.ours_s[-args.repeats:]):.3f} s"
                   if result.ours_s else "") + " per batch", file=sys.stderr)
    except (BenchError, RuntimeError) as e:
        return result, str(e)
    return result, None


# ----------------------------------------------------------------- report --


HEADER = ["side", "s/batch", "features/s", "peak MiB"]
TEXT_COLUMNS = 1


def table_rows(r: Result) -> list[list[str]]:
    rows = []
    for name, times, rss in (("torch-fidelity (PyTorch eager)", r.torch_s, r.torch_rss),
                             ("biggan-fast", r.ours_s, r.ours_rss)):
        if times:
            median = statistics.median(times)
            rows.append([name, f"{median:.3f}", f"{r.batch / median:.2f}",
                         f"{rss / 2**20:,.0f}" if rss else "-"])
        else:
            rows.append([name, "-", "-", "-"])
    return rows


def environment(args: argparse.Namespace) -> dict:
    import torch_fidelity
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "threads": args.threads,
        "rounds": args.rounds,
        "repeats": args.repeats,
        "batch": args.batch,
        "image_size": IMAGE_SIZE,
        "torch_version": torch.__version__,
        "torch_fidelity_version": torch_fidelity.__version__,
        "weights": str(args.inception) if args.inception else "random",
    }


def markdown_section(env: dict, result: Result, error: Optional[str]) -> str:
    ratio = (f"torch t / our t: **{result.speedup:.2f}x** (above 1: ours is faster)"
             if result.ours_s and result.torch_s else "torch t / our t: -")
    parts = [
        f"## FID Inception-v3 features against torch-fidelity, {env['date']}",
        "",
        f"- CPU: {env['cpu_model']}; threads: {env['threads']} on both sides",
        f"- {env['rounds']} interleaved round(s) of {env['repeats']} timed call(s) per side "
        "after one warm-up call; medians over all timed calls",
        f"- batch {env['batch']} of {env['image_size']} x {env['image_size']} uint8 images, "
        "TF bilinear resize to 299 included, pool3 and logits_unbiased out",
        f"- PyTorch {env['torch_version']}, torch-fidelity {env['torch_fidelity_version']} "
        "FeatureExtractorInceptionV3 under no_grad; ours: `biggan-fast bench --inception`",
        "- peak MiB: peak RSS of each process, model loading included",
        *([f"- FAILED: {error}"] if error else []),
        "",
        render_markdown(HEADER, table_rows(result), TEXT_COLUMNS),
        "",
        ratio,
        "",
    ]
    return "\n".join(parts)


# ------------------------------------------------------------------- main --


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Time FID Inception-v3 feature extraction: biggan-fast bench --inception "
                    "against torch-fidelity, interleaved round by round.")
    p.add_argument("--binary", type=Path, default=Path(".build/release/biggan-fast"),
                   help="the biggan-fast binary (default: %(default)s)")
    p.add_argument("--inception", type=Path,
                   help="converted weights (tools/convert_inception.py); default: random "
                        "full-width weights")
    p.add_argument("--batch", type=int, default=50, help="batch size (default: %(default)s)")
    p.add_argument("--peer-only", action="store_true",
                   help="time torch-fidelity only (no binary needed)")
    p.add_argument("--torch-worker", type=Path, help=argparse.SUPPRESS)
    add_timing_options(p, rounds_help="interleaved rounds",
                       repeats_help="timed calls per side and round")
    add_output_options(p)
    args = p.parse_args()
    require_positive(p, args, ("threads", "rounds", "repeats", "batch"))
    if args.inception is not None and not args.inception.is_file():
        p.error(f"{args.inception} not found")
    if not args.peer_only and not args.torch_worker:
        require_binary(p, args.binary, "--binary")
    return args


def main() -> int:
    args = parse_args()
    if args.torch_worker:
        torch_worker(args.torch_worker, args.batch, args.repeats, args.threads)
        return 0
    env = environment(args)
    print(f"{env['cpu_model']}, {args.threads} threads; PyTorch {env['torch_version']}; "
          f"{args.rounds} round(s) x {args.repeats} call(s)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="compare-inception-") as tmp:
        result, error = compare(args, Path(tmp))
    print(render_text(HEADER, table_rows(result), TEXT_COLUMNS))
    if result.ours_s and result.torch_s:
        print(f"torch t / our t: {result.speedup:.2f}x (above 1: ours is faster)")
    if error:
        print(f"FAILED: {error}")
    if args.markdown:
        append_markdown(args.markdown, markdown_section(env, result, error))
    if args.json:
        write_json(args.json, {**env, "error": error, "result": result.to_json()})
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
