"""Compact PyTorch reference of BigGAN (generator + discriminator).

Independent re-implementation that follows the semantics of
ajbrock/BigGAN-PyTorch (``BigGAN.py`` / ``layers.py``, as summarised in
``biggan-reference.md`` section 1) and reproduces its ``state_dict`` names, so
that a BigGAN-PyTorch checkpoint loads into these modules one to one and vice
versa.  Only the configuration used by the BigGAN launch scripts is covered:
spectral norm with one singular vector and one power iteration, plain
``F.batch_norm`` (no ``--mybn``, no cross-replica BN), ``norm_style='bn'``.

Semantics, in one place (all layouts PyTorch NCHW / OIHW):

Spectral norm (every conv and linear of G and D, and D's class embedding;
not G's shared embedding).  Buffers ``u0`` [1, out] (init randn) and ``sv0``
[1] (init 1, for logging only).  On *every* forward, with W = weight.view(out, -1):
    (no grad)  v = normalize(u0 W),  u = normalize(v W^T)
               if training: u0 <- u
    sigma = v W^T u^T          (differentiable in W; u, v are constants)
    if training: sv0 <- sigma  (no grad)
    W_sn = weight / sigma
``normalize(x) = x / max(||x||_2, eps)`` (``F.normalize``).  Note that eval mode
still runs the power step from the stored u0 -- it just does not write it back.

Conditional BN (``ccbn``): gain = 1 + L_g(c), bias = L_b(c) with L_g, L_b
SNLinear without bias (shared embedding) or nn.Embedding lookups (no shared
embedding); out = F.batch_norm(x, stored_mean, stored_var, None, None,
training, 0.1, eps) * gain + bias.  No shared embedding with hier, which
BigGAN-PyTorch cannot build (its ccbn would embed cat([y, z_chunk])): the
norm's condition is (y, z_chunk) and gain = 1 + E_g(y) + L_gz(z_chunk),
bias = E_b(y) + L_bz(z_chunk), with the embeddings under the reference's
names ``gain`` / ``bias`` and the SNLinear maps (no bias) as ``gain_z`` /
``bias_z``: Linear([onehot(y), z_chunk]) with the one-hot block not
spectrally normalised.  Training mode normalises with the biased
batch variance and updates stored_var with the *unbiased* one (PyTorch's rule).

Unconditional BN (``bn``, G output layer): F.batch_norm(x, stored_mean,
stored_var, gain, bias, training, 0.1, eps); gain init 1, bias init 0.
"""

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import init

# --------------------------------------------------------------------------
# Architecture tables (BigGAN-PyTorch G_arch / D_arch)
# --------------------------------------------------------------------------


def _attn_set(attention):
    return {int(item) for item in str(attention).split('_')}


def G_arch(ch, attention='64'):
    mult = {
        32: ([4, 4, 4], [4, 4, 4]),
        64: ([16, 16, 8, 4], [16, 8, 4, 2]),
        128: ([16, 16, 8, 4, 2], [16, 8, 4, 2, 1]),
        256: ([16, 16, 8, 8, 4, 2], [16, 8, 8, 4, 2, 1]),
        512: ([16, 16, 8, 8, 4, 2, 1], [16, 8, 8, 4, 2, 1, 1]),
    }
    attn = _attn_set(attention)
    arch = {}
    for res, (ins, outs) in mult.items():
        n = len(outs)
        resolution = [8 * 2 ** i for i in range(n)]  # every block upsamples x2 from 4x4
        arch[res] = {
            'in_channels': [ch * m for m in ins],
            'out_channels': [ch * m for m in outs],
            'upsample': [True] * n,
            'resolution': resolution,
            'attention': [r in attn for r in resolution],
        }
    return arch


def D_arch(ch, attention='64'):
    # The 32 px 'resolution' list is BigGAN-PyTorch's own ([16]*4, although the real
    # output sizes are 16, 8, 8, 8).  It is copied as is because it decides where
    # attention goes; it does not matter when D_attn is '0'.
    table = {
        32: ([4, 4, 4, 4], [True, True, False, False], [16, 16, 16, 16]),
        64: ([1, 2, 4, 8, 16], [True] * 4 + [False], [32, 16, 8, 4, 4]),
        128: ([1, 2, 4, 8, 16, 16], [True] * 5 + [False], [64, 32, 16, 8, 4, 4]),
        256: ([1, 2, 4, 8, 8, 16, 16], [True] * 6 + [False], [128, 64, 32, 16, 8, 4, 4]),
    }
    attn = _attn_set(attention)
    arch = {}
    for res, (outs, down, resolution) in table.items():
        out_ch = [ch * m for m in outs]
        arch[res] = {
            'in_channels': [3] + out_ch[:-1],
            'out_channels': out_ch,
            'downsample': down,
            'resolution': resolution,
            'attention': [r in attn for r in resolution],
        }
    return arch


