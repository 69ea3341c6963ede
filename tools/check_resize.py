#!/usr/bin/env python3
"""Write the resize fixtures: what the FID tools' own resamplers make of fixed inputs.

    python tools/check_resize.py            # write Tests/BGKernelsTests/Fixtures/resize/
    python tools/check_resize.py --report   # also print how far PyTorch's two kernels differ

Needs numpy, Pillow, torch and torch-fidelity. The Swift test `ResizeTests` runs our
`resize` on the same inputs and compares the bits. The filters and the calls they copy:

  tfBilinear       torch_fidelity.interpolate_compat_tensorflow.
                   interpolate_bilinear_2d_like_tensorflow1x(x, size, align_corners=False)
  pytorchBilinear  torch.nn.functional.interpolate(x, size, mode='bilinear', align_corners=False)
                   on an NCHW tensor, run with 2 threads (with 1 thread and 3 channels
                   PyTorch takes another kernel that rounds differently)
  pilBicubic       PIL.Image.fromarray(channel, mode='F').resize((w, h), Image.BICUBIC),
                   channel by channel, as clean-fid does (without its clip to 0..255)

Input pixel (b, i, j, k) is float32(m) / 1021 * 255 in float32 with
m = (131 i + 71 j + 29 k + 37 b) mod 1021: exact in both languages, values in 0..255.

Outputs are stored on a grid of rows and columns (every s-th and the last) to keep the
fixtures small; the manifest `cases.json` gives the steps of each case.
"""

import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, 'Tests', 'BGKernelsTests', 'Fixtures', 'resize')

# name, batch, channels, input (h, w), output (h, w), grid steps (rows, columns). Every
# output is over 128 in height + width: below that PyTorch takes another kernel.
CASES = [
    ('mixed', 2, 3, (7, 10), (120, 9), (7, 1)),
    ('odd', 1, 3, (37, 23), (16, 145), (1, 6)),
    ('same-height', 2, 3, (5, 6), (5, 130), (1, 9)),
    ('same-width', 1, 2, (9, 4), (130, 4), (9, 1)),
    ('one-row', 1, 1, (1, 6), (3, 130), (1, 1)),
    ('shrink', 1, 3, (300, 41), (97, 40), (4, 3)),
    ('32-299', 1, 2, (32, 32), (299, 299), (11, 11)),
    ('64-299', 1, 2, (64, 64), (299, 299), (11, 11)),
    ('128-299', 1, 2, (128, 128), (299, 299), (11, 11)),
    ('256-299', 1, 2, (256, 256), (299, 299), (11, 11)),
    ('512-299', 1, 2, (512, 512), (299, 299), (11, 11)),
]


def make_input(n, c, h, w):
    """NHWC float32 input of the case, computed as the Swift test does."""
    b, i, j, k = np.meshgrid(np.arange(n), np.arange(h), np.arange(w), np.arange(c), indexing='ij')
    m = (131 * i + 71 * j + 29 * k + 37 * b) % 1021
    return m.astype(np.float32) / np.float32(1021) * np.float32(255)


def grid(size, step):
    """The sampled positions along an output axis: every step-th and the last."""
    return sorted(set(range(0, size, step)) | {size - 1})


def tf_bilinear(x, oh, ow):
    t = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    y = interpolate_bilinear_2d_like_tensorflow1x(t, size=(oh, ow), align_corners=False)
    return y.permute(0, 2, 3, 1).numpy()


def pytorch_bilinear(x, oh, ow, threads=2):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        t = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        y = F.interpolate(t, size=(oh, ow), mode='bilinear', align_corners=False)
    finally:
        torch.set_num_threads(previous)
    return y.permute(0, 2, 3, 1).numpy()


def pil_bicubic(x, oh, ow):
    n, _, _, c = x.shape
    y = np.empty((n, oh, ow, c), np.float32)
    for b in range(n):
        for k in range(c):
            image = Image.fromarray(np.ascontiguousarray(x[b, :, :, k]))
            assert image.mode == 'F'
            y[b, :, :, k] = np.asarray(image.resize((ow, oh), resample=Image.BICUBIC))
    return y


FILTERS = {'tfBilinear': tf_bilinear, 'pytorchBilinear': pytorch_bilinear, 'pilBicubic': pil_bicubic}


def save_npy(path, array):
    with open(path, 'wb') as f:
        np.save(f, np.ascontiguousarray(array, dtype='<f4'))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--report', action='store_true',
                        help="print how far PyTorch's one-thread kernel for 3 channels strays "
                             'from the one it runs with more threads, on each case')
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    manifest = []
    for name, n, c, (h, w), (oh, ow), steps in CASES:
        x = make_input(n, c, h, w)
        rows, cols = grid(oh, steps[0]), grid(ow, steps[1])
        for filt, fn in FILTERS.items():
            y = fn(x, oh, ow)
            assert y.shape == (n, oh, ow, c) and y.dtype == np.float32
            save_npy(os.path.join(OUT, f'{name}-{filt}.npy'), y[:, rows][:, :, cols])
        manifest.append(dict(name=name, batch=n, channels=c, input=[h, w], output=[oh, ow],
                             steps=list(steps)))
        if args.report:
            # The same input with 3 channels, where one thread takes the other kernel.
            x3 = make_input(n, 3, h, w)
            one, two = (pytorch_bilinear(x3, oh, ow, threads=t) for t in (1, 2))
            print(f'{name:12s} pytorch, 3 channels, 1 vs 2 threads: max |diff| '
                  f'{np.abs(one - two).max():.3g}, {int((one != two).sum())} of {one.size} differ')
    with open(os.path.join(OUT, 'cases.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
        f.write('\n')
    print(f'wrote {len(manifest) * len(FILTERS)} arrays to {os.path.relpath(OUT, REPO)}')


if __name__ == '__main__':
    main()
