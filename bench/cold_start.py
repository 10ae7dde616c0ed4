"""Cold start: wall time of a fresh interpreter importing the app, against its floors.

Each sample is a new `python -c ...` subprocess (cwd = project root, the app's environment).
The commands are run round-robin rather than one after another, so drift in machine load
(another build, CPU frequency) spreads over all of them instead of biasing one. One discarded
warm-up per command first, so the .pyc files and page cache are warm: a Lambda's package is
usually precompiled, and a cold disk would measure the disk, not the code.

The floors: `deps` imports the app's own dependencies (boto3, PynamoDB's models, pydantic,
Chalice), what any Python Lambda on this stack pays; issue 19 wants `import app` within
MAX_RATIO_TO_DEPS of it, measured in the same run (`ratio_app_to_deps`, printed by `python -m
bench.cold_start`). `import app` imports services, storage and the WeChat adapters on first
use, not at import (chalicelib/lazy.py), so `app_then_auth` shows what moves to the first
request: `import app` plus the service behind every token check (and, through it, PynamoDB and
botocore). Which modules `import app` may load is checked by tests/unit/test_cold_start_imports.py,
not here: a timing is a measurement, never a test.
"""
from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time

from bench import ROOT, env
from bench.stats import percentile

COMMANDS = {
    "app": "import app",
    "deps": "import boto3, pynamodb.models, pydantic, chalice",
    "app_then_auth": "import app; import chalicelib.services.auth",
    "bare_chalice": "from chalice import Chalice; app = Chalice(app_name='x')",
    "interpreter": "pass",
}
MAX_RATIO_TO_DEPS = 1.25  # issue 19: `import app` / `deps`, medians of the same run
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


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time_once(code: str, environ: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one subprocess. CPU time (user + system, of the child alone) moves
    less than wall time when other work shares the machine's cores."""
    cpu, started = _children_cpu_seconds(), time.perf_counter()
    _run(code, environ)
    return time.perf_counter() - started, _children_cpu_seconds() - cpu


def _summary(samples: list[float], cpu: list[float]) -> dict[str, float | int | list[float]]:
    return {"n": len(samples), "median_ms": round(statistics.median(samples) * 1000, 1),
            "p90_ms": round(percentile(samples, 90) * 1000, 1), "min_ms": round(min(samples) * 1000, 1),
            "max_ms": round(max(samples) * 1000, 1), "samples_ms": [round(s * 1000, 1) for s in samples],
            "cpu_median_ms": round(statistics.median(cpu) * 1000, 1)}


def measure_wall_times(runs: int = RUNS) -> dict[str, dict]:
    environ = env.child_env()
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for code in COMMANDS.values():
        _time_once(code, environ)  # warm-up, discarded
    for _ in range(runs):
        for name, code in COMMANDS.items():
            wall, used = _time_once(code, environ)
            samples[name].append(wall)
            cpu[name].append(used)
    return {name: _summary(samples[name], cpu[name]) for name in COMMANDS}


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
    app, deps, app_then_auth, bare, floor = (walls[name]["median_ms"] for name in
                                             ("app", "deps", "app_then_auth", "bare_chalice", "interpreter"))
    return {
        "commands": COMMANDS,
        "wall": walls,
        "ratio_app_to_deps": round(app / deps, 2),
        "max_ratio_to_deps": MAX_RATIO_TO_DEPS,
        "within_max_ratio_to_deps": app / deps <= MAX_RATIO_TO_DEPS,
        "ratio_app_to_deps_cpu": round(walls["app"]["cpu_median_ms"] / walls["deps"]["cpu_median_ms"], 2),
        "ratio_app_then_auth_to_deps": round(app_then_auth / deps, 2),
        "ratio_app_to_bare_chalice": round(app / bare, 2),
        "app_minus_interpreter_ms": round(app - floor, 1),
        "deps_minus_interpreter_ms": round(deps - floor, 1),
        "bare_chalice_minus_interpreter_ms": round(bare - floor, 1),
        "import_time": import_times(),
        "notes": "Round-robin runs after one discarded warm-up each; .pyc files warm. deps = the app's own "
                 "dependencies (boto3, pynamodb.models, pydantic, chalice); app_then_auth = import app, then the "
                 "service every token check imports on the first authenticated request.",
    }


def summary(result: dict) -> str:
    """The medians and ratios, for a terminal."""
    lines = [f"{name:14s} median {wall['median_ms']:7.1f} ms  p90 {wall['p90_ms']:7.1f}  min {wall['min_ms']:7.1f}"
             f"  max {wall['max_ms']:7.1f}  CPU median {wall['cpu_median_ms']:7.1f} ms  ({COMMANDS[name]})"
             for name, wall in result["wall"].items()]
    verdict = "within" if result["within_max_ratio_to_deps"] else "OVER"
    lines += [f"import app / deps = {result['ratio_app_to_deps']}x wall ({verdict} the {MAX_RATIO_TO_DEPS}x target), "
              f"{result['ratio_app_to_deps_cpu']}x CPU",
              f"import app + auth service / deps = {result['ratio_app_then_auth_to_deps']}x",
              f"import app / bare Chalice = {result['ratio_app_to_bare_chalice']}x"]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m bench.cold_start [runs]: this section alone, nothing written
    print(summary(run(int(sys.argv[1]) if len(sys.argv) > 1 else RUNS)))