# --------------------------------------------------------------------------
# Spectral norm
# --------------------------------------------------------------------------


class SpectralNormMixin:
    """One-vector, one-iteration spectral norm with BigGAN-PyTorch's buffers."""

    def _init_sn(self, num_outputs, eps):
        self.sn_eps = eps
        self.register_buffer('u0', torch.randn(1, num_outputs))
        self.register_buffer('sv0', torch.ones(1))
        # When not None: (u, v) reused instead of a new power step and nothing is
        # written back.  Only for finite-difference checks (see make_fixtures.py).
        self.frozen_uv = None
        self.record_uv = False
        self.last_uv = None

    def sn_weight(self):
        W = self.weight.view(self.weight.size(0), -1)
        if self.frozen_uv is not None:
            u, v = self.frozen_uv
        else:
            with torch.no_grad():
                v = F.normalize(torch.matmul(self.u0, W), dim=1, eps=self.sn_eps)
                u = F.normalize(torch.matmul(v, W.t()), dim=1, eps=self.sn_eps)
                if self.training:
                    self.u0.copy_(u)
            if self.record_uv:
                self.last_uv = (u.clone(), v.clone())
        sigma = torch.matmul(torch.matmul(v, W.t()), u.t()).squeeze()
        if self.training and self.frozen_uv is None:
            with torch.no_grad():
                self.sv0.copy_(sigma.detach().reshape(1))
        return self.weight / sigma


class SNConv2d(nn.Conv2d, SpectralNormMixin):
    def __init__(self, in_ch, out_ch, kernel_size=3, padding=1, bias=True, eps=1e-12):
        nn.Conv2d.__init__(self, in_ch, out_ch, kernel_size, padding=padding, bias=bias)
        self._init_sn(out_ch, eps)

    def forward(self, x):
        return F.conv2d(x, self.sn_weight(), self.bias, self.stride, self.padding)


class SNLinear(nn.Linear, SpectralNormMixin):
    def __init__(self, in_f, out_f, bias=True, eps=1e-12):
        nn.Linear.__init__(self, in_f, out_f, bias=bias)
        self._init_sn(out_f, eps)

    def forward(self, x):
        return F.linear(x, self.sn_weight(), self.bias)


class SNEmbedding(nn.Embedding, SpectralNormMixin):
    """Spectral norm over the whole [num_embeddings, dim] matrix; u0 is [1, num_embeddings]."""

    def __init__(self, num_embeddings, dim, eps=1e-12):
        nn.Embedding.__init__(self, num_embeddings, dim)
        self._init_sn(num_embeddings, eps)

    def forward(self, idx):
        return F.embedding(idx, self.sn_weight())


def sn_modules(model):
    return [m for m in model.modules() if isinstance(m, SpectralNormMixin)]


# --------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------


class CondBN(nn.Module):
    """BigGAN-PyTorch ``ccbn`` (norm_style 'bn', no mybn / cross-replica)."""

    def __init__(self, num_channels, cond_size, which_linear, eps=1e-5, momentum=0.1,
                 z_size=0, which_z_linear=None):
        super().__init__()
        self.gain = which_linear(cond_size, num_channels)
        self.bias = which_linear(cond_size, num_channels)
        self.z_size = z_size
        if z_size:
            self.gain_z = which_z_linear(z_size, num_channels)
            self.bias_z = which_z_linear(z_size, num_channels)
        self.eps, self.momentum = eps, momentum
        self.register_buffer('stored_mean', torch.zeros(num_channels))
        self.register_buffer('stored_var', torch.ones(num_channels))

    def forward(self, x, c):
        if self.z_size:             # c = (class indices, z chunk)
            y, z = c
            g, b = self.gain(y) + self.gain_z(z), self.bias(y) + self.bias_z(z)
        else:
            g, b = self.gain(c), self.bias(c)
        gain = (1 + g).view(g.size(0), -1, 1, 1)
        bias = b.view(b.size(0), -1, 1, 1)
        out = F.batch_norm(x, self.stored_mean, self.stored_var, None, None,
                           self.training, self.momentum, self.eps)
        return out * gain + bias


