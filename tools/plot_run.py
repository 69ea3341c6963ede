#!/usr/bin/env python3
"""Plot a biggan-fast training run from its metrics.jsonl.

    python tools/plot_run.py runs/NAME [--out DIR]     # DIR defaults to runs/NAME/plots

runs/NAME/metrics.jsonl holds one JSON object per line, of three kinds:
  log lines             step, loss_d_real, loss_d_fake, loss_g, d_real, d_fake, ...
                        and, with a held-out slice, d_train_mean, d_heldout_mean,
                        d_train_accuracy, d_heldout_accuracy
  singular-value lines  step, singular_values: {"G/<weight>": [s0, s1, s2], "D/<weight>": ...}
  evaluation lines      step, eval: {frechet_inception_distance, inception_score_mean, ...,
                        truncation (from biggan-fast eval; absent during training)}
  warnings              step, warning: "text"
Any key may be missing; unknown keys are ignored, and so are lines without a step.
After a --resume a step can be logged twice; the later line wins.

Writes five PNGs, each with warning steps as vertical dashed lines:
  losses.png               D hinge terms on real and fake, and G loss, vs step
  d_outputs.png            D's mean output on real and fake; train vs held-out means
                           and accuracies when the run logged them
  singular_values_G.png    top singular value s0 of every G weight (log scale) and s0/s1
  singular_values_D.png    the same for D
  evaluation.png           FID and IS of G_ema vs step (train --eval-every, and eval --run
                           at truncation 1), the best FID marked
A plot whose data is absent from metrics.jsonl is skipped with a note on stderr.
"""

import argparse
import json
import math
import os
import re
import sys
from collections import defaultdict

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import LogFormatter  # noqa: E402

WARNING_STYLE = dict(color='tab:red', linestyle='--', linewidth=0.8, alpha=0.6)
DPI = 120


class Metrics:
    """The contents of one metrics.jsonl.

    scalars:  key -> {step: value} for every numeric key of the log lines.
    singular: network ('G' or 'D') -> layer name -> {step: [s0, s1, ...]}.
    warning_steps: sorted steps that carry a warning.
    """

    def __init__(self):
        self.scalars = defaultdict(dict)
        self.singular = {'G': defaultdict(dict), 'D': defaultdict(dict)}
        self.warning_steps = []


def fail(message):
    """Print a one-line error to stderr and exit with code 1."""
    sys.exit(f'plot_run.py: error: {message}')


