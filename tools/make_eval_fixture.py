#!/usr/bin/env python3
"""Write the evaluation fixture `Tests/BigGANTests/Fixtures/inception/`.

    make_eval_fixture.py [--out DIR] [--check]

A reduced FID Inception-v3 (width divisor 16: every channel count / 16,
pool3 128 features, still 1008 classes) with random weights, small image
folders, and what the reference libraries compute from them:

* `inception-d16.safetensors`: tools/fid_inception.py's
  `random_fid_inception(16, seed 7, ...)`, batch-norm statistics measured on
  24 calibration images (12 of each kind, other seeds than the folders),
  saved as a plain state dict (.pth) and converted by
  `convert_inception.py --width-divisor 16` (metadata format
  fid-inception-v3, width_divisor 16, source inception-d16.pth);
* `images-a/` (12 PNGs, 32 x 32, kind "a": warm gradients with discs),
  `images-b/` (12 PNGs, 32 x 32: 10 of kind "a" from another seed and 2 of
  kind "b", cool stripes with rectangles, shuffled: a different
  distribution, yet close enough that precision and recall are neither 0
  nor 1), `images-c/` (3 PNGs, 48 wide x 40 high, kind "a": the
  non-square resize case); see inception_common.make_images;
* `features-{a,b,c}-{tf,clean,pytorch-fid}.npy` (pool3, float32 [N, 128])
  and `logits-{a,c}-{MODE}.npy` (logits_unbiased, float32 [N, 1008]) of
  the images as read back from the PNGs, in file-name order;
* `stats-a.npz`, `stats-b.npz`: mu and sigma of the pytorch-fid-mode
  features, written as pytorch-fid's `save_fid_stats` writes them
  (`np.savez_compressed(path, mu=mu, sigma=sigma)`, mu = np.mean of the
  float64 activations, sigma = np.cov(rowvar=False), both float64);
  `stats-a-stored.npz` is the same arrays through `np.savez` (entries
  stored, not deflated);
* `fid_numerics.npz`: pairs of 64-dimensional means and covariances (full
  rank, rank-deficient, six all-zero features, nearly singular), float64;
* `expected.json`: the metrics the libraries compute (torch-fidelity,
  pytorch-fid, clean-fid), the RNG draws they made, the FID-numerics values,
  file lists and versions. tools/README.md gives its schema.

Runs in float32 on one thread with fixed seeds; two runs give identical
files. `--check` regenerates everything in a temporary folder and compares
it byte for byte with DIR. Needs torch, numpy, scipy, Pillow, safetensors,
torch-fidelity, pytorch-fid and clean-fid.
"""

import argparse
import contextlib
import filecmp
import io
import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fid_inception as fi  # noqa: E402
import inception_common as ic  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "Tests/BigGANTests/Fixtures/inception"

WIDTH_DIVISOR = 16
FEATURE_COUNT = fi.FEATURES // WIDTH_DIVISOR
MODEL_SEED = 7
LOGIT_SCALE = 10.0
IS_SPLITS = 3
KID_SUBSETS, KID_SUBSET_SIZE = 10, 6
KID_DEGREE, KID_GAMMA, KID_COEF0 = 3, None, 1
PR_NEIGHBOURHOOD = 3
RNG_SEED = 2020
NUMERICS_DIM = 64
#: The sizes of the folders: (count, height, width).
SETS = {"a": (12, 32, 32), "b": (12, 32, 32), "c": (3, 40, 48)}
#: Sets whose logits are stored (all sets' pool3 features are).
LOGIT_SETS = ("a", "c")


# ------------------------------------------------------------- pieces --


def folder_images() -> dict[str, np.ndarray]:
    """The images of the three folders, uint8 [N, H, W, 3]."""
    a = ic.make_images("a", 12, 32, 32, seed=1)
    b = np.concatenate([ic.make_images("a", 10, 32, 32, seed=4),
                        ic.make_images("b", 2, 32, 32, seed=2)])
    b = b[np.random.default_rng(5).permutation(len(b))]
    c = ic.make_images("a", 3, 40, 48, seed=3)
    return {"a": a, "b": b, "c": c}


