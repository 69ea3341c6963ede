#!/usr/bin/env python3
"""FID Inception-v3 parity: ours against torch-fidelity, clean-fid and pytorch-fid.

    inception_parity.py --self-check                 # no binary needed
    inception_parity.py --binary .build/release/biggan-fast [--quick]

Both modes build the full-width network (width divisor 1) with seeded random
weights whose activations stay O(1) (tools/fid_inception.py
`random_fid_inception`), load them into torch-fidelity's and pytorch-fid's
own model classes and save those classes' state dicts as .pth files, the
layout of the published weights (the same 472 names, plus
num_batches_tracked). Every .pth goes through `convert_inception.py`.

`--self-check` proves the Python side:

1. convert_inception.py's table of names and shapes equals
   FIDInceptionV3(d)'s state dict for d = 1, 2, 4, 8, 16, and the names of
   torch-fidelity's FeatureExtractorInceptionV3 and of pytorch-fid's
   fid_inception_v3() (without num_batches_tracked) in the same order;
2. the converter takes torch-fidelity's file, pytorch-fid's file, a plain
   472-tensor dict and one with a `module.` prefix and torchvision's
   AuxLogits head, and writes the 472 tensors bit for bit with the right
   metadata; a missing key, an unexpected key, a wrong shape and a zero
   variance each give one line and exit status 1;
3. fid_inception.py, loaded from the converted file, gives torch-fidelity's
   extractor outputs (pool3 and logits_unbiased) in `tf` mode, pytorch-fid's
   InceptionV3 pool3 in `pytorch-fid` mode, and in `clean` mode clean-fid's
   resize (bit for bit) followed by torch-fidelity's network, on images of
   32 x 32, 48 x 40 (width x height), 64, 128, 256 and 299 px.

`--binary PATH` checks our `biggan-fast stats` and `eval` end to end:

1. features: PNG folders of kind-"a" images (tools/inception_common.py) at
   each --sizes entry; `biggan-fast stats --data DIR --inception FILE --out
   X.npz --resize MODE --logits` for every mode, against torch-fidelity's
   extractor (tf), clean-fid's resize + torch-fidelity's network (clean) and
   pytorch-fid's get_activations on the files (pytorch-fid; its logits are
   pytorch-fid's pool3 @ fc.weight^T); features, logits, mu and sigma
   must agree to 1e-4 relative (max abs difference / max abs value);
2. metrics at 32 px: folder A (kind "a") against folder B (80% kind "a"
   from other seeds, 20% kind "b"):
   * end to end: torch-fidelity's `calculate_metrics(input1=A, input2=B,
     isc, fid, kid, prc, feature_extractor='inception-v3-compat')` (named,
     because torch-fidelity computes precision and recall on VGG16 features
     by default) against `biggan-fast stats --data B` then `eval
     --images A --ref B.npz --metrics fid,is,kid,pr --json`;
   * the metric code alone: torch-fidelity's fid_statistics_to_metric,
     isc_features_to_metric, kid_features_to_metric and
     prc_features_to_metric applied to our own features and logits (from
     `stats --data A --logits` and B.npz) against the same `eval` output;
   * pytorch-fid's `calculate_fid_given_paths([A, B])` against `eval
     --resize pytorch-fid`, and pytorch-fid's calculate_frechet_distance
     on our two stats files against `eval --stats A.npz --ref B.npz`;
   metrics must agree to 1e-3 relative; end-to-end precision and recall may
   also differ by one image (1/N), because a feature difference of 1e-6
   can move a sample across a k-NN radius.

Default: 1000 images per metric set with torch-fidelity's defaults (10 IS
splits, 100 KID subsets of 1000); `--quick` takes 200 images and KID subsets
of 100. On 2 cores the PyTorch side runs about 4.5 images/s at full width,
so the default run takes about 20 minutes plus our binary's time.
It prints a table and exits with status 1 if any row fails.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

os.environ.setdefault("TQDM_DISABLE", "1")  # pytorch-fid's progress bars
# torch-fidelity's loader asks for 4 workers on 2 cores; harmless here.
warnings.filterwarnings("ignore", message="This DataLoader will create")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import convert_inception as ci  # noqa: E402
import fid_inception as fi  # noqa: E402
import inception_common as ic  # noqa: E402

MODEL_SEED = 11
FEATURE_TOLERANCE = 1e-4
METRIC_TOLERANCE = 1e-3
#: The self-check's bar: the same PyTorch operations in the same order.
SELF_CHECK_TOLERANCE = 1e-6
BATCH = 50


# ----------------------------------------------------------------- table --


@dataclass
class Row:
    """One compared quantity."""

    check: str
    what: str
    ours: str
    reference: str
    error: float
    tolerance: float
    passed: bool


class Report:
    """Collects rows, prints them as they come and as a table at the end."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, check: str, what: str, ours, reference, error: float,
            tolerance: float, passed: Optional[bool] = None) -> None:
        ok = bool(error <= tolerance) if passed is None else passed
        row = Row(check, what, fmt(ours), fmt(reference), error, tolerance, ok)
        self.rows.append(row)
        print(f"  {'ok  ' if ok else 'FAIL'} {check}: {what}: error {error:.2e}", flush=True)

    def require(self, check: str, what: str, ok: bool, detail: str = "") -> None:
        """A yes/no check (error 0 when it holds, 1 when not); `detail` is
        printed with the progress line."""
        if detail:
            print(f"       {detail}")
        self.add(check, what, "yes" if ok else "no", "yes", 0.0 if ok else 1.0, 0.0, ok)

    @property
    def failures(self) -> int:
        return sum(not r.passed for r in self.rows)

    def print_table(self) -> None:
        header = ["check", "quantity", "ours", "reference", "error", "tolerance", "result"]
        cells = [[r.check, r.what, r.ours, r.reference, f"{r.error:.2e}",
                  f"{r.tolerance:.0e}", "ok" if r.passed else "FAIL"] for r in self.rows]
        widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
        for line in [header, ["-" * w for w in widths], *cells]:
            print("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(line, widths))))
        print(f"{len(self.rows) - self.failures} passed, {self.failures} failed")


def fmt(value) -> str:
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, (float, np.floating)):
        return f"{value:.7g}"
    return str(value)


