#!/usr/bin/env python3
"""Compare whole BigGAN networks: `biggan-fast bench` against PyTorch eager.

For one setup (a preset, channel multiplier, batch and list of passes), or
for the two setups the project reports (`--suite`), this script times the
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
with images/s = batch / median. The speed ratio is torch time / our time
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

Gradients are set to None before every timed call, outside the timed region,
so each PyTorch backward writes fresh gradients; ours accumulates into
gradient tensors that persist between calls. Training-mode calls update the
batch-norm statistics and spectral-norm vectors on both sides.

Run from the repository root after building the release binary; see
Benchmarks/README.md. What this script shares with compare_pytorch.py is in
benchcommon.py.
"""

import argparse
import datetime
import statistics
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Optional

import torch

from benchcommon import (
    BenchError, PooledTimings, add_output_options, add_timing_options, append_markdown,
    cpu_model, render_markdown, render_text, require_binary, require_positive,
    run_bench_json, time_calls, write_json,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import biggan_reference as br  # noqa: E402

PASSES = ("g-forward", "g-forward-backward", "d-forward-backward", "dg-step")

LAYOUTS = {"channels_last": torch.channels_last, "nchw": torch.contiguous_format}


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


@dataclass(frozen=True)
class Setup:
    """One network comparison: preset, channel multiplier, batch, passes."""

    config: str
    ch: int
    batch: int
    passes: tuple[str, ...]

    @property
    def title(self) -> str:
        """A short human-readable name."""
        return f"{self.config}, ch {self.ch}, batch {self.batch}"


#: The setups the project reports (--suite).
SUITE = (
    Setup("cifar32", 64, 50, PASSES),
    Setup("imagenet128", 96, 8, ("g-forward", "g-forward-backward", "d-forward-backward")),
)


# ------------------------------------------------------------- biggan-fast --


def run_ours(binary: Path, setup: Setup, precision: str, threads: int,
             repeats: int) -> dict:
    """One round of `biggan-fast bench --json`: the parsed document."""
    doc = run_bench_json(
        binary,
        ["--config", setup.config, "--ch", str(setup.ch), "--batch", str(setup.batch),
         "--pass", *setup.passes, "--precision", precision, "--threads", str(threads),
         "--repeats", str(repeats)],
        "biggan-fast",
    )
    got = [r["pass"] for r in doc["results"]]
    if got != list(setup.passes):
        raise BenchError(f"biggan-fast timed passes {got}, expected {list(setup.passes)}")
    return doc


# ----------------------------------------------------------------- PyTorch --


def attention_spec(resolutions: tuple[int, ...]) -> str:
    """BigGAN-PyTorch's attention argument: '64', '32_64', or '0' for none."""
    return "_".join(map(str, resolutions)) or "0"


class TorchPasses:
    """The reference G and D of a setup, their inputs, and the four passes.

    `make_call(pass_)` does the untimed preparation of one call (network
    modes, gradients set to None, leaf inputs) and returns the callable to
    time. `memory_format` picks the activation layout of later calls.
    """

    def __init__(self, setup: Setup, precision: str):
        p = PRESETS[setup.config]
        torch.manual_seed(0)
        self.G = br.Generator(
            resolution=p.resolution, G_ch=setup.ch, dim_z=p.dim_z, n_classes=p.classes,
            shared_dim=p.shared_dim, G_shared=True, hier=True,
            G_attn=attention_spec(p.g_attention), BN_eps=BN_EPS, SN_eps=SN_EPS)
        self.D = br.Discriminator(
            resolution=p.resolution, D_ch=setup.ch, n_classes=p.classes,
            D_attn=attention_spec(p.d_attention), SN_eps=SN_EPS)
        self.batch = setup.batch
        self.bf16 = precision == "bf16"
        self.labels = torch.arange(setup.batch) % p.classes
        self.real = torch.rand(setup.batch, 3, p.resolution, p.resolution) * 2 - 1
        self.memory_format = torch.contiguous_format
        blocks = [m for m in (*self.G.modules(), *self.D.modules())
                  if isinstance(m, (br.GBlock, br.DBlock))]
        for m in (*blocks, self.G.output_layer):
            m.register_forward_pre_hook(self._convert_input)

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

    def make_call(self, pass_: str) -> Callable[[], None]:
        """Prepares one call of `pass_` and returns it."""
        for p in (*self.G.parameters(), *self.D.parameters()):
            p.grad = None
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
    batch: int
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
            "pass": self.pass_, "torch_layout": self.layout,
            "torch_layout_probe_median_s": self.layout_probe_s,
            "ours_times_s": self.ours_s, "torch_times_s": self.torch_s,
        }
        if self.complete:
            doc.update(ours_median_s=self.ours_median, torch_median_s=self.torch_median,
                       ours_images_per_s=self.batch / self.ours_median,
                       torch_images_per_s=self.batch / self.torch_median,
                       speedup=self.speedup)
        return doc