def calibration_images() -> torch.Tensor:
    """24 images, 12 of each kind, for the batch-norm statistics."""
    return ic.to_nchw(np.concatenate([ic.make_images("a", 12, 32, 32, seed=101),
                                      ic.make_images("b", 12, 32, 32, seed=102)]))


def quiet_call(fn, *args, **kwargs):
    """Calls fn with its stdout and warnings captured; returns (result, printed
    text, sorted names of the warning classes other than DeprecationWarning,
    which scipy >= 1.16 gives for sqrtm's disp argument in pytorch-fid's call)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    names = sorted({w.category.__name__ for w in caught
                    if not issubclass(w.category, DeprecationWarning)})
    return result, buffer.getvalue(), names


def save_npy(path: Path, array: np.ndarray) -> str:
    np.save(path, array)
    return path.name


# ------------------------------------------------------------- metrics --


def library_metrics(features: dict, logits: dict) -> dict:
    """torch-fidelity's, pytorch-fid's and clean-fid's metrics of a vs b."""
    from cleanfid.fid import fid_from_feats
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    fa, fb = torch.from_numpy(features["a"]["tf"]), torch.from_numpy(features["b"]["tf"])
    la = torch.from_numpy(logits["a"]["tf"])
    fidelity = {}
    fidelity.update(fid_statistics_to_metric(fid_features_to_statistics(fa),
                                             fid_features_to_statistics(fb), verbose=False))
    fidelity.update(isc_features_to_metric(la, splits=IS_SPLITS, shuffle=True,
                                           rng_seed=RNG_SEED))
    kid_args = dict(kid_subsets=KID_SUBSETS, kid_subset_size=KID_SUBSET_SIZE,
                    kid_kernel="poly", kid_kernel_poly_degree=KID_DEGREE,
                    kid_kernel_poly_gamma=KID_GAMMA, kid_kernel_poly_coef0=KID_COEF0,
                    rng_seed=RNG_SEED, verbose=False)
    fidelity.update(kid_features_to_metric(fa, fb, **kid_args))
    prc = prc_features_to_metric(fa, fb, prc_neighborhood=PR_NEIGHBOURHOOD,
                                 prc_batch_size=10000, save_cpu_ram=False, verbose=False)
    prc_low_ram = prc_features_to_metric(fa, fb, prc_neighborhood=PR_NEIGHBOURHOOD,
                                         prc_batch_size=10000, save_cpu_ram=True,
                                         verbose=False)
    if prc != prc_low_ram:
        raise RuntimeError(f"torch-fidelity's two PR paths differ: {prc} vs {prc_low_ram}")
    fidelity.update(prc)

    # The same KID draws on float64 features: torch-fidelity computes KID in
    # the features' dtype, float32 from its extractor.
    kid64 = kid_features_to_metric(fa.double(), fb.double(), **kid_args)

    def pfid_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        act = x.astype(np.float64)  # get_activations fills a float64 array
        return np.mean(act, axis=0), np.cov(act, rowvar=False)

    mu_a, sigma_a = pfid_stats(features["a"]["pytorch-fid"])
    mu_b, sigma_b = pfid_stats(features["b"]["pytorch-fid"])
    pfid, printed, _ = quiet_call(calculate_frechet_distance, mu_a, sigma_a, mu_b, sigma_b)
    clean, printed_clean, _ = quiet_call(fid_from_feats, features["a"]["clean"],
                                         features["b"]["clean"])
    return {
        "torch_fidelity": {k: float(v) for k, v in fidelity.items()},
        "torch_fidelity_kid_float64_features": {k: float(v) for k, v in kid64.items()},
        "pytorch_fid": {"frechet_inception_distance": float(pfid),
                        "offset_fallback": "singular product" in printed},
        "clean_fid": {"frechet_inception_distance": float(clean),
                      "offset_fallback": "singular product" in printed_clean},
    }


def rng_draws() -> dict:
    """torch-fidelity's NumPy draws, replayed: IS's shuffle and KID's subsets."""
    n_a, n_b = SETS["a"][0], SETS["b"][0]
    permutation = np.random.RandomState(RNG_SEED).permutation(n_a)
    rng = np.random.RandomState(RNG_SEED)
    subsets = []
    for _ in range(KID_SUBSETS):
        first = rng.choice(n_a, KID_SUBSET_SIZE, replace=False)
        second = rng.choice(n_b, KID_SUBSET_SIZE, replace=False)
        subsets.append({"a": first.tolist(), "b": second.tolist()})
    return {"is_permutation": permutation.tolist(), "kid_subsets": subsets}