def scalar_error(ours: float, reference: float) -> float:
    """|ours - reference| / |reference| (absolute when the reference is 0)."""
    if not np.isfinite(ours):
        return float("inf")
    return abs(ours - reference) / abs(reference) if reference != 0 else abs(ours)


# ---------------------------------------------------------------- models --


def calibration_images() -> torch.Tensor:
    return ic.to_nchw(np.concatenate([ic.make_images("a", 8, 32, 32, seed=201),
                                      ic.make_images("b", 8, 32, 32, seed=202)]))


@dataclass
class Weights:
    """The random full-width network in every form the checks need."""

    state: dict[str, torch.Tensor]
    fidelity_pth: Path
    pfid_pth: Path
    safetensors: Path


def make_weights(work: Path) -> Weights:
    """Random weights, saved from both libraries' classes, converted."""
    t = time.time()
    model = fi.random_fid_inception(1, MODEL_SEED, calibration_images())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    libs = ic.library_state_dicts(state)
    fidelity_pth, pfid_pth = work / "torch-fidelity.pth", work / "pytorch-fid.pth"
    torch.save(libs["torch-fidelity"], fidelity_pth)
    torch.save(libs["pytorch-fid"], pfid_pth)
    out = work / "inception.safetensors"
    print(f"  {ic.run_converter(fidelity_pth, out)}")
    print(f"random full-width weights ready ({time.time() - t:.0f} s)", flush=True)
    return Weights(state, fidelity_pth, pfid_pth, out)


# ------------------------------------------------------------ references --


def batches(n: int) -> Iterator[slice]:
    for start in range(0, n, BATCH):
        yield slice(start, min(n, start + BATCH))


@contextlib.contextmanager
def fidelity_input(pre_resized: torch.Tensor) -> Iterator[None]:
    """Within the block torch-fidelity's extractor skips its TF resize and
    takes `pre_resized` (float [N, 3, 299, 299], 0..255) instead."""
    import torch_fidelity.feature_extractor_inceptionv3 as tfe
    saved = tfe.interpolate_bilinear_2d_like_tensorflow1x
    tfe.interpolate_bilinear_2d_like_tensorflow1x = \
        lambda x, size, align_corners: pre_resized.to(x.dtype)
    try:
        yield
    finally:
        tfe.interpolate_bilinear_2d_like_tensorflow1x = saved