def is_number(value):
    """True for a JSON int or float (but not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_metrics(path):
    """Read metrics.jsonl at `path` into a Metrics; exit with an error if unreadable.

    Blank lines are skipped; a line that is not a JSON object is an error naming it.
    """
    try:
        with open(path, 'rb') as f:
            lines = f.read().splitlines()
    except OSError as e:
        fail(f'cannot read {path}: {e.strerror}')
    metrics = Metrics()
    warnings = set()
    seen_any = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        seen_any = True
        try:
            entry = json.loads(line)
        except ValueError:
            fail(f'{path}: line {number} is not JSON')
        if not isinstance(entry, dict):
            fail(f'{path}: line {number} is not a JSON object')
        step = entry.get('step')
        if not is_number(step):
            continue
        for key, value in entry.items():
            if key != 'step' and is_number(value):
                metrics.scalars[key][step] = float(value)
        singular_values = entry.get('singular_values')
        if isinstance(singular_values, dict):
            for name, values in singular_values.items():
                network, _, layer = name.partition('/')
                if (network in metrics.singular and layer and isinstance(values, list)
                        and values and all(is_number(v) for v in values)):
                    metrics.singular[network][layer][step] = [float(v) for v in values]
        evaluation = entry.get('eval')
        if isinstance(evaluation, dict) and evaluation.get('truncation', 1) == 1:
            for key, value in evaluation.items():
                if is_number(value):
                    metrics.scalars['eval/' + key][step] = float(value)
        if 'warning' in entry:
            warnings.add(step)
    if not seen_any:
        fail(f'{path} is empty')
    metrics.warning_steps = sorted(warnings)
    return metrics


def series(points):
    """Split {step: value} into (steps, values), sorted by step."""
    steps = sorted(points)
    return steps, [points[s] for s in steps]


def natural_key(name):
    """Sort key that orders 'blocks.2' before 'blocks.10'."""
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', name)]


def mark_warnings(axes, warning_steps):
    """Draw a vertical dashed line at every warning step on each of `axes`.

    The first axes gets one 'warning' legend entry.
    """
    for i, ax in enumerate(axes):
        for j, step in enumerate(warning_steps):
            label = 'warning' if i == 0 and j == 0 else None
            ax.axvline(step, label=label, **WARNING_STYLE)


def draw(ax, steps, values, **style):
    """Plot values vs steps on `ax`, with a marker if there is only one point."""
    ax.plot(steps, values, linewidth=1, marker='o' if len(steps) == 1 else None, **style)


def plot_lines(ax, metrics, keys_and_labels):
    """Plot each present scalar key on `ax`; return True if any was plotted."""
    plotted = False
    for key, label in keys_and_labels:
        if metrics.scalars.get(key):
            draw(ax, *series(metrics.scalars[key]), label=label)
            plotted = True
    return plotted


def save(fig, path):
    """Write `fig` to `path`, close it and report the file on stdout."""
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    print(path)


def plot_losses(metrics, title, path):
    """Write the D real/fake hinge terms and the G loss vs step; False if none were logged."""
    fig, ax = plt.subplots(figsize=(10, 5), layout='constrained')
    if not plot_lines(ax, metrics, [('loss_d_real', 'D loss on real  mean relu(1 - D(x))'),
                                    ('loss_d_fake', 'D loss on fake  mean relu(1 + D(G(z)))'),
                                    ('loss_g', 'G loss  -mean D(G(z))')]):
        plt.close(fig)
        return False
    mark_warnings([ax], metrics.warning_steps)
    ax.set(title=f'{title}: losses', xlabel='step', ylabel='loss')
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, path)
    return True


def plot_d_outputs(metrics, title, path):
    """Write D's mean outputs (and held-out means and accuracies when logged); False if none."""
    panels = [
        ('mean D output', [('d_real', 'real  D(x)'), ('d_fake', 'fake  D(G(z))')]),
        ('mean D output on real', [('d_train_mean', 'training images'),
                                   ('d_heldout_mean', 'held-out images')]),
        ('D accuracy on real', [('d_train_accuracy', 'training images'),
                                ('d_heldout_accuracy', 'held-out images')]),
    ]
    panels = [(ylabel, keys) for ylabel, keys in panels
              if any(metrics.scalars.get(key) for key, _ in keys)]
    if not panels:
        return False
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.5 * len(panels) + 0.5),
                             sharex=True, squeeze=False, layout='constrained')
    axes = axes[:, 0]
    for ax, (ylabel, keys) in zip(axes, panels):
        plot_lines(ax, metrics, keys)
        ax.axhline(0, color='black', linewidth=0.5)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    mark_warnings(axes, metrics.warning_steps)
    for ax in axes:
        ax.legend()
    axes[0].set_title(f'{title}: discriminator outputs')
    axes[-1].set_xlabel('step')
    save(fig, path)
    return True


