#!/usr/bin/env python3
"""Load test for `biggan-fast serve`: browser tabs simulated by threads.

Each of --clients threads behaves like one open page. It reads /api/info
once, then until --seconds have passed asks for image grids as the page does
when a control changes:

    /api/images?view=grid&classes=K&count=N&seed=S&truncation=T&mode=resample
               &client=ID&seq=Q

with a random class K, count N in 1..4 (at most info's maxCount), seed S and
truncation T in [0.1, 1], and reads the NDJSON stream to its last line
(`done`, `cancelled` or `error`). About one request in five (--overlap) is
superseded: a second request of the same client starts as soon as the first
one's header line arrived, as when a slider moves while images are still
coming; the server should end the first with `cancelled` (or `done` if it
was already finished), which counts as success. When info says `watch`,
each client also polls /api/metrics?offset=0 every 2 s and /api/run every
10 s, as the page's watch tab does.

Per request kind it measures the time to the first image line and to the end
of the stream, and prints counts, errors, p50/p90/p99/max latencies and
images per second. Errors are HTTP statuses >= 400, `error` lines,
connection failures and timeouts, and malformed answers (a line that is not
JSON, a stream without its end line, an image that is not a PNG, fewer
images than the header announced, an unexpected `cancelled`). The exit
status is 1 if there was any error, so the script can gate a change.

Run it against a running server (standard library only, Python 3.8+):

    biggan-fast serve --run tiny --port 8080 &
    python3 Benchmarks/serve_load.py --url http://127.0.0.1:8080 --clients 8 --seconds 60 [--token T]
"""

import argparse
import base64
import http.client
import json
import math
import random
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Dict, List, Optional

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
METRICS_PERIOD_S = 2.0
RUN_PERIOD_S = 10.0
# Error messages shown per error category: enough to see what went wrong.
ERROR_SAMPLES = 5


class Malformed(Exception):
    """The server answered, but not what the contract says."""


@dataclass
class Outcome:
    """One finished request: when its first image and its end came."""

    kind: str
    first_image_s: Optional[float]
    end_s: float
    images: int
    ending: str  # done, cancelled, ok (plain JSON), or the error category
    error: Optional[str] = None


@dataclass
class Recorder:
    """The outcomes of one client thread; merged at the end, so no lock."""

    outcomes: List[Outcome] = field(default_factory=list)