def replay_metrics(features: dict, logits: dict, draws: dict) -> dict:
    """IS and KID recomputed from the recorded draws (float64), to show the
    draws are the ones torch-fidelity used."""
    la = logits["a"]["tf"].astype(np.float64)[draws["is_permutation"]]
    n = len(la)
    scores = []
    for i in range(IS_SPLITS):
        part = la[i * n // IS_SPLITS:(i + 1) * n // IS_SPLITS]
        log_p = part - part.max(1, keepdims=True)
        log_p = log_p - np.log(np.exp(log_p).sum(1, keepdims=True))
        p = np.exp(log_p)
        q = p.mean(0, keepdims=True)
        scores.append(np.exp((p * (log_p - np.log(q))).sum(1).mean()))
    fa = features["a"]["tf"].astype(np.float64)
    fb = features["b"]["tf"].astype(np.float64)
    d = fa.shape[1]
    mmds = []
    for s in draws["kid_subsets"]:
        x, y = fa[s["a"]], fb[s["b"]]
        m = len(x)
        kxx = (x @ x.T / d + KID_COEF0) ** KID_DEGREE
        kyy = (y @ y.T / d + KID_COEF0) ** KID_DEGREE
        kxy = (x @ y.T / d + KID_COEF0) ** KID_DEGREE
        mmds.append((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2 * kxy.sum() / (m * m))
    return {"inception_score_mean": float(np.mean(scores)),
            "inception_score_std": float(np.std(scores)),
            "kernel_inception_distance_mean": float(np.mean(mmds)),
            "kernel_inception_distance_std": float(np.std(mmds))}


# ------------------------------------------------------- FID numerics --


def numerics_cases() -> dict[str, tuple[np.ndarray, ...]]:
    """(mu1, sigma1, mu2, sigma2) float64 pairs of dimension 64."""
    rng = np.random.default_rng(64)
    d = NUMERICS_DIM

    def samples(n: int, decay: float) -> np.ndarray:
        mixing = rng.normal(size=(d, d)) * np.exp(-decay * np.arange(d))[None, :]
        return rng.normal(size=(n, d)) @ mixing.T + rng.normal(size=d)

    def stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x.mean(axis=0), np.cov(x, rowvar=False)

    cases = {}
    cases["full_rank"] = (*stats(samples(1000, 0.03)), *stats(samples(1000, 0.05)))
    cases["rank_deficient"] = (*stats(samples(40, 0.03)), *stats(samples(48, 0.05)))

    def nearly_singular(top: float, bottom: float) -> np.ndarray:
        q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        eig = np.logspace(np.log10(top), np.log10(bottom), d)
        s = (q * eig) @ q.T
        return (s + s.T) / 2

    # Dead features: ReLU outputs that are 0 for every image give zero rows
    # and columns (exactly singular, with a shared null space).
    x, y = samples(1000, 0.03), samples(1000, 0.05)
    x[:, :6] = 0
    y[:, :6] = 0
    cases["zero_features"] = (*stats(x), *stats(y))
    cases["nearly_singular"] = (rng.normal(size=d) * 0.1, nearly_singular(1.0, 1e-14),
                                rng.normal(size=d) * 0.1, nearly_singular(2.0, 1e-15))
    return cases


def stable_fid(mu1, sigma1, mu2, sigma2) -> float:
    """FID with tr sqrt(S1 S2) = sum sqrt(eig(sqrt(S1) S2 sqrt(S1))), symmetric
    eigen-decompositions with negative rounding clipped to 0 (float64)."""
    w, v = np.linalg.eigh(sigma1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root @ sigma2 @ root)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2)
                 - 2 * np.sqrt(np.clip(inner, 0, None)).sum())


