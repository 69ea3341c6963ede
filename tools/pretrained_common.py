"""What the pytorch-pretrained-BigGAN tools share, needing only PyTorch.

`convert_pretrained.py` imports this module, so it must not import anything
beyond PyTorch and the standard library. It holds:

* the BigGAN-deep stage plans (`STAGE_PLANS`, `ATTENTION_POSITION`) and how
  a config layer maps to pytorch-pretrained-BigGAN's module index
  (`hf_layer_module`) and to our BigGAN-PyTorch-style block prefix
  (`our_block_prefix`, `OUR_ATTENTION`);
* a hand-written safetensors writer (`write_safetensors`), used for the
  converted checkpoint and for the test fixture;
* `run_converter`, which runs `convert_pretrained.py` as a subprocess, the
  way a user does.

The helpers that need pytorch-pretrained-BigGAN itself (random valid models,
noise, class vectors) are in `pretrained_hf.py`.
"""

import ctypes
import json
import struct
import subprocess
import sys
from pathlib import Path

import torch

TOOLS = Path(__file__).resolve().parent
CONVERTER = TOOLS / "convert_pretrained.py"

#: BigGAN-deep config layers (upsample, in multiplier, out multiplier) per
#: output resolution, as pytorch-pretrained-BigGAN's released configs have them.
_PLAN_128 = ((False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8),
             (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2),
             (False, 2, 2), (True, 2, 1))
_PLAN_256 = _PLAN_128[:4] + ((False, 8, 8), (True, 8, 8)) + _PLAN_128[4:]
STAGE_PLANS: dict[int, tuple[tuple[bool, int, int], ...]] = {
    128: _PLAN_128,
    256: _PLAN_256,
    512: _PLAN_256 + ((False, 1, 1), (True, 1, 1)),
}
#: The self-attention sits before this config layer (64 x 64 activations).
ATTENTION_POSITION = 8
#: Our name of the attention layer: after the last block of stage 3.
OUR_ATTENTION = "blocks.3.2"


def hf_layer_module(i: int) -> str:
    """pytorch-pretrained-BigGAN's module of config layer `i` (0-based): the
    attention takes module index ATTENTION_POSITION, later layers shift by one."""
    return f"generator.layers.{i + (1 if i >= ATTENTION_POSITION else 0)}"


def our_block_prefix(i: int) -> str:
    """Our name of config layer `i`: two blocks per stage, `blocks.STAGE.INDEX`."""
    return f"blocks.{i // 2}.{i % 2}"


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor],
                      metadata: dict[str, str]) -> int:
    """Writes `tensors` as float32 to a safetensors file; returns its size.

    Layout: an 8-byte little-endian header length, the JSON header (each
    tensor's dtype "F32", shape and data_offsets, plus "__metadata__", a
    string-to-string map), padded with spaces to a multiple of 8 bytes, then
    the little-endian data of the tensors in sorted name order, contiguous.
    """
    if sys.byteorder != "little":
        raise RuntimeError("writing safetensors needs a little-endian machine")
    header: dict[str, object] = {"__metadata__": dict(metadata)}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(device="cpu", dtype=torch.float32).contiguous()
        size = t.numel() * t.element_size()
        # ctypes copies the bytes in one go; bytes(storage) goes element by element.
        blobs.append(ctypes.string_at(t.data_ptr(), size) if size else b"")
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    return 8 + len(text) + offset


def run_converter(source: Path, out: Path) -> str:
    """Runs `convert_pretrained.py SOURCE --out OUT` with this Python; returns
    its summary line. Raises RuntimeError with its error output on failure."""
    proc = subprocess.run([sys.executable, str(CONVERTER), str(source), "--out", str(out)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"convert_pretrained.py failed: "
                           f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip()


def read_state_dict(path: Path, error: type) -> dict:
    """Reads a pickled state dict of named tensors (torch.load, weights_only), unwrapping
    a {"state_dict": ...} checkpoint; raises `error` with one line naming the file."""
    if not path.is_file():
        raise error(f"missing weights file {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a bad file
        raise error(f"cannot read {path} as a PyTorch state dict of tensors "
                    f"(torch.load with weights_only=True: {type(e).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise error(f"{path} does not hold a state dict of named tensors")
    return dict(state)