class BN(nn.Module):
    """BigGAN-PyTorch ``bn``: unconditional BN with learnable gain / bias."""

    def __init__(self, num_channels, eps=1e-5, momentum=0.1):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps, self.momentum = eps, momentum
        self.register_buffer('stored_mean', torch.zeros(num_channels))
        self.register_buffer('stored_var', torch.ones(num_channels))

    def forward(self, x, c=None):
        return F.batch_norm(x, self.stored_mean, self.stored_var, self.gain, self.bias,
                            self.training, self.momentum, self.eps)


# --------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------


class Attention(nn.Module):
    """SA-GAN non-local block: no 1/sqrt(d), keys/values max-pooled 2x2, gamma init 0."""

    def __init__(self, ch, which_conv):
        super().__init__()
        self.ch = ch
        self.theta = which_conv(ch, ch // 8, kernel_size=1, padding=0, bias=False)
        self.phi = which_conv(ch, ch // 8, kernel_size=1, padding=0, bias=False)
        self.g = which_conv(ch, ch // 2, kernel_size=1, padding=0, bias=False)
        self.o = which_conv(ch // 2, ch, kernel_size=1, padding=0, bias=False)
        self.gamma = nn.Parameter(torch.tensor(0.))

    def forward(self, x, c=None):
        B, C, H, W = x.shape
        theta = self.theta(x).view(B, C // 8, H * W)
        phi = F.max_pool2d(self.phi(x), [2, 2]).view(B, C // 8, H * W // 4)
        g = F.max_pool2d(self.g(x), [2, 2]).view(B, C // 2, H * W // 4)
        beta = F.softmax(torch.bmm(theta.transpose(1, 2), phi), dim=-1)  # [B, HW, HW/4]
        o = self.o(torch.bmm(g, beta.transpose(1, 2)).view(B, C // 2, H, W))
        return self.gamma * o + x


class GBlock(nn.Module):
    def __init__(self, in_ch, out_ch, which_conv, which_bn):
        super().__init__()
        self.conv1 = which_conv(in_ch, out_ch)
        self.conv2 = which_conv(out_ch, out_ch)
        # Every G block upsamples, so the skip is always learnable.
        self.conv_sc = which_conv(in_ch, out_ch, kernel_size=1, padding=0)
        self.bn1 = which_bn(in_ch)
        self.bn2 = which_bn(out_ch)

    def forward(self, x, c):
        h = F.relu(self.bn1(x, c))
        h = F.interpolate(h, scale_factor=2)  # mode 'nearest'
        x = F.interpolate(x, scale_factor=2)
        h = self.conv1(h)
        h = F.relu(self.bn2(h, c))
        h = self.conv2(h)
        return h + self.conv_sc(x)


class DBlock(nn.Module):
    def __init__(self, in_ch, out_ch, which_conv, preactivation, downsample):
        super().__init__()
        self.preactivation, self.downsample = preactivation, downsample
        self.conv1 = which_conv(in_ch, out_ch)   # wide D: hidden = out
        self.conv2 = which_conv(out_ch, out_ch)
        self.learnable_sc = (in_ch != out_ch) or downsample
        if self.learnable_sc:
            self.conv_sc = which_conv(in_ch, out_ch, kernel_size=1, padding=0)

    def shortcut(self, x):
        if self.preactivation:          # conv, then pool
            if self.learnable_sc:
                x = self.conv_sc(x)
            if self.downsample:
                x = F.avg_pool2d(x, 2)
        else:                           # first block: pool, then conv
            if self.downsample:
                x = F.avg_pool2d(x, 2)
            if self.learnable_sc:
                x = self.conv_sc(x)
        return x

    def forward(self, x):
        # Out-of-place pre-activation: the skip sees the raw x (BigGAN-PyTorch uses F.relu(x)
        # here explicitly, whatever --D_nl says).
        h = F.relu(x) if self.preactivation else x
        h = self.conv1(h)
        h = self.conv2(F.relu(h))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        return h + self.shortcut(x)


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


def _ortho_init(model):
    """BigGAN-PyTorch init_weights('ortho'): orthogonal_ on every Conv/Linear/Embedding weight
    (biases keep PyTorch's default uniform init)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            init.orthogonal_(m.weight)


class Generator(nn.Module):
    def __init__(self, resolution=128, G_ch=64, dim_z=128, n_classes=1000, shared_dim=0,
                 G_shared=True, hier=False, G_attn='64', BN_eps=1e-5, SN_eps=1e-12,
                 bottom_width=4, skip_init=False):
        super().__init__()
        self.arch = G_arch(G_ch, G_attn)[resolution]
        self.bottom_width = bottom_width
        self.G_shared, self.hier = G_shared, hier
        self.shared_dim = shared_dim if shared_dim > 0 else dim_z
        n_blocks = len(self.arch['out_channels'])
        if hier:
            self.num_slots = n_blocks + 1
            self.z_chunk_size = dim_z // self.num_slots
            self.dim_z = self.z_chunk_size * self.num_slots  # rounded down, as in BigGAN-PyTorch
        else:
            self.num_slots, self.z_chunk_size, self.dim_z = 1, 0, dim_z

        which_conv = functools.partial(SNConv2d, kernel_size=3, padding=1, eps=SN_eps)
        which_linear = functools.partial(SNLinear, eps=SN_eps)
        if G_shared:
            bn_linear = functools.partial(SNLinear, bias=False, eps=SN_eps)
            cond_size = self.shared_dim + self.z_chunk_size
        else:
            bn_linear = nn.Embedding          # gain/bias are per-class lookups
            cond_size = n_classes
        # Without a shared embedding, hier adds SNLinear maps of the z chunk.
        z_size = self.z_chunk_size if hier and not G_shared else 0
        which_bn = functools.partial(CondBN, cond_size=cond_size, which_linear=bn_linear,
                                     eps=BN_eps, z_size=z_size,
                                     which_z_linear=functools.partial(SNLinear, bias=False,
                                                                      eps=SN_eps))

        self.shared = nn.Embedding(n_classes, self.shared_dim) if G_shared else nn.Identity()
        self.linear = which_linear(self.dim_z // self.num_slots,
                                   self.arch['in_channels'][0] * bottom_width ** 2)
        blocks = []
        for i in range(n_blocks):
            blocklist = [GBlock(self.arch['in_channels'][i], self.arch['out_channels'][i],
                                which_conv, which_bn)]
            if self.arch['attention'][i]:
                blocklist.append(Attention(self.arch['out_channels'][i], which_conv))
            blocks.append(nn.ModuleList(blocklist))
        self.blocks = nn.ModuleList(blocks)
        self.output_layer = nn.Sequential(
            BN(self.arch['out_channels'][-1], eps=BN_eps),
            nn.ReLU(),
            which_conv(self.arch['out_channels'][-1], 3))
        if not skip_init:
            _ortho_init(self)

    def forward(self, z, y):
        """z: [B, dim_z]; y: int64 class indices [B] (embedded here by ``shared``)."""
        y = self.shared(y)
        if self.hier:
            zs = torch.split(z, self.z_chunk_size, 1)
            z = zs[0]
            if self.G_shared:
                cs = [torch.cat([y, item], 1) for item in zs[1:]]   # embedding FIRST
            else:
                cs = [(y, item) for item in zs[1:]]
        else:
            cs = [y] * len(self.blocks)
        h = self.linear(z)
        h = h.view(h.size(0), -1, self.bottom_width, self.bottom_width)  # NCHW [B,16ch,4,4]
        for i, blocklist in enumerate(self.blocks):
            for block in blocklist:
                h = block(h, cs[i])
        return torch.tanh(self.output_layer(h))


class Discriminator(nn.Module):
    def __init__(self, resolution=128, D_ch=64, n_classes=1000, D_attn='64', SN_eps=1e-12,
                 output_dim=1, skip_init=False):
        super().__init__()
        self.arch = D_arch(D_ch, D_attn)[resolution]
        which_conv = functools.partial(SNConv2d, kernel_size=3, padding=1, eps=SN_eps)
        blocks = []
        for i in range(len(self.arch['out_channels'])):
            blocklist = [DBlock(self.arch['in_channels'][i], self.arch['out_channels'][i],
                                which_conv, preactivation=(i > 0),
                                downsample=self.arch['downsample'][i])]
            if self.arch['attention'][i]:
                blocklist.append(Attention(self.arch['out_channels'][i], which_conv))
            blocks.append(nn.ModuleList(blocklist))
        self.blocks = nn.ModuleList(blocks)
        c_last = self.arch['out_channels'][-1]
        self.linear = SNLinear(c_last, output_dim, eps=SN_eps)
        self.embed = SNEmbedding(n_classes, c_last, eps=SN_eps)
        if not skip_init:
            _ortho_init(self)

    def forward(self, x, y):
        h = x
        for blocklist in self.blocks:
            for block in blocklist:
                h = block(h)
        h = torch.sum(F.relu(h), [2, 3])                     # global SUM pooling
        out = self.linear(h)
        return out + torch.sum(self.embed(y) * h, 1, keepdim=True)   # projection


def count_trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
