#!/usr/bin/env python3
"""Write the Adam fixture: torch.optim.Adam's steps on given parameters and gradients.

    python tools/adam_fixture.py            # writes Tests/BigGANTests/Fixtures/adam/adam.safetensors
    python tools/adam_fixture.py --check    # regenerates in memory, compares with the file's tensors

Two float32 parameters (7 x 5 and 13) start from N(0, 1) values and take 10
steps of torch.optim.Adam (the single-tensor implementation, foreach=False,
one thread) with gradients given per step.  The gradients span nine decades
(N(0, 1) times 10^U(-9, 0), so some are below eps = 1e-8 and the epsilon's
place in the formula shows) and about 5% of them are exactly zero.  The same
inputs run under four settings: the recipe's learning rates (G 5e-5, D 2e-4)
with the paper's betas (0, 0.999), and with beta1 0.9, all with eps 1e-8.
AdamTests replays them with our Adam.

Tensors (float32):
    initial.<p>                 the parameter before the first step
    gradient.<p>                [10, *shape]: the gradient of each step
    <case>.parameter.<p>        [10, *shape]: the parameter after each step
    <case>.exp_avg.<p>          the first moment after the last step
    <case>.exp_avg_sq.<p>       the second moment after the last step
with <p> in p0, p1.  Metadata "fixture" is JSON: steps, parameter shapes, and
per case its name, lr, beta1, beta2 and eps as given to torch; "torch" is
the version that wrote the file.
"""

import argparse
import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, 'Tests', 'BigGANTests', 'Fixtures', 'adam', 'adam.safetensors')

STEPS = 10
SHAPES = {'p0': (7, 5), 'p1': (13,)}
CASES = [
    dict(name='g_beta1_0', lr=5e-5, beta1=0.0, beta2=0.999, eps=1e-8),
    dict(name='d_beta1_0', lr=2e-4, beta1=0.0, beta2=0.999, eps=1e-8),
    dict(name='g_beta1_0.9', lr=5e-5, beta1=0.9, beta2=0.999, eps=1e-8),
    dict(name='d_beta1_0.9', lr=2e-4, beta1=0.9, beta2=0.999, eps=1e-8),
]


def inputs():
    """The initial parameters and each step's gradients, from fixed seeds."""
    g = torch.Generator().manual_seed(20240601)
    tensors = {}
    for name, shape in SHAPES.items():
        tensors[f'initial.{name}'] = torch.randn(shape, generator=g)
        normal = torch.randn((STEPS,) + shape, generator=g)
        decades = torch.rand((STEPS,) + shape, generator=g) * 9 - 9
        zero = torch.rand((STEPS,) + shape, generator=g) < 0.05
        gradient = normal * torch.pow(10.0, decades)
        tensors[f'gradient.{name}'] = torch.where(zero, torch.zeros(()), gradient).float()
    return tensors


def run(case, tensors):
    """The case's parameters after each step and its final moments."""
    params = {n: torch.nn.Parameter(tensors[f'initial.{n}'].clone()) for n in SHAPES}
    opt = torch.optim.Adam(
        list(params.values()), lr=case['lr'], betas=(case['beta1'], case['beta2']),
        eps=case['eps'], foreach=False)
    after = {n: [] for n in SHAPES}
    for step in range(STEPS):
        for n, p in params.items():
            p.grad = tensors[f'gradient.{n}'][step].clone()
        opt.step()
        for n, p in params.items():
            after[n].append(p.detach().clone())
    out = {}
    for n, p in params.items():
        state = opt.state[p]
        assert int(state['step']) == STEPS
        out[f"{case['name']}.parameter.{n}"] = torch.stack(after[n])
        out[f"{case['name']}.exp_avg.{n}"] = state['exp_avg'].clone()
        out[f"{case['name']}.exp_avg_sq.{n}"] = state['exp_avg_sq'].clone()
    return out


def fixture():
    """The file's tensors and metadata."""
    torch.set_num_threads(1)
    tensors = inputs()
    for case in CASES:
        tensors.update(run(case, tensors))
    meta = {
        'fixture': json.dumps({'steps': STEPS, 'shapes': {n: list(s) for n, s in SHAPES.items()}, 'cases': CASES}),
        'torch': torch.__version__,
        'generated_by': 'tools/adam_fixture.py',
    }
    return {k: v.contiguous() for k, v in tensors.items()}, meta


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--check', action='store_true', help='compare a fresh run with the committed file')
    args = parser.parse_args()
    tensors, meta = fixture()
    if args.check:
        # Tensors bit for bit and the metadata's values: the header's key
        # order is the writer's hash order, not the same every run.
        stored = load_file(OUT)
        with safe_open(OUT, 'pt') as f:
            stored_meta = f.metadata()
        same = stored_meta == meta and stored.keys() == tensors.keys() and all(
            torch.equal(stored[k].view(torch.int32), v.view(torch.int32)) for k, v in tensors.items())
        print('identical' if same else f'{OUT} differs from a fresh run')
        sys.exit(0 if same else 1)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(tensors, OUT, metadata=meta)
    print(f'wrote {OUT} ({os.path.getsize(OUT)} bytes)')


if __name__ == '__main__':
    main()