def numerics_values(cases: dict) -> dict:
    """pytorch-fid's FID of each pair, and two other formulas for comparison."""
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torch_fidelity.metric_fid import fid_statistics_to_metric
    out = {}
    for name, (mu1, s1, mu2, s2) in cases.items():
        fid, printed, warned = quiet_call(calculate_frechet_distance, mu1, s1, mu2, s2)
        fidelity = fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2},
                                            verbose=False)["frechet_inception_distance"]
        out[name] = {
            "fid": float(fid),
            "offset_fallback": "singular product" in printed,
            "scipy_warnings": warned,
            "rank1": int(np.linalg.matrix_rank(s1)), "rank2": int(np.linalg.matrix_rank(s2)),
            "torch_fidelity_fid": float(fidelity),
            "symmetric_eigen_fid": stable_fid(mu1, s1, mu2, s2),
        }
    return out


# ---------------------------------------------------------------- main --


def versions() -> dict[str, str]:
    import cleanfid
    import PIL
    import safetensors
    import scipy
    import torch_fidelity
    from importlib.metadata import version
    return {"torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "pillow": PIL.__version__, "safetensors": safetensors.__version__,
            "torch_fidelity": torch_fidelity.__version__,
            "pytorch_fid": version("pytorch-fid"),
            "clean_fid": getattr(cleanfid, "__version__", None) or version("clean-fid")}


