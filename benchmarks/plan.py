"""Planner speed and quality on the SD 1.5 U-Net, and the article's claim per preset.

    .venv/bin/python benchmarks/plan.py [--hw generic-npu ...] [--time-limit 60]

Part 1 (issue 5 targets, SD 1.5 int8 on generic-npu): the MILP proven optimal or within
1% gap in 60 s; the greedy heuristic in 2 s and within 3% of the MILP, per objective.
Part 2 (docs/recompute.md): for each preset, spilling every skip against the best plan
that may only spill or recompute (no keeping), and the free plan: DRAM bytes, energy and
latency, and where recomputation lands.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from edgewise.capture.zoo import Workload, capture_zoo
from edgewise.hardware.spec import load_spec
from edgewise.plan.planner import make_plan
from edgewise.report.format import binary_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--hw",
        nargs="*",
        default=["generic-npu", "jetson-orin-nano", "rk3588-npu", "ethos-n77", "tesla-fsd-nna"],
    )
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--skip-sdxl", action="store_true")
    opts = parser.parse_args()
    console = Console()
    if not opts.skip_sdxl:
        scale = Table(
            title="SDXL U-Net at 512 (int8, generic-npu), --long-lived 3: the MILP at scale"
        )
        for col in ("objective", "tensors", "status", "gap", "seconds", "simulated = solver's"):
            scale.add_column(col, justify="right")
        big = capture_zoo("sdxl-unet", Workload(resolution=512))
        for objective in ("dram", "latency"):
            out = make_plan(big, spec0 := load_spec("generic-npu"), "int8", "int8", "int8",
                            objective, long_lived_ops=3, time_limit_s=opts.time_limit)  # fmt: skip
            r = out.result
            same = out.plan is not None and r.objective is not None and abs(
                out.plan.objective_value - r.objective) <= 1e-6 * abs(r.objective)  # fmt: skip
            scale.add_row(objective, str(len(out.problem.tensors)), r.status,
                          "-" if r.gap is None else f"{r.gap:.2e}", f"{r.seconds:.2f}",
                          "yes" if same else "NO")  # fmt: skip
            del spec0
        console.print(scale)
    graph = capture_zoo("sd15-unet")
    spec = load_spec("generic-npu")
    quality = Table(title="SD 1.5 U-Net (int8) on generic-npu: MILP against greedy")
    for col in ("objective", "MILP status", "MILP s", "gap", "greedy s", "greedy / MILP"):
        quality.add_column(col, justify="right")
    for objective in ("latency", "energy", "dram"):
        milp = make_plan(
            graph,
            spec,
            "int8",
            "int8",
            "int8",
            objective,
            solver="milp",
            time_limit_s=opts.time_limit,
        ).result
        greedy = make_plan(graph, spec, "int8", "int8", "int8", objective, solver="greedy").result
        ratio = (greedy.objective or 0) / milp.objective if milp.objective else float("nan")
        quality.add_row(
            objective,
            milp.status,
            f"{milp.seconds:.2f}",
            "-" if milp.gap is None else f"{milp.gap:.4%}",
            f"{greedy.seconds:.2f}",
            f"{ratio:.5f}",
        )
    console.print(quality)

    claim = Table(title="recompute skips instead of spilling them (SD 1.5 U-Net, int8, one step)")
    for col in (
        "preset",
        "SRAM",
        "spill-all DRAM",
        "recompute plan DRAM",
        "saved",
        "energy saved",
        "latency cost",
        "recomputed",
        "lands in",
        "free plan keeps/spills/recomputes",
    ):
        claim.add_column(col, justify="right")
    for name in opts.hw:
        hw = load_spec(name)
        no_keep = make_plan(
            graph,
            hw,
            "int8",
            "int8",
            "int8",
            "dram",
            allow=frozenset({"spill", "recompute"}),
            time_limit_s=opts.time_limit,
        )
        free = make_plan(graph, hw, "int8", "int8", "int8", "energy", time_limit_s=opts.time_limit)
        spill = no_keep.simulations["spill-all"].totals
        plan = no_keep.simulations["plan"].totals
        assert no_keep.plan is not None and free.plan is not None
        landing = sorted(  # the block each recomputation lands in
            {
                graph.block_of(graph.ops[t.recompute_at], 2)
                for t in no_keep.plan.tensors
                if t.action == "recompute"
            }
        )
        counts = {
            a: sum(t.action == a for t in free.plan.tensors) for a in ("keep", "spill", "recompute")
        }
        recomputed = sum(t.action == "recompute" for t in no_keep.plan.tensors)
        claim.add_row(
            name,
            binary_bytes(hw.sram_bytes),
            binary_bytes(spill.dram_bytes),
            binary_bytes(plan.dram_bytes),
            binary_bytes(spill.dram_bytes - plan.dram_bytes),
            f"{(spill.energy_j - plan.energy_j) * 1e3:.2f} mJ",
            f"{(plan.latency_s - spill.latency_s) * 1e3:+.2f} ms",
            f"{recomputed} of {len(no_keep.plan.tensors)}",
            ", ".join(landing) or "-",
            "/".join(str(counts[a]) for a in ("keep", "spill", "recompute")),
        )
    console.print(claim)


if __name__ == "__main__":
    main()
