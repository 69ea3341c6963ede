#!/usr/bin/env python3
"""Compare whole BigGAN networks: `biggan-fast bench` against PyTorch eager.

For one setup (a preset, channel multiplier, batch and list of passes), or
for the setups the project reports (`--suite`), this script times the
same passes of the same architecture in PyTorch, in this process, and in our
binary, as a `biggan-fast bench --json` subprocess, interleaved round by
round so that both sides see the same machine state:

    build the PyTorch G and D (tools/biggan_reference.py, BigGAN-PyTorch
    semantics, NCHW) with the preset's settings and orthogonal init
    probe: every pass once in channels_last and once in contiguous NCHW
    for round in 1..R:
        ours:    biggan-fast bench --config C --ch CH --batch B --pass P...
                     --precision fp32|bf16 --threads T --repeats N --json
        PyTorch: per pass, one warm-up call, then N calls timed with
                 time.perf_counter, in the layout the probe found faster

All timings of a side over all rounds are pooled and their median reported,
with images/s = images per call / median: the batch, or 5 x batch for
`iteration` (see below). The speed ratio is torch time / our time
(above 1: ours is faster). Both sides use the same thread count (`--threads`
for ours, `torch.set_num_threads` for PyTorch). The parameter counts of both
sides are compared; a mismatch is reported as a warning.

Precision: fp32 is plain float32. The bf16 peer of our bf16 mode (bfloat16
operands, float32 accumulation) is `torch.autocast('cpu', torch.bfloat16)`
around the forwards; backwards run outside it, as PyTorch recommends.

Memory layout: the reference model is NCHW. In channels_last mode every
generator and discriminator block, and G's output layer, converts its input
to channels_last (a forward pre-hook; a no-op when the input already is), so
the layout survives attention, whose bmm products give contiguous tensors.
The weights stay contiguous: spectral norm views them as [out, in*kh*kw].
The probe medians of both layouts are written to --json.

The passes, each one timed call (our `biggan-fast bench --help` defines the
same work; z is drawn anew for every generator forward, labels are
`arange(B) % classes`, the real batch is uniform in [-1, 1)):

* g-forward: `G.eval()`, and under `torch.no_grad()` `G(z, y)`: sampling,
  with the stored batch-norm statistics.
* g-forward-backward: `G.train()`, `x = G(z, y)`, `x.backward(x / x.numel())`
  (the gradient of mean(x^2) / 2): every parameter gradient of G.
* d-forward-backward: `D.train()`, `s = D(x, y)` on the real batch with
  `x.requires_grad`, `s.backward(1 / B)`: every parameter gradient of D and
  its input gradient.
* dg-step: the forward and backward work of one D step and one G step,
  without optimizer updates. D step: `fake = G(z, y)` in training mode,
  `s = D(cat([fake.detach(), x]), cat([y, y]))`, `s.backward(1 / 2B)`.
  G step: `fake = G(z', y)` again, `s = D(fake, y)`, `s.backward(1 / B)`
  through D into G. Our backward always computes D's weight gradients and
  its input gradient, so the peer does the same: D's parameters keep
  `requires_grad` in the G step, and the D step's input requires a gradient.
  (BigGAN-PyTorch's training loop skips both; they are extra work on both
  sides here.)
* iteration: one full training iteration of the paper's recipe, as
  BigGAN-PyTorch's `train_fns.py` does it (ours runs its Trainer with the
  default TrainingRecipe). Two D steps, each: `optim_D.zero_grad()`, z ~
  N(0, 1) and uniformly random labels y, `fake = G(z, y)` in training mode
  under `torch.no_grad()`, a fresh real batch (x, y_x), `s = D(cat([fake,
  x]), cat([y, y_x]))`, the hinge loss `mean(relu(1 - s_real)) +
  mean(relu(1 + s_fake))`, backward, `optim_D.step()`. Then one G step with
  D's parameters not requiring gradients (BigGAN-PyTorch's `toggle_grad`):
  `optim_G.zero_grad()`, fresh z and y, `loss = -mean(D(G(z, y), y))`,
  backward into G, the orthogonal regularisation gradient (for every G
  parameter with two or more dimensions except `shared.weight`, W =
  p.view(out, -1): grad += 1e-4 * 2 (W W^T * (1 - I)) W), `optim_G.step()`.
  Then the EMA of G: a deep copy of G whose state dict (parameters and
  buffers) is copied from G's before iteration 20000 and lerped towards it
  with decay 0.9999 from then on. Adam: `torch.optim.Adam`, betas (0,
  0.999), eps 1e-8, lr 5e-5 for G and 2e-4 for D (`--torch-adam` picks the
  implementation). The real data is a tensor of DATA_BATCHES batches of
  uniform [-1, 1) images and random labels made once, outside timing; each D
  step takes the next batch (a view; the cat copies it), cyclically. Ours
  draws its real batches from its loader, which renders the built-in shapes
  on a background thread during the timed calls. Ours does the same work:
  its D steps backpropagate into D's parameters only (no image gradient)
  and its G step computes no weight gradients of D. Images per call: 5 x
  batch (2 D steps on 2 x batch images, one G step making batch images), as
  ours counts.

Gradients are set to None before every timed call, outside the timed region,
so each PyTorch backward writes fresh gradients; ours accumulates into
gradient tensors that persist between calls. Training-mode calls update the
batch-norm statistics and spectral-norm vectors on both sides. The
`iteration` pass also updates the weights, on both sides; the other passes
run on whatever weights it left (timing does not depend on the values).

Run from the repository root after building the release binary; see
Benchmarks/README.md. What this script shares with compare_pytorch.py is in
benchcommon.py.
"""

