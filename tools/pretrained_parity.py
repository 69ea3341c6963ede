#!/usr/bin/env python3
"""Parity of converted BigGAN-deep checkpoints with pytorch-pretrained-BigGAN.

    pretrained_parity.py --self-check                       # converter vs HF, torch only
    pretrained_parity.py --binary .build/release/biggan-fast [--precision bf16]
    pretrained_parity.py --fixture Tests/BigGANTests/Fixtures/pretrained/deep128-tiny

Reference: pytorch-pretrained-BigGAN's BigGAN-deep (HF), eval mode, under
torch.no_grad(). By default it has seeded random weights, made valid as
tools/pretrained_hf.py explains (SN vectors by power iteration, random
per-truncation batch-norm statistics, attention gamma 0.7); `--pretrained
DIR` uses released weights instead. The script saves the model as
pytorch_model.bin + config.json, runs convert_pretrained.py on it as a
subprocess (the real command line) and compares outputs at several
truncations: grid values (0.4, 1.0), an interpolated one (0.565, a quarter
of the way between rows 28 and 29, so HF's swapped interpolation weights
differ from a plain lerp; 0.57 sits half way, where they agree) and 0.28,
where HF's `modf(truncation / 0.02)` lands just above the grid point and so
takes the next statistics row. Inputs are z = truncation * truncnorm(-2, 2)
(HF's `truncated_noise_sample`, seeded) and class vectors that alternate
one-hot and soft mixes of 2-3 classes.

Checks:

* `--self-check`: a ~100-line torch forward of our deep generator
  (`our_forward`) that reads only the converted safetensors file, with our
  names and layouts, must match HF to --self-check-tolerance (1e-5). This
  proves the converter without our binary.
* `--binary PATH`: runs `PATH sample --checkpoint G.safetensors --z z.npy
  --y y.npy --truncation T --out npy --output DIR --precision P` once per
  truncation and compares DIR/samples.npy (float32 [n, R, R, 3], NHWC)
  with HF; exits 1 if the max abs difference exceeds --tolerance (1e-4 for
  fp32, 1e-2 for bf16 by default: operands rounded to bf16 give 2e-3 to 4e-3 at full width).
* `--fixture DIR`: writes the small fixture of the Swift test (see
  tools/README.md) and self-checks it.

Max abs differences are reported per truncation, with HF's output std (a
saturated or collapsed output would make the comparison weak).
"""

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretrained_common import (  # noqa: E402
    ATTENTION_POSITION, OUR_ATTENTION, STAGE_PLANS, our_block_prefix, run_converter,
    write_safetensors,
)
import pretrained_hf as hf  # noqa: E402

TRUNCATIONS = (0.4, 0.565, 0.28, 1.0)
DEFAULT_TOLERANCE = {"fp32": 1e-4, "bf16": 1e-2}

#: The committed fixture: BigGAN-deep 128 at tiny width. Each sample has its
#: own truncation: a grid value, an interpolated one, and HF's quirky 0.28.
#: The grid value is 0.5, not 0.4: the file stores float32 truncations, and
#: float32(0.4) / 0.02 = 20.0000003 takes row 21 under HF's quirk, while
#: 0.5, 0.565 and 0.28 pick the same rows (to 1e-6 in the weights) whether a
#: reader uses the float32 value or the decimal.
FIXTURE_CONFIG = {"resolution": 128, "channel_width": 4, "z_dim": 8, "num_classes": 10}
FIXTURE_TRUNCATIONS = (0.5, 0.565, 0.28)
FIXTURE_SEED = 2024