def clean_resize_reference(images: torch.Tensor) -> torch.Tensor:
    """clean-fid's resize of uint8 NCHW images, float32 NCHW 0..255."""
    from cleanfid.resize import build_resizer
    resize = build_resizer("clean")  # make_resizer("PIL", False, "bicubic", (299, 299))
    hwc = images.permute(0, 2, 3, 1).numpy()
    # Contiguous NCHW, as clean-fid's torch.tensor(x.transpose(2, 0, 1)) copy is:
    # a channels-last tensor would take other convolution kernels in PyTorch,
    # whose rounding differs by about 1e-5.
    return torch.from_numpy(np.ascontiguousarray(
        np.stack([resize(img).transpose(2, 0, 1) for img in hwc])))


class References:
    """The libraries' features and logits of uint8 NCHW images."""

    def __init__(self, weights: Weights):
        self.extractor = ic.torch_fidelity_extractor(weights.fidelity_pth)
        self.pfid = ic.pytorch_fid_model(torch.load(weights.pfid_pth, weights_only=True))
        self.fc = weights.state["fc.weight"].double()

    def tf(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """torch-fidelity's extractor: (pool3, logits_unbiased)."""
        f, l_ = [], []
        for s in batches(len(images)):
            a, b = self.extractor(images[s])
            f.append(a)
            l_.append(b)
        return torch.cat(f).numpy(), torch.cat(l_).numpy()

    def clean(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """clean-fid's resize, then torch-fidelity's network."""
        f, l_ = [], []
        for s in batches(len(images)):
            with fidelity_input(clean_resize_reference(images[s])):
                a, b = self.extractor(images[s])
            f.append(a)
            l_.append(b)
        return torch.cat(f).numpy(), torch.cat(l_).numpy()

    def pytorch_fid_tensors(self, images: torch.Tensor) -> np.ndarray:
        """pytorch-fid's InceptionV3 on ToTensor-scaled images: pool3."""
        out = []
        with torch.no_grad():
            for s in batches(len(images)):
                out.append(self.pfid(images[s].float() / 255)[0].flatten(1))
        return torch.cat(out).numpy()

    def pytorch_fid_files(self, folder: Path) -> tuple[np.ndarray, np.ndarray]:
        """pytorch-fid's get_activations on the folder's PNG files (its own
        loading and batching): pool3 (float64, as it returns them) and
        pool3 @ fc.weight^T."""
        from pytorch_fid.fid_score import get_activations
        files = sorted(folder.glob("*.png"))
        act = get_activations(files, self.pfid, batch_size=min(BATCH, len(files)), dims=2048,
                              device="cpu", num_workers=0)
        return act, (torch.from_numpy(act) @ self.fc.T).numpy()


# ------------------------------------------------------------ self-check --


def check_tables(report: Report) -> None:
    """The converter's table against our module and the libraries' names."""
    for d in (1, 2, 4, 8, 16):
        ours = {k: tuple(v.shape) for k, v in fi.FIDInceptionV3(d).state_dict().items()}
        table = ci.expected_shapes(d)
        report.require("table", f"convert_inception table = FIDInceptionV3({d})",
                       list(ours.items()) == list(table.items()), f"{len(table)} tensors")
    state = fi.FIDInceptionV3(1).state_dict()
    for name, lib in ic.library_state_dicts(state).items():
        names = [k for k in lib if not k.endswith("num_batches_tracked")]
        extra = sorted({k.rsplit(".", 1)[-1] for k in lib if k not in state})
        report.require("table", f"{name} state-dict names = table (+ {', '.join(extra)})",
                       names == list(ci.expected_shapes(1)), f"{len(lib)} entries")


def run_converter_raw(source: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ic.CONVERTER), str(source), "--out", str(out)],
                          capture_output=True, text=True, check=False)