import argparse
import copy
import datetime
import math
import statistics
import sys
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from benchcommon import (
    BenchError, PooledTimings, add_output_options, add_timing_options, append_markdown,
    cpu_model, render_markdown, render_text, require_binary, require_positive,
    run_bench_json, time_calls, write_json,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import biggan_reference as br  # noqa: E402

PASSES = ("g-forward", "g-forward-backward", "d-forward-backward", "dg-step", "iteration")

LAYOUTS = {"channels_last": torch.channels_last, "nchw": torch.contiguous_format}


def count_text(n: Optional[int]) -> str:
    """A parameter count with thousands separators, or "-" when not built."""
    return "-" if n is None else f"{n:,}"


@dataclass(frozen=True)
class Preset:
    """The architecture of a `biggan-fast` preset (Configuration.swift)."""

    resolution: int
    ch: int
    dim_z: int
    shared_dim: int
    classes: int
    g_attention: tuple[int, ...]
    d_attention: tuple[int, ...]


#: The presets of Sources/BigGAN/Models/Configuration.swift that the
#: reference model supports (its discriminator has no 512 px table). All use
#: hierarchical z, SN eps 1e-6 and BN eps 1e-5.
PRESETS = {
    "cifar32": Preset(32, 64, 128, 128, 10, (), ()),
    "imagenet64": Preset(64, 64, 120, 128, 1000, (32,), (32,)),
    "imagenet128": Preset(128, 96, 120, 128, 1000, (64,), (64,)),
    "imagenet256": Preset(256, 96, 140, 128, 1000, (128,), (64,)),
}
SN_EPS, BN_EPS = 1e-6, 1e-5

#: Our `iteration` pass trains on the built-in shapes data, which has ten
#: classes, so only presets with ten classes can run it.
TRAINING_CLASSES = 10

#: The paper's recipe, as our TrainingRecipe's defaults (TrainingRecipe.swift).
D_STEPS = 2
LR_G, LR_D = 5e-5, 2e-4
ADAM_BETAS, ADAM_EPS = (0.0, 0.999), 1e-8
ORTHO_STRENGTH = 1e-4
EMA_DECAY, EMA_START = 0.9999, 20_000
#: Real batches made once for the `iteration` pass, used cyclically.
DATA_BATCHES = 8
#: `--torch-adam` choices: torch.optim.Adam keyword arguments.
ADAM_IMPLS = {"fused": {"fused": True}, "foreach": {"foreach": True},
              "for-loop": {"foreach": False}}


def images_per_call(pass_: str, batch: int) -> int:
    """Images one call of `pass_` counts: 5 x batch for an iteration (2 D
    steps on 2 x batch images, one G step on batch), else the batch."""
    return (2 * D_STEPS + 1) * batch if pass_ == "iteration" else batch


def supports_iteration(config: str) -> bool:
    """Whether our binary can run the `iteration` pass for this preset."""
    return PRESETS[config].classes == TRAINING_CLASSES


@dataclass(frozen=True)
class Setup:
    """One network comparison: preset, channel multiplier, batch, passes,
    and optionally the latent and shared-embedding sizes (None: the
    preset's) and a name."""

    config: str
    ch: int
    batch: int
    passes: tuple[str, ...]
    dim_z: Optional[int] = None
    shared_dim: Optional[int] = None
    name: str = ""

    @property
    def model(self) -> Preset:
        """The preset with this setup's overrides."""
        p = PRESETS[self.config]
        return replace(p, ch=self.ch, dim_z=self.dim_z or p.dim_z,
                       shared_dim=self.shared_dim or p.shared_dim)

    @property
    def title(self) -> str:
        """A short human-readable name."""
        parts = [self.config, f"ch {self.ch}"]
        if self.dim_z is not None:
            parts.append(f"dim_z {self.dim_z}")
        if self.shared_dim is not None:
            parts.append(f"shared_dim {self.shared_dim}")
        parts.append(f"batch {self.batch}")
        text = ", ".join(parts)
        return f"{self.name} ({text})" if self.name else text


#: The setups the project reports (--suite). `tiny` is our `tiny` training
#: preset's architecture and batch (TrainingRecipe.swift).
SUITE = (
    Setup("cifar32", 64, 50, PASSES),
    Setup("imagenet128", 96, 8, ("g-forward", "g-forward-backward", "d-forward-backward")),
    Setup("cifar32", 16, 32, ("g-forward", "iteration"), dim_z=64, shared_dim=32, name="tiny"),
)


# ------------------------------------------------------------- biggan-fast --


def run_ours(binary: Path, setup: Setup, precision: str, threads: int,
             repeats: int) -> dict:
    """One round of `biggan-fast bench --json`: the parsed document."""
    overrides = []
    if setup.dim_z is not None:
        overrides += ["--dim-z", str(setup.dim_z)]
    if setup.shared_dim is not None:
        overrides += ["--shared-dim", str(setup.shared_dim)]
    doc = run_bench_json(
        binary,
        ["--config", setup.config, "--ch", str(setup.ch), *overrides,
         "--batch", str(setup.batch),
         "--pass", *setup.passes, "--precision", precision, "--threads", str(threads),
         "--repeats", str(repeats)],
        "biggan-fast",
    )
    got = [r["pass"] for r in doc["results"]]
    if got != list(setup.passes):
        raise BenchError(f"biggan-fast timed passes {got}, expected {list(setup.passes)}")
    for r in doc["results"]:
        # Both sides must count the same images per call.
        images = images_per_call(r["pass"], setup.batch)
        if not math.isclose(r["images_per_s"] * r["median_s"], images, rel_tol=1e-6):
            raise BenchError(
                f"biggan-fast counts {r['images_per_s'] * r['median_s']:.0f} images per "
                f"{r['pass']} call, this script {images}")
    return doc


# ----------------------------------------------------------------- PyTorch --


def attention_spec(resolutions: tuple[int, ...]) -> str:
    """BigGAN-PyTorch's attention argument: '64', '32_64', or '0' for none."""
    return "_".join(map(str, resolutions)) or "0"


class TorchPasses:
    """The reference G and D of a setup, their inputs, and the passes.

    `make_call(pass_)` does the untimed preparation of one call (network
    modes, gradients set to None, leaf inputs) and returns the callable to
    time. `memory_format` picks the activation layout of later calls. If the
    setup has the `iteration` pass, there is also the training state: the
    optimizers, the EMA copy of G and the real data.
    """

    def __init__(self, setup: Setup, precision: str, adam: str = "fused"):
        p = setup.model
        torch.manual_seed(0)
        self.G = br.Generator(
            resolution=p.resolution, G_ch=p.ch, dim_z=p.dim_z, n_classes=p.classes,
            shared_dim=p.shared_dim, G_shared=True, hier=True,
            G_attn=attention_spec(p.g_attention), BN_eps=BN_EPS, SN_eps=SN_EPS)
        self.D = br.Discriminator(
            resolution=p.resolution, D_ch=p.ch, n_classes=p.classes,
            D_attn=attention_spec(p.d_attention), SN_eps=SN_EPS)
        self.batch = setup.batch
        self.classes = p.classes
        self.bf16 = precision == "bf16"
        self.labels = torch.arange(setup.batch) % p.classes
        self.real = torch.rand(setup.batch, 3, p.resolution, p.resolution) * 2 - 1
        self.memory_format = torch.contiguous_format
        if "iteration" in setup.passes:
            # Before the hooks: a deep copy would copy their bound `self` too.
            self._init_training(p, adam)
        blocks = [m for m in (*self.G.modules(), *self.D.modules())
                  if isinstance(m, (br.GBlock, br.DBlock))]
        for m in (*blocks, self.G.output_layer):
            m.register_forward_pre_hook(self._convert_input)

    def _init_training(self, p: Preset, adam: str) -> None:
        """Optimizers, the EMA copy of G and the real data of `iteration`."""
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        ema_state, state = self.G_ema.state_dict(), self.G.state_dict()
        # state_dict tensors share storage with the parameters and buffers,
        # which the optimizer and the forwards update in place.
        self.ema_pairs = [(ema_state[k], state[k]) for k in state]
        self.ortho_params = [q for n, q in self.G.named_parameters()
                             if q.ndim >= 2 and n != "shared.weight"]
        self.optim_g = torch.optim.Adam(self.G.parameters(), lr=LR_G, betas=ADAM_BETAS,
                                        eps=ADAM_EPS, **ADAM_IMPLS[adam])
        self.optim_d = torch.optim.Adam(self.D.parameters(), lr=LR_D, betas=ADAM_BETAS,
                                        eps=ADAM_EPS, **ADAM_IMPLS[adam])
        self.iterations = 0
        n = DATA_BATCHES * self.batch
        self.data = torch.rand(n, 3, p.resolution, p.resolution) * 2 - 1
        self.data_labels = torch.randint(p.classes, (n,))
        self.data_cursor = 0

    def _convert_input(self, _module: torch.nn.Module, args: tuple) -> tuple:
        """Forward pre-hook: the block's activation in `memory_format`."""
        return (args[0].contiguous(memory_format=self.memory_format), *args[1:])

    @property
    def parameter_counts(self) -> tuple[int, int]:
        """Trainable parameters of G and D."""
        return br.count_trainable(self.G), br.count_trainable(self.D)

    def autocast(self) -> torch.autocast:
        """bfloat16 autocast in bf16 mode, a disabled one in fp32 mode."""
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)

    def latents(self) -> torch.Tensor:
        """A fresh batch of z."""
        return torch.randn(self.batch, self.G.dim_z)

    def random_labels(self) -> torch.Tensor:
        """A fresh batch of uniformly random classes."""
        return torch.randint(self.classes, (self.batch,))

    def real_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next batch of the real data (views), cyclically."""
        i = self.data_cursor
        self.data_cursor = (i + 1) % DATA_BATCHES
        rows = slice(i * self.batch, (i + 1) * self.batch)
        return self.data[rows], self.data_labels[rows]

    def make_call(self, pass_: str) -> Callable[[], None]:
        """Prepares one call of `pass_` and returns it."""
        for p in (*self.G.parameters(), *self.D.parameters()):
            p.grad = None
            p.requires_grad_(True)  # the iteration turns D's off in its G step
        if pass_ == "g-forward":
            self.G.eval()
            return self._g_forward
        self.G.train()
        self.D.train()
        if pass_ == "g-forward-backward":
            return self._g_forward_backward
        if pass_ == "d-forward-backward":
            real = self.real.detach().requires_grad_()
            return lambda: self._d_forward_backward(real)
        if pass_ == "dg-step":
            return self._dg_step
        if pass_ == "iteration":
            return self._iteration
        raise ValueError(f"unknown pass {pass_!r}; expected one of {', '.join(PASSES)}")

    def _g_forward(self) -> None:
        with torch.no_grad(), self.autocast():
            self.G(self.latents(), self.labels)

    def _g_forward_backward(self) -> None:
        with self.autocast():
            images = self.G(self.latents(), self.labels)
        images.backward(images.detach() / images.numel())

    def _d_forward_backward(self, real: torch.Tensor) -> None:
        with self.autocast():
            scores = self.D(real, self.labels)
        scores.backward(torch.full_like(scores, 1 / self.batch))

    def _dg_step(self) -> None:
        with self.autocast():
            fake = self.G(self.latents(), self.labels)
            # Ours computes D's input gradient in every backward.
            both = torch.cat([fake.detach(), self.real]).requires_grad_()
            scores = self.D(both, torch.cat([self.labels, self.labels]))
        scores.backward(torch.full_like(scores, 1 / (2 * self.batch)))
        with self.autocast():
            scores = self.D(self.G(self.latents(), self.labels), self.labels)
        scores.backward(torch.full_like(scores, 1 / self.batch))

    def _iteration(self) -> None:
        """BigGAN-PyTorch's train_fns.GAN_training_function, one call."""
        G, D, b = self.G, self.D, self.batch
        D.requires_grad_(True)
        for _ in range(D_STEPS):
            self.optim_d.zero_grad()
            z, y = self.latents(), self.random_labels()
            x, y_x = self.real_batch()
            with torch.no_grad(), self.autocast():
                fake = G(z, y)
            with self.autocast():
                scores = D(torch.cat([fake, x]), torch.cat([y, y_x]))
            scores = scores.float()
            loss = F.relu(1 - scores[b:]).mean() + F.relu(1 + scores[:b]).mean()
            loss.backward()
            self.optim_d.step()
        D.requires_grad_(False)
        self.optim_g.zero_grad()
        y = self.random_labels()
        with self.autocast():
            scores = D(G(self.latents(), y), y)
        loss = -scores.float().mean()
        loss.backward()
        self._orthogonal_gradient()
        self.optim_g.step()
        self.iterations += 1
        self._ema_update()

    def _orthogonal_gradient(self) -> None:
        """Adds ORTHO_STRENGTH * 2 (W W^T * (1 - I)) W to G's gradients."""
        with torch.no_grad():
            for p in self.ortho_params:
                w = p.reshape(p.shape[0], -1)
                gram = w @ w.t()
                gram.fill_diagonal_(0)
                p.grad.add_((gram @ w).view(p.shape), alpha=2 * ORTHO_STRENGTH)

    def _ema_update(self) -> None:
        """G_ema <- decay G_ema + (1 - decay) G over the state dict; a plain
        copy before iteration EMA_START."""
        decay = 0.0 if self.iterations < EMA_START else EMA_DECAY
        with torch.no_grad():
            for target, source in self.ema_pairs:
                if decay == 0:
                    target.copy_(source)
                else:
                    target.lerp_(source, 1 - decay)


