#!/usr/bin/env python3
"""Generate PyTorch parity fixtures for biggan-fast.

    python tools/make_fixtures.py            # write Tests/BigGANTests/Fixtures/parity/<config>/
    python tools/make_fixtures.py --check    # self-checks (param counts, SN semantics,
                                             # float64 finite differences, reproducibility)

The model is tools/biggan_reference.py (BigGAN-PyTorch semantics and state_dict
names).  See tools/README.md for what each file holds.
"""

import argparse
import copy
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import biggan_reference as br  # noqa: E402

from safetensors.torch import save_file, load_file  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_ROOT = os.path.join(REPO, 'Tests', 'BigGANTests', 'Fixtures', 'parity')

CONFIGS = {
    # CIFAR-style 32 px: G 3 blocks of 4ch, D 4 blocks of 4ch (down T,T,F,F), no attention.
    'cifar32': dict(
        resolution=32, G_ch=4, D_ch=4, dim_z=20, shared_dim=8, n_classes=5,
        G_shared=True, hier=True, G_attn='0', D_attn='0',
        SN_eps=1e-6, BN_eps=1e-5, batch=4,
        y=[0, 3, 3, 1], y_real=[2, 3, 4, 0],
        seed_init=1234, seed_inputs=5678, gamma=0.3, G_row_scale=0.3, D_row_scale=1.0),
    # 64 px with attention: G attention after the 32x32 block (16 channels, C/8 = 2);
    # D attention after the 8x8 block (16 channels).  D attention at 32x32 is impossible
    # with D_ch=4 (4 channels there, C/8 = 0).
    'attn64': dict(
        resolution=64, G_ch=4, D_ch=4, dim_z=20, shared_dim=8, n_classes=5,
        G_shared=True, hier=True, G_attn='32', D_attn='8',
        SN_eps=1e-6, BN_eps=1e-5, batch=2,
        y=[4, 1], y_real=[1, 2],
        seed_init=4321, seed_inputs=8765, gamma=0.3, G_row_scale=0.3, D_row_scale=1.0),
}
# Table 1's generator ablations at cifar32's size: no shared embedding (each CBN embeds
# the classes; with hier also an SNLinear of its z chunk), no hierarchical z, or both.
for _name, _shared, _hier, _seed in (('noshared-hier', False, True, 2468),
                                     ('noshared-flat', False, False, 1357),
                                     ('shared-flat', True, False, 9753)):
    CONFIGS[_name] = dict(CONFIGS['cifar32'], G_shared=_shared, hier=_hier, seed_init=_seed,
                          seed_inputs=_seed + 1)

SEQUENCE = [
    "0. load G.safetensors / D.safetensors; G.train(); D.train(); all grads zero",
    "1. G_out = G(z, y)  [train: each G SN layer does one power step from its u0 and writes "
    "u0, sv0; every BN normalises with batch stats and updates stored_mean/stored_var "
    "(momentum 0.1, unbiased var)]",
    "2. D_out = D(cat([G_out.detach(), x_real]), cat([y, y_real]))  [train: ONE D call on the "
    "2B batch, fake first; each D SN layer updates u0/sv0 (D SN update #1)]; "
    "D_fake = D_out[:B], D_real = D_out[B:]; D buffers now = after_dstep/D/*",
    "3. loss_D_real = mean(relu(1 - D_real)); loss_D_fake = mean(relu(1 + D_fake)); "
    "loss_D = loss_D_real + loss_D_fake; loss_D.backward() -> grad/D/<param>",
    "4. D params requires_grad=False (toggle_grads); D_G_out = D(G_out, y) with G_out NOT "
    "detached (same G_out tensor/graph as step 1, G is not re-run)  [train: D SN update #2]; "
    "loss_G = -mean(D_G_out); loss_G.backward() -> grad/G/<param>, grad/x_fake = dloss_G/dG_out",
    "5. after/G/<buffer>, after/D/<buffer> = all buffers now",
    "6. G.eval(); eval/G_out = G(z, y)  [stored stats from after/G; SN power step from the "
    "after/G u0 is computed but NOT written back; no buffer changes]",
    "7. D.eval(); eval/D_out = D(cat([G_out, x_real]), cat([y, y_real]))  [G_out = the "
    "training-mode output of step 1; SN from after/D u0, nothing written back]",
]


def setup_torch():
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


# --------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------


