#!/usr/bin/env python3
"""FID numerics at Inception's 2048 dimensions: ours against pytorch-fid's sqrtm.

    fid_numerics.py --binary .build/release/biggan-fast [--workdir DIR]
    fid_numerics.py --reference-only

Makes two kinds of 2048-dimensional statistics from seeded random samples
with a decaying spectrum (x = z M^T + m, z ~ N(0, I), the columns of M
scaled by exp(-k / 400)), as pool3 features give: full rank (5000 samples)
and rank-deficient (500 samples: covariance rank 499). Each pair is written
as two stats files (mu float64 [2048], sigma float64 [2048, 2048], N - 1
normalisation; np.savez_compressed, as pytorch-fid's save_fid_stats) and
compared three ways:

* pairs: full vs full, rank-deficient vs rank-deficient, full vs
  rank-deficient;
* reference: pytorch-fid's `calculate_frechet_distance` (scipy
  `linalg.sqrtm` of sigma1 sigma2, with its eps offset fallback), float64;
* ours: `biggan-fast eval --stats A.npz --ref B.npz --json`, key
  `frechet_inception_distance`.

Passes at 1e-6 relative, and ours must be finite. For context the table
also gives torch-fidelity's formula (the square roots of the eigenvalues of
sigma1 sigma2) and the symmetric one (eigenvalues of sqrt(S1) S2 sqrt(S1)),
which show how well the reference itself is determined. `--reference-only`
prints those without a binary. Exit status 1 if any pair fails.
"""

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

DIM = 2048
TOLERANCE = 1e-6
SAMPLES = {"full rank": 5000, "rank-deficient": 500}
PAIRS = (("full rank", "full rank"), ("rank-deficient", "rank-deficient"),
         ("full rank", "rank-deficient"))


def statistics(kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """mu and sigma of SAMPLES[kind] seeded random 2048-d samples."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(DIM, DIM)) * np.exp(-np.arange(DIM) / 400)[None, :] / 20
    x = rng.normal(size=(SAMPLES[kind], DIM)) @ mixing.T + rng.uniform(0, 1, size=DIM)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def pytorch_fid(mu1, s1, mu2, s2) -> tuple[float, bool]:
    """pytorch-fid's FID and whether it took the offset fallback."""
    from pytorch_fid.fid_score import calculate_frechet_distance
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fid = calculate_frechet_distance(mu1, s1, mu2, s2)
    return float(fid), "singular product" in out.getvalue()


def torch_fidelity_fid(mu1, s1, mu2, s2) -> float:
    from torch_fidelity.metric_fid import fid_statistics_to_metric
    return float(fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2},
                                          verbose=False)["frechet_inception_distance"])


def symmetric_fid(mu1, s1, mu2, s2) -> float:
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root @ s2 @ root)
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(inner, 0, None)).sum())


def ours(binary: Path, a: Path, b: Path) -> float:
    cmd = [str(binary), "eval", "--stats", str(a), "--ref", str(b), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited with {proc.returncode}: "
                           f"{proc.stderr.strip() or proc.stdout.strip()}")
    lines = [line for line in proc.stdout.splitlines() if line.strip().startswith("{")]
    if not lines:
        raise RuntimeError(f"biggan-fast eval printed no JSON: {proc.stdout[:200]!r}")
    return float(json.loads(lines[-1])["frechet_inception_distance"])


def main() -> int:
    p = argparse.ArgumentParser(description="FID at 2048 dimensions: biggan-fast eval --stats "
                                            "against pytorch-fid's sqrtm (see the docstring).")
    p.add_argument("--binary", type=Path, help="biggan-fast binary")
    p.add_argument("--reference-only", action="store_true",
                   help="only the Python formulas, no binary")
    p.add_argument("--workdir", type=Path, help="keep the stats files here")
    args = p.parse_args()
    if args.binary is None and not args.reference_only:
        p.error("give --binary PATH or --reference-only")
    if args.binary is not None and not args.binary.is_file():
        p.error(f"{args.binary} not found; build it with `swift build -c release`")

    with contextlib.ExitStack() as stack:
        work = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        files = {}
        for i, kind in enumerate(SAMPLES):
            for side in (1, 2):
                mu, sigma = statistics(kind, seed=10 * i + side)
                path = work / f"{kind.replace(' ', '-')}-{side}.npz"
                np.savez_compressed(path, mu=mu, sigma=sigma)
                files[kind, side] = (path, mu, sigma)
                print(f"{path.name}: rank {np.linalg.matrix_rank(sigma)}", flush=True)
        header = ["pair", "pytorch-fid", "fallback", "torch-fidelity", "symmetric", "ours",
                  "rel. error", "result"]
        rows, failures = [], 0
        for first, second in PAIRS:
            a, mu1, s1 = files[first, 1]
            b, mu2, s2 = files[second, 2]
            t = time.time()
            ref, fallback = pytorch_fid(mu1, s1, mu2, s2)
            print(f"{first} vs {second}: pytorch-fid {ref:.12g} ({time.time() - t:.0f} s)",
                  flush=True)
            row = [f"{first} vs {second}", f"{ref:.12g}", "yes" if fallback else "no",
                   f"{torch_fidelity_fid(mu1, s1, mu2, s2):.12g}",
                   f"{symmetric_fid(mu1, s1, mu2, s2):.12g}"]
            if args.binary is not None:
                value = ours(args.binary, a, b)
                error = abs(value - ref) / abs(ref) if np.isfinite(value) else float("inf")
                ok = bool(np.isfinite(value) and error <= TOLERANCE)
                failures += not ok
                row += [f"{value:.12g}", f"{error:.2e}", "ok" if ok else "FAIL"]
            else:
                row += ["-", "-", "-"]
            rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    for line in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(line, widths))))
    if args.binary is not None:
        print(f"{len(rows) - failures} passed, {failures} failed (tolerance {TOLERANCE:.0e} "
              f"relative to pytorch-fid)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