def probe_layouts(nets: TorchPasses, pass_: str, repeats: int) -> dict[str, float]:
    """The median seconds of `pass_` in each layout of LAYOUTS."""
    probe = {}
    for name, memory_format in LAYOUTS.items():
        nets.memory_format = memory_format
        probe[name] = statistics.median(time_calls(partial(nets.make_call, pass_), repeats))
    return probe


# ------------------------------------------------------------- comparison --


@dataclass
class PassResult(PooledTimings):
    """All timings of one pass, both sides, over all rounds."""

    pass_: str
    #: Images one call counts (images_per_call).
    images: int
    layout: str
    layout_probe_s: dict[str, float]
    ours_s: list[float] = field(default_factory=list)
    torch_s: list[float] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether both sides have timings (not so if the setup failed)."""
        return bool(self.ours_s and self.torch_s)

    def to_json(self) -> dict:
        """Raw timings and, if complete, the derived medians, for --json."""
        doc = {
            "pass": self.pass_, "images_per_call": self.images,
            "torch_layout": self.layout,
            "torch_layout_probe_median_s": self.layout_probe_s,
            "ours_times_s": self.ours_s, "torch_times_s": self.torch_s,
        }
        if self.complete:
            doc.update(ours_median_s=self.ours_median, torch_median_s=self.torch_median,
                       ours_images_per_s=self.images / self.ours_median,
                       torch_images_per_s=self.images / self.torch_median,
                       speedup=self.speedup)
        return doc


@dataclass
class SetupResult:
    """The comparison of one setup."""

    setup: Setup
    precision: str
    isa: str = ""
    #: (G, D) trainable parameters; ours stays None until our binary has run,
    #: and its D is None when no timed pass built one.
    ours_parameters: Optional[tuple[int, Optional[int]]] = None
    torch_parameters: tuple[int, int] = (0, 0)
    passes: list[PassResult] = field(default_factory=list)
    error: Optional[str] = None

    @property
    def parameter_warning(self) -> Optional[str]:
        """A message if the two sides' parameter counts differ."""
        ours = self.ours_parameters
        if ours is None or all(o is None or o == t for o, t in zip(ours, self.torch_parameters)):
            return None
        og, od = (count_text(n) for n in ours)
        return (f"parameter counts differ: ours G {og} D {od}, PyTorch G "
                "{:,} D {:,}".format(*self.torch_parameters))

    def to_json(self) -> dict:
        """The setup, parameter counts and every pass, for --json."""
        model = self.setup.model
        doc = {
            "name": self.setup.name, "config": self.setup.config, "ch": self.setup.ch,
            "dim_z": model.dim_z, "shared_dim": model.shared_dim,
            "batch": self.setup.batch, "precision": self.precision, "isa": self.isa,
            "ours_parameters": (dict(zip("GD", self.ours_parameters))
                                if self.ours_parameters else None),
            "torch_parameters": dict(zip("GD", self.torch_parameters)),
            "results": [r.to_json() for r in self.passes],
        }
        if self.error:
            doc["error"] = self.error
        return doc