def build(cfg):
    """Build G and D for a config, deterministic from cfg['seed_init']."""
    torch.manual_seed(cfg['seed_init'])
    G = br.Generator(resolution=cfg['resolution'], G_ch=cfg['G_ch'], dim_z=cfg['dim_z'],
                     n_classes=cfg['n_classes'], shared_dim=cfg['shared_dim'],
                     G_shared=cfg['G_shared'], hier=cfg['hier'], G_attn=cfg['G_attn'],
                     BN_eps=cfg['BN_eps'], SN_eps=cfg['SN_eps'])
    D = br.Discriminator(resolution=cfg['resolution'], D_ch=cfg['D_ch'],
                         n_classes=cfg['n_classes'], D_attn=cfg['D_attn'],
                         SN_eps=cfg['SN_eps'])
    with torch.no_grad():
        for model, row_scale in ((G, cfg['G_row_scale']), (D, cfg['D_row_scale'])):
            for name, p in model.named_parameters():
                if p.dim() >= 2:
                    # Orthogonal init (already applied) + per-row scale + noise, so that the
                    # spectral norms are not all exactly 1 (with a purely orthogonal W one
                    # power step gives sigma = 1 whatever u is, which would hide SN bugs).
                    shape = [p.shape[0]] + [1] * (p.dim() - 1)
                    p.mul_(torch.exp(row_scale * torch.randn(shape)))
                    p.add_(0.2 * p.std() * torch.randn_like(p))
                    p.mul_(1.0 + torch.rand(()))
            for name, m in model.named_modules():
                if isinstance(m, br.Attention):
                    m.gamma.fill_(cfg['gamma'])
                if isinstance(m, br.BN):
                    m.gain.copy_(1 + 0.2 * torch.randn_like(m.gain))
                    m.bias.copy_(0.2 * torch.randn_like(m.bias))
                if isinstance(m, (br.BN, br.CondBN)):
                    m.stored_mean.copy_(0.1 * torch.randn_like(m.stored_mean))
                    m.stored_var.copy_(torch.exp(0.2 * torch.randn_like(m.stored_var)))
    return G, D


def center_D(G, D, inp, margin=0.1):
    """Shift D.linear.bias (not spectrally normalised, added last) so that as many hinge
    terms as possible are active (D_fake > -1, D_real < 1), with at least one active term
    in each of loss_D_real / loss_D_fake, unequal active counts (so grad of linear.bias is
    not zero by cancellation), and every D_out at least `margin` away from the hinge kinks
    at +-1 (so a float32 re-implementation cannot flip a mask).  Runs the first two
    forwards on copies; G and D are otherwise untouched.  Returns the shift."""
    Gc, Dc = copy.deepcopy(G), copy.deepcopy(D)
    Gc.train(); Dc.train()
    B = inp['z'].shape[0]
    with torch.no_grad():
        fake = Gc(inp['z'], inp['y'])
        out = Dc(torch.cat([fake, inp['x_real']], 0),
                 torch.cat([inp['y'], inp['y_real']], 0)).double().flatten()
    lim = float(out.abs().max()) + 2
    best = None
    for i in range(int(2 * lim / 0.01) + 1):
        c = -lim + 0.01 * i
        o = out + c
        af = int((o[:B] > -1).sum())
        ar = int((o[B:] < 1).sum())
        if af < 1 or ar < 1 or af == ar:
            continue
        if float(torch.minimum((o - 1).abs(), (o + 1).abs()).min()) < margin:
            continue
        key = (af + ar, -abs(c + float(out.median())))
        if best is None or key > best[0]:
            best = (key, c)
    assert best is not None, 'no usable D output shift'
    with torch.no_grad():
        D.linear.bias.add_(best[1])
    return best[1]


def make_inputs(cfg, G):
    gen = torch.Generator().manual_seed(cfg['seed_inputs'])
    B, R = cfg['batch'], cfg['resolution']
    z = torch.randn(B, G.dim_z, generator=gen)
    x_real = torch.rand(B, 3, R, R, generator=gen) * 2 - 1
    y = torch.tensor(cfg['y'], dtype=torch.int64)
    y_real = torch.tensor(cfg['y_real'], dtype=torch.int64)
    return {'z': z, 'y': y, 'y_real': y_real, 'x_real': x_real}


def buffers(model):
    return {k: v.detach().clone() for k, v in model.named_buffers()}


