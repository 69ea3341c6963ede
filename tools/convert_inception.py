#!/usr/bin/env python3
"""Convert the FID Inception-v3 weights to the safetensors file biggan-fast reads.

    convert_inception.py IN.pth --out FILE.safetensors [--width-divisor D]

IN.pth is one of the two published PyTorch ports of TensorFlow's 2015-12-05
Inception-v3 graph (the network of FID, IS and KID):

* pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`,
* torch-fidelity's `weights-inception-2015-12-05-6726825d.pth`.

Both are plain state dicts with torchvision's Inception3 names
(`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_var`, ...,
`fc.weight`, `fc.bias`). The converter checks the 472 tensors of the table
below by name and shape (94 convolutions x conv.weight, bn.weight, bn.bias,
bn.running_mean, bn.running_var, plus fc.weight [1008, 2048] and fc.bias
[1008]) and writes them unchanged: same names, PyTorch layouts (OIHW
convolutions), float32, with the metadata {"format": "fid-inception-v3",
"width_divisor": "1", "source": IN's file name}.

Accepted around the 472 tensors: a common name prefix such as `module.`
(stripped), `*.num_batches_tracked` (a model's state_dict() has them),
and `AuxLogits.*` (torchvision's auxiliary head, unused by FID). Anything else
missing, unexpected, of the wrong shape, not floating point, non-finite, or a
running_var that is not positive is reported in one line on stderr, with
exit status 1.

`--width-divisor D` expects every convolution's channel count divided by D
(pool3 and fc.weight's columns 2048 / D, still 1008 classes): the reduced
random models of tools/make_eval_fixture.py. Needs only torch: the file is
written by pretrained_common.write_safetensors (tensors in sorted name
order, the header's keys in a fixed order, so equal inputs give equal bytes).
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretrained_common import read_state_dict, write_safetensors  # noqa: E402

PYTORCH_FID_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/"
                   "fid_weights/pt_inception-2015-12-05-6726825d.pth")
TORCH_FIDELITY_URL = ("https://github.com/toshas/torch-fidelity/releases/download/"
                      "v0.2.0/weights-inception-2015-12-05-6726825d.pth")
FORMAT = "fid-inception-v3"
CLASSES = 1008

HELP_EPILOG = f"""\
where to get the weights (either file works; both are ports of the same TF graph):
  pytorch-fid:
    {PYTORCH_FID_URL}
  torch-fidelity:
    {TORCH_FIDELITY_URL}
  If pytorch-fid or torch-fidelity has already run on this machine, the file
  is in torch's hub cache, ~/.cache/torch/hub/checkpoints/ (or
  $TORCH_HOME/hub/checkpoints/).