def compare_setup(setup: Setup, args: argparse.Namespace) -> SetupResult:
    """The layout probe, then interleaved rounds of ours and PyTorch."""
    result = SetupResult(setup, args.precision)
    try:
        nets = TorchPasses(setup, args.precision, args.torch_adam)
        result.torch_parameters = nets.parameter_counts
        layouts = {}
        for pass_ in setup.passes:
            probe = probe_layouts(nets, pass_, args.repeats)
            layouts[pass_] = min(probe, key=probe.get)
            result.passes.append(PassResult(pass_, images_per_call(pass_, setup.batch),
                                            layouts[pass_], probe))
            print(f"  layout probe {pass_}: "
                  + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in probe.items())
                  + f" -> {layouts[pass_]}", file=sys.stderr)
        for round_ in range(1, args.rounds + 1):
            doc = run_ours(args.biggan_fast, setup, args.precision, args.threads,
                           args.repeats)
            result.isa = doc["isa"]
            result.ours_parameters = (doc["g_parameters"], doc.get("d_parameters"))
            for r, ours in zip(result.passes, doc["results"]):
                r.ours_s += ours["times_s"]
                nets.memory_format = LAYOUTS[r.layout]
                r.torch_s += time_calls(partial(nets.make_call, r.pass_), args.repeats)
            print(f"  round {round_}/{args.rounds} done", file=sys.stderr)
    except RuntimeError as e:  # BenchError, or an error inside PyTorch
        result.error = str(e)
    return result