def hinge_D(D_fake, D_real):
    return torch.mean(F.relu(1. - D_real)), torch.mean(F.relu(1. + D_fake))


# --------------------------------------------------------------------------
# The fixture sequence
# --------------------------------------------------------------------------


def run_sequence(G, D, inp):
    """Runs SEQUENCE on G, D (modified in place).  Returns dict of output tensors."""
    z, y, y_real, x_real = inp['z'], inp['y'], inp['y_real'], inp['x_real']
    B = z.shape[0]
    out = {}
    G.train(); D.train()
    for p in list(G.parameters()) + list(D.parameters()):
        p.grad = None
        p.requires_grad_(True)

    # 1. G forward
    fake = G(z, y)
    fake.retain_grad()
    out['G_out'] = fake.detach().clone()

    # 2-3. D step on the concatenated batch, one D call
    D_out = D(torch.cat([fake.detach(), x_real], 0), torch.cat([y, y_real], 0))
    D_fake, D_real = torch.split(D_out, [B, B])
    loss_D_real, loss_D_fake = hinge_D(D_fake, D_real)
    loss_D = loss_D_real + loss_D_fake
    loss_D.backward()
    out['D_out'] = D_out.detach().clone()
    out['D_fake'] = D_fake.detach().clone()
    out['D_real'] = D_real.detach().clone()
    out['loss_D_real'] = loss_D_real.detach().reshape(1).clone()
    out['loss_D_fake'] = loss_D_fake.detach().reshape(1).clone()
    out['loss_D'] = loss_D.detach().reshape(1).clone()
    for k, v in buffers(D).items():
        out['after_dstep/D/' + k] = v
    for k, p in D.named_parameters():
        out['grad/D/' + k] = p.grad.detach().clone()
    assert fake.grad is None, 'D step must not reach G'

    # 4. G step through D (second D forward, D frozen)
    for p in D.parameters():
        p.requires_grad_(False)
    D_G_out = D(fake, y)
    loss_G = -torch.mean(D_G_out)
    loss_G.backward()
    out['D_G_out'] = D_G_out.detach().clone()
    out['loss_G'] = loss_G.detach().reshape(1).clone()
    out['grad/x_fake'] = fake.grad.detach().clone()
    for k, p in G.named_parameters():
        out['grad/G/' + k] = p.grad.detach().clone()
    for p in D.parameters():
        p.requires_grad_(True)

    # 5. buffers after the training forwards
    for k, v in buffers(G).items():
        out['after/G/' + k] = v
    for k, v in buffers(D).items():
        out['after/D/' + k] = v

    # 6-7. eval mode
    G.eval(); D.eval()
    with torch.no_grad():
        out['eval/G_out'] = G(z, y).clone()
        out['eval/D_out'] = D(torch.cat([out['G_out'], x_real], 0),
                              torch.cat([y, y_real], 0)).clone()
    for model, tag in ((G, 'G'), (D, 'D')):
        for k, v in buffers(model).items():
            assert torch.equal(v, out['after/%s/%s' % (tag, k)]), 'eval changed ' + k
    G.train(); D.train()
    return out


