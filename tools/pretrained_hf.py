"""pytorch-pretrained-BigGAN helpers for the parity script and the sampling benchmark.

Needs numpy, scipy and pytorch_pretrained_biggan (`pip install
pytorch-pretrained-biggan scipy`; see tools/README.md). It builds BigGAN-deep
models with random but valid weights, saves them as the package stores
released models, and draws inputs the way the package's utilities do.

Why "valid": as built, a random BigGAN-deep outputs NaN in eval mode. Torch's
spectral_norm does no power iteration in eval mode, so the stored u and v
must match the weights, and the final batch norm's weight and bias are
uninitialised. `make_valid` fixes both and also randomises what a trained
model has and a fresh one lacks: per-truncation batch-norm statistics that
differ between rows (so the 51-row interpolation matters) and a nonzero
attention gamma (so attention contributes).
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_pretrained_biggan import BigGAN, BigGANConfig
from pytorch_pretrained_biggan.model import BigGANBatchNorm, SelfAttn
from pytorch_pretrained_biggan.utils import truncated_noise_sample

from pretrained_common import ATTENTION_POSITION, STAGE_PLANS

#: Power iterations run on every spectral-norm layer's stored u and v.
POWER_ITERATIONS = 30
#: Attention gamma of the random models (zero would skip attention).
ATTENTION_GAMMA = 0.7


def hf_config(resolution: int, channel_width: int = 128, z_dim: int = 128,
              num_classes: int = 1000) -> BigGANConfig:
    """The config of BigGAN-deep at `resolution` (released: 128 / 128 / 1000)."""
    return BigGANConfig(output_dim=resolution, z_dim=z_dim, class_embed_dim=z_dim,
                        channel_width=channel_width, num_classes=num_classes,
                        layers=[list(layer) for layer in STAGE_PLANS[resolution]],
                        attention_layer_position=ATTENTION_POSITION, eps=1e-4, n_stats=51)


@torch.no_grad()
def make_valid(model: BigGAN) -> None:
    """Makes a randomly initialised model usable in eval mode (see the module
    docstring). Draws from torch's global generator."""
    for module in model.modules():
        if hasattr(module, "weight_orig"):
            w = module.weight_orig.reshape(module.weight_orig.shape[0], -1)
            u, v = module.weight_u, module.weight_v
            for _ in range(POWER_ITERATIONS):
                v.copy_(F.normalize(w.t() @ u, dim=0, eps=1e-12))
                u.copy_(F.normalize(w @ v, dim=0, eps=1e-12))
        if isinstance(module, BigGANBatchNorm):
            module.running_means.copy_(0.1 * torch.randn_like(module.running_means))
            module.running_vars.uniform_(0.5, 1.5)
            if not module.conditional:
                module.weight.copy_(1 + 0.1 * torch.randn_like(module.weight))
                module.bias.copy_(0.1 * torch.randn_like(module.bias))
        if isinstance(module, SelfAttn):
            module.gamma.fill_(ATTENTION_GAMMA)


def random_model(config: BigGANConfig, seed: int) -> BigGAN:
    """A BigGAN-deep with seeded random, valid weights, in eval mode."""
    torch.manual_seed(seed)
    model = BigGAN(config)
    make_valid(model)
    return model.eval()


def save_folder(model: BigGAN, folder: Path) -> None:
    """Writes `pytorch_model.bin` and `config.json` as the package stores them."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    (folder / "config.json").write_text(model.config.to_json_string(), encoding="utf-8")


def truncated_noise(n: int, z_dim: int, truncation: float, seed: int) -> np.ndarray:
    """float32 [n, z_dim]: truncation * truncnorm(-2, 2), from a seeded
    RandomState, by the package's own `truncated_noise_sample`."""
    return truncated_noise_sample(batch_size=n, dim_z=z_dim, truncation=truncation, seed=seed)


def class_vectors(num_classes: int, n: int, seed: int) -> np.ndarray:
    """float32 [n, num_classes]: even rows one-hot, odd rows a soft mix of
    2 or 3 distinct classes (weights summing to 1), random classes."""
    rng = np.random.RandomState(seed)
    y = np.zeros((n, num_classes), dtype=np.float32)
    for i in range(n):
        if i % 2 == 0:
            y[i, rng.randint(num_classes)] = 1
        else:
            k = min(2 + (i // 2) % 2, num_classes)
            classes = rng.choice(num_classes, size=k, replace=False)
            y[i, classes] = rng.dirichlet(np.ones(k)).astype(np.float32)
    return y


@torch.no_grad()
def forward_nhwc(model: BigGAN, z: np.ndarray, y: np.ndarray, truncation: float) -> np.ndarray:
    """HF's eval-mode output as float32 [n, R, R, 3] (NHWC) in [-1, 1]."""
    out = model(torch.from_numpy(z), torch.from_numpy(y), truncation)
    return out.permute(0, 2, 3, 1).contiguous().numpy()