def check_converter(report: Report, weights: Weights, work: Path) -> None:
    """The converter on both libraries' files and on variants; error lines."""
    import torchvision
    aux = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False,
                                          num_classes=1008)
    aux_state = {k: v for k, v in aux.state_dict().items() if k.startswith("AuxLogits.")}
    variants = {
        "torch-fidelity.pth": weights.fidelity_pth,
        "pytorch-fid.pth": weights.pfid_pth,
    }
    plain = work / "plain.pth"
    torch.save({k: v.clone() for k, v in weights.state.items()}, plain)
    variants["plain 472 tensors"] = plain
    prefixed = work / "prefixed.pth"
    torch.save({f"module.{k}": v for k, v in {**torch.load(weights.pfid_pth, weights_only=True),
                                               **aux_state}.items()}, prefixed)
    variants["module. prefix + AuxLogits"] = prefixed
    for what, path in variants.items():
        out = work / f"converted-{path.stem}.safetensors"
        proc = run_converter_raw(path, out)
        if proc.returncode != 0:
            report.require("converter", what, False, proc.stderr.strip())
            continue
        tensors, meta = ic.load_safetensors(out)
        same = (list(tensors) == sorted(weights.state) and all(
            torch.equal(tensors[k], weights.state[k]) for k in weights.state))
        expected_meta = {"format": "fid-inception-v3", "width_divisor": "1", "source": path.name}
        report.require("converter", f"{what}: 472 tensors bit for bit, metadata",
                       same and meta == expected_meta and all(
                           t.dtype == torch.float32 for t in tensors.values()),
                       proc.stdout.strip().split(": ", 1)[-1])

    base = {k: v.clone() for k, v in weights.state.items()}
    bad_cases = {
        "missing key": ({k: v for k, v in base.items() if k != "Mixed_6c.branch7x7_2.bn.bias"},
                        "missing key Mixed_6c.branch7x7_2.bn.bias"),
        "unexpected key": ({**base, "Mixed_5b.extra.weight": torch.zeros(1)},
                           "unexpected key Mixed_5b.extra.weight"),
        "wrong shape": ({**base, "fc.weight": torch.zeros(1000, 2048)},
                        "fc.weight has shape [1000, 2048], expected [1008, 2048]"),
        "zero variance": ({**base, "Conv2d_1a_3x3.bn.running_var": torch.zeros(32)},
                          "Conv2d_1a_3x3.bn.running_var has a value <= 0"),
    }
    for what, (state, needle) in bad_cases.items():
        path = work / f"bad-{what.replace(' ', '-')}.pth"
        torch.save(state, path)
        proc = run_converter_raw(path, work / "bad.safetensors")
        lines = proc.stderr.strip().splitlines()
        ok = proc.returncode == 1 and len(lines) == 1 and needle in lines[0]
        report.require("converter", f"{what}: one line, exit 1", ok,
                       lines[0].split(": ", 2)[-1] if lines else "(nothing)")


def self_check_images() -> dict[str, torch.Tensor]:
    """Two images (one of each kind) per size; keys 'WxH'."""
    out = {}
    for i, (w, h) in enumerate(((32, 32), (48, 40), (64, 64), (128, 128), (256, 256),
                                (299, 299))):
        out[f"{w}x{h}"] = ic.to_nchw(np.concatenate([
            ic.make_images("a", 1, h, w, seed=300 + i), ic.make_images("b", 1, h, w, seed=400 + i)]))
    return out


def check_equivalence(report: Report, weights: Weights, refs: References) -> None:
    """fid_inception.py (from the converted file) against the libraries."""
    tensors, _ = ic.load_safetensors(weights.safetensors)
    model = fi.load_state(fi.FIDInceptionV3(1), tensors)
    tol = SELF_CHECK_TOLERANCE
    for size, images in self_check_images().items():
        pool3, logits = (t.numpy() for t in model(images, "tf"))
        ref_pool3, ref_logits = refs.tf(images)
        report.add("tf", f"{size} pool3 vs torch-fidelity", pool3.max(), ref_pool3.max(),
                   ic.relative_error(pool3, ref_pool3), tol)
        report.add("tf", f"{size} logits_unbiased vs torch-fidelity", logits.max(),
                   ref_logits.max(), ic.relative_error(logits, ref_logits), tol)

        ours_resized = fi.resize_clean(images)
        ref_resized = clean_resize_reference(images)
        report.add("clean", f"{size} resize vs clean-fid's make_resizer", ours_resized.max(),
                   ref_resized.max(), float((ours_resized - ref_resized).abs().max()), 0.0)
        pool3, logits = (t.numpy() for t in model(images, "clean"))
        ref_pool3, ref_logits = refs.clean(images)
        report.add("clean", f"{size} pool3 vs clean-fid resize + torch-fidelity net",
                   pool3.max(), ref_pool3.max(), ic.relative_error(pool3, ref_pool3), tol)
        report.add("clean", f"{size} logits vs clean-fid resize + torch-fidelity net",
                   logits.max(), ref_logits.max(), ic.relative_error(logits, ref_logits), tol)

        pool3, _ = model(images, "pytorch-fid")
        ref_pool3 = refs.pytorch_fid_tensors(images)
        report.add("pytorch-fid", f"{size} pool3 vs pytorch-fid InceptionV3",
                   pool3.max().item(), ref_pool3.max(),
                   ic.relative_error(pool3.numpy(), ref_pool3), tol)