def config_json(name, cfg, G, D):
    return {
        'name': name,
        'source': 'tools/make_fixtures.py (model: tools/biggan_reference.py, '
                  'BigGAN-PyTorch semantics)',
        'torch_version': torch.__version__,
        'dtype': 'float32',
        'layout': 'PyTorch: activations NCHW, conv weights OIHW, linear [out, in]',
        'resolution': cfg['resolution'],
        'ch': cfg['G_ch'] if cfg['G_ch'] == cfg['D_ch'] else None,
        'G_ch': cfg['G_ch'], 'D_ch': cfg['D_ch'],
        'dim_z': G.dim_z, 'z_chunk_size': G.z_chunk_size, 'num_slots': G.num_slots,
        'shared_dim': G.shared_dim, 'n_classes': cfg['n_classes'],
        'G_shared': cfg['G_shared'], 'hier': cfg['hier'],
        'G_attn': cfg['G_attn'], 'D_attn': cfg['D_attn'],
        'G_attn_after_blocks': [i for i, a in enumerate(G.arch['attention']) if a],
        'D_attn_after_blocks': [i for i, a in enumerate(D.arch['attention']) if a],
        'G_arch': {k: G.arch[k] for k in ('in_channels', 'out_channels', 'resolution')},
        'D_arch': {k: D.arch[k] for k in ('in_channels', 'out_channels', 'downsample')},
        'bottom_width': 4,
        'SN_eps': cfg['SN_eps'], 'SN_num_svs': 1, 'SN_num_itrs': 1,
        'BN_eps': cfg['BN_eps'], 'BN_momentum': 0.1,
        'attention_gamma': cfg['gamma'],
        'G_activation': 'relu',
        'D_activation': 'relu (pre-activation out of place: the D skip sees the raw x)',
        'upsample': 'nearest x2', 'downsample': 'avg_pool2d 2',
        'loss': 'hinge',
        'batch': cfg['batch'],
        'y': cfg['y'], 'y_real': cfg['y_real'],
        'seeds': {'init': cfg['seed_init'], 'inputs': cfg['seed_inputs']},
        'init': 'orthogonal_ on every Conv/Linear/Embedding weight (BigGAN-PyTorch ortho), '
                'then per-row scale exp(s N) (s = G_row_scale / D_row_scale) + 0.2*std noise '
                '+ global scale U(1,2); biases PyTorch default uniform; output BN gain '
                '1+0.2N, bias 0.2N; stored_mean 0.1N, stored_var exp(0.2N); SN u0 randn, '
                'sv0 1; attention gamma = %g; finally D.linear.bias is shifted (center_D) so '
                'that most hinge terms are active, both losses have active terms, and every '
                'D_out is >= 0.1 from the hinge kinks.  The stored '
                'G/D.safetensors are the result: nothing needs re-deriving.' % cfg['gamma'],
        'G_row_scale': cfg['G_row_scale'], 'D_row_scale': cfg['D_row_scale'],
        'sequence': SEQUENCE,
        'files': {
            'G.safetensors': 'G state_dict before step 1 (params + buffers)',
            'D.safetensors': 'D state_dict before step 1',
            'inputs.safetensors': 'z [B,dim_z] f32, y [B] i64 (G / fake labels), '
                                  'y_real [B] i64 (labels of x_real), x_real [B,3,H,W] f32',
            'outputs.safetensors': 'see tools/README.md',
        },
        'G_params': {k: list(p.shape) for k, p in G.named_parameters()},
        'D_params': {k: list(p.shape) for k, p in D.named_parameters()},
    }


def generate(name, cfg):
    G, D = build(cfg)
    inp = make_inputs(cfg, G)
    center_D(G, D, inp)
    sd_G = {k: v.detach().clone().contiguous() for k, v in G.state_dict().items()}
    sd_D = {k: v.detach().clone().contiguous() for k, v in D.state_dict().items()}
    out = run_sequence(G, D, inp)
    return G, D, sd_G, sd_D, inp, out


def write(name, cfg):
    G, D, sd_G, sd_D, inp, out = generate(name, cfg)
    d = os.path.join(OUT_ROOT, name)
    os.makedirs(d, exist_ok=True)
    meta = {'config': name, 'generator': 'tools/make_fixtures.py'}
    save_file(sd_G, os.path.join(d, 'G.safetensors'), metadata=meta)
    save_file(sd_D, os.path.join(d, 'D.safetensors'), metadata=meta)
    save_file({k: v.contiguous() for k, v in inp.items()},
              os.path.join(d, 'inputs.safetensors'), metadata=meta)
    save_file({k: v.contiguous() for k, v in out.items()},
              os.path.join(d, 'outputs.safetensors'), metadata=meta)
    cj = config_json(name, cfg, G, D)
    cj['summary'] = {
        'loss_D': out['loss_D'].item(), 'loss_D_real': out['loss_D_real'].item(),
        'loss_D_fake': out['loss_D_fake'].item(), 'loss_G': out['loss_G'].item(),
        'D_out': out['D_out'].flatten().tolist(), 'D_G_out': out['D_G_out'].flatten().tolist(),
        'eval_D_out': out['eval/D_out'].flatten().tolist(),
    }
    with open(os.path.join(d, 'config.json'), 'w') as f:
        json.dump(cj, f, indent=1)
    print('%s: loss_D %.5f (real %.5f fake %.5f) loss_G %.5f' % (
        name, out['loss_D'].item(), out['loss_D_real'].item(), out['loss_D_fake'].item(),
        out['loss_G'].item()))
    print('   D_out', [round(v, 4) for v in out['D_out'].flatten().tolist()])
    print('   D_G_out', [round(v, 4) for v in out['D_G_out'].flatten().tolist()])
    g = out['G_out']
    print('   G_out mean %.4f std %.4f |max| %.4f; frac |x|>0.99: %.4f' % (
        g.mean(), g.std(), g.abs().max(), (g.abs() > 0.99).float().mean()))
    print('   eval/D_out', [round(v, 4) for v in out['eval/D_out'].flatten().tolist()])
    zero = [k for k, v in out.items() if k.startswith('grad/') and not torch.any(v != 0)]
    if zero:
        print('   WARNING all-zero grads:', zero)
    for f in sorted(os.listdir(d)):
        print('   %-22s %9d bytes' % (f, os.path.getsize(os.path.join(d, f))))