def generate(out: Path) -> dict:
    """Writes the whole fixture into the empty folder `out`; returns expected.json."""
    torch.manual_seed(0)
    model = fi.random_fid_inception(WIDTH_DIVISOR, MODEL_SEED, calibration_images(),
                                    logit_scale=LOGIT_SCALE)
    with tempfile.TemporaryDirectory() as tmp:
        pth = Path(tmp) / "inception-d16.pth"
        torch.save(dict(model.state_dict()), pth)
        ic.run_converter(pth, out / "inception-d16.safetensors", WIDTH_DIVISOR)
    tensors, meta = ic.load_safetensors(out / "inception-d16.safetensors")
    model = fi.load_state(fi.FIDInceptionV3(WIDTH_DIVISOR), tensors)

    images = folder_images()
    doc_images, features, logits, reports = {}, {}, {}, {}
    for name, array in images.items():
        folder = out / f"images-{name}"
        paths = ic.write_pngs(folder, array)
        read = ic.read_pngs(folder)
        if not torch.equal(read, ic.to_nchw(array)):
            raise RuntimeError(f"{folder}: PNGs do not read back as written")
        count, height, width = SETS[name]
        if tuple(read.shape) != (count, 3, height, width):
            raise RuntimeError(f"{folder}: shape {list(read.shape)}")
        doc_images[name] = {"folder": folder.name, "count": count, "height": height,
                            "width": width, "files": [p.name for p in paths]}
        features[name], logits[name], reports[name] = {}, {}, {}
        for mode in fi.RESIZE_MODES:
            pool3, logit = model(read, mode)
            features[name][mode] = pool3.numpy()
            logits[name][mode] = logit.numpy()
            reports[name][mode] = fi.activation_report(model, read, mode)

    # Activations must neither vanish nor explode.
    for name, by_mode in reports.items():
        for mode, r in by_mode.items():
            if not (0.05 < r["layer_rms_min"] and r["layer_rms_max"] < 20
                    and 0.1 < r["pool3_max"] < 10 and r["logit_std_per_image"] > 1):
                raise RuntimeError(f"activations out of range for {name}/{mode}: {r}")

    arrays: dict = {}
    for name in SETS:
        arrays[name] = {}
        for mode in fi.RESIZE_MODES:
            entry = {"pool3": save_npy(out / f"features-{name}-{mode}.npy",
                                       features[name][mode])}
            if name in LOGIT_SETS:
                entry["logits_unbiased"] = save_npy(out / f"logits-{name}-{mode}.npy",
                                                    logits[name][mode])
            arrays[name][mode] = entry

    for name in ("a", "b"):
        act = features[name]["pytorch-fid"].astype(np.float64)
        mu, sigma = np.mean(act, axis=0), np.cov(act, rowvar=False)
        np.savez_compressed(out / f"stats-{name}.npz", mu=mu, sigma=sigma)
        if name == "a":
            np.savez(out / "stats-a-stored.npz", mu=mu, sigma=sigma)

    cases = numerics_cases()
    np.savez(out / "fid_numerics.npz", **{f"{case}_{key}": value
                                          for case, values in cases.items()
                                          for key, value in zip(("mu1", "sigma1", "mu2",
                                                                 "sigma2"), values)})

    metrics = library_metrics(features, logits)
    draws = rng_draws()
    replay = replay_metrics(features, logits, draws)
    for key, value in replay.items():
        reference = metrics["torch_fidelity"][key]
        if abs(value - reference) > 1e-5 * max(1.0, abs(reference)):
            raise RuntimeError(f"replaying torch-fidelity's draws gives {key} {value}, "
                               f"it computed {reference}")

    doc = {
        "format": "biggan-fast inception fixture",
        "version": 1,
        "generated_by": "tools/make_eval_fixture.py",
        "library_versions": versions(),
        "model": {
            "file": "inception-d16.safetensors", "metadata": dict(sorted(meta.items())),
            "width_divisor": WIDTH_DIVISOR, "features": FEATURE_COUNT, "classes": fi.CLASSES,
            "tensors": len(tensors), "parameters": sum(t.numel() for t in tensors.values()),
            "seed": MODEL_SEED, "logit_scale": LOGIT_SCALE,
        },
        "images": doc_images,
        "resize_modes": list(fi.RESIZE_MODES),
        "arrays": arrays,
        "activation_ranges": reports,
        "stats": {
            "stats-a.npz": {"set": "a", "resize": "pytorch-fid", "writer": "np.savez_compressed"},
            "stats-a-stored.npz": {"set": "a", "resize": "pytorch-fid", "writer": "np.savez"},
            "stats-b.npz": {"set": "b", "resize": "pytorch-fid", "writer": "np.savez_compressed"},
            "frechet_inception_distance_a_b": metrics["pytorch_fid"]["frechet_inception_distance"],
        },
        "metrics": {
            "generated": "a", "reference": "b",
            "settings": {
                "fid_features": "tf", "is_logits": "tf", "kid_features": "tf",
                "pr_features": "tf", "is_splits": IS_SPLITS, "is_shuffle": True,
                "kid_subsets": KID_SUBSETS, "kid_subset_size": KID_SUBSET_SIZE,
                "kid_degree": KID_DEGREE, "kid_gamma": KID_GAMMA, "kid_coef0": KID_COEF0,
                "pr_neighbourhood": PR_NEIGHBOURHOOD, "rng_seed": RNG_SEED,
                "pytorch_fid_features": "pytorch-fid", "clean_fid_features": "clean",
            },
            **metrics,
            "float64_replay": replay,
            "rng": draws,
        },
        "fid_numerics": {"file": "fid_numerics.npz", "dimension": NUMERICS_DIM,
                         "cases": numerics_values(cases)},
    }
    (out / "expected.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return doc



def compare_folders(new: Path, old: Path) -> list[str]:
    """Files that differ between the two fixture folders (recursively)."""
    problems = []
    new_files = sorted(p.relative_to(new) for p in new.rglob("*") if p.is_file())
    old_files = sorted(p.relative_to(old) for p in old.rglob("*") if p.is_file())
    for f in sorted(set(new_files) ^ set(old_files)):
        problems.append(f"{f}: only in {'the new run' if f in new_files else old}")
    for f in sorted(set(new_files) & set(old_files)):
        if not filecmp.cmp(new / f, old / f, shallow=False):
            problems.append(f"{f}: differs")
    return problems


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="fixture folder (default: %(default)s)")
    p.add_argument("--check", action="store_true",
                   help="regenerate in a temporary folder and compare with --out")
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            doc = generate(Path(tmp))
            problems = compare_folders(Path(tmp), args.out)
        for line in problems:
            print(line)
        print("fixture reproduced bit for bit" if not problems else
              f"{len(problems)} file(s) differ")
        return 1 if problems else 0
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    doc = generate(args.out)
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    m = doc["metrics"]
    print(f"wrote {args.out}: {total:,} bytes")
    print(f"torch-fidelity: {json.dumps(m['torch_fidelity'])}")
    print(f"pytorch-fid FID {m['pytorch_fid']['frechet_inception_distance']:.6f}, "
          f"clean-fid FID {m['clean_fid']['frechet_inception_distance']:.6f}")
    for case, v in doc["fid_numerics"]["cases"].items():
        print(f"fid_numerics {case}: {json.dumps(v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
