"""Cold start: wall time of a fresh interpreter importing the app, against two floors.

Each sample is a new `python -c ...` subprocess (cwd = project root, the app's environment).
The three commands are run round-robin rather than one after another, so drift in machine
load (another build, CPU frequency) spreads over all three instead of biasing one. One
discarded warm-up per command first, so the .pyc files and page cache are warm: a Lambda's
package is usually precompiled, and a cold disk would measure the disk, not the code.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time

from bench import ROOT, env
from bench.stats import percentile

COMMANDS = {
    "app": "import app",
    "bare_chalice": "from chalice import Chalice; app = Chalice(app_name='x')",
    "interpreter": "pass",
}
RUNS = 15
IMPORTTIME_RUNS = 3
TOP_MODULES = 10
TIMEOUT_SECONDS = 60


def _run(code: str, environ: dict[str, str], *flags: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *flags, "-c", code], cwd=ROOT, env=environ,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=TIMEOUT_SECONDS)
    if result.returncode != 0:
        raise RuntimeError(f"`python -c {code!r}` failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


def _time_once(code: str, environ: dict[str, str]) -> float:
    started = time.perf_counter()
    _run(code, environ)
    return time.perf_counter() - started


def _summary(samples: list[float]) -> dict[str, float | int | list[float]]:
    return {"n": len(samples), "median_ms": round(statistics.median(samples) * 1000, 1),
            "p90_ms": round(percentile(samples, 90) * 1000, 1), "min_ms": round(min(samples) * 1000, 1),
            "max_ms": round(max(samples) * 1000, 1), "samples_ms": [round(s * 1000, 1) for s in samples]}


def measure_wall_times(runs: int = RUNS) -> dict[str, dict]:
    environ = env.child_env()
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for code in COMMANDS.values():
        _time_once(code, environ)  # warm-up, discarded
    for _ in range(runs):
        for name, code in COMMANDS.items():
            samples[name].append(_time_once(code, environ))
    return {name: _summary(values) for name, values in samples.items()}


def parse_importtime(stderr: str) -> dict[str, tuple[int, int]]:
    """{module: (self_us, cumulative_us)} from `-X importtime` output.

    A module reached through a package or a cycle can be listed twice: self times (each
    exclusive) are added, and the larger cumulative time is kept.
    """
    modules: dict[str, tuple[int, int]] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        try:
            self_us, cumulative_us, name = line[len("import time:"):].split("|", 2)
            figures = (int(self_us), int(cumulative_us))
        except ValueError:
            continue
        name = name.strip()
        seen_self, seen_cumulative = modules.get(name, (0, 0))
        modules[name] = (seen_self + figures[0], max(seen_cumulative, figures[1]))
    return modules


def import_times(runs: int = IMPORTTIME_RUNS, top: int = TOP_MODULES) -> dict[str, list[dict]]:
    """Top modules by cumulative and by self import time, median over `runs` runs."""
    environ = env.child_env()
    per_run = [parse_importtime(_run("import app", environ, "-X", "importtime").stderr) for _ in range(runs)]
    names = set().union(*per_run)
    rows = []
    for name in names:
        figures = [run[name] for run in per_run if name in run]
        rows.append({"module": name,
                     "self_ms": round(statistics.median(f[0] for f in figures) / 1000, 1),
                     "cumulative_ms": round(statistics.median(f[1] for f in figures) / 1000, 1)})
    return {"by_cumulative": sorted(rows, key=lambda r: -r["cumulative_ms"])[:top],
            "by_self": sorted(rows, key=lambda r: -r["self_ms"])[:top]}


def run(runs: int = RUNS) -> dict:
    walls = measure_wall_times(runs)
    app, bare, floor = (walls[name]["median_ms"] for name in ("app", "bare_chalice", "interpreter"))
    return {
        "commands": COMMANDS,
        "wall": walls,
        "ratio_app_to_bare_chalice": round(app / bare, 2),
        "app_minus_interpreter_ms": round(app - floor, 1),
        "bare_chalice_minus_interpreter_ms": round(bare - floor, 1),
        "import_time": import_times(),
        "notes": "Round-robin runs after one discarded warm-up each; .pyc files warm.",
    }
