"""SD 1.5 per image on five presets: the tables of docs/pipeline.md, reproducible.

    .venv/bin/python benchmarks/pipeline.py [--steps 25] > table.md

Per preset (25 steps, CFG): each phase with the default schedule (CFG as one batch-2
U-Net call per step), the image with CFG as two batch-1 calls, the image planned over
its calls (keep / spill / recompute / weight residency, latency objective), and the image
planned with per-layer int4 weights allowed where a `--floor` permits (attention and the
first and last convolutions held at int8). Then the SRAM that weight residency needs:
generic-npu from 4 MiB to 1 GiB. Every figure is simulated.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from edgewise.capture.pipelines import PipelineOptions, capture_pipeline
from edgewise.hardware.spec import load_spec
from edgewise.ir.pipeline import Pipeline
from edgewise.plan.planner import make_plan
from edgewise.report.format import binary_bytes
from edgewise.report.pipeline_report import held_bytes, main_bound
from edgewise.report.simulate_report import _seconds
from edgewise.simulate.pipeline import pipeline_run, simulate_pipeline

PRESETS = ("generic-npu", "snapdragon-8gen3", "snapdragon-8elite", "rk3588-npu",
           "jetson-orin-nano")  # fmt: skip
FLOORS = ("*=int4", "*attn*=int8", "conv_in=int8", "conv_out=int8")
SRAM = ("4MiB", "64MiB", "256MiB", "1GiB")


def planned(pipe: Pipeline, spec, floors: tuple[str, ...] = (), objective: str = "latency"):  # type: ignore[no-untyped-def]
    allow = {"keep", "spill", "recompute", "residency"} | ({"precision"} if floors else set())
    runs = []
    for p in pipe.phases:
        out = make_plan(p.graph, spec, "int8", "int8", "int8", objective, frozenset(allow),
                        floors=floors, calls=p.calls)  # fmt: skip
        runs.append(replace(out.simulations["plan"], name=p.name, steps_per_call=p.steps_per_call))
    return pipeline_run(pipe, spec, "int8", tuple(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=25)
    opts = parser.parse_args()
    start = time.perf_counter()
    batch = capture_pipeline("sd15", PipelineOptions(steps=opts.steps, cfg=True))
    sequential = capture_pipeline(
        "sd15", PipelineOptions(steps=opts.steps, cfg=True, cfg_mode="sequential")
    )
    print(f"### Per phase, default schedule, CFG batched ({opts.steps} steps, int8)\n")
    print("| preset | text encoder | U-Net per call | U-Net x calls | VAE decoder | per image "
          "| steps/s | U-Net bound | weights from DRAM |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    runs = {}
    for name in PRESETS:
        spec = load_spec(name)
        run = simulate_pipeline(batch, spec, "int8", "int8", "int8")
        runs[name] = run
        te, unet, vae = run.phases
        cells = [
            name,
            _seconds(te.totals.latency_s),
            _seconds(unet.later.totals.latency_s),
            _seconds(unet.totals.latency_s),
            _seconds(vae.totals.latency_s),
            f"**{_seconds(run.totals.latency_s)}**",
            f"{run.steps_per_s:.3g}",
            main_bound(unet.later.totals),
            binary_bytes(run.totals.dram_weight_bytes),
        ]
        print("| " + " | ".join(cells) + " |")
    print(f"\n### Per image: CFG batched vs sequential, plans ({opts.steps} steps)\n")
    print("| preset | CFG batch | CFG sequential | plan (residency) | held on chip | "
          "plan + int4 where floors allow | energy: default / plan / int4 plan |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name in PRESETS:
        spec = load_spec(name)
        base = runs[name]
        seq = simulate_pipeline(sequential, spec, "int8", "int8", "int8")
        plan = planned(batch, spec)
        int4 = planned(batch, spec, FLOORS)
        held = sum(held_bytes(p) for p in plan.phases)
        print(f"| {name} | {_seconds(base.totals.latency_s)} | {_seconds(seq.totals.latency_s)} "
              f"| {_seconds(plan.totals.latency_s)} | {binary_bytes(held)} "
              f"| {_seconds(int4.totals.latency_s)} | {base.totals.energy_j:.3g} / "
              f"{plan.totals.energy_j:.3g} / {int4.totals.energy_j:.3g} J |")  # fmt: skip
    print(f"\n### The SRAM weight residency needs (generic-npu, {opts.steps} steps, CFG batch)\n")
    print("| SRAM | default: latency / energy | latency plan: latency / U-Net weights held "
          "| energy plan: energy / U-Net weights held | weights from DRAM: default / "
          "energy plan |")  # fmt: skip
    print("|---|---|---|---|---|")
    for sram in SRAM:
        spec = load_spec("generic-npu", [f"sram_bytes={sram}"])
        base = simulate_pipeline(batch, spec, "int8", "int8", "int8")
        fast = planned(batch, spec)
        frugal = planned(batch, spec, objective="energy")
        cells = [
            sram,
            f"{_seconds(base.totals.latency_s)} / {base.totals.energy_j:.3g} J",
            f"{_seconds(fast.totals.latency_s)} / {binary_bytes(held_bytes(fast.phases[1]))}",
            f"{frugal.totals.energy_j:.3g} J / {binary_bytes(held_bytes(frugal.phases[1]))}",
            f"{binary_bytes(base.totals.dram_weight_bytes)} / "
            f"{binary_bytes(frugal.totals.dram_weight_bytes)}",
        ]
        print("| " + " | ".join(cells) + " |")
    print(f"\n(made in {time.perf_counter() - start:.0f} s by benchmarks/pipeline.py)")


if __name__ == "__main__":
    main()