# ------------------------------------------------- our forward, from the file --


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors of a converted checkpoint and its parsed "config" metadata,
    read with the safetensors library (independent of our writer)."""
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    if metadata.get("format") != "biggan-fast checkpoint":
        raise RuntimeError(f"{path}: metadata format is {metadata.get('format')!r}")
    return tensors, json.loads(metadata["config"])


def statistics_row(stored: torch.Tensor, truncation: float) -> torch.Tensor:
    """HF's per-truncation statistics: coef, i = modf(truncation / step); if
    coef != 0, stored[i] * coef + stored[i + 1] * (1 - coef) (weights swapped
    relative to a lerp), else stored[i]."""
    coef, index = math.modf(truncation / (1.0 / (stored.shape[0] - 1)))
    index = int(index)
    if coef != 0.0:
        return stored[index] * coef + stored[index + 1] * (1 - coef)
    return stored[index]


def our_forward(t: dict[str, torch.Tensor], config: dict, z: torch.Tensor,
                y: torch.Tensor, truncation: float) -> torch.Tensor:
    """Our BigGAN-deep generator, NCHW output in [-1, 1], from our state dict.

    The condition is c = cat([z, y @ shared.weight]), feeding the stem linear
    and every conditional batch norm; the stem's rows are already in NCHW
    order, so its output is viewed as [n, 16 ch, 4, 4] directly.
    """
    eps = config["bnEps"]
    c = torch.cat([z, y @ t["shared.weight"]], dim=1)

    def norm(x: torch.Tensor, name: str) -> torch.Tensor:
        mean = statistics_row(t[f"{name}.stored_mean"], truncation)
        var = statistics_row(t[f"{name}.stored_var"], truncation)
        return (x - mean[:, None, None]) / torch.sqrt(var[:, None, None] + eps)

    def cbn_relu(x: torch.Tensor, name: str) -> torch.Tensor:
        gain = 1 + c @ t[f"{name}.gain.weight"].t()
        bias = c @ t[f"{name}.bias.weight"].t()
        return F.relu(norm(x, name) * gain[:, :, None, None] + bias[:, :, None, None])

    def conv(x: torch.Tensor, name: str, bias: bool = True) -> torch.Tensor:
        w = t[f"{name}.weight"]
        return F.conv2d(x, w, t[f"{name}.bias"] if bias else None, padding=w.shape[-1] // 2)

    def attention(x: torch.Tensor) -> torch.Tensor:
        n, ch, h, w = x.shape
        theta = conv(x, f"{OUR_ATTENTION}.theta", bias=False).view(n, ch // 8, h * w)
        phi = F.max_pool2d(conv(x, f"{OUR_ATTENTION}.phi", bias=False), 2)
        g = F.max_pool2d(conv(x, f"{OUR_ATTENTION}.g", bias=False), 2)
        beta = torch.softmax(theta.transpose(1, 2) @ phi.view(n, ch // 8, -1), dim=-1)
        o = (g.view(n, ch // 2, -1) @ beta.transpose(1, 2)).view(n, ch // 2, h, w)
        return x + t[f"{OUR_ATTENTION}.gamma"] * conv(o, f"{OUR_ATTENTION}.o", bias=False)

    def upsample(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")

    h = F.linear(c, t["linear.weight"], t["linear.bias"]).view(z.shape[0], -1, 4, 4)
    for i, (up, _, _) in enumerate(STAGE_PLANS[config["resolution"]]):
        if i == ATTENTION_POSITION:
            h = attention(h)
        p = our_block_prefix(i)
        x = conv(cbn_relu(h, f"{p}.bn1"), f"{p}.conv1")
        x = cbn_relu(x, f"{p}.bn2")
        x = conv(upsample(x) if up else x, f"{p}.conv2")
        x = conv(cbn_relu(x, f"{p}.bn3"), f"{p}.conv3")
        x = conv(cbn_relu(x, f"{p}.bn4"), f"{p}.conv4")
        skip = h[:, :x.shape[1]]
        h = x + (upsample(skip) if up else skip)
    h = norm(h, "output_layer.0") * t["output_layer.0.gain"][:, None, None] \
        + t["output_layer.0.bias"][:, None, None]
    return torch.tanh(conv(F.relu(h), "output_layer.2"))


def check_config(config: dict, hf_config) -> None:
    """Raises if the checkpoint's config metadata does not describe `hf_config`."""
    expected = {"architecture": "deep", "resolution": hf_config.output_dim,
                "generatorChannels": hf_config.channel_width, "dimZ": hf_config.z_dim,
                "sharedDim": hf_config.z_dim, "classes": hf_config.num_classes,
                "statisticsRows": hf_config.n_stats, "bnEps": hf_config.eps,
                "spectralNorm": False, "hierarchical": False}
    wrong = {k: config.get(k) for k, v in expected.items() if config.get(k) != v}
    if wrong:
        raise RuntimeError(f"checkpoint config metadata differs from HF's config: {wrong}")


@torch.no_grad()
def self_check_nhwc(checkpoint: tuple[dict[str, torch.Tensor], dict], z: np.ndarray,
                    y: np.ndarray, truncation: float) -> np.ndarray:
    """`our_forward` as float32 [n, R, R, 3] NHWC."""
    tensors, config = checkpoint
    out = our_forward(tensors, config, torch.from_numpy(z), torch.from_numpy(y), truncation)
    return out.permute(0, 2, 3, 1).contiguous().numpy()


# ------------------------------------------------------------ our binary --