# --------------------------------------------------------------------------
# Self-checks
# --------------------------------------------------------------------------


def check_param_counts():
    with torch.device('meta'):
        G = br.Generator(resolution=128, G_ch=96, dim_z=120, n_classes=1000, shared_dim=128,
                         G_shared=True, hier=True, G_attn='64', skip_init=True)
        D = br.Discriminator(resolution=128, D_ch=96, n_classes=1000, D_attn='64',
                             skip_init=True)
    g, d = br.count_trainable(G), br.count_trainable(D)
    print('param count 128px ch96: G %d (expect 70433988), D %d (expect 87982370)' % (g, d))
    assert g == 70433988 and d == 87982370
    # Table 1's generator ablations (README's table; biggan-fast info prints the same).
    for shared, hier, expect in ((True, False, 72595908), (False, True, 83197636),
                                 (False, False, 85359556)):
        with torch.device('meta'):
            G = br.Generator(resolution=128, G_ch=96, dim_z=120, n_classes=1000, shared_dim=128,
                             G_shared=shared, hier=hier, G_attn='64', skip_init=True)
        g = br.count_trainable(G)
        print('param count 128px ch96 G_shared=%s hier=%s: G %d (expect %d)'
              % (shared, hier, g, expect))
        assert g == expect


def check_sn_semantics():
    torch.manual_seed(0)
    m = br.SNConv2d(5, 7, eps=1e-6).double()
    x = torch.randn(2, 5, 6, 6, dtype=torch.float64)
    u_before = m.u0.clone()
    W = m.weight.detach().view(7, -1)
    v = F.normalize(u_before @ W, dim=1, eps=1e-6)
    u = F.normalize(v @ W.t(), dim=1, eps=1e-6)
    sigma = (v @ W.t() @ u.t()).item()
    m.train()
    y = m(x)
    assert torch.allclose(m.u0, u) and abs(m.sv0.item() - sigma) < 1e-12
    ref = F.conv2d(x, m.weight / sigma, m.bias, padding=1)
    assert torch.allclose(y, ref, atol=1e-12)
    # eval: one power step from the stored u0, nothing written back
    u_b, sv_b = m.u0.clone(), m.sv0.clone()
    m.eval()
    y2 = m(x)
    v2 = F.normalize(u_b @ W, dim=1, eps=1e-6)
    u2 = F.normalize(v2 @ W.t(), dim=1, eps=1e-6)
    s2 = (v2 @ W.t() @ u2.t()).item()
    assert torch.equal(m.u0, u_b) and torch.equal(m.sv0, sv_b)
    assert torch.allclose(y2, F.conv2d(x, m.weight / s2, m.bias, padding=1), atol=1e-12)
    # backward: d sigma / dW = u^T v  (u, v constants)
    m.train()
    m.u0.copy_(u_before)
    w = m.weight
    gW = torch.autograd.grad(m(x).square().sum(), w)[0]
    wf = w.detach().clone().requires_grad_(True)
    sig = (v @ wf.view(7, -1).t() @ u.t()).squeeze()
    gW2 = torch.autograd.grad(F.conv2d(x, wf / sig, m.bias, padding=1).square().sum(), wf)[0]
    assert torch.allclose(gW, gW2, atol=1e-10)
    print('SN semantics: train update / eval no-update / sigma gradient OK')


def _set_frozen(models, on):
    for model in models:
        for m in br.sn_modules(model):
            if on:
                m.frozen_uv = m.last_uv
            else:
                m.frozen_uv = None
            m.record_uv = False


