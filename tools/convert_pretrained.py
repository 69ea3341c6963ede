#!/usr/bin/env python3
"""Convert pytorch-pretrained-BigGAN's BigGAN-deep weights to a biggan-fast checkpoint.

    convert_pretrained.py SOURCE --out FILE.safetensors
    convert_pretrained.py --weights pytorch_model.bin --config config.json --out FILE.safetensors

SOURCE is a folder holding `pytorch_model.bin` and `config.json` as
pytorch-pretrained-BigGAN stores them, or one of the model names
biggan-deep-128, biggan-deep-256, biggan-deep-512 to take the two files from
that package's download cache (see `--help`).

The output is our generator's state dict (BigGAN-PyTorch `BigGANdeep.py`
names, PyTorch layouts) in float32 safetensors:

* spectral norm is folded in: every `W = weight_orig / sigma` with
  `sigma = u . (W_mat v)` from the stored `weight_u`/`weight_v`, which is
  what torch's spectral_norm computes in eval mode; no u/v buffers remain;
* `shared.weight` is the transpose of `embeddings.weight`, [classes, z_dim];
* the rows of `linear.weight`/`linear.bias` (HF's `gen_z`) are reordered
  from HF's NHWC stem order (row p*C + c, pixel p of 16) to NCHW (row
  c*16 + p);
* config layer i is `blocks.{i//2}.{i%2}` with `bn1..bn4` (gain, bias,
  stored_mean, stored_var) and `conv1..conv4`; the attention is `blocks.3.2`;
* the output layer is `output_layer.0` (unconditional BN) and
  `output_layer.2` (conv_to_rgb with only its first 3 output channels,
  sliced after folding spectral norm over all of them).

The `__metadata__` map holds "format", "source" and "config" (our
configuration as compact JSON). Needs only PyTorch; every problem with the
input is reported in one line, with exit status 1.
"""

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretrained_common import (  # noqa: E402
    ATTENTION_POSITION, OUR_ATTENTION, STAGE_PLANS, hf_layer_module, our_block_prefix, read_state_dict,
    write_safetensors,
)

MODEL_NAMES = tuple(f"biggan-deep-{r}" for r in STAGE_PLANS)
URL_BASE = "https://s3.amazonaws.com/models.huggingface.co/biggan/"
WEIGHTS_NAME, CONFIG_NAME = "pytorch_model.bin", "config.json"
CONFIG_KEYS = {"output_dim", "z_dim", "class_embed_dim", "channel_width", "num_classes",
               "layers", "attention_layer_position", "eps", "n_stats"}

HELP_EPILOG = f"""\
where to get the weights:
  pytorch-pretrained-BigGAN publishes BigGAN-deep at 128, 256 and 512 px:
    {URL_BASE}biggan-deep-R-pytorch_model.bin
    {URL_BASE}biggan-deep-R-config.json
  with R = 128, 256 or 512. Save the pair as pytorch_model.bin and config.json
  in one folder and pass that folder as SOURCE.

  If BigGAN.from_pretrained('biggan-deep-R') has run on this machine, the files
  are already in its cache, $PYTORCH_PRETRAINED_BIGGAN_CACHE or
  ~/.pytorch_pretrained_biggan, under hashed names (each with a .json file
  naming its URL); pass SOURCE = biggan-deep-R to use them.
"""


class ConversionError(Exception):
    """A problem with the input; its message is printed as one line."""


# ------------------------------------------------------------------ input --


def cache_dir() -> Path:
    """pytorch-pretrained-BigGAN's download cache folder."""
    return Path(os.environ.get("PYTORCH_PRETRAINED_BIGGAN_CACHE",
                               Path.home() / ".pytorch_pretrained_biggan"))


def find_cached(url: str) -> Path:
    """The cached file downloaded from `url` (found through its .json sidecar)."""
    folder = cache_dir()
    for meta in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            if json.loads(meta.read_text(encoding="utf-8")).get("url") == url:
                return meta.with_suffix("")
        except (OSError, ValueError, AttributeError):
            continue
    raise ConversionError(f"{url} is not in the cache {folder}; download it (see --help)")