# ----------------------------------------------------------------- report --


HEADER = ["pass", "torch layout", "torch ms", "torch img/s", "ours ms", "ours img/s",
          "torch t / our t"]
#: Columns that hold text (left-aligned); the others are right-aligned numbers.
TEXT_COLUMNS = 2


def table_rows(result: SetupResult) -> list[list[str]]:
    """One row of formatted cells per pass (see HEADER)."""
    rows = []
    for r in result.passes:
        if not r.complete:
            rows.append([r.pass_, r.layout] + ["-"] * (len(HEADER) - 2))
            continue
        rows.append([r.pass_, r.layout,
                     f"{r.torch_median * 1e3:.1f}", f"{r.images / r.torch_median:.1f}",
                     f"{r.ours_median * 1e3:.1f}", f"{r.images / r.ours_median:.1f}",
                     f"{r.speedup:.2f}x"])
    return rows


def notes(result: SetupResult) -> list[str]:
    """Warnings and failures of a setup, one line each."""
    lines = []
    if result.parameter_warning:
        lines.append(f"WARNING: {result.parameter_warning}")
    if result.error:
        lines.append(f"FAILED: {result.error}")
    return lines


def environment(args: argparse.Namespace) -> dict:
    """Machine and library facts recorded with the results."""
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "threads": args.threads,
        "rounds": args.rounds,
        "repeats": args.repeats,
        "precision": args.precision,
        "torch_adam": args.torch_adam,
        "torch_version": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def markdown_section(env: dict, results: list[SetupResult]) -> str:
    """The section appended to --markdown: environment, then one table per setup."""
    peer = ("float32" if env["precision"] == "fp32" else
            "`torch.autocast('cpu', dtype=torch.bfloat16)` around the forwards")
    isas = sorted({r.isa for r in results if r.isa})
    parts = [
        f"## Whole-network comparison with PyTorch, {env['date']}",
        "",
        f"- CPU: {env['cpu_model']} (biggan-fast path: {', '.join(isas) or 'unknown'})",
        f"- Threads: {env['threads']}; {env['rounds']} interleaved round(s) of "
        f"{env['repeats']} timed call(s) per side and pass, each after one warm-up "
        f"call; medians over all rounds",
        f"- PyTorch {env['torch_version']} eager (CPU capability "
        f"{env['torch_cpu_capability']}), model tools/biggan_reference.py; "
        f"precision {env['precision']}: {peer}",
        "",
        "torch t / our t is the speed ratio (above 1: ours is faster). torch "
        "layout is the activation layout the one-off probe found faster for "
        "that pass. Passes as defined in `biggan-fast bench --help`; see "
        "Benchmarks/compare_networks.py for the PyTorch code.",
        "",
    ]
    if any(p.pass_ == "iteration" for r in results for p in r.passes):
        parts[-1:-1] = [
            "",
            "iteration is one training iteration of the paper's recipe (2 D steps, "
            "1 G step, Adam, orthogonal regularisation, EMA of G); its img/s counts "
            "5 x batch images per iteration, on both sides. PyTorch: "
            f"`torch.optim.Adam` ({env['torch_adam']}), D's parameters frozen in the "
            "G step and no image gradient in the D steps, as BigGAN-PyTorch does "
            "(ours too); ours renders its real batches on a background thread.",
        ]
    for r in results:
        og, od = (count_text(n) for n in r.ours_parameters) if r.ours_parameters else ("?", "?")
        tg, td = r.torch_parameters
        parts += [
            f"### {r.setup.title}, {r.precision}",
            "",
            f"- Parameters: G {og} (ours) / {tg:,} (PyTorch), "
            f"D {od} (ours) / {td:,} (PyTorch)",
            *(f"- {line}" for line in notes(r)),
            "",
            render_markdown(HEADER, table_rows(r), TEXT_COLUMNS),
            "",
        ]
    return "\n".join(parts)


