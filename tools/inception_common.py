"""What the Inception tools share: synthetic images, PNG folders, the converter
as a subprocess, and the reference libraries' models with given weights.

Used by make_eval_fixture.py, inception_parity.py, fid_numerics.py and
Benchmarks/compare_inception.py. Needs torch, numpy and Pillow; the library
helpers import torch-fidelity, pytorch-fid or clean-fid only when called.

* `make_images(kind, count, height, width, seed)`: deterministic uint8 RGB
  images [N, H, W, 3] of two kinds that differ in distribution: "a" (warm
  colours, a linear gradient with soft discs) and "b" (cool colours,
  oriented sine stripes with rectangles), each with a little noise.
* `write_pngs`, `read_pngs`: a flat folder of `00000.png`, `00001.png`, ...
  and back to uint8 NCHW in sorted name order.
* `run_converter`: `convert_inception.py IN --out OUT --width-divisor D`
  with this Python, as a user runs it.
* `torch_fidelity_extractor(pth)`: torch-fidelity's
  `FeatureExtractorInceptionV3` with features ['2048', 'logits_unbiased']
  and the weights of `pth` (its `feature_extractor_weights_path`).
* `pytorch_fid_model(state)`: pytorch-fid's `InceptionV3([3])` (FID
  Inception, resize and normalisation on) with `state` in place of the
  downloaded file.
* `library_state_dicts(state)`: `state` loaded into torch-fidelity's and
  pytorch-fid's own model classes and their `state_dict()`s taken back (what
  saving either library's model gives).
* `relative_error(ours, reference)`: max |ours - ref| / max |ref|.
"""

import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

TOOLS = Path(__file__).resolve().parent
CONVERTER = TOOLS / "convert_inception.py"

# -------------------------------------------------------------- images --


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1): (y [H, 1], x [1, W])."""
    return ((np.arange(height)[:, None] + 0.5) / height,
            (np.arange(width)[None, :] + 0.5) / width)


def _warm(rng: np.random.Generator) -> np.ndarray:
    return np.array([rng.uniform(0.55, 1.0), rng.uniform(0.15, 0.7), rng.uniform(0.0, 0.35)])


def _cool(rng: np.random.Generator) -> np.ndarray:
    return np.array([rng.uniform(0.0, 0.35), rng.uniform(0.2, 0.75), rng.uniform(0.5, 1.0)])


def _image_a(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    y, x = _grid(height, width)
    angle = rng.uniform(0, 2 * np.pi)
    t = np.clip(0.5 + (np.cos(angle) * (x - 0.5) + np.sin(angle) * (y - 0.5)), 0, 1)[..., None]
    img = (1 - t) * _warm(rng) + t * _warm(rng)
    for _ in range(rng.integers(2, 5)):
        cy, cx, r = rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85), rng.uniform(0.08, 0.3)
        d = np.sqrt((y - cy) ** 2 + (x - cx) ** 2)
        alpha = np.clip((r - d) * max(height, width) / 1.5, 0, 1)[..., None]
        img = (1 - alpha) * img + alpha * _warm(rng)
    return img


def _image_b(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    y, x = _grid(height, width)
    angle, cycles = rng.uniform(0, np.pi), rng.uniform(1.5, 5.0)
    phase = rng.uniform(0, 2 * np.pi)
    s = 0.5 + 0.5 * np.sin(2 * np.pi * cycles * (np.cos(angle) * x + np.sin(angle) * y) + phase)
    img = (1 - s[..., None]) * _cool(rng) + s[..., None] * _cool(rng)
    for _ in range(rng.integers(1, 3)):
        y0, x0 = rng.uniform(0, 0.7, size=2)
        h, w = rng.uniform(0.15, 0.45, size=2)
        inside = ((y >= y0) & (y < y0 + h) & (x >= x0) & (x < x0 + w))[..., None]
        img = np.where(inside, _cool(rng) * 0.8 + 0.1, img)
    return img


def make_images(kind: str, count: int, height: int, width: int, seed: int) -> np.ndarray:
    """`count` deterministic uint8 RGB images [N, H, W, 3] of `kind` "a" or "b"."""
    make = {"a": _image_a, "b": _image_b}[kind]
    rng = np.random.default_rng(seed)
    out = np.empty((count, height, width, 3), dtype=np.uint8)
    for i in range(count):
        img = make(rng, height, width) * 255 + rng.normal(0, 4, size=(height, width, 3))
        out[i] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def to_nchw(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> uint8 tensor [N, 3, H, W]."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def write_pngs(folder: Path, images: np.ndarray) -> list[Path]:
    """Writes images [N, H, W, 3] as folder/00000.png, ... (8-bit RGB)."""
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        path = folder / f"{i:05d}.png"
        Image.fromarray(img, "RGB").save(path, optimize=False, compress_level=9)
        paths.append(path)
    return paths


def read_pngs(folder: Path) -> torch.Tensor:
    """The PNG files of `folder`, in sorted name order, as uint8 NCHW RGB."""
    from PIL import Image
    files = sorted(folder.glob("*.png"))
    if not files:
        raise FileNotFoundError(f"no PNG files in {folder}")
    arrays = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    return to_nchw(np.stack(arrays))


# ------------------------------------------------------------ converter --


def run_converter(source: Path, out: Path, width_divisor: int = 1) -> str:
    """Runs `convert_inception.py SOURCE --out OUT --width-divisor D`; returns
    its summary line. Raises RuntimeError with its error output on failure."""
    proc = subprocess.run([sys.executable, str(CONVERTER), str(source), "--out", str(out),
                           "--width-divisor", str(width_divisor)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"convert_inception.py failed: "
                           f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip()


def load_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the metadata of a safetensors file."""
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