def self_check(work: Path) -> Report:
    report = Report()
    print("tables", flush=True)
    check_tables(report)
    weights = make_weights(work)
    print("converter", flush=True)
    check_converter(report, weights, work)
    print("equivalence at width divisor 1", flush=True)
    check_equivalence(report, weights, References(weights))
    return report


# ---------------------------------------------------------------- binary --


class Binary:
    """Runs our biggan-fast commands."""

    def __init__(self, path: Path, inception: Path, threads: int):
        self.path, self.inception, self.threads = path, inception, threads

    def run(self, args: list[str]) -> str:
        cmd = [str(self.path), *args]
        t = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` exited with {proc.returncode}: "
                               f"{proc.stderr.strip() or proc.stdout.strip()}")
        print(f"  ran {' '.join(args[:3])} ... ({time.time() - t:.0f} s)", flush=True)
        return proc.stdout

    def stats(self, data: Path, out: Path, resize: str, logits: bool = False) -> dict:
        self.run(["stats", "--data", str(data), "--inception", str(self.inception),
                  "--out", str(out), "--resize", resize, "--inception-batch", str(BATCH),
                  "--threads", str(self.threads), *(["--logits"] if logits else [])])
        with np.load(out) as f:
            return {k: f[k] for k in f.files}

    def eval(self, args: list[str]) -> dict:
        out = self.run(["eval", *args, "--json"])
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            lines = [line for line in out.splitlines() if line.strip().startswith("{")]
            if not lines:
                raise RuntimeError(f"biggan-fast eval printed no JSON: {out[:200]!r}") from None
            return json.loads(lines[-1])


def parse_size(text: str) -> tuple[int, int]:
    """'64' -> (64, 64); '48x40' -> (width 48, height 40)."""
    w, _, h = text.partition("x")
    return int(w), int(h or w)


def check_features(report: Report, binary: Binary, refs: References, work: Path,
                   sizes: list[str], count: int) -> None:
    for i, size in enumerate(sizes):
        w, h = parse_size(size)
        folder = work / f"features-{w}x{h}"
        ic.write_pngs(folder, ic.make_images("a", count, h, w, seed=500 + i))
        images = ic.read_pngs(folder)
        expected = {"tf": refs.tf(images), "clean": refs.clean(images),
                    "pytorch-fid": refs.pytorch_fid_files(folder)}
        for mode, (ref_f, ref_l) in expected.items():
            ours = binary.stats(folder, work / f"ours-{w}x{h}-{mode}.npz", mode, logits=True)
            label = f"{w}x{h} x{count}"
            for key, ref in (("features", ref_f), ("logits_unbiased", ref_l)):
                if key not in ours:
                    report.require(mode, f"{label} {key} in our npz", False, "missing")
                    continue
                report.add(mode, f"{label} {key}", float(np.abs(ours[key]).max()),
                           float(np.abs(ref).max()), ic.relative_error(ours[key], ref),
                           FEATURE_TOLERANCE)
            ref64 = ref_f.astype(np.float64)
            for key, ref in (("mu", ref64.mean(axis=0)), ("sigma", np.cov(ref64, rowvar=False))):
                if key in ours:
                    report.add(mode, f"{label} {key}", float(np.abs(ours[key]).max()),
                               float(np.abs(ref).max()), ic.relative_error(ours[key], ref),
                               FEATURE_TOLERANCE)
                else:
                    report.require(mode, f"{label} {key} in our npz", False, "missing")


def metric_sets(work: Path, count: int) -> tuple[Path, Path]:
    """Folders A (kind a) and B (80% kind a from other seeds, 20% kind b), 32 px."""
    a = work / "metrics-A"
    b = work / "metrics-B"
    ic.write_pngs(a, ic.make_images("a", count, 32, 32, seed=600))
    n_b = count // 5
    mixed = np.concatenate([ic.make_images("a", count - n_b, 32, 32, seed=601),
                            ic.make_images("b", n_b, 32, 32, seed=602)])
    ic.write_pngs(b, mixed[np.random.default_rng(603).permutation(count)])
    return a, b


KEYS = ("frechet_inception_distance", "inception_score_mean", "inception_score_std",
        "kernel_inception_distance_mean", "kernel_inception_distance_std", "precision",
        "recall")


def compare_metrics(report: Report, check: str, ours: dict, reference: dict, count: int,
                    one_image_slack: bool) -> None:
    for key in KEYS:
        if key not in reference:
            continue
        if key not in ours:
            report.require(check, f"{key} in our JSON", False, "missing")
            continue
        error = scalar_error(float(ours[key]), float(reference[key]))
        tolerance = METRIC_TOLERANCE
        passed = None
        if one_image_slack and key in ("precision", "recall"):
            passed = error <= tolerance or abs(ours[key] - reference[key]) <= 1 / count + 1e-9
        report.add(check, key, float(ours[key]), float(reference[key]), error, tolerance, passed)


def check_metrics(report: Report, binary: Binary, weights: Weights, work: Path,
                  count: int, subsets: int, subset_size: int, splits: int) -> None:
    import torch_fidelity
    from pytorch_fid.fid_score import calculate_fid_given_paths, calculate_frechet_distance
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    a, b = metric_sets(work, count)
    settings = ["--is-splits", str(splits), "--kid-subsets", str(subsets),
                "--kid-subset-size", str(subset_size), "--pr-neighbours", "3"]
    t = time.time()
    fidelity = torch_fidelity.calculate_metrics(
        # The extractor named: torch-fidelity's default for prc is VGG16 (fc2).
        input1=str(a), input2=str(b), feature_extractor="inception-v3-compat",
        cuda=False, batch_size=BATCH, isc=True, fid=True,
        kid=True, prc=True, feature_extractor_weights_path=str(weights.fidelity_pth),
        isc_splits=splits, kid_subsets=subsets, kid_subset_size=subset_size,
        prc_neighborhood=3, verbose=False, cache=False, samples_find_deep=False)
    print(f"  torch-fidelity calculate_metrics ({time.time() - t:.0f} s)", flush=True)

    ours_b = binary.stats(b, work / "B-tf.npz", "tf")
    ours_a = binary.stats(a, work / "A-tf.npz", "tf", logits=True)
    ours = binary.eval(["--images", str(a), "--inception", str(binary.inception), "--ref",
                        str(work / "B-tf.npz"), "--resize", "tf", "--metrics", "fid,is,kid,pr",
                        *settings])
    if "count" in ours:
        report.require("eval tf", "count = images in A", int(ours["count"]) == count,
                       str(ours["count"]))
    compare_metrics(report, "end to end vs torch-fidelity", ours, fidelity, count, True)

    fa, fb = torch.from_numpy(ours_a["features"]), torch.from_numpy(ours_b["features"])
    on_ours = {}
    on_ours.update(fid_statistics_to_metric(fid_features_to_statistics(fa),
                                            fid_features_to_statistics(fb), verbose=False))
    on_ours.update(isc_features_to_metric(torch.from_numpy(ours_a["logits_unbiased"]),
                                          splits=splits, shuffle=True, rng_seed=2020))
    on_ours.update(kid_features_to_metric(fa, fb, kid_subsets=subsets,
                                          kid_subset_size=subset_size, rng_seed=2020,
                                          verbose=False))
    on_ours.update(prc_features_to_metric(fa, fb, prc_neighborhood=3, prc_batch_size=10000,
                                          save_cpu_ram=False, verbose=False))
    compare_metrics(report, "torch-fidelity functions on our features", ours, on_ours, count,
                    False)

    with ic.pytorch_fid_weights(weights.state):
        t = time.time()
        pfid = calculate_fid_given_paths([str(a), str(b)], batch_size=BATCH, device="cpu",
                                         dims=2048, num_workers=0)
        print(f"  pytorch-fid calculate_fid_given_paths ({time.time() - t:.0f} s)", flush=True)
    binary.stats(b, work / "B-pytorch-fid.npz", "pytorch-fid")
    ours_pfid = binary.eval(["--images", str(a), "--inception", str(binary.inception), "--ref",
                             str(work / "B-pytorch-fid.npz"), "--resize", "pytorch-fid",
                             "--metrics", "fid"])
    compare_metrics(report, "end to end vs pytorch-fid", ours_pfid,
                    {"frechet_inception_distance": float(pfid)}, count, False)

    stats_only = binary.eval(["--stats", str(work / "A-tf.npz"), "--ref",
                              str(work / "B-tf.npz")])
    with np.load(work / "A-tf.npz") as fa_, np.load(work / "B-tf.npz") as fb_:
        reference = calculate_frechet_distance(fa_["mu"], fa_["sigma"], fb_["mu"], fb_["sigma"])
    compare_metrics(report, "eval --stats vs pytorch-fid formula", stats_only,
                    {"frechet_inception_distance": float(reference)}, count, False)


def binary_check(args: argparse.Namespace, work: Path) -> Report:
    report = Report()
    weights = make_weights(work)
    refs = References(weights)
    binary = Binary(args.binary, weights.safetensors, args.threads)
    print("features", flush=True)
    check_features(report, binary, refs, work, args.sizes, args.feature_count)
    print("metrics", flush=True)
    check_metrics(report, binary, weights, work, args.metric_count, args.kid_subsets,
                  args.kid_subset_size, args.is_splits)
    return report


# ------------------------------------------------------------------ main --


def main() -> int:
    p = argparse.ArgumentParser(
        description="FID Inception-v3 parity of ours with torch-fidelity, clean-fid and "
                    "pytorch-fid (see the module docstring).")
    p.add_argument("--self-check", action="store_true",
                   help="check the Python side (tables, converter, fid_inception.py against "
                        "the libraries); no binary needed")
    p.add_argument("--binary", type=Path, help="biggan-fast binary to check")
    p.add_argument("--sizes", nargs="+", default=["32", "64", "128", "256", "48x40"],
                   help="image sizes of the feature checks, N or WxH (default: %(default)s)")
    p.add_argument("--feature-count", type=int, default=20,
                   help="images per feature-check size (default: %(default)s)")
    p.add_argument("--metric-count", type=int, help="images per metric set (default: 1000, "
                   "--quick: 200)")
    p.add_argument("--kid-subsets", type=int, default=100, help="(default: %(default)s)")
    p.add_argument("--kid-subset-size", type=int,
                   help="(default: 1000, --quick: 100; at most --metric-count)")
    p.add_argument("--is-splits", type=int, default=10, help="(default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="200 images, KID subsets of 100")
    p.add_argument("--threads", type=int, default=2,
                   help="threads for both sides (default: %(default)s)")
    p.add_argument("--workdir", type=Path,
                   help="keep the weights, images and npz files here (default: a temporary "
                        "folder)")
    args = p.parse_args()
    if not args.self_check and args.binary is None:
        p.error("give --self-check, --binary PATH, or both")
    if args.binary is not None and not args.binary.is_file():
        p.error(f"{args.binary} not found; build it with `swift build -c release`")
    args.metric_count = args.metric_count or (200 if args.quick else 1000)
    args.kid_subset_size = args.kid_subset_size or (100 if args.quick else 1000)
    if args.kid_subset_size > args.metric_count:
        p.error("--kid-subset-size must not exceed --metric-count")
    torch.set_num_threads(args.threads)

    with contextlib.ExitStack() as stack:
        work = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        reports = []
        if args.self_check:
            (work / "self-check").mkdir(exist_ok=True)
            reports.append(self_check(work / "self-check"))
        if args.binary is not None:
            reports.append(binary_check(args, work))
    failures = 0
    for report in reports:
        print()
        report.print_table()
        failures += report.failures
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