def _record(models, on):
    for model in models:
        for m in br.sn_modules(model):
            m.record_uv = on


def check_finite_differences(name, cfg, n_per_tensor=3, hs=(1e-6, 1e-7, 1e-8), tol=1e-6):
    """float64: analytic grads (u, v treated as constants, as in BigGAN-PyTorch) against
    central differences with the power-iteration vectors frozen at the base point."""
    G, D = build(cfg)
    inp = make_inputs(cfg, G)
    center_D(G, D, inp)
    G.double(); D.double()
    inp = {k: (v.double() if v.is_floating_point() else v) for k, v in inp.items()}
    z, y, y_real, x_real = inp['z'], inp['y'], inp['y_real'], inp['x_real']
    B = z.shape[0]
    G.train(); D.train()
    gen = torch.Generator().manual_seed(99)

    def loss_D_fn(x_real_):
        fake = G(z, y).detach()
        out = D(torch.cat([fake, x_real_], 0), torch.cat([y, y_real], 0))
        a, b = hinge_D(out[:B], out[B:])
        return a + b

    def loss_G_fn(z_):
        return -torch.mean(D(G(z_, y), y))

    worst, retried = 0.0, 0
    for which, fn, model, xin, xname in (('D', loss_D_fn, D, x_real, 'x_real'),
                                         ('G', loss_G_fn, G, z, 'z')):
        for p in list(G.parameters()) + list(D.parameters()):
            p.grad = None
        xin = xin.clone().requires_grad_(True)
        _record((G, D), True)
        loss = fn(xin)
        loss.backward()
        _set_frozen((G, D), True)
        targets = [(k, p, p.grad.clone()) for k, p in model.named_parameters()]
        targets.append((xname, xin, xin.grad.clone()))
        nchecked = 0
        with torch.no_grad():
            for k, p, g in targets:
                for _ in range(n_per_tensor):
                    idx = int(torch.randint(p.numel(), (1,), generator=gen))
                    flat = p.view(-1)
                    orig = flat[idx].item()
                    an = g.view(-1)[idx].item()
                    # A step can cross a ReLU / max-pool / hinge kink that lies within h of
                    # the base point (there are ~1e5 activations); retry with smaller steps.
                    for step in hs:
                        flat[idx] = orig + step
                        lp = fn(xin).item()
                        flat[idx] = orig - step
                        lm = fn(xin).item()
                        flat[idx] = orig
                        fd = (lp - lm) / (2 * step)
                        err = abs(fd - an) / max(1.0, abs(fd), abs(an))
                        if err <= tol:
                            break
                    if step != hs[0]:
                        retried += 1
                    worst = max(worst, err)
                    nchecked += 1
                    if err > tol:
                        raise AssertionError('%s FD mismatch %s[%d]: fd %.10g analytic %.10g'
                                             % (which, k, idx, fd, an))
        _set_frozen((G, D), False)
        print('FD %s loss_%s: %d entries over %d tensors OK' % (name, which, nchecked,
                                                                len(targets)))
    print('FD %s worst relative error %.2e (%d entries needed a step below %g: kink within h)'
          % (name, worst, retried, hs[0]))


def check_reproducible(name, cfg):
    d = os.path.join(OUT_ROOT, name)
    if not os.path.isdir(d):
        print('reproducibility %s: no fixtures on disk, skipped' % name)
        return
    _, _, sd_G, sd_D, inp, out = generate(name, cfg)
    for fname, ref in (('G', sd_G), ('D', sd_D), ('inputs', inp), ('outputs', out)):
        disk = load_file(os.path.join(d, fname + '.safetensors'))
        assert set(disk) == set(ref), fname
        for k in ref:
            assert torch.equal(disk[k], ref[k]), '%s/%s differs' % (fname, k)
    print('reproducibility %s: files on disk are bit-identical to a fresh run' % name)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--check', action='store_true', help='run self-checks only')
    ap.add_argument('--configs', nargs='*', default=list(CONFIGS))
    args = ap.parse_args()
    setup_torch()
    if args.check:
        check_param_counts()
        check_sn_semantics()
        for name in args.configs:
            check_finite_differences(name, CONFIGS[name])
            check_reproducible(name, CONFIGS[name])
        print('all checks passed')
        return
    for name in args.configs:
        write(name, CONFIGS[name])


if __name__ == '__main__':
    main()