"""

#: The convolutions in forward order: (name, out channels, in channels,
#: kernel height, kernel width), channel counts at full width. Every one is
#: followed by a batch norm over its output channels.
CONVOLUTIONS: list[tuple[str, int, int, int, int]] = [
    ("Conv2d_1a_3x3", 32, 3, 3, 3),
    ("Conv2d_2a_3x3", 32, 32, 3, 3),
    ("Conv2d_2b_3x3", 64, 32, 3, 3),
    ("Conv2d_3b_1x1", 80, 64, 1, 1),
    ("Conv2d_4a_3x3", 192, 80, 3, 3),
]
for _block, _c_in, _pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64),
                             ("Mixed_5d", 288, 64)):
    CONVOLUTIONS += [
        (f"{_block}.branch1x1", 64, _c_in, 1, 1),
        (f"{_block}.branch5x5_1", 48, _c_in, 1, 1),
        (f"{_block}.branch5x5_2", 64, 48, 5, 5),
        (f"{_block}.branch3x3dbl_1", 64, _c_in, 1, 1),
        (f"{_block}.branch3x3dbl_2", 96, 64, 3, 3),
        (f"{_block}.branch3x3dbl_3", 96, 96, 3, 3),
        (f"{_block}.branch_pool", _pool, _c_in, 1, 1),
    ]
CONVOLUTIONS += [
    ("Mixed_6a.branch3x3", 384, 288, 3, 3),
    ("Mixed_6a.branch3x3dbl_1", 64, 288, 1, 1),
    ("Mixed_6a.branch3x3dbl_2", 96, 64, 3, 3),
    ("Mixed_6a.branch3x3dbl_3", 96, 96, 3, 3),
]
for _block, _c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160),
                    ("Mixed_6e", 192)):
    CONVOLUTIONS += [
        (f"{_block}.branch1x1", 192, 768, 1, 1),
        (f"{_block}.branch7x7_1", _c7, 768, 1, 1),
        (f"{_block}.branch7x7_2", _c7, _c7, 1, 7),
        (f"{_block}.branch7x7_3", 192, _c7, 7, 1),
        (f"{_block}.branch7x7dbl_1", _c7, 768, 1, 1),
        (f"{_block}.branch7x7dbl_2", _c7, _c7, 7, 1),
        (f"{_block}.branch7x7dbl_3", _c7, _c7, 1, 7),
        (f"{_block}.branch7x7dbl_4", _c7, _c7, 7, 1),
        (f"{_block}.branch7x7dbl_5", 192, _c7, 1, 7),
        (f"{_block}.branch_pool", 192, 768, 1, 1),
    ]
CONVOLUTIONS += [
    ("Mixed_7a.branch3x3_1", 192, 768, 1, 1),
    ("Mixed_7a.branch3x3_2", 320, 192, 3, 3),
    ("Mixed_7a.branch7x7x3_1", 192, 768, 1, 1),
    ("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7),
    ("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1),
    ("Mixed_7a.branch7x7x3_4", 192, 192, 3, 3),
]
for _block, _c_in in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
    CONVOLUTIONS += [
        (f"{_block}.branch1x1", 320, _c_in, 1, 1),
        (f"{_block}.branch3x3_1", 384, _c_in, 1, 1),
        (f"{_block}.branch3x3_2a", 384, 384, 1, 3),
        (f"{_block}.branch3x3_2b", 384, 384, 3, 1),
        (f"{_block}.branch3x3dbl_1", 448, _c_in, 1, 1),
        (f"{_block}.branch3x3dbl_2", 384, 448, 3, 3),
        (f"{_block}.branch3x3dbl_3a", 384, 384, 1, 3),
        (f"{_block}.branch3x3dbl_3b", 384, 384, 3, 1),
        (f"{_block}.branch_pool", 192, _c_in, 1, 1),
    ]
FEATURES = 2048
BN_FIELDS = ("weight", "bias", "running_mean", "running_var")


class ConversionError(Exception):
    """A problem with the input; its message is printed as one line."""


def expected_shapes(width_divisor: int = 1) -> dict[str, tuple[int, ...]]:
    """The 472 names and shapes, in forward order, with every channel count
    but the input's 3 divided by `width_divisor`."""
    d = width_divisor

    def w(n: int) -> int:
        if n % d:
            raise ConversionError(f"--width-divisor {d} does not divide the channel count {n}")
        return n // d

    shapes: dict[str, tuple[int, ...]] = {}
    for name, c_out, c_in, kh, kw in CONVOLUTIONS:
        shapes[f"{name}.conv.weight"] = (w(c_out), c_in if c_in == 3 else w(c_in), kh, kw)
        for field in BN_FIELDS:
            shapes[f"{name}.bn.{field}"] = (w(c_out),)
    shapes["fc.weight"] = (CLASSES, w(FEATURES))
    shapes["fc.bias"] = (CLASSES,)
    return shapes


def ignored(name: str) -> bool:
    """Entries of a model's state dict that the network does not use."""
    return name.endswith(".num_batches_tracked") or name.startswith("AuxLogits.")


FIRST = "Conv2d_1a_3x3.conv.weight"


