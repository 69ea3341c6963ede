"""Shared pieces of the PyTorch comparison scripts in this folder.

`compare_pytorch.py` (single kernels, `bgkernels bench`) and
`compare_networks.py` (whole networks, `biggan-fast bench`) work the same
way: they run our binary as a `bench ... --json` subprocess, time a PyTorch
peer in-process, interleaved round by round, and report the medians as a
text table, an appended Markdown section and a JSON file. This module holds
what the two have in common:

* running our binary and parsing its JSON (`run_bench`, `run_bench_json`,
  `BenchError`);
* timing PyTorch calls (`time_calls`) and the medians and speed ratio of
  pooled timings (`PooledTimings`);
* rendering tables (`render_text`, `render_markdown`) and the CPU model
  (`cpu_model`);
* the shared command-line options and their checks (`add_timing_options`,
  `add_output_options`, `require_positive`, `require_binary`);
* writing the output files (`append_markdown`, `write_json`).

It needs neither PyTorch nor our binary to import. The scripts are run by
path (`python Benchmarks/compare_*.py`), so Python puts this folder on
`sys.path` and they import this module by name.
"""

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable


class BenchError(RuntimeError):
    """Our benchmark binary failed or printed something unexpected."""


# ------------------------------------------------------------- our binary --


def run_bench(binary: Path, args: list[str], launcher: tuple[str, ...] = ()) -> str:
    """Runs `BINARY bench ARGS` and returns its standard output.

    `launcher` goes before the binary (e.g. `mpirun -np 2`). Raises
    BenchError, with the command and its error output, if it exits with a
    non-zero status.
    """
    command = [*launcher, str(binary), "bench", *args]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(
            f"`{' '.join(command)}` exited with {proc.returncode}: "
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout


def run_bench_json(binary: Path, args: list[str], program: str,
                   launcher: tuple[str, ...] = ()) -> dict:
    """Runs `BINARY bench ARGS --json` and returns the parsed document.

    `program` names the binary in the BenchError raised for invalid JSON;
    `launcher` is as for `run_bench`.
    """
    out = run_bench(binary, [*args, "--json"], launcher)
    try:
        return json.loads(out)
    except json.JSONDecodeError as e:
        raise BenchError(f"{program} printed invalid JSON ({e}): {out[:200]!r}") from e


# ----------------------------------------------------------------- timing --


def time_calls(make_call: Callable[[], Callable[[], object]], repeats: int) -> list[float]:
    """Seconds of `repeats` timed calls after one untimed warm-up call.

    `make_call` runs untimed before every call (building autograd graphs,
    clearing gradients and the like) and returns the zero-argument callable
    to time.
    """
    times = []
    for i in range(repeats + 1):
        call = make_call()
        start = time.perf_counter()
        call()
        elapsed = time.perf_counter() - start
        if i > 0:
            times.append(elapsed)
        del call  # frees a consumed autograd graph before the next is built
    return times


class PooledTimings:
    """Medians and speed ratio of both sides' timings pooled over all rounds.

    A mixin for result dataclasses that keep the seconds of every timed
    call of ours in `ours_s` and of the (main) PyTorch peer in `torch_s`.
    """

    ours_s: list[float]
    torch_s: list[float]

    @property
    def ours_median(self) -> float:
        """Median of our times over all rounds."""
        return statistics.median(self.ours_s)

    @property
    def torch_median(self) -> float:
        """Median of the (main) PyTorch peer's times over all rounds."""
        return statistics.median(self.torch_s)

    @property
    def speedup(self) -> float:
        """torch time / our time: above 1 means ours is faster."""
        return self.torch_median / self.ours_median


# ----------------------------------------------------------------- report --


def render_text(header: list[str], rows: list[list[str]], text_columns: int) -> str:
    """An aligned plain-text table.

    The first `text_columns` columns are left-aligned, the others (numbers)
    right-aligned.
    """
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(w) if i < text_columns else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), "  ".join("-" * w for w in widths),
                      *map(line, rows)])


def render_markdown(header: list[str], rows: list[list[str]], text_columns: int) -> str:
    """A GitHub-flavoured Markdown table, aligned like `render_text`."""
    align = [":--" if i < text_columns else "--:" for i in range(len(header))]
    return "\n".join("| " + " | ".join(r) + " |" for r in [header, align, *rows])


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or "unknown"."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


# ---------------------------------------------------------------- options --


def add_timing_options(p: argparse.ArgumentParser, rounds_help: str,
                       repeats_help: str) -> None:
    """Adds --threads (default 2), --rounds and --repeats (default 3 each).

    `rounds_help` and `repeats_help` say what the script's rounds and
    repeats are; " (default: 3)" is appended to each.
    """
    p.add_argument("--threads", type=int, default=2,
                   help="threads for both sides (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=3,
                   help=f"{rounds_help} (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3,
                   help=f"{repeats_help} (default: %(default)s)")


def add_output_options(p: argparse.ArgumentParser) -> None:
    """Adds --markdown FILE and --json FILE (see `append_markdown`, `write_json`)."""
    p.add_argument("--markdown", type=Path, metavar="FILE",
                   help="append a results section to this Markdown file")
    p.add_argument("--json", type=Path, metavar="FILE",
                   help="write all raw timings to this JSON file")


def require_positive(p: argparse.ArgumentParser, args: argparse.Namespace,
                     names: tuple[str, ...]) -> None:
    """Exits with a usage error if an option of `names` that is set is below 1."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name} must be at least 1")


def require_binary(p: argparse.ArgumentParser, binary: Path, option: str) -> None:
    """Exits with a usage error if `binary`, given by `option`, is not a file."""
    if not binary.is_file():
        p.error(f"{binary} not found; build it with `swift build -c release` "
                f"or pass {option} PATH")


# ----------------------------------------------------------------- output --


def append_markdown(path: Path, section: str) -> None:
    """Appends a newline and then `section` to the Markdown file `path`."""
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n" + section)


def write_json(path: Path, doc: dict) -> None:
    """Writes `doc` to `path` as indented JSON."""
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
