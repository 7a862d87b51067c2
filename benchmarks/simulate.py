"""Simulator speed: one SD 1.5 simulation, and 10,000 generated specs at once.

    .venv/bin/python benchmarks/simulate.py [--specs 10000] [--model sd15-unet]

After capture: the per-op workload is prepared once per graph and precision, then
(1) one simulation on generic-npu (best of 10, schedule included), and
(2) `simulate_many` on N specs drawn around generic-npu: SRAM from 16 sizes (256 KiB to
64 MiB; the schedule is computed once per distinct size), DRAM bandwidth, SRAM bandwidth,
clock and array shape continuous. Targets (issue 4): (1) <= 20 ms, (2) <= 10 s on one core.
Run it with OMP_NUM_THREADS=1 / OPENBLAS_NUM_THREADS=1 for the one-core figure.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from edgewise.capture.zoo import capture_zoo
from edgewise.hardware.spec import load_spec
from edgewise.simulate.batch import simulate_many
from edgewise.simulate.simulator import simulate
from edgewise.simulate.workload import op_workload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--specs", type=int, default=10_000)
    parser.add_argument("--model", default="sd15-unet")
    opts = parser.parse_args()
    graph = capture_zoo(opts.model)
    start = time.perf_counter()
    work = op_workload(graph, "int8", "int8")
    prep = time.perf_counter() - start
    spec = load_spec("generic-npu")
    times = []
    for _ in range(10):
        start = time.perf_counter()
        sim = simulate(work, spec, "int8")
        times.append(time.perf_counter() - start)
    rng = np.random.default_rng(0)
    sizes = (2 ** np.linspace(18, 26, 16)).astype(int)
    specs = [
        spec.model_copy(
            update={
                "sram_bytes": int(rng.choice(sizes)),
                "dram_bandwidth_bytes_per_s": float(10 ** rng.uniform(9.5, 11.5)),
                "sram_bandwidth_bytes_per_s": float(10 ** rng.uniform(10.5, 12.5)),
                "clock_hz": float(rng.uniform(0.5e9, 2e9)),
                "mac_array": spec.mac_array.model_copy(
                    update={
                        "rows": int(rng.choice([16, 32, 64, 128])),
                        "cols": int(rng.choice([16, 32, 64, 128])),
                    }
                ),
            }
        )
        for _ in range(opts.specs)
    ]
    start = time.perf_counter()
    batch = simulate_many(work, specs, "int8")
    many = time.perf_counter() - start
    table = Table(title=f"simulator speed, {opts.model} ({len(graph.ops)} ops), int8")
    for col in ("what", "time", "target", "result"):
        table.add_column(col, justify="right")
    table.add_row(
        "workload prep (once per graph and precision)",
        f"{prep * 1e3:.0f} ms",
        "-",
        f"{work.n_ops} ops",
    )
    table.add_row(
        "one simulation on generic-npu (best of 10)",
        f"{min(times) * 1e3:.1f} ms",
        "20 ms",
        f"{sim.totals.latency_s * 1e3:.1f} ms per forward",
    )
    table.add_row(
        f"{opts.specs:,} generated specs (simulate_many)",
        f"{many:.2f} s",
        "10 s",
        f"{batch.schedules_computed} schedules; latency "
        f"{batch.latency_s.min() * 1e3:.0f}-{batch.latency_s.max() * 1e3:.0f} ms",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