def strip_prefix(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Removes a prefix shared by all names (e.g. `module.`), found through
    the name that ends in `Conv2d_1a_3x3.conv.weight`; returns the dict and
    the prefix."""
    if FIRST in state:
        return state, ""
    if any(k.startswith("blocks.") for k in state):
        raise ConversionError(
            "this is the state dict of pytorch-fid's InceptionV3 wrapper (blocks.*), which "
            "has no fc layer; use the published weights file (see --help)")
    candidates = [k[:-len(FIRST)] for k in state if k.endswith("." + FIRST)]
    if len(candidates) != 1:
        raise ConversionError(f"missing key {FIRST}" if not candidates
                              else f"several names end in {FIRST}: {', '.join(candidates)}")
    prefix = candidates[0]
    if outside := [k for k in state if not k.startswith(prefix)]:
        raise ConversionError(f"unexpected key {outside[0]} (the others start with {prefix!r})")
    return {k[len(prefix):]: v for k, v in state.items()}, prefix


def check_and_convert(state: dict[str, torch.Tensor], width_divisor: int = 1
                      ) -> tuple[dict[str, torch.Tensor], list[str], str]:
    """The 472 float32 tensors in table order, the names dropped as unused,
    and the stripped prefix. Raises ConversionError naming the first problem."""
    state, prefix = strip_prefix(state)
    expected = expected_shapes(width_divisor)
    dropped = sorted(k for k in state if k not in expected and ignored(k))
    unexpected = sorted(k for k in state if k not in expected and not ignored(k))
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise ConversionError(f"unexpected key {prefix}{unexpected[0]}{more}")
    out: dict[str, torch.Tensor] = {}
    for name, shape in expected.items():
        if name not in state:
            missing = [k for k in expected if k not in state]
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise ConversionError(f"missing key {prefix}{name}{more}")
        t = state[name]
        if not isinstance(t, torch.Tensor):
            raise ConversionError(f"{prefix}{name} is a {type(t).__name__}, not a tensor")
        if tuple(t.shape) != shape:
            raise ConversionError(f"{prefix}{name} has shape {list(t.shape)}, expected "
                                  f"{list(shape)}")
        if not t.is_floating_point():
            raise ConversionError(f"{prefix}{name} has dtype {t.dtype}, expected floating point")
        t = t.detach().to(device="cpu", dtype=torch.float32).contiguous()
        if not torch.isfinite(t).all():
            raise ConversionError(f"{prefix}{name} has non-finite values")
        if name.endswith(".running_var") and not (t > 0).all():
            raise ConversionError(f"{prefix}{name} has a value <= 0 "
                                  f"({t.min().item():g}); variances must be positive")
        out[name] = t
    return out, dropped, prefix


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """Reads a pickled state dict of tensors (torch.load, weights_only)."""
    return read_state_dict(path, ConversionError)


def metadata(source: str, width_divisor: int) -> dict[str, str]:
    """The `__metadata__` map of the output file."""
    return {"format": FORMAT, "width_divisor": str(width_divisor), "source": source}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description="Convert the FID Inception-v3 weights (pytorch-fid's or torch-fidelity's "
                    ".pth) to a safetensors file for biggan-fast eval and stats.",
        epilog=HELP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", type=Path, metavar="IN.pth", help="the published weights file")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.safetensors",
                   help="the file to write")
    p.add_argument("--width-divisor", type=int, default=1, metavar="D",
                   help="expect every channel count divided by D (reduced random test "
                        "models; default: 1, the real network)")
    args = p.parse_args(argv)
    if args.width_divisor < 1:
        p.error("--width-divisor must be at least 1")
    try:
        state = load_state(args.weights)
        tensors, dropped, prefix = check_and_convert(state, args.width_divisor)
    except ConversionError as e:
        print(f"error: {args.weights}: {e}", file=sys.stderr)
        return 1
    size = write_safetensors(args.out, tensors, metadata(args.weights.name, args.width_divisor))
    params = sum(t.numel() for t in tensors.values())
    notes = []
    if prefix:
        notes.append(f"stripped prefix {prefix!r}")
    counted = sum(k.endswith(".num_batches_tracked") for k in dropped)
    if counted:
        notes.append(f"dropped {counted} num_batches_tracked")
    if len(dropped) > counted:
        notes.append(f"dropped {len(dropped) - counted} AuxLogits tensors")
    extra = f"; {'; '.join(notes)}" if notes else ""
    print(f"wrote {args.out}: {len(tensors)} tensors, {params:,} parameters, "
          f"{size:,} bytes, width divisor {args.width_divisor}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