class Target:
    """The server's address and token, and one HTTP request to it."""

    def __init__(self, url: str, token: Optional[str], timeout: float):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"--url must be http://HOST:PORT, not {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.base = parts.path.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, path: str, query: Optional[Dict[str, object]] = None):
        """Sends a GET and returns (connection, response) once the status
        line and headers are in; the caller reads the body and closes."""
        target = self.base + path
        if query:
            target += "?" + urllib.parse.urlencode(query)
        headers = {"Accept": "application/json, application/x-ndjson"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        # One connection per request: a tab has several open at once when a
        # new grid request overlaps the previous one.
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request("GET", target, headers=headers)
            return connection, connection.getresponse()
        except BaseException:
            connection.close()
            raise


def http_error(response) -> str:
    """`HTTP 400: message` from an error answer's JSON body."""
    body = response.read()
    try:
        message = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        message = body[:200].decode("utf-8", "replace")
    return f"HTTP {response.status}: {message}"


def get_json(target: Target, kind: str, path: str, query=None, check=None):
    """Fetches one JSON answer; returns (Outcome, the JSON or None)."""
    start = time.perf_counter()
    try:
        connection, response = target.request(path, query)
        try:
            if response.status >= 400:
                return Outcome(kind, None, time.perf_counter() - start, 0, "http", http_error(response)), None
            body = response.read()
        finally:
            connection.close()
        try:
            value = json.loads(body)
        except ValueError:
            raise Malformed(f"not JSON: {body[:120]!r}")
        if check:
            check(value)
        return Outcome(kind, None, time.perf_counter() - start, 0, "ok"), value
    except Malformed as error:
        return Outcome(kind, None, time.perf_counter() - start, 0, "malformed", str(error)), None
    except (OSError, http.client.HTTPException) as error:
        return Outcome(kind, None, time.perf_counter() - start, 0, "connection", f"{type(error).__name__}: {error}"), None


def require(condition: bool, what: str):
    """Raises Malformed with `what` unless `condition`."""
    if not condition:
        raise Malformed(what)


def check_info(info):
    """The fields of /api/info the clients use."""
    require(isinstance(info, dict), "info is not an object")
    require(isinstance(info.get("classes"), int) and info["classes"] >= 1, f"info.classes: {info.get('classes')!r}")
    require(isinstance(info.get("maxCount"), int) and info["maxCount"] >= 1, f"info.maxCount: {info.get('maxCount')!r}")


def check_metrics(metrics):
    """The shape of /api/metrics."""
    require(isinstance(metrics, dict), "metrics is not an object")
    require(isinstance(metrics.get("offset"), int), f"metrics.offset: {metrics.get('offset')!r}")
    require(isinstance(metrics.get("lines"), list), "metrics.lines is not a list")
    require(isinstance(metrics.get("reset"), bool), f"metrics.reset: {metrics.get('reset')!r}")


def check_run(run):
    """The shape of /api/run."""
    require(isinstance(run, dict), "run is not an object")
    require(isinstance(run.get("checkpoints"), list), "run.checkpoints is not a list")


def stream_images(target: Target, kind: str, query, started: Optional[threading.Event] = None) -> Outcome:
    """Requests one image stream and reads it to its end line.

    `started` is set once the header line arrived (or the request failed),
    so an overlapping request can follow it. A `cancelled` end counts as
    success only for the superseded kind.
    """
    start = time.perf_counter()
    first_image = None
    images = 0
    try:
        connection, response = target.request("/api/images", query)
        try:
            if response.status >= 400:
                return Outcome(kind, None, time.perf_counter() - start, 0, "http", http_error(response))
            header = None
            outcome = None
            while outcome is None:
                raw = response.readline()
                if not raw:
                    raise Malformed(f"stream ended without done/cancelled/error after {images} images")
                try:
                    line = json.loads(raw)
                except ValueError:
                    raise Malformed(f"line is not JSON: {raw[:120]!r}")
                require(isinstance(line, dict), f"line is not an object: {raw[:120]!r}")
                now = time.perf_counter() - start
                if header is None:
                    require(isinstance(line.get("count"), int), f"first line is not the header: {raw[:120]!r}")
                    header = line
                    if started:
                        started.set()
                elif "png" in line:
                    require(line.get("index") == images, f"image index {line.get('index')!r}, expected {images}")
                    try:
                        png = base64.b64decode(line["png"], validate=True)
                    except (ValueError, TypeError):
                        raise Malformed(f"image {images}: png is not base64")
                    require(png.startswith(PNG_SIGNATURE), f"image {images} is not a PNG")
                    images += 1
                    if first_image is None:
                        first_image = now
                elif line.get("done") is True:
                    require(images == header["count"], f"done after {images} of {header['count']} images")
                    outcome = Outcome(kind, first_image, now, images, "done")
                elif line.get("cancelled") is True:
                    outcome = (Outcome(kind, first_image, now, images, "cancelled") if kind == "images-superseded" else
                               Outcome(kind, first_image, now, images, "malformed", "cancelled, yet no newer request was made"))
                elif "error" in line:
                    outcome = Outcome(kind, first_image, now, images, "error-line", str(line["error"]))
                else:
                    raise Malformed(f"unknown line: {raw[:120]!r}")
            # The end line is the last; reading on to the end of the answer
            # also closes the connection cleanly.
            rest = response.read()
            require(not rest.strip(), f"data after the end line: {rest[:120]!r}")
            return outcome
        finally:
            connection.close()
    except Malformed as error:
        return Outcome(kind, first_image, time.perf_counter() - start, images, "malformed", str(error))
    except (OSError, http.client.HTTPException) as error:
        return Outcome(kind, first_image, time.perf_counter() - start, images, "connection", f"{type(error).__name__}: {error}")
    finally:
        if started:
            started.set()


def run_client(number: int, target: Target, args, deadline: float, stop: threading.Event, recorder: Recorder):
    """One simulated tab, until the deadline."""
    rng = random.Random(args.seed * 1000 + number)
    # Random like a tab's id and unlike the seeded choices: a server that
    # remembers clients must not take a rerun's requests for old ones.
    client = f"load{number}-{uuid.uuid4().hex[:12]}"
    outcome, info = get_json(target, "info", "/api/info", check=check_info)
    recorder.outcomes.append(outcome)
    if info is None:
        return
    watch = info.get("watch") is True
    count_limit = min(4, info["maxCount"])
    next_metrics = next_run = time.monotonic()
    seq = 0

    def grid_query():
        nonlocal seq
        seq += 1
        return {
            "view": "grid",
            "classes": rng.randrange(info["classes"]),
            "count": rng.randint(1, count_limit),
            "seed": rng.randrange(2**32),
            "truncation": f"{rng.uniform(0.1, 1.0):.3f}",
            "mode": "resample",
            "client": client,
            "seq": seq,
        }

    while time.monotonic() < deadline and not stop.is_set():
        now = time.monotonic()
        if watch and now >= next_metrics:
            recorder.outcomes.append(get_json(target, "metrics", "/api/metrics", {"offset": 0}, check_metrics)[0])
            next_metrics = now + METRICS_PERIOD_S
        if watch and now >= next_run:
            recorder.outcomes.append(get_json(target, "run", "/api/run", check=check_run)[0])
            next_run = now + RUN_PERIOD_S
        if rng.random() < args.overlap:
            # The older request runs in its own thread, as a browser's
            # fetches do, so the newer one starts while it is streaming.
            started = threading.Event()
            older: List[Outcome] = []
            query = grid_query()
            thread = threading.Thread(
                target=lambda: older.append(stream_images(target, "images-superseded", query, started)), daemon=True)
            thread.start()
            started.wait()
            recorder.outcomes.append(stream_images(target, "images", grid_query()))
            thread.join()
            recorder.outcomes.extend(older)
        else:
            recorder.outcomes.append(stream_images(target, "images", grid_query()))
        if args.think > 0:
            stop.wait(args.think)


def percentile(sorted_values: List[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_cells(values: List[float]) -> List[str]:
    """p50, p90, p99 and max in milliseconds, or dashes."""
    if not values:
        return ["-"] * 4
    values = sorted(values)
    return [f"{1000 * v:.0f}" for v in (percentile(values, 0.5), percentile(values, 0.9), percentile(values, 0.99), values[-1])]


def report(outcomes: List[Outcome], wall_s: float, args) -> int:
    """Prints the table and the first errors; returns the number of errors."""
    kinds = ["info", "images", "images-superseded", "metrics", "run"]
    header = ["kind", "count", "errors", "done", "cancel",
              "1st p50", "p90", "p99", "max", "end p50", "p90", "p99", "max", "images", "img/s"]
    rows = []
    total_errors = 0
    for kind in kinds:
        mine = [o for o in outcomes if o.kind == kind]
        if not mine:
            continue
        errors = [o for o in mine if o.error is not None]
        ok = [o for o in mine if o.error is None]
        total_errors += len(errors)
        images = sum(o.images for o in mine)
        streamed = kind.startswith("images")
        rows.append([
            kind, str(len(mine)), str(len(errors)),
            str(sum(o.ending == "done" for o in mine)) if streamed else "-",
            str(sum(o.ending == "cancelled" for o in mine)) if streamed else "-",
            *latency_cells([o.first_image_s for o in ok if o.first_image_s is not None]),
            *latency_cells([o.end_s for o in ok]),
            str(images) if streamed else "-",
            f"{images / wall_s:.1f}" if streamed else "-",
        ])
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    print(f"{args.clients} clients for {wall_s:.1f} s against {args.url}; latencies in ms "
          f"(1st: to the first image line, end: to the answer's end; successful requests only)")
    for row in [header] + rows:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    all_images = sum(o.images for o in outcomes)
    print(f"all streams: {all_images} images, {all_images / wall_s:.1f} images/s")

    by_category: Dict[str, List[Outcome]] = {}
    for o in outcomes:
        if o.error is not None:
            by_category.setdefault(o.ending, []).append(o)
    if by_category:
        print(f"{total_errors} errors: " + ", ".join(f"{len(v)} {k}" for k, v in sorted(by_category.items())))
        for category, failures in sorted(by_category.items()):
            for o in failures[:ERROR_SAMPLES]:
                print(f"  {category} ({o.kind}): {o.error}")
    else:
        print("no errors")
    return total_errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--clients", type=int, default=8, help="simulated tabs (default 8)")
    parser.add_argument("--seconds", type=float, default=60, help="how long new requests start (default 60)")
    parser.add_argument("--token", help="the server's --token, sent as Authorization: Bearer")
    parser.add_argument("--overlap", type=float, default=0.2,
                        help="share of requests superseded by a newer one of the same client (default 0.2)")
    parser.add_argument("--think", type=float, default=0,
                        help="pause in seconds between a client's requests (default 0: as fast as it can)")
    parser.add_argument("--timeout", type=float, default=60, help="socket timeout per request in seconds (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the clients' random choices (default 0)")
    args = parser.parse_args()
    if args.clients < 1 or args.seconds <= 0 or not 0 <= args.overlap <= 1 or args.think < 0 or args.timeout <= 0:
        parser.error("--clients >= 1, --seconds > 0, --overlap in [0, 1], --think >= 0 and --timeout > 0")

    try:
        target = Target(args.url, args.token, args.timeout)
    except ValueError as error:
        parser.error(str(error))
    stop = threading.Event()
    recorders = [Recorder() for _ in range(args.clients)]
    start = time.monotonic()
    deadline = start + args.seconds
    threads = [
        threading.Thread(target=run_client, args=(i, target, args, deadline, stop, recorders[i]), daemon=True)
        for i in range(args.clients)
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        # Report what was measured so far; requests in flight are dropped.
        stop.set()
        print("interrupted", file=sys.stderr)
    wall_s = time.monotonic() - start
    outcomes = [o for r in recorders for o in list(r.outcomes)]
    return 1 if report(outcomes, wall_s, args) else 0


if __name__ == "__main__":
    sys.exit(main())
