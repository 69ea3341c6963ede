#!/usr/bin/env python3
"""Write the data-classifier fixture: a small classifier's forward, softmax
cross-entropy and backward computed by PyTorch.

    python tools/classifier_fixture.py            # writes Tests/BigGANTests/Fixtures/classifier/
    python tools/classifier_fixture.py --check    # regenerates in memory, compares with the files

The network is biggan-fast's DataClassifier written out in PyTorch: blocks of
BigGAN-PyTorch's DBlock (wide, no spectral norm, every block downsampling;
the first without pre-activation, its shortcut pooled before its 1x1
convolution, the others pre-activated with the 1x1 convolution first), ReLU,
a mean over the pixels (the features) and a linear map to the classes (the
logits).  Widths 4, 6, 8, 5 classes, 16 px, weights N(0, 0.3) and inputs
U(-1, 1) from fixed seeds; computed in float64 from the float32 values.

classifier.safetensors is a classifier file as `biggan-fast classifier`
writes it: the weights in PyTorch layouts (convolutions OIHW) and the
"classifier" metadata record.  expected.safetensors holds (float32):
    input          [3, 16, 16, 3]  NHWC, in [-1, 1]
    labels         [3]             int64
    features       [3, 8]          the pooled features
    logits         [3, 5]
    loss           [1]             torch.nn.functional.cross_entropy (mean)
    grad.input     [3, 16, 16, 3]  d loss / d input, NHWC
    grad.<name>    d loss / d each weight, in its file layout
"""

import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, 'Tests', 'BigGANTests', 'Fixtures', 'classifier')

WIDTHS = [4, 6, 8]
CLASSES = 5
RESOLUTION = 16
BATCH = 3
LABELS = [4, 0, 2]


def weights():
    """Every tensor of the network under its state-dict name, float32."""
    g = torch.Generator().manual_seed(20261207)
    tensors = {}
    previous = 3
    for i, width in enumerate(WIDTHS):
        for name, shape in [('conv1', (width, previous, 3, 3)), ('conv2', (width, width, 3, 3)), ('conv_sc', (width, previous, 1, 1))]:
            tensors[f'blocks.{i}.{name}.weight'] = (0.3 * torch.randn(shape, generator=g)).float()
            tensors[f'blocks.{i}.{name}.bias'] = (0.1 * torch.randn((width,), generator=g)).float()
        previous = width
    tensors['linear.weight'] = (0.3 * torch.randn((CLASSES, previous), generator=g)).float()
    tensors['linear.bias'] = (0.1 * torch.randn((CLASSES,), generator=g)).float()
    images = (torch.rand((BATCH, RESOLUTION, RESOLUTION, 3), generator=g) * 2 - 1).float()
    return tensors, images


def forward(w, x):
    """Features and logits of NCHW float64 images."""
    h = x
    for i in range(len(WIDTHS)):
        p = f'blocks.{i}.'
        conv = lambda name, t, pad: F.conv2d(t, w[p + name + '.weight'], w[p + name + '.bias'], padding=pad)
        if i == 0:
            y = conv('conv2', F.relu(conv('conv1', h, 1)), 1)
            skip = conv('conv_sc', F.avg_pool2d(h, 2), 0)
        else:
            y = conv('conv2', F.relu(conv('conv1', F.relu(h), 1)), 1)
            skip = F.avg_pool2d(conv('conv_sc', h, 0), 2)
        h = F.avg_pool2d(y, 2) + skip
    features = F.relu(h).mean(dim=(2, 3))
    return features, F.linear(features, w['linear.weight'], w['linear.bias'])


def fixture():
    """The two files' tensors and the classifier file's metadata."""
    tensors, images = weights()
    w = {k: v.double().requires_grad_(True) for k, v in tensors.items()}
    x = images.double().permute(0, 3, 1, 2).contiguous().requires_grad_(True)
    features, logits = forward(w, x)
    labels = torch.tensor(LABELS, dtype=torch.int64)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    expected = {
        'input': images, 'labels': labels, 'features': features.detach().float(), 'logits': logits.detach().float(),
        'loss': loss.detach().float().reshape(1), 'grad.input': x.grad.permute(0, 2, 3, 1).contiguous().float(),
    }
    for name, t in w.items():
        expected[f'grad.{name}'] = t.grad.float()
    record = {
        'classNames': [f'class-{k}' for k in range(CLASSES)], 'classes': CLASSES, 'data': 'builtin', 'dataSeed': 0,
        'heldOutAccuracy': 0.5, 'resolution': RESOLUTION,
        'recipe': {'batch': 32, 'heldOutImages': 2000, 'learningRate': 0.002, 'seed': 0, 'steps': 1000, 'widths': WIDTHS},
    }
    return tensors, expected, {'classifier': json.dumps(record, sort_keys=True), 'torch': torch.__version__}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true', help='compare with the committed files instead of writing them')
    args = parser.parse_args()
    torch.set_num_threads(1)
    tensors, expected, metadata = fixture()
    paths = [os.path.join(OUT, 'classifier.safetensors'), os.path.join(OUT, 'expected.safetensors')]
    if args.check:
        for path, fresh in zip(paths, [tensors, expected]):
            stored = load_file(path)
            bad = [k for k in fresh if k not in stored or not torch.equal(stored[k], fresh[k])]
            if bad or set(stored) != set(fresh):
                print(f'{path}: differs in {bad or sorted(set(stored) ^ set(fresh))}')
                sys.exit(1)
        print('fixture matches')
        return
    os.makedirs(OUT, exist_ok=True)
    save_file(tensors, paths[0], metadata=metadata)
    save_file(expected, paths[1], metadata={'torch': torch.__version__})
    print(f'wrote {paths[0]} and {paths[1]}')


if __name__ == '__main__':
    main()
