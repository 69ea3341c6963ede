"""A scaling model of data-parallel training: the step time of N ranks over
a network link, from our measured compute time and the bytes the ranks
exchange.

For each preset it reads `biggan-fast info` (parameters, G's batch-norm
layers and channels, the values the ranks sum per iteration) and times one
training iteration per rank with `biggan-fast bench --pass iteration` at
`--batch` images (or reads those timings from `--timings FILE`, written by
an earlier run with `--save-timings FILE`). Then, for N ranks sharing the
preset's global batch per optimizer step (the batch times its
accumulation), each rank computes global/N images, at the measured seconds
per image, and the ranks exchange per optimizer step:

* gradient sums, one per D step and one per G step, each a reduce-scatter
  plus all-gather of the summed values (4 bytes each): every rank sends and
  receives 2 (N-1)/N of them; latency 2 (N-1) messages (pairwise exchange);
* batch-norm statistics: per G batch-norm layer and G pass (D steps + 1
  forwards, 1 backward, per accumulated batch) an all-gather of every rank's
  (count, mean, M2) or two gradient sums in double: (N-1) (1 + 2C) 8 bytes
  received per forward, (N-1) 2C 8 per backward; latency (N-1) messages.

A link is its bandwidth and per-message latency. Communication does not
overlap compute in this model (it does not in the code): step time =
compute + communication. Efficiency = compute / step.
"""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

LINKS = {  # name: (bytes per second, seconds per message)
    "10 Gb/s Ethernet": (10e9 / 8, 30e-6),
    "100 Gb/s InfiniBand": (100e9 / 8, 3e-6),
}
PRESETS = ["cifar32", "imagenet64", "imagenet128", "imagenet256", "imagenet512", "imagenet128-deep"]


def info(binary: Path, preset: str) -> dict:
    """Parameter counts, the recipe's global batch per optimizer step and D
    steps, G's batch-norm layers and channels, the values summed."""
    out = subprocess.run([str(binary), "info", "--config", preset], capture_output=True, text=True,
                         check=True).stdout

    def number(pattern: str) -> int:
        return int(re.search(pattern, out).group(1).replace(",", ""))

    return {
        "g": number(r"G parameters:\s+([\d,]+)"), "d": number(r"D parameters:\s+([\d,]+)"),
        "bn_layers": number(r"batch-norm:\s+G (\d+) layers"),
        "bn_channels": number(r"batch-norm:.* ([\d,]+) channels"),
        "summed": number(r"ranks share:\s+([\d,]+)"),
        "global_batch": number(r"recipe:\s+batch (\d+)") * number(r"recipe:.* x (\d+) accumulated"),
        "d_steps": number(r"recipe:.*, (\d+) D steps"),
    }


def seconds_per_image(binary: Path, preset: str, batch: int, threads: int) -> float:
    """One training iteration at `batch`, per image of the batch."""
    out = subprocess.run([str(binary), "bench", "--config", preset, "--pass", "iteration", "--batch", str(batch),
                          "--threads", str(threads), "--repeats", "1", "--json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["results"][0]["median_s"] / batch


def step(n: int, net: dict, per_image: float, link: tuple[float, float]) -> dict:
    global_batch, d_steps = net["global_batch"], net["d_steps"]
    bandwidth, latency = link
    compute = global_batch / n * per_image
    if n == 1:
        return {"compute": compute, "gradients": 0.0, "norms": 0.0}
    calls = d_steps + 1
    gradients = 2 * (n - 1) / n * 4 * net["summed"] / bandwidth + calls * 2 * (n - 1) * latency
    # One accumulated batch per rank per step once the global batch is split
    # n ways at 256 images or fewer per rank.
    accumulated = max(1, global_batch // n // 256)
    c, layers = net["bn_channels"], net["bn_layers"]
    per_forward = (n - 1) * (layers + 2 * c) * 8 / bandwidth + layers * (n - 1) * latency
    per_backward = (n - 1) * 2 * c * 8 / bandwidth + layers * (n - 1) * latency
    norms = accumulated * ((d_steps + 1) * per_forward + per_backward)
    return {"compute": compute, "gradients": gradients, "norms": norms}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", type=Path, default=Path(".build/release/biggan-fast"))
    p.add_argument("--batch", type=int, default=4, help="images per timed iteration (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="threads per rank (default: %(default)s)")
    p.add_argument("--presets", default=",".join(PRESETS))
    p.add_argument("--ranks", default="8,64,512")
    p.add_argument("--timings", type=Path, help="read seconds per image from this JSON file")
    p.add_argument("--save-timings", type=Path, help="write the measured seconds per image here")
    args = p.parse_args()
    presets = args.presets.split(",")
    ranks = [int(r) for r in args.ranks.split(",")]
    timings = json.loads(args.timings.read_text()) if args.timings else {}
    for preset in presets:
        if preset not in timings:
            print(f"timing {preset} ...", file=sys.stderr)
            timings[preset] = seconds_per_image(args.binary, preset, args.batch, args.threads)
    if args.save_timings:
        args.save_timings.write_text(json.dumps(timings, indent=2) + "\n")

    print("| preset | G + D parameters | summed per iteration | bytes per rank per step (N large) | G batch-norm | compute per image |")
    print("|:--|--:|--:|--:|--:|--:|")
    nets = {}
    for preset in presets:
        net = nets[preset] = info(args.binary, preset)
        print(f"| {preset} | {net['g'] + net['d']:,} | {net['summed']:,} "
              f"| {2 * 4 * net['summed'] / 1e6:,.0f} MB | {net['bn_layers']} layers, {net['bn_channels']:,} ch "
              f"| {timings[preset]:.3f} s |")
    for name, link in LINKS.items():
        print(f"\n**{name}** (step time = compute + gradient sums + batch-norm statistics; efficiency = compute / step)\n")
        print("| preset | N | images per rank | compute | gradient sums | batch-norm | step | efficiency |")
        print("|:--|--:|--:|--:|--:|--:|--:|--:|")
        for preset in presets:
            for n in (n for n in ranks if n <= nets[preset]["global_batch"]):
                s = step(n, nets[preset], timings[preset], link)
                total = s["compute"] + s["gradients"] + s["norms"]
                print(f"| {preset} | {n} | {nets[preset]['global_batch'] / n:g} | {s['compute']:.2f} s | {s['gradients']:.3f} s "
                      f"| {s['norms']:.3f} s | {total:.2f} s | {100 * s['compute'] / total:.0f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
