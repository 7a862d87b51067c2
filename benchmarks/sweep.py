"""Sweep speed: a million spec points on sd15-unet, planned points, and Ray's overhead.

    .venv/bin/python benchmarks/sweep.py [--repeat 2] [--planned 4]

(1) 2^20 = 1,048,576 grid points (16 SRAM sizes x 16 DRAM bandwidths x 8 clocks x 8 x 8
array shapes x 8 static powers) on sd15-unet at int8 without planning, into a fresh DuckDB
store, on the local process pool (one worker per CPU): `run_sweep` wall time, the store
included, capture excluded (reported apart). Target (issue 15): at most 60 s on 2 cores.
(2) `--planned` points with a latency plan each (MILP per point): points per second.
(3) The same 16,384 points on the process pool (its workers spawned by the run) and on a
local Ray (started here first, one CPU per core, its start timed apart): time per point.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from edgewise.capture.zoo import capture_zoo
from edgewise.sweep.run import run_sweep
from edgewise.sweep.space import load_space

GRID = """
models: [sd15-unet]
hardware: generic-npu
spec:
  sram_bytes: [256KiB, 64MiB, log, 16]
  dram_bandwidth_bytes_per_s: [8GB/s, 136GB/s, 16]
  clock_hz: [0.5GHz, 2GHz, 8]
  mac_array.rows: {{values: [16, 32, 64, 128, 256, 512, 1024, 2048]}}
  mac_array.cols: {{values: [16, 32, 64, 128, 256, 512, 1024, 2048]}}
  static_power_w: [0.1, 2, {static}]
{extra}
"""


def _run(tmp: Path, text: str, graphs: dict, **kw) -> tuple[float, int]:  # type: ignore[type-arg, no-untyped-def]
    path = tmp / "space.yaml"
    path.write_text(text)
    store = tmp / f"s{time.perf_counter_ns()}.duckdb"
    space = load_space(path)
    summary = run_sweep(space, graphs, store, **kw)
    return summary.seconds, summary.evaluated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--planned", type=int, default=4)
    a = parser.parse_args()
    start = time.perf_counter()
    graphs = {"sd15-unet": capture_zoo("sd15-unet")}
    capture_s = time.perf_counter() - start
    cpus = os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        runs = [_run(tmp, GRID.format(static=8, extra=""), graphs) for _ in range(a.repeat)]
        times = [t for t, _ in runs]
        n = runs[0][1]
        med = statistics.median(times)
        rows.append((f"{n:,} points, no planning, store included ({cpus} workers)",
                     f"{med:.1f} s ({min(times):.1f}-{max(times):.1f})",
                     f"{n / med:,.0f} points/s", "<= 60 s"))  # fmt: skip
        planned = (f"sampling: {{method: random, points: {a.planned}, seed: 0}}\n"
                   "plan: {objective: latency}")  # fmt: skip
        t, n = _run(tmp, GRID.format(static=4, extra=planned), graphs)
        rows.append((f"{n} points, each planned (MILP, latency)", f"{t:.1f} s",
                     f"{n / t:.2f} points/s", "-"))  # fmt: skip
        small = GRID.format(static=1, extra="").replace("[0.5GHz, 2GHz, 8]", "[0.5GHz, 2GHz, 4]")
        small = small.replace("[8GB/s, 136GB/s, 16]", "[8GB/s, 136GB/s, 4]")
        t_pool, n_small = _run(tmp, small, graphs, batch_points=4096)
        import ray

        begin = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, logging_level=40, log_to_driver=False)
        ray_start = time.perf_counter() - begin
        try:
            t_ray, _ = _run(tmp, small, graphs, ray_address="auto", batch_points=4096)
        finally:
            ray.shutdown()
        rows.append((f"{n_small:,} points on the process pool (its workers' start included)",
                     f"{t_pool:.2f} s", f"{t_pool / n_small * 1e6:.1f} µs/point", ""))  # fmt: skip
        rows.append((f"{n_small:,} points on Ray (local, {cpus} CPUs; its start, "
                     f"{ray_start:.1f} s, apart)", f"{t_ray:.2f} s",
                     f"{t_ray / n_small * 1e6:.1f} µs/point, "
                     f"{(t_ray - t_pool) / n_small * 1e6:+.1f} against the pool", ""))  # fmt: skip
    print(f"capture of sd15-unet (once, not in the figures below): {capture_s:.1f} s\n")
    print("| what | time | rate | target |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
