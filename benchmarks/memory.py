"""Memory timeline: predicted against measured peak, and liveness speed.

    .venv/bin/python benchmarks/memory.py [MODEL ...] [--resolution 512]

For each model (default: sd15-unet at 512x512, fp32): capture, time the liveness
analysis (best of 5, after capture), then run the real model once on CPU with random
weights and measure its peak allocated bytes from the profiler's allocation events.
Targets (issue 3): liveness for SD 1.5 at most 0.2 s; predicted peak close to measured.
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from edgewise.analysis.memory import memory_timeline
from edgewise.capture.zoo import Workload, capture_zoo, zoo_entry
from edgewise.execute.measure import check_fits, materialize, measure_peak
from edgewise.report.format import binary_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", default=["sd15-unet"])
    parser.add_argument("--resolution", type=int, default=None)
    opts = parser.parse_args()
    table = Table(title="memory timeline: predicted vs measured peak (fp32, CPU, batch 1)")
    for col in ("model", "liveness s (first / best of 5)", "predicted eager", "measured",
                "error", "measured with scratch", "predicted last-use", "forward s"):  # fmt: skip
        table.add_column(col, justify="right")
    for name in opts.models:
        workload = Workload(resolution=opts.resolution)
        graph = capture_zoo(name, workload)
        start = time.perf_counter()
        memory_timeline(graph)  # first call also builds the graph's cached indexes
        first = time.perf_counter() - start
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            memory_timeline(graph)
            best = min(best, time.perf_counter() - start)
        eager = memory_timeline(graph, lifetimes="eager")
        last_use = memory_timeline(graph)
        check_fits(graph.parameter_count * 4 + int(1.2 * eager.peak_bytes), "cpu")
        model, args, kwargs = materialize(*zoo_entry(name).build(workload), "fp32", "cpu")
        start = time.perf_counter()
        peaks = measure_peak(model, args, kwargs)
        measured = peaks.peak_bytes
        forward = time.perf_counter() - start
        del model
        error = (eager.peak_bytes - measured) / measured
        scratch = binary_bytes(peaks.with_scratch_bytes)
        table.add_row(name, f"{first:.3f} / {best:.3f}", binary_bytes(eager.peak_bytes),
                      binary_bytes(measured), f"{error:+.2%}", scratch,
                      binary_bytes(last_use.peak_bytes),
                      f"{forward:.1f}")  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