def resolve_inputs(args: argparse.Namespace) -> tuple[Path, Path, str]:
    """The weights file, the config file and the source name for the metadata:
    the model name, SOURCE's folder name, or with --weights the name of its
    folder (if it is called pytorch_model.bin) or of the file."""
    if args.source is not None and (args.weights or args.config):
        raise ConversionError("give either SOURCE or --weights and --config, not both")
    if args.source is None:
        if not (args.weights and args.config):
            raise ConversionError("give SOURCE, or both --weights and --config")
        named = args.weights.resolve()
        return args.weights, args.config, (named.parent.name if named.name == WEIGHTS_NAME
                                           else named.name)
    if str(args.source) in MODEL_NAMES and not args.source.exists():
        name = str(args.source)
        return (find_cached(f"{URL_BASE}{name}-pytorch_model.bin"),
                find_cached(f"{URL_BASE}{name}-config.json"), name)
    if not args.source.is_dir():
        raise ConversionError(f"{args.source} is not a folder (nor one of "
                              f"{', '.join(MODEL_NAMES)})")
    return (args.source / WEIGHTS_NAME, args.source / CONFIG_NAME,
            args.source.resolve().name)


def load_config(path: Path) -> dict:
    """Reads config.json and checks it is a BigGAN-deep config we support."""
    if not path.is_file():
        raise ConversionError(f"missing config file {path}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConversionError(f"cannot read {path} as JSON: {e}") from None
    if not isinstance(config, dict):
        raise ConversionError(f"{path}: expected a JSON object")
    if missing := CONFIG_KEYS - config.keys():
        raise ConversionError(f"{path}: missing config key(s) {', '.join(sorted(missing))}")
    if extra := config.keys() - CONFIG_KEYS:
        raise ConversionError(f"{path}: unexpected config key(s) {', '.join(sorted(extra))}")

    def positive_int(key: str) -> int:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConversionError(f"{path}: {key} must be a positive integer, got {value!r}")
        return value

    resolution = config["output_dim"]
    if resolution not in STAGE_PLANS or isinstance(resolution, bool):
        raise ConversionError(f"{path}: output_dim {resolution!r} is not one of "
                              f"{', '.join(map(str, STAGE_PLANS))}")
    for key in ("z_dim", "num_classes", "channel_width"):
        positive_int(key)
    if config["channel_width"] % 4:
        raise ConversionError(f"{path}: channel_width {config['channel_width']} is not a "
                              f"multiple of 4 (bottlenecks and attention need whole channels)")
    if positive_int("n_stats") < 2:
        raise ConversionError(f"{path}: n_stats must be at least 2, got {config['n_stats']}")
    eps = config["eps"]
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < math.inf:
        raise ConversionError(f"{path}: eps must be a positive number, got {eps!r}")
    layers = config["layers"]
    plan = STAGE_PLANS[resolution]
    well_formed = isinstance(layers, list) and all(
        isinstance(layer, list) and len(layer) == 3 and isinstance(layer[0], bool)
        for layer in layers)
    if not well_formed or [tuple(layer) for layer in layers] != list(plan):
        raise ConversionError(f"{path}: layers are not BigGAN-deep-{resolution}'s "
                              f"{[list(p) for p in plan]}")
    if config["attention_layer_position"] != ATTENTION_POSITION:
        raise ConversionError(f"{path}: attention_layer_position must be "
                              f"{ATTENTION_POSITION}, got {config['attention_layer_position']!r}")
    return config


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Reads pytorch_model.bin (a pickled state dict of tensors)."""
    return read_state_dict(path, ConversionError)


# ------------------------------------------------------------- conversion --


class StateReader:
    """Takes tensors out of HF's state dict, checking names, shapes and values.

    Every taken key is removed, so that `leftover` lists the keys the
    conversion did not use.
    """

    def __init__(self, state: dict[str, torch.Tensor]):
        self.state = dict(state)

    def take(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """The float32 tensor `name`, which must have `shape` and finite values."""
        if name not in self.state:
            raise ConversionError(f"missing key {name}")
        t = self.state.pop(name)
        if tuple(t.shape) != shape:
            raise ConversionError(f"{name} has shape {list(t.shape)}, expected {list(shape)}")
        if not t.is_floating_point():
            raise ConversionError(f"{name} has dtype {t.dtype}, expected floating point")
        t = t.to(torch.float32)
        if not torch.isfinite(t).all():
            raise ConversionError(f"{name} has non-finite values")
        return t

    def spectral(self, module: str, shape: tuple[int, ...]) -> torch.Tensor:
        """`module`'s weight with spectral norm folded in, as torch computes it
        in eval mode: weight_orig / (u . (W_mat v)) with the stored u and v."""
        weight = self.take(f"{module}.weight_orig", shape)
        u = self.take(f"{module}.weight_u", (shape[0],))
        v = self.take(f"{module}.weight_v", (math.prod(shape[1:]),))
        sigma = torch.dot(u, torch.mv(weight.reshape(shape[0], -1), v))
        if not (torch.isfinite(sigma) and sigma > 0):
            raise ConversionError(f"{module}: spectral norm sigma is {sigma.item()}, "
                                  f"expected a positive number")
        return weight / sigma

    @property
    def leftover(self) -> list[str]:
        """Keys not taken yet."""
        return sorted(self.state)


def convert(state: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    """HF's BigGAN-deep state dict -> our generator's state dict (see the module
    docstring)."""
    ch, z_dim, rows = config["channel_width"], config["z_dim"], config["n_stats"]
    cond = 2 * z_dim
    r = StateReader(state)
    out: dict[str, torch.Tensor] = {}

    out["shared.weight"] = r.take("embeddings.weight", (z_dim, config["num_classes"])).t()

    stem = 16 * ch  # channels of the 4 x 4 stem
    weight = r.spectral("generator.gen_z", (16 * stem, cond))
    bias = r.take("generator.gen_z.bias", (16 * stem,))
    # HF row p*stem + c (NHWC) becomes our row c*16 + p (NCHW).
    out["linear.weight"] = weight.reshape(16, stem, cond).transpose(0, 1).reshape(16 * stem, cond)
    out["linear.bias"] = bias.reshape(16, stem).t().reshape(16 * stem)

    for i, (_, mult_in, mult_out) in enumerate(STAGE_PLANS[config["output_dim"]]):
        hf, ours = hf_layer_module(i), our_block_prefix(i)
        c_in, c_out = ch * mult_in, ch * mult_out
        mid = c_in // 4
        for j, c in enumerate((c_in, mid, mid, mid)):
            bn, our_bn = f"{hf}.bn_{j}", f"{ours}.bn{j + 1}"
            out[f"{our_bn}.gain.weight"] = r.spectral(f"{bn}.scale", (c, cond))
            out[f"{our_bn}.bias.weight"] = r.spectral(f"{bn}.offset", (c, cond))
            out[f"{our_bn}.stored_mean"] = r.take(f"{bn}.running_means", (rows, c))
            out[f"{our_bn}.stored_var"] = r.take(f"{bn}.running_vars", (rows, c))
        for j, (co, ci, k) in enumerate(((mid, c_in, 1), (mid, mid, 3), (mid, mid, 3),
                                         (c_out, mid, 1))):
            conv, our_conv = f"{hf}.conv_{j}", f"{ours}.conv{j + 1}"
            out[f"{our_conv}.weight"] = r.spectral(conv, (co, ci, k, k))
            out[f"{our_conv}.bias"] = r.take(f"{conv}.bias", (co,))

    attn = f"generator.layers.{ATTENTION_POSITION}"
    c = ch * STAGE_PLANS[config["output_dim"]][ATTENTION_POSITION][1]
    for ours, hf, shape in (("theta", "theta", (c // 8, c)), ("phi", "phi", (c // 8, c)),
                            ("g", "g", (c // 2, c)), ("o", "o_conv", (c, c // 2))):
        out[f"{OUR_ATTENTION}.{ours}.weight"] = r.spectral(f"{attn}.snconv1x1_{hf}",
                                                          (*shape, 1, 1))
    # BigGAN-PyTorch keeps gamma as a 0-d tensor; HF stores shape [1].
    out[f"{OUR_ATTENTION}.gamma"] = r.take(f"{attn}.gamma", (1,)).reshape(())

    out["output_layer.0.gain"] = r.take("generator.bn.weight", (ch,))
    out["output_layer.0.bias"] = r.take("generator.bn.bias", (ch,))
    out["output_layer.0.stored_mean"] = r.take("generator.bn.running_means", (rows, ch))
    out["output_layer.0.stored_var"] = r.take("generator.bn.running_vars", (rows, ch))
    # HF computes all ch outputs and keeps the first 3: fold over the full
    # matrix first, then slice.
    out["output_layer.2.weight"] = r.spectral("generator.conv_to_rgb", (ch, ch, 3, 3))[:3]
    out["output_layer.2.bias"] = r.take("generator.conv_to_rgb.bias", (ch,))[:3]

    if r.leftover:
        more = f" (and {len(r.leftover) - 1} more)" if len(r.leftover) > 1 else ""
        raise ConversionError(f"unexpected key {r.leftover[0]}{more}")
    for name, t in out.items():
        if not torch.isfinite(t).all():
            raise ConversionError(f"converted {name} has non-finite values")
    return out


def our_config(config: dict) -> dict:
    """Our model configuration for the checkpoint metadata."""
    return {
        "architecture": "deep",
        "bnEps": config["eps"],
        "classes": config["num_classes"],
        "dimZ": config["z_dim"],
        "discriminatorAttention": [64],
        "discriminatorChannels": config["channel_width"],
        "generatorAttention": [64],
        "generatorChannels": config["channel_width"],
        "hierarchical": False,
        "initialization": {"zeros": {}},
        "resolution": config["output_dim"],
        "sharedDim": config["z_dim"],
        "snEps": config["eps"],
        "spectralNorm": False,
        "statisticsRows": config["n_stats"],
    }


def checkpoint_metadata(config: dict, source: str) -> dict[str, str]:
    """The `__metadata__` map of the converted file."""
    return {
        "format": "biggan-fast checkpoint",
        "source": f"pytorch-pretrained-BigGAN {source}",
        "config": json.dumps(our_config(config), sort_keys=True, separators=(",", ":")),
    }


# ------------------------------------------------------------------- main --


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    """Command-line options (see --help)."""
    p = argparse.ArgumentParser(
        description="Convert pytorch-pretrained-BigGAN BigGAN-deep weights "
                    "(pytorch_model.bin + config.json) to a biggan-fast safetensors "
                    "checkpoint with spectral norm folded in.",
        epilog=HELP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", nargs="?", type=Path, metavar="SOURCE",
                   help="folder with pytorch_model.bin and config.json, or "
                        f"{' / '.join(MODEL_NAMES)} to use the download cache")
    p.add_argument("--weights", type=Path, metavar="FILE",
                   help="the pytorch_model.bin file (instead of SOURCE; needs --config)")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="the config.json file (instead of SOURCE; needs --weights)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.safetensors",
                   help="the checkpoint to write")
    return p.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    """Converts; prints a summary line, or one error line and returns 1."""
    args = parse_args(argv)
    try:
        weights, config_path, source = resolve_inputs(args)
        config = load_config(config_path)
        tensors = convert(load_weights(weights), config)
        try:
            size = write_safetensors(args.out, tensors, checkpoint_metadata(config, source))
        except OSError as e:
            raise ConversionError(f"cannot write {args.out}: {e.strerror or e}") from None
    except ConversionError as e:
        print(f"convert_pretrained.py: error: {e}", file=sys.stderr)
        return 1
    parameters = sum(t.numel() for t in tensors.values())
    print(f"wrote {args.out}: BigGAN-deep {config['output_dim']} px, {len(tensors)} tensors, "
          f"{parameters:,} parameters, {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