def plot_evaluation(metrics, title, path):
    """Write FID and IS vs step, the best FID marked; False if no evaluation was logged."""
    fid = metrics.scalars.get('eval/frechet_inception_distance')
    score = metrics.scalars.get('eval/inception_score_mean')
    if not fid and not score:
        return False
    panels = [(name, values) for name, values in [('FID', fid), ('IS', score)] if values]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.5 * len(panels) + 0.5),
                             sharex=True, squeeze=False, layout='constrained')
    axes = axes[:, 0]
    for ax, (name, values) in zip(axes, panels):
        steps, ys = series(values)
        ax.plot(steps, ys, linewidth=1, marker='o', label=name)
        if name == 'FID':
            best = min(range(len(ys)), key=ys.__getitem__)
            ax.scatter([steps[best]], [ys[best]], color='tab:red', zorder=3,
                       label=f'best FID {ys[best]:.2f} at step {steps[best]}')
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    mark_warnings(axes, metrics.warning_steps)
    axes[0].set_title(f'{title}: evaluation of G_ema')
    axes[-1].set_xlabel('step')
    save(fig, path)
    return True


def plot_singular_values(metrics, network, title, path):
    """Write s0 and s0/s1 of every `network` layer vs step; False if none were logged.

    Layers are sorted by name (block numbers numerically), coloured along that order
    (dark = first) and listed in a legend to the right of the plots.
    """
    layers = sorted(metrics.singular[network], key=natural_key)
    if not layers:
        return False
    columns = math.ceil(len(layers) / 40)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10 + 3.5 * columns, 9), sharex=True,
                                      layout='constrained')
    colours = plt.get_cmap('viridis')([i / max(len(layers) - 1, 1) for i in range(len(layers))])
    for layer, colour in zip(layers, colours):
        steps, values = series(metrics.singular[network][layer])
        draw(top, steps, [v[0] for v in values], color=colour, label=layer)
        draw(bottom, steps, [v[0] / v[1] if len(v) > 1 and v[1] > 0 else math.nan for v in values],
             color=colour)
    mark_warnings([top, bottom], metrics.warning_steps)
    top.set(title=f'{title}: {network} singular values', ylabel='top singular value s0',
            yscale='log')
    bottom.set(xlabel='step', ylabel='s0 / s1', yscale='log')
    for ax in (top, bottom):
        ax.yaxis.set_major_formatter(LogFormatter())
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))
        ax.grid(alpha=0.3, which='both')
    fig.legend(*top.get_legend_handles_labels(), loc='outside right upper', ncols=columns,
               fontsize='x-small', title=f'{network} layer')
    save(fig, path)
    return True


def main(argv=None):
    """Parse the command line, read metrics.jsonl and write the plots."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('run', metavar='RUN',
                        help='run folder, e.g. runs/NAME, containing metrics.jsonl')
    parser.add_argument('--out', metavar='DIR',
                        help='folder for the PNGs (default: RUN/plots)')
    args = parser.parse_args(argv)

    if not os.path.exists(args.run):
        fail(f'run folder {args.run} does not exist')
    if not os.path.isdir(args.run):
        fail(f'{args.run} is not a folder')
    metrics_path = os.path.join(args.run, 'metrics.jsonl')
    if not os.path.exists(metrics_path):
        fail(f'{metrics_path} does not exist')
    if not os.path.isfile(metrics_path):
        fail(f'{metrics_path} is not a file')
    metrics = load_metrics(metrics_path)

    out = args.out or os.path.join(args.run, 'plots')
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        fail(f'cannot create {out}: {e.strerror}')
    title = os.path.basename(os.path.normpath(os.path.abspath(args.run)))
    plots = [
        ('losses.png', 'no losses', lambda p: plot_losses(metrics, title, p)),
        ('d_outputs.png', 'no D outputs', lambda p: plot_d_outputs(metrics, title, p)),
        ('singular_values_G.png', 'no G singular values',
         lambda p: plot_singular_values(metrics, 'G', title, p)),
        ('singular_values_D.png', 'no D singular values',
         lambda p: plot_singular_values(metrics, 'D', title, p)),
        ('evaluation.png', 'no evaluation lines', lambda p: plot_evaluation(metrics, title, p)),
    ]
    for name, missing, plot in plots:
        if not plot(os.path.join(out, name)):
            print(f'plot_run.py: skipped {name}: {missing} in {metrics_path}', file=sys.stderr)


if __name__ == '__main__':
    main()
