"""The FID Inception-v3 in PyTorch, with an optional reduced width.

This is the Inception-v3 of TensorFlow's 2015-12-05 graph
(`inception-2015-12-05.tgz`, the network of the original FID, IS and KID
code) as pytorch-fid and torch-fidelity port it:

* 1008 classes, no auxiliary head;
* every convolution has no bias and is followed by batch norm with eps 1e-3
  (running statistics, inference only) and ReLU;
* the patched blocks of the TF graph: the average pools of the branch_pool
  of the A, C and first E blocks (Mixed_5b-d, Mixed_6b-e, Mixed_7b) are 3x3,
  stride 1, pad 1 with count_include_pad=False (TF's average pool does not
  count the padding), and the last E block (Mixed_7c) takes a 3x3 max pool,
  stride 1, pad 1 in its pool branch;
* pool3 is the global average of Mixed_7c's output (2048 channels), and
  `logits_unbiased` is pool3 @ fc.weight^T without the bias, as
  torch-fidelity's `FeatureExtractorInceptionV3` with features
  ['2048', 'logits_unbiased'] returns them.

The state-dict names are torch-fidelity's, which are also those of
pytorch-fid's weights file (torchvision's Inception3 names):
`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_var`, ...,
`fc.weight`, `fc.bias`: 94 convolutions x (conv.weight, bn.weight, bn.bias,
bn.running_mean, bn.running_var) + fc = 472 tensors, no num_batches_tracked.

`FIDInceptionV3(width_divisor=d)` divides every convolution's channel count
by d (the input's 3 channels stay), so pool3 has 2048 / d features; fc stays
at 1008 classes ([1008, 2048 / d]). d = 1 is the real network; the reduced
ones hold random weights for small test fixtures.

`model(images, resize)` takes uint8 NCHW RGB images of any size and one of
three input pipelines, and returns (pool3 [N, 2048/d], logits_unbiased
[N, 1008]), both float32:

* `tf`: torch-fidelity's: float32, `interpolate_bilinear_2d_like_tensorflow1x`
  to 299 x 299 (TF 1.x bilinear, align_corners=False: source coordinate
  x_out * (in / out) with the scale rounded to float32, no half-pixel
  offset, the upper neighbour clamped to the edge), then (x - 128) / 128;
* `clean`: clean-fid's: each channel as a float32 PIL image (mode 'F')
  resized to 299 x 299 with PIL's bicubic filter (antialiased when
  shrinking), clipped to 0..255 and not quantised
  (`make_resizer('PIL', False, 'bicubic', (299, 299))`), then
  (x - 128) / 128;
* `pytorch-fid`: pytorch-fid's `InceptionV3(resize_input=True,
  normalize_input=True)` on `ToTensor()` images: x / 255,
  `F.interpolate(size=(299, 299), mode='bilinear', align_corners=False)`,
  then 2x - 1.

`random_fid_inception(d, seed, calibration)` makes a model with random
weights whose activations stay in a realistic range through all 94 layers
(the batch-norm statistics are measured on calibration images, then
perturbed), for the fixtures and the parity checks. Needs torch; the clean
resize also needs numpy and Pillow (imported when used).
"""

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SIZE = 299
CLASSES = 1008
FEATURES = 2048
BN_EPS = 1e-3
RESIZE_MODES = ("tf", "clean", "pytorch-fid")