# ------------------------------------------------------------------- main --


def parse_args() -> argparse.Namespace:
    """Command-line options (see --help)."""
    p = argparse.ArgumentParser(
        description="Time whole BigGAN networks (biggan-fast bench) against the "
                    "PyTorch reference model, interleaved round by round.")
    p.add_argument("--biggan-fast", type=Path, default=Path(".build/release/biggan-fast"),
                   help="the biggan-fast binary (default: %(default)s)")
    p.add_argument("--config", choices=sorted(PRESETS),
                   help="preset (default: cifar32)")
    p.add_argument("--ch", type=int,
                   help="channel multiplier of G and D (default: the preset's)")
    p.add_argument("--dim-z", type=int, help="latent size (default: the preset's)")
    p.add_argument("--shared-dim", type=int,
                   help="shared class-embedding size (default: the preset's)")
    p.add_argument("--batch", type=int, help="batch size (default: 8)")
    p.add_argument("--passes", nargs="+", choices=PASSES, metavar="PASS",
                   help=f"passes to time, of: {', '.join(PASSES)} (default: all; "
                        f"iteration only for presets with {TRAINING_CLASSES} classes)")
    p.add_argument("--suite", action="store_true",
                   help="the reported setups instead of --config/--ch/--dim-z/"
                        "--shared-dim/--batch/--passes: " + "; ".join(
                            f"{s.title}: {', '.join(s.passes)}" for s in SUITE))
    p.add_argument("--torch-adam", choices=sorted(ADAM_IMPLS), default="fused",
                   help="torch.optim.Adam implementation of the PyTorch iteration "
                        "(default: %(default)s)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="fp32, or bf16 (PyTorch: bfloat16 autocast) (default: %(default)s)")
    add_timing_options(p, rounds_help="interleaved rounds",
                       repeats_help="timed calls per side, pass and round")
    add_output_options(p)
    args = p.parse_args()
    require_positive(p, args, ("threads", "rounds", "repeats", "ch", "batch", "dim_z",
                               "shared_dim"))
    if args.suite:
        given = [f"--{n.replace('_', '-')}"
                 for n in ("config", "ch", "dim_z", "shared_dim", "batch", "passes")
                 if getattr(args, n) is not None]
        if given:
            p.error(f"--suite fixes the setups; drop {', '.join(given)}")
        args.setups = SUITE
    else:
        config = args.config or "cifar32"
        passes = tuple(dict.fromkeys(args.passes or PASSES))
        if not supports_iteration(config):
            if args.passes and "iteration" in passes:
                p.error(f"the iteration pass needs a preset with {TRAINING_CLASSES} "
                        f"classes (our trainer's built-in data); {config} has "
                        f"{PRESETS[config].classes}")
            passes = tuple(x for x in passes if x != "iteration")
        args.setups = (Setup(config, args.ch or PRESETS[config].ch, args.batch or 8, passes,
                             dim_z=args.dim_z, shared_dim=args.shared_dim),)
    require_binary(p, args.biggan_fast, "--biggan-fast")
    return args


def main() -> int:
    """Runs the comparison; returns 1 if any setup failed."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    env = environment(args)
    print(f"{env['cpu_model']}, {args.threads} threads; PyTorch {env['torch_version']}; "
          f"{args.precision}; {args.rounds} round(s) x {args.repeats} call(s)",
          file=sys.stderr)

    results = []
    for setup in args.setups:
        print(f"{setup.title}: {', '.join(setup.passes)}", file=sys.stderr)
        result = compare_setup(setup, args)
        results.append(result)
        print(f"\n{setup.title}, {args.precision} ({result.isa or '?'}); PyTorch parameters "
              f"G {result.torch_parameters[0]:,} D {result.torch_parameters[1]:,}")
        print(render_text(HEADER, table_rows(result), TEXT_COLUMNS))
        for line in notes(result):
            print(line)

    if args.markdown:
        append_markdown(args.markdown, markdown_section(env, results))
    if args.json:
        write_json(args.json, {**env, "setups": [r.to_json() for r in results]})
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
