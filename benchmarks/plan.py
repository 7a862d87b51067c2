"""Planner speed and quality on the SD 1.5 U-Net, and the article's claim per preset.

    .venv/bin/python benchmarks/plan.py [--hw generic-npu ...] [--time-limit 60]

Part 1 (issue 5 targets, SD 1.5 int8 on generic-npu): the MILP proven optimal or within
1% gap in 60 s; the greedy heuristic in 2 s and within 3% of the MILP, per objective.
The SD 1.5 pipeline (issue 12 target; `--pipeline` runs only it): 25 steps with CFG as a
batch-2 U-Net, each phase planned over its calls (weight residency allowed), per
objective: every phase optimal or within 1% gap, the whole pipeline in 60 s.
Part 2 (docs/recompute.md, `--markdown` prints its table): per case, spilling every skip
against the best plan that may only spill or recompute (no keeping), and the free plan
(energy optimum, keep/spill/recompute allowed): DRAM bytes, energy and latency, and where
recomputation lands. Every figure is simulated.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from edgewise.capture.zoo import Workload, capture_zoo
from edgewise.hardware.spec import load_spec
from edgewise.plan.planner import make_plan
from edgewise.report.format import binary_bytes

CASES = (  # label, preset, --set overrides, workload (docs/recompute.md's rows)
    ("generic-npu (default)", "generic-npu", [], Workload()),
    ("generic-npu, 1 MiB SRAM", "generic-npu", ["sram_bytes=1MiB"], Workload()),
    ("rk3588-npu", "rk3588-npu", [], Workload()),
    ("ethos-u65-512", "ethos-u65-512", [], Workload()),
    ("tesla-fsd-nna", "tesla-fsd-nna", [], Workload()),
    ("generic-npu, 1024 x 1024", "generic-npu", [], Workload(resolution=1024)),
    ("generic-npu, --cfg (batch 2)", "generic-npu", [], Workload(cfg=True)),
    ("generic-npu, weights resident in 1 GiB", "generic-npu",
     ["sram_bytes=1GiB", "weights_resident=true"], Workload()),
)  # fmt: skip


def sweep(console: Console) -> None:
    """Issue 9's property, in full: the tiny diffusers U-Net (tests/models.py) at every
    SRAM size from 40 to 300 KiB in 1 KiB steps, for every --allow set and objective:
    once feasible always feasible, never worse with more SRAM, solver == simulator."""
    import itertools
    import time

    from edgewise.capture.source import graph_from_module
    from edgewise.ir.vocab import Action, Objective
    from edgewise.plan.greedy import figure
    from edgewise.plan.milp import solve_milp
    from edgewise.plan.problem import plan_problem
    from edgewise.simulate.simulator import simulate
    from edgewise.simulate.workload import op_workload

    graph = graph_from_module("tests.models:tiny_unet")
    work = op_workload(graph, "int8", "int8")
    table = Table(title="tiny U-Net, 40-300 KiB in 1 KiB steps (261 sizes)")
    for col in ("allow", "objective", "feasible from", "monotone", "solver = simulator",
                "s per solve"):  # fmt: skip
        table.add_column(col, justify="right")
    actions = (Action.KEEP, Action.SPILL, Action.RECOMPUTE)
    for r in (1, 2, 3):
        for allow in itertools.combinations(actions, r):
            for objective in Objective:
                start, first, monotone, equal, previous = (
                    time.perf_counter(),
                    None,
                    True,
                    True,
                    None,
                )
                for kib in range(40, 301):
                    hw = load_spec("generic-npu", [f"sram_bytes={kib}KiB"])
                    problem = plan_problem(graph, work, simulate(work, hw, "int8"), hw)
                    result = solve_milp(problem, objective, frozenset(allow))
                    if result.schedule is None:
                        monotone &= first is None
                        continue
                    first = first or kib
                    value = figure(simulate(work, hw, "int8", schedule=result.schedule), objective)
                    equal &= abs(value - (result.objective or 0)) <= 1e-6 * abs(value)
                    monotone &= previous is None or value <= previous * (1 + 1e-6)
                    previous = value
                seconds = (time.perf_counter() - start) / 261
                table.add_row("+".join(allow), str(objective), f"{first} KiB" if first else "-",
                              "yes" if monotone else "NO", "yes" if equal else "NO",
                              f"{seconds:.3f}")  # fmt: skip
    console.print(table)


def pipeline(console: Console, time_limit: float) -> None:
    """Each phase of SD 1.5 (25 steps, CFG batch 2) planned over its calls on generic-npu."""
    import time

    from edgewise.capture.pipelines import PipelineOptions, capture_pipeline

    pipe = capture_pipeline("sd15", PipelineOptions(steps=25, cfg=True))
    spec = load_spec("generic-npu")
    table = Table(title="SD 1.5 pipeline (25 steps, CFG batch 2, int8) on generic-npu: "
                  "each phase planned over its calls")  # fmt: skip
    for col in ("objective", "phase", "calls", "status", "gap", "decisions", "held layers",
                "seconds", "per image (simulated)", "simulated = solver's"):  # fmt: skip
        table.add_column(col, justify="right")
    unit = {"latency": (1.0, "s"), "energy": (1.0, "J"), "dram": (2**-30, "GiB")}
    for objective in ("latency", "energy", "dram"):
        start = time.perf_counter()
        total = 0.0
        for p in pipe.phases:
            out = make_plan(p.graph, spec, "int8", "int8", "int8", objective, calls=p.calls,
                            time_limit_s=time_limit)  # fmt: skip
            r, plan = out.result, out.plan
            assert plan is not None and plan.objective_value is not None
            total += plan.objective_value
            same = r.objective is None or abs(plan.objective_value - r.objective) <= 1e-6 * abs(
                r.objective)  # fmt: skip
            scale, label = unit[objective]
            table.add_row(objective, p.name, str(p.calls), r.status,
                          "-" if r.gap is None else f"{r.gap:.1e}", str(out.problem.decisions),
                          str(len(plan.resident)), f"{r.seconds:.2f}",
                          f"{plan.objective_value * scale:.4g} {label}",
                          "yes" if same else "NO")  # fmt: skip
        scale, label = unit[objective]
        table.add_row(objective, "per image", "", "", "", "", "",
                      f"{time.perf_counter() - start:.1f} (wall)", f"{total * scale:.4g} {label}",
                      "", style="bold")  # fmt: skip
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hw", nargs="*", default=[], help="only the cases on these presets")
    parser.add_argument(
        "--markdown", action="store_true", help="also print docs/recompute.md's table"
    )
    parser.add_argument(
        "--sweep", action="store_true", help="only the tiny U-Net SRAM sweep, 1 KiB steps"
    )
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--skip-sdxl", action="store_true")
    parser.add_argument("--pipeline", action="store_true", help="only the SD 1.5 pipeline")
    opts = parser.parse_args()
    console = Console()
    if opts.sweep:
        sweep(console)
        return
    pipeline(console, opts.time_limit)
    if opts.pipeline:
        return
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
    columns = ("case", "SRAM", "DRAM, spill-all", "DRAM, recompute plan", "saved",
               "energy saved", "latency cost", "recomputed", "lands in", "free plan k/s/r",
               "free plan DRAM")  # fmt: skip
    for col in columns:
        claim.add_column(col, justify="right")
    rows = []
    for label, name, sets, workload in CASES:
        if opts.hw and name not in opts.hw:
            continue
        hw = load_spec(name, sets)
        model = graph if workload == Workload() else capture_zoo("sd15-unet", workload)
        no_keep = make_plan(model, hw, "int8", "int8", "int8", "dram",
                            allow=frozenset({"spill", "recompute"}),
                            time_limit_s=opts.time_limit)  # fmt: skip
        free = make_plan(model, hw, "int8", "int8", "int8", "energy",
                         allow=frozenset({"keep", "spill", "recompute"}),
                         time_limit_s=opts.time_limit)  # fmt: skip
        spill = no_keep.simulations["spill-all"].totals
        plan = no_keep.simulations["plan"].totals
        assert no_keep.plan is not None and free.plan is not None
        landing = sorted(  # the block each recomputation lands in
            {
                model.block_of(model.ops[t.recompute_at], 2)
                for t in no_keep.plan.tensors
                if t.action == "recompute"
            }
        )
        counts = {
            a: sum(t.action == a for t in free.plan.tensors) for a in ("keep", "spill", "recompute")
        }
        recomputed = sum(t.action == "recompute" for t in no_keep.plan.tensors)
        row = (
            label,
            binary_bytes(hw.sram_bytes),
            binary_bytes(spill.dram_bytes),
            binary_bytes(plan.dram_bytes),
            binary_bytes(spill.dram_bytes - plan.dram_bytes),
            f"{(spill.energy_j - plan.energy_j) * 1e3:.2f} mJ",
            f"{(plan.latency_s - spill.latency_s) * 1e3:+.2f} ms",
            f"{recomputed} of {len(no_keep.plan.tensors)}",
            ", ".join(landing) or "-",
            "/".join(str(counts[a]) for a in ("keep", "spill", "recompute")),
            binary_bytes(free.simulations["plan"].totals.dram_bytes),
        )
        claim.add_row(*row)
        rows.append(row)
    console.print(claim)
    if opts.markdown:
        print("| " + " | ".join(columns) + " |")
        print("|" + "---|" * len(columns))
        for row in rows:
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