@dataclass
class SetupResult:
    """The comparison of one setup."""

    setup: Setup
    precision: str
    isa: str = ""
    #: (G, D) trainable parameters; ours stays None until our binary has run.
    ours_parameters: Optional[tuple[int, int]] = None
    torch_parameters: tuple[int, int] = (0, 0)
    passes: list[PassResult] = field(default_factory=list)
    error: Optional[str] = None

    @property
    def parameter_warning(self) -> Optional[str]:
        """A message if the two sides' parameter counts differ."""
        if self.ours_parameters is None or self.ours_parameters == self.torch_parameters:
            return None
        return ("parameter counts differ: ours G {:,} D {:,}, PyTorch G {:,} D {:,}"
                .format(*self.ours_parameters, *self.torch_parameters))

    def to_json(self) -> dict:
        """The setup, parameter counts and every pass, for --json."""
        doc = {
            "config": self.setup.config, "ch": self.setup.ch, "batch": self.setup.batch,
            "precision": self.precision, "isa": self.isa,
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
        nets = TorchPasses(setup, args.precision)
        result.torch_parameters = nets.parameter_counts
        layouts = {}
        for pass_ in setup.passes:
            probe = probe_layouts(nets, pass_, args.repeats)
            layouts[pass_] = min(probe, key=probe.get)
            result.passes.append(PassResult(pass_, setup.batch, layouts[pass_], probe))
            print(f"  layout probe {pass_}: "
                  + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in probe.items())
                  + f" -> {layouts[pass_]}", file=sys.stderr)
        for round_ in range(1, args.rounds + 1):
            doc = run_ours(args.biggan_fast, setup, args.precision, args.threads,
                           args.repeats)
            result.isa = doc["isa"]
            result.ours_parameters = (doc["g_parameters"], doc["d_parameters"])
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
                     f"{r.torch_median * 1e3:.1f}", f"{r.batch / r.torch_median:.1f}",
                     f"{r.ours_median * 1e3:.1f}", f"{r.batch / r.ours_median:.1f}",
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
    for r in results:
        og, od = (f"{n:,}" for n in r.ours_parameters) if r.ours_parameters else ("?", "?")
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
    p.add_argument("--batch", type=int, help="batch size (default: 8)")
    p.add_argument("--passes", nargs="+", choices=PASSES, metavar="PASS",
                   help=f"passes to time, of: {', '.join(PASSES)} (default: all)")
    p.add_argument("--suite", action="store_true",
                   help="the two reported setups instead of --config/--ch/--batch/"
                        "--passes: " + "; ".join(
                            f"{s.title}: {', '.join(s.passes)}" for s in SUITE))
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="fp32, or bf16 (PyTorch: bfloat16 autocast) (default: %(default)s)")
    add_timing_options(p, rounds_help="interleaved rounds",
                       repeats_help="timed calls per side, pass and round")
    add_output_options(p)
    args = p.parse_args()
    require_positive(p, args, ("threads", "rounds", "repeats", "ch", "batch"))
    if args.suite:
        given = [f"--{n}" for n in ("config", "ch", "batch", "passes")
                 if getattr(args, n) is not None]
        if given:
            p.error(f"--suite fixes the setups; drop {', '.join(given)}")
        args.setups = SUITE
    else:
        config = args.config or "cifar32"
        args.setups = (Setup(config, args.ch or PRESETS[config].ch, args.batch or 8,
                             tuple(dict.fromkeys(args.passes or PASSES))),)
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