def run_binary(binary: Path, checkpoint: Path, z: np.ndarray, y: np.ndarray,
               truncation: float, precision: str, resolution: int,
               folder: Path) -> np.ndarray:
    """`biggan-fast sample ... --out npy` in `folder`; its samples.npy."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "z.npy", z)
    np.save(folder / "y.npy", y)
    cmd = [str(binary), "sample", "--checkpoint", str(checkpoint),
           "--z", str(folder / "z.npy"), "--y", str(folder / "y.npy"),
           "--truncation", repr(truncation), "--out", "npy", "--output", str(folder),
           "--precision", precision]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited with {proc.returncode}: "
                           f"{proc.stderr.strip() or proc.stdout.strip()}")
    samples = np.load(folder / "samples.npy")
    expected = (z.shape[0], resolution, resolution, 3)
    if samples.dtype != np.float32 or samples.shape != expected:
        raise RuntimeError(f"{folder / 'samples.npy'}: {samples.dtype} {samples.shape}, "
                           f"expected float32 {expected}")
    return samples


# ---------------------------------------------------------------- fixture --


def write_fixture(folder: Path, tolerance: float) -> None:
    """Writes G.safetensors, inputs.safetensors and expected.safetensors, then
    self-checks G.safetensors against the expected images to `tolerance`."""
    cfg = hf.hf_config(FIXTURE_CONFIG["resolution"], FIXTURE_CONFIG["channel_width"],
                       FIXTURE_CONFIG["z_dim"], FIXTURE_CONFIG["num_classes"])
    model = hf.random_model(cfg, FIXTURE_SEED)
    n = len(FIXTURE_TRUNCATIONS)
    stored = np.array(FIXTURE_TRUNCATIONS, dtype=np.float32)
    z = np.concatenate([hf.truncated_noise(1, cfg.z_dim, t, FIXTURE_SEED + 1 + i)
                        for i, t in enumerate(FIXTURE_TRUNCATIONS)])
    y = hf.class_vectors(cfg.num_classes, n, FIXTURE_SEED)
    images = []
    for i, t in enumerate(FIXTURE_TRUNCATIONS):
        # HF at the float32 value the file stores, widened to double ...
        image = hf.forward_nhwc(model, z[i:i + 1], y[i:i + 1], float(stored[i]))
        # ... which must agree with HF at the decimal value (see FIXTURE_TRUNCATIONS).
        decimal = hf.forward_nhwc(model, z[i:i + 1], y[i:i + 1], t)
        if np.abs(image - decimal).max() > 1e-6:
            raise RuntimeError(f"truncation {t}: float32 and decimal values give different "
                               f"images ({np.abs(image - decimal).max():.2e})")
        images.append(image)
    images = np.concatenate(images)

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "deep128-tiny-random"
        hf.save_folder(model, source)
        print(run_converter(source, folder / "G.safetensors"))
    note = {"made by": "tools/pretrained_parity.py --fixture"}
    write_safetensors(folder / "inputs.safetensors",
                      {"z": torch.from_numpy(z), "y": torch.from_numpy(y),
                       "truncation": torch.from_numpy(stored)}, note)
    write_safetensors(folder / "expected.safetensors", {"images": torch.from_numpy(images)},
                      note)

    checkpoint = read_checkpoint(folder / "G.safetensors")
    check_config(checkpoint[1], cfg)
    for i in range(n):
        ours = self_check_nhwc(checkpoint, z[i:i + 1], y[i:i + 1], float(stored[i]))
        diff = np.abs(ours - images[i:i + 1]).max()
        print(f"truncation {float(stored[i]):.8g}: HF std {images[i].std():.3f}, "
              f"self-check max abs diff {diff:.2e}")
        if diff > tolerance:
            raise RuntimeError(f"self-check of the fixture failed at truncation {stored[i]}")
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"fixture {folder}: {size / 1024:.0f} KiB")


# ------------------------------------------------------------------- main --


def parse_args() -> argparse.Namespace:
    """Command-line options (see --help)."""
    p = argparse.ArgumentParser(
        description="Compare converted BigGAN-deep checkpoints with pytorch-pretrained-BigGAN.",
        epilog="Without --pretrained the HF model has random valid weights of the given "
               "size (default: the released 128 px model's). See tools/README.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--self-check", action="store_true",
                   help="compare HF with a torch forward that reads only the converted file")
    p.add_argument("--binary", type=Path, metavar="PATH",
                   help="also compare HF with `PATH sample` (our biggan-fast binary)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="our binary's precision")
    p.add_argument("--tolerance", type=float,
                   help="max abs difference allowed for our binary (default: 1e-4 for "
                        "fp32, 1e-2 for bf16)")
    p.add_argument("--self-check-tolerance", type=float, default=1e-5,
                   help="max abs difference allowed for --self-check")
    p.add_argument("--fixture", type=Path, metavar="DIR",
                   help="write the Swift test's fixture to DIR (fixed tiny config) and exit")
    p.add_argument("--pretrained", type=Path, metavar="DIR",
                   help="use the released weights in DIR (pytorch_model.bin + config.json) "
                        "instead of random ones")
    p.add_argument("--resolution", type=int, choices=sorted(STAGE_PLANS), default=128)
    p.add_argument("--channel-width", type=int, default=128)
    p.add_argument("--z-dim", type=int, default=128)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--samples", type=int, default=4, help="images per truncation")
    p.add_argument("--truncations", type=float, nargs="+", default=list(TRUNCATIONS),
                   metavar="T")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and inputs")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--workdir", type=Path, metavar="DIR",
                   help="keep the HF folder, the converted file and the inputs here "
                        "(default: a temporary folder, removed at the end)")
    args = p.parse_args()
    if not (args.self_check or args.binary or args.fixture):
        p.error("nothing to do: give --self-check, --binary PATH and/or --fixture DIR")
    if args.binary and not args.binary.is_file():
        p.error(f"{args.binary} not found; build it with `swift build -c release`")
    if args.pretrained and not args.pretrained.is_dir():
        p.error(f"{args.pretrained} is not a folder")
    if any(not 0 < t <= 1 for t in args.truncations):
        p.error("truncations must be in (0, 1]")
    if args.tolerance is None:
        args.tolerance = DEFAULT_TOLERANCE[args.precision]
    return args


def compare(args: argparse.Namespace, work: Path) -> bool:
    """Builds or loads the HF model, converts it and compares; True if all pass."""
    if args.pretrained:
        model = hf.BigGAN.from_pretrained(str(args.pretrained)).eval()
        source = args.pretrained
    else:
        cfg = hf.hf_config(args.resolution, args.channel_width, args.z_dim, args.classes)
        model = hf.random_model(cfg, args.seed)
        source = work / f"biggan-deep-{args.resolution}-random"
        hf.save_folder(model, source)
    cfg = model.config
    converted = work / "G.safetensors"
    print(run_converter(source, converted))
    checkpoint = read_checkpoint(converted)
    check_config(checkpoint[1], cfg)

    y = hf.class_vectors(cfg.num_classes, args.samples, args.seed + 1)
    ok = True
    print(f"BigGAN-deep {cfg.output_dim}, ch {cfg.channel_width}, z {cfg.z_dim}, "
          f"{cfg.num_classes} classes, {args.samples} samples")
    for t in args.truncations:
        z = hf.truncated_noise(args.samples, cfg.z_dim, t, args.seed + 2)
        reference = hf.forward_nhwc(model, z, y, t)
        if not np.isfinite(reference).all():
            raise RuntimeError(f"HF output at truncation {t} is not finite")
        line = f"truncation {t:<5g} HF std {reference.std():.3f}"
        if args.self_check:
            diff = np.abs(self_check_nhwc(checkpoint, z, y, t) - reference).max()
            ok &= bool(diff <= args.self_check_tolerance)
            line += f" | self-check max abs diff {diff:.2e}"
        if args.binary:
            samples = run_binary(args.binary, converted, z, y, t, args.precision,
                                 cfg.output_dim, work / f"truncation-{t:g}")
            diff = np.abs(samples - reference).max()
            ok &= bool(diff <= args.tolerance)
            line += f" | biggan-fast {args.precision} max abs diff {diff:.2e}"
        print(line, flush=True)
    bounds = ([f"self-check tolerance {args.self_check_tolerance:g}"] if args.self_check else []) \
        + ([f"{args.precision} tolerance {args.tolerance:g}"] if args.binary else [])
    print(f"{'PASS' if ok else 'FAIL'} ({', '.join(bounds)})")
    return ok


def main() -> int:
    """Runs the requested checks; 1 if a difference exceeds its tolerance."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    try:
        if args.fixture:
            write_fixture(args.fixture, args.self_check_tolerance)
            return 0
        if args.workdir:
            args.workdir.mkdir(parents=True, exist_ok=True)
            return 0 if compare(args, args.workdir) else 1
        work = Path(tempfile.mkdtemp(prefix="pretrained-parity-"))
        try:
            return 0 if compare(args, work) else 1
        finally:
            shutil.rmtree(work)
    except RuntimeError as e:
        print(f"pretrained_parity.py: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