# ------------------------------------------------------------ libraries --


@contextlib.contextmanager
def _no_weight_loading() -> Iterator[None]:
    """Builds the libraries' models without downloading or loading weights."""
    import pytorch_fid.inception as pfi
    import torch_fidelity.feature_extractor_inceptionv3 as tfe
    saved = torch.nn.Module.load_state_dict, tfe.load_state_dict_from_url, \
        pfi.load_state_dict_from_url
    torch.nn.Module.load_state_dict = lambda self, *a, **k: None
    tfe.load_state_dict_from_url = lambda *a, **k: {}
    pfi.load_state_dict_from_url = lambda *a, **k: {}
    try:
        yield
    finally:
        torch.nn.Module.load_state_dict, tfe.load_state_dict_from_url, \
            pfi.load_state_dict_from_url = saved


def library_state_dicts(state: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """`state` (our 472 names) loaded into torch-fidelity's
    FeatureExtractorInceptionV3 and pytorch-fid's fid_inception_v3()
    (torchvision's Inception3 with the FID blocks), each built by the
    library's own code, and their state_dict()s (with num_batches_tracked)."""
    import pytorch_fid.inception as pfi
    import torch_fidelity.feature_extractor_inceptionv3 as tfe
    with _no_weight_loading():
        fidelity = tfe.FeatureExtractorInceptionV3("inception-v3-compat",
                                                   ["2048", "logits_unbiased"])
        pfid = pfi.fid_inception_v3()
    out = {}
    for name, model in (("torch-fidelity", fidelity), ("pytorch-fid", pfid)):
        # strict=False: the libraries' batch norms also have num_batches_tracked.
        result = model.load_state_dict(state, strict=False)
        if result.unexpected_keys or any(not k.endswith("num_batches_tracked")
                                         for k in result.missing_keys):
            raise RuntimeError(f"{name}: state dict does not fit: {result}")
        out[name] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return out


def torch_fidelity_extractor(pth: Path):
    """torch-fidelity's extractor with features ['2048', 'logits_unbiased'],
    loading `pth` the library's way (torch.load + strict load_state_dict)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    return FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                       feature_extractor_weights_path=str(pth))


@contextlib.contextmanager
def pytorch_fid_weights(state: dict[str, torch.Tensor]) -> Iterator[None]:
    """Within the block, pytorch-fid's fid_inception_v3() loads `state`
    instead of downloading FID_WEIGHTS_URL."""
    import pytorch_fid.inception as pfi
    saved = pfi.load_state_dict_from_url
    pfi.load_state_dict_from_url = lambda *a, **k: {n: t.clone() for n, t in state.items()}
    try:
        yield
    finally:
        pfi.load_state_dict_from_url = saved


def pytorch_fid_model(state: dict[str, torch.Tensor]):
    """pytorch-fid's InceptionV3([3]) (use_fid_inception=True, resize_input
    and normalize_input on) holding `state`, in eval mode."""
    from pytorch_fid.inception import InceptionV3
    with pytorch_fid_weights(state):
        return InceptionV3([3]).eval()


def relative_error(ours, reference) -> float:
    """max |ours - reference| / max |reference| (0 when both are zero)."""
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    scale = np.abs(b).max() if b.size else 0.0
    diff = np.abs(a - b).max() if b.size else 0.0
    return float(diff / scale) if scale > 0 else float(diff)
