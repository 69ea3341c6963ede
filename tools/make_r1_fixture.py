#!/usr/bin/env python3
"""Write the R1 penalty's parity fixture for biggan-fast.

    python tools/make_r1_fixture.py          # write Tests/BigGANTests/Fixtures/parity/r1/r1.safetensors
    python tools/make_r1_fixture.py --check  # compare a fresh computation with the file

The discriminator, its weights and its inputs are the cifar32 parity fixture's
(tools/make_fixtures.py; no self-attention): one training-mode D call on
cat([G_out, x_real]) as in that fixture's step 2 (one spectral-norm power step),
then R1 = gamma / 2 * mean_i ||d D(x_i) / d x_i||^2 over the real half, and its
gradient with respect to every D parameter by double backpropagation
(torch.autograd.grad with create_graph=True), through the spectral norm.

r1.safetensors holds:
  penalty          [1]  R1 with gamma = GAMMA
  grad_x           [B,3,H,W]  d sum_i D(x_real_i) / d x_real
  grad/D/<param>   d R1 / d param (zeros for the biases, which R1 does not see)
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import biggan_reference as br  # noqa: E402

from safetensors.torch import save_file, load_file  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(REPO, 'Tests', 'BigGANTests', 'Fixtures', 'parity', 'cifar32')
OUT = os.path.join(REPO, 'Tests', 'BigGANTests', 'Fixtures', 'parity', 'r1')
GAMMA = 10.0


def compute():
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    with open(os.path.join(SOURCE, 'config.json')) as f:
        cfg = json.load(f)
    D = br.Discriminator(resolution=cfg['resolution'], D_ch=cfg['D_ch'], n_classes=cfg['n_classes'],
                         D_attn=cfg['D_attn'], SN_eps=cfg['SN_eps'], skip_init=True)
    D.load_state_dict(load_file(os.path.join(SOURCE, 'D.safetensors')))
    inputs = load_file(os.path.join(SOURCE, 'inputs.safetensors'))
    fake = load_file(os.path.join(SOURCE, 'outputs.safetensors'))['G_out']
    B = fake.shape[0]
    D.train()
    x = torch.cat([fake, inputs['x_real']], 0).requires_grad_(True)
    out = D(x, torch.cat([inputs['y'], inputs['y_real']], 0))
    grad_x, = torch.autograd.grad(out[B:].sum(), x, create_graph=True)
    grad_real = grad_x[B:]
    penalty = GAMMA / 2 * grad_real.pow(2).reshape(B, -1).sum(1).mean()
    names = [k for k, _ in D.named_parameters()]
    params = [p for _, p in D.named_parameters()]
    grads = torch.autograd.grad(penalty, params, allow_unused=True)
    result = {'penalty': penalty.detach().reshape(1).clone(), 'grad_x': grad_real.detach().clone()}
    for k, p, g in zip(names, params, grads):
        result['grad/D/' + k] = (torch.zeros_like(p) if g is None else g).detach().clone().contiguous()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true', help='compare a fresh computation with the file')
    args = parser.parse_args()
    result = compute()
    path = os.path.join(OUT, 'r1.safetensors')
    if args.check:
        disk = load_file(path)
        bad = [k for k in result if not torch.equal(result[k], disk[k])]
        print('r1.safetensors: ' + ('differs in ' + ', '.join(bad) if bad else 'reproduced exactly'))
        sys.exit(1 if bad else 0)
    os.makedirs(OUT, exist_ok=True)
    save_file(result, path, metadata={'source': 'cifar32', 'gamma': str(GAMMA), 'generator': 'tools/make_r1_fixture.py'})
    print('penalty %.6f; largest parameter gradient %.4g; %d bytes' % (
        result['penalty'].item(), max(v.abs().max().item() for k, v in result.items() if k.startswith('grad/D/')),
        os.path.getsize(path)))


if __name__ == '__main__':
    main()