class BatchNorm(nn.BatchNorm2d):
    """Inference batch norm with eps 1e-3 and no num_batches_tracked buffer
    (the state dict has weight, bias, running_mean and running_var only)."""

    def __init__(self, channels: int):
        super().__init__(channels, eps=BN_EPS)
        self.register_buffer("num_batches_tracked", None)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        # A plain dict has no version metadata, for which BatchNorm2d would
        # insert a num_batches_tracked entry; version 2 skips that.
        super()._load_from_state_dict(state_dict, prefix, {**local_metadata, "version": 2},
                                      *args)


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = BatchNorm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_no_pad(x: torch.Tensor) -> torch.Tensor:
    """TF's 3x3 stride-1 average pool: the padding is not counted."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """Mixed_5b-d (patched: average pool without the padding)."""

    def __init__(self, c_in: int, pool_features: int, w):
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, w(64), kernel_size=1)
        self.branch5x5_1 = BasicConv2d(c_in, w(48), kernel_size=1)
        self.branch5x5_2 = BasicConv2d(w(48), w(64), kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, w(64), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(w(64), w(96), kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(w(96), w(96), kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(c_in, w(pool_features), kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """Mixed_6a (grid reduction 35 -> 17)."""

    def __init__(self, c_in: int, w):
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, w(384), kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, w(64), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(w(64), w(96), kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(w(96), w(96), kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, bd, bp], 1)


class InceptionC(nn.Module):
    """Mixed_6b-e (patched: average pool without the padding)."""

    def __init__(self, c_in: int, channels_7x7: int, w):
        super().__init__()
        c7 = w(channels_7x7)
        self.branch1x1 = BasicConv2d(c_in, w(192), kernel_size=1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, w(192), kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, w(192), kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c_in, w(192), kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """Mixed_7a (grid reduction 17 -> 8)."""

    def __init__(self, c_in: int, w):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, w(192), kernel_size=1)
        self.branch3x3_2 = BasicConv2d(w(192), w(320), kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, w(192), kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(w(192), w(192), kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(w(192), w(192), kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(w(192), w(192), kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for layer in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3,
                      self.branch7x7x3_4):
            b7 = layer(b7)
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class InceptionE(nn.Module):
    """Mixed_7b (`max_pool=False`: average pool without the padding) and
    Mixed_7c (`max_pool=True`: 3x3 max pool, stride 1, pad 1)."""

    def __init__(self, c_in: int, w, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(c_in, w(320), kernel_size=1)
        self.branch3x3_1 = BasicConv2d(c_in, w(384), kernel_size=1)
        self.branch3x3_2a = BasicConv2d(w(384), w(384), kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(w(384), w(384), kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, w(448), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(w(448), w(384), kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(w(384), w(384), kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(w(384), w(384), kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, w(192), kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.max_pool:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _avg_pool_no_pad(x)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """The FID Inception-v3 (see the module docstring); every channel count
    divided by `width_divisor`."""

    def __init__(self, width_divisor: int = 1):
        super().__init__()
        d = width_divisor
        if d < 1:
            raise ValueError(f"width_divisor must be at least 1, got {d}")

        def w(n: int) -> int:
            if n % d:
                raise ValueError(f"width_divisor {d} does not divide the channel count {n}")
            return n // d

        self.width_divisor = d
        self.Conv2d_1a_3x3 = BasicConv2d(3, w(32), kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(w(32), w(32), kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(w(32), w(64), kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(w(64), w(80), kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(w(80), w(192), kernel_size=3)
        self.Mixed_5b = InceptionA(w(192), 32, w)
        self.Mixed_5c = InceptionA(w(256), 64, w)
        self.Mixed_5d = InceptionA(w(288), 64, w)
        self.Mixed_6a = InceptionB(w(288), w)
        self.Mixed_6b = InceptionC(w(768), 128, w)
        self.Mixed_6c = InceptionC(w(768), 160, w)
        self.Mixed_6d = InceptionC(w(768), 160, w)
        self.Mixed_6e = InceptionC(w(768), 192, w)
        self.Mixed_7a = InceptionD(w(768), w)
        self.Mixed_7b = InceptionE(w(1280), w, max_pool=False)
        self.Mixed_7c = InceptionE(w(2048), w, max_pool=True)
        self.fc = nn.Linear(w(FEATURES), CLASSES)
        self.eval()

    @property
    def features(self) -> int:
        """The width of pool3."""
        return FEATURES // self.width_divisor

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """pool3 [N, 2048/d] of normalised 299 x 299 float inputs [N, 3, 299, 299]."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a,
                      self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e,
                      self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)

    def forward(self, images: torch.Tensor, resize: str = "tf"
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(pool3, logits_unbiased) of uint8 NCHW RGB images under `resize`."""
        with torch.no_grad():
            x = preprocess(images, resize)
            pool3 = self.pool3(x.to(self.fc.weight.dtype))
            logits = pool3.mm(self.fc.weight.T)
        return pool3.float(), logits.float()


# ------------------------------------------------------------- resizing --


def resize_tf(x: torch.Tensor, size: int = IMAGE_SIZE) -> torch.Tensor:
    """torch-fidelity's `interpolate_bilinear_2d_like_tensorflow1x(x,
    size=(size, size), align_corners=False)` ("slow", the default method):
    TF 1.x bilinear resize of float NCHW images."""
    h, w = x.shape[2], x.shape[3]

    def grid(n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # Python's float division, rounded to float32, times a float32 arange.
        pos = torch.arange(0, size, 1, dtype=x.dtype) * torch.tensor(n_in / size,
                                                                     dtype=torch.float32)
        lo = pos.long()
        return lo, (lo + 1).clamp_max(n_in - 1), pos - lo.float()

    y_lo, y_hi, dy = grid(h)
    x_lo, x_hi, dx = grid(w)
    top, bottom = x[:, :, y_lo, :], x[:, :, y_hi, :]
    in_00, in_01 = top[:, :, :, x_lo], top[:, :, :, x_hi]
    in_10, in_11 = bottom[:, :, :, x_lo], bottom[:, :, :, x_hi]
    in_0 = in_00 + (in_01 - in_00) * dx.view(1, 1, 1, size)
    in_1 = in_10 + (in_11 - in_10) * dx.view(1, 1, 1, size)
    return in_0 + (in_1 - in_0) * dy.view(1, 1, size, 1)


def resize_clean(images: torch.Tensor, size: int = IMAGE_SIZE) -> torch.Tensor:
    """clean-fid's resize of uint8 NCHW images to float32 [N, 3, size, size]:
    per channel, a float32 PIL image (mode 'F') resized with BICUBIC,
    clipped to 0..255 (clean-fid's `make_resizer('PIL', False, 'bicubic',
    (size, size))`)."""
    import numpy as np
    from PIL import Image

    def channel(a: "np.ndarray") -> "np.ndarray":
        a = a.astype(np.float32)
        try:
            img = Image.fromarray(a, mode="F")
        except TypeError:  # a Pillow without the mode argument
            img = Image.fromarray(a)
        out = img.resize((size, size), resample=Image.BICUBIC)
        return np.asarray(out).clip(0, 255).astype(np.float32)

    arrays = images.cpu().numpy()
    out = np.stack([np.stack([channel(img[c]) for c in range(3)]) for img in arrays])
    return torch.from_numpy(out)


def preprocess(images: torch.Tensor, resize: str) -> torch.Tensor:
    """uint8 NCHW RGB images -> the network's float32 input [N, 3, 299, 299]."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected uint8 images [N, 3, H, W], got {images.dtype} "
                         f"{list(images.shape)}")
    if resize == "tf":
        return (resize_tf(images.to(torch.float32)) - 128) / 128
    if resize == "clean":
        return (resize_clean(images) - 128) / 128
    if resize == "pytorch-fid":
        x = images.to(torch.float32) / 255
        x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear",
                          align_corners=False)
        return 2 * x - 1
    raise ValueError(f"unknown resize mode {resize!r}; expected one of "
                     f"{', '.join(RESIZE_MODES)}")


# --------------------------------------------------------- random models --


def conv_layers(model: FIDInceptionV3) -> list[tuple[str, BasicConv2d]]:
    """The 94 BasicConv2d layers with their names, in forward order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, BasicConv2d)]


def random_fid_inception(width_divisor: int, seed: int, calibration: torch.Tensor,
                         resize: str = "tf", logit_scale: float = 4.0) -> FIDInceptionV3:
    """A model with random weights whose activations stay O(1) in every layer.

    Convolution weights are He-normal. The batch norms' running statistics
    are measured on `calibration` (uint8 images, fed through `resize`), one
    layer after the other in a single forward pass, and then perturbed:
    running_mean = mean + 0.1 std N(0, 1), running_var = var exp(0.2 N(0, 1))
    (positive), gamma = U(0.7, 1.3), beta = 0.8 + 0.2 N(0, 1). So each
    layer's output is about ReLU(N(beta, gamma^2)) on images like the
    calibration set (about a fifth of it cut by the ReLU), and pool3 features
    are O(0.1-3). The positive beta keeps the narrow layers of reduced widths
    alive (the stem has 2 channels at width divisor 16) on images whose
    colours differ from the calibration set's mean. fc.weight is N(0, 1) *
    logit_scale / sqrt(2048/d) and fc.bias 0.1 N(0, 1), so the logits of one
    image spread over several units.
    """
    gen = torch.Generator().manual_seed(seed)
    model = FIDInceptionV3(width_divisor)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen)

    layers = conv_layers(model)
    with torch.no_grad():
        for _, layer in layers:
            wt = layer.conv.weight
            fan_in = wt.shape[1] * wt.shape[2] * wt.shape[3]
            wt.copy_(normal(*wt.shape) * (2.0 / fan_in) ** 0.5)
            c = wt.shape[0]
            layer.bn.weight.copy_(0.7 + 0.6 * torch.rand(c, generator=gen))
            layer.bn.bias.copy_(0.8 + 0.2 * normal(c))
        model.fc.weight.copy_(normal(CLASSES, model.features) * logit_scale
                              / model.features ** 0.5)
        model.fc.bias.copy_(0.1 * normal(CLASSES))

    def calibrate(layer: BasicConv2d):
        def hook(_module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
            mean = out.mean(dim=(0, 2, 3))
            var = out.var(dim=(0, 2, 3), unbiased=False).clamp_min(1e-4)
            c = mean.shape[0]
            layer.bn.running_mean.copy_(mean + 0.1 * var.sqrt() * normal(c))
            layer.bn.running_var.copy_(var * torch.exp(0.2 * normal(c)))
        return hook

    handles = [layer.conv.register_forward_hook(calibrate(layer)) for _, layer in layers]
    try:
        model(calibration, resize)
    finally:
        for h in handles:
            h.remove()
    return model


def load_state(model: FIDInceptionV3, state: dict[str, torch.Tensor]) -> FIDInceptionV3:
    """Loads a state dict with our names (strict) and returns the model."""
    model.load_state_dict(state, strict=True)
    return model.eval()


def activation_report(model: FIDInceptionV3, images: torch.Tensor,
                      resize: str = "tf") -> dict[str, float]:
    """Smallest and largest per-layer RMS of the 94 layers' outputs, and the
    pool3 and logit ranges, for checking that nothing vanishes or explodes."""
    rms: list[float] = []
    handles = [layer.register_forward_hook(
        lambda _m, _i, out: rms.append(out.pow(2).mean().sqrt().item()))
        for _, layer in conv_layers(model)]
    try:
        pool3, logits = model(images, resize)
    finally:
        for h in handles:
            h.remove()
    return {"layer_rms_min": min(rms), "layer_rms_max": max(rms),
            "pool3_min": pool3.min().item(), "pool3_max": pool3.max().item(),
            "pool3_mean": pool3.mean().item(),
            "logit_std_per_image": logits.std(dim=1).mean().item(),
            "logit_std_across_images": logits.std(dim=0).mean().item()}

