"""`edgewise calibrate` measures this machine into a `host` spec; `edgewise validate` runs
a model for real on it and sets every layer's measured time beside the simulation's."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from edgewise.cli.common import (
    ROWS_DEFAULT,
    BatchOpt,
    CfgOpt,
    DepthOpt,
    FramesOpt,
    HfConfigOpt,
    InputShapeOpt,
    JsonOpt,
    ModelArg,
    ModuleOpt,
    ResolutionOpt,
    SetOpt,
    bounded,
    console,
    graph_for,
    output_target,
    progress_line,
    to_json,
    workload_for,
    write_output,
)
from edgewise.errors import EdgewiseError

BUSY_SPREAD = 1.5  # rounds of one probe this far apart: the machine was not idle (idle: 1.1-1.4)

if TYPE_CHECKING:
    from edgewise.execute.calibrate import HostMeasurements
    from edgewise.execute.validate import Validation
    from edgewise.hardware.spec import HardwareSpec


def calibrate(
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="spec file to write (default: $XDG_CONFIG_HOME/edgewise/hardware/host.yaml, "
            "which `--hw host` reads)",
            callback=output_target,
        ),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="a few seconds, smaller probes (for tests)")
    ] = False,
) -> None:
    """Measure this machine's CPU (GEMM, conv, vector, cache and RAM bandwidth) into a spec."""
    from edgewise.execute.calibrate import (
        busy_spread,
        check_measurements,
        measure_host,
        write_host_spec,
    )

    if output is not None and output.suffix.lower() not in (".yaml", ".yml"):
        raise EdgewiseError(f"-o writes a YAML spec: give a file ending in .yaml (got '{output}')")
    # plain progress lines: a live spinner's thread would steal time from the probes
    measured = measure_host(
        quick=quick, progress=lambda text: progress_line(f"calibrating: {text}")
    )
    spec, path = write_host_spec(measured, output)
    _render_calibration(measured, spec)
    problems = check_measurements(measured)
    if problems:
        console.print(
            Text.assemble(
                ("warning:", "yellow"),
                " measured twice, still inconsistent: "
                + "; ".join(problems)
                + ". The machine was busy or throttled: rerun `edgewise calibrate` when it is "
                "idle before trusting this spec",
            )
        )
    spread = busy_spread(measured)
    if spread > BUSY_SPREAD:
        console.print(
            Text.assemble(
                ("warning:", "yellow"),
                f" a probe's slowest round took {spread:.2f}x its fastest "
                "(median over probes): something else was using this machine, so "
                "these figures are low and noisy; rerun `edgewise calibrate` when it "
                "is idle",
            )
        )
    use = "--hw host" if output is None else f"--hw {path}"
    console.print(f"written to {path}; simulate this machine with `{use}`")


def _render_calibration(m: HostMeasurements, spec: HardwareSpec) -> None:
    from rich.table import Table

    from edgewise.report.format import binary_bytes, si

    table = Table(title=f"{m.cpu}, {m.threads} threads, median of {m.dram_copy.runs} rounds")
    for col in ("probe", "time", "rate", "slowest / fastest round"):
        table.add_column(col, justify="left" if col == "probe" else "right")
    for label, unit, probes in (
        ("MACs", "MAC/s", (*m.gemm, *m.conv, *m.attention)),
        ("vector ops", "op/s", m.vector),
        ("bytes read + written", "B/s", (m.cache_copy, m.dram_copy)),
    ):
        table.add_section()
        table.add_row(Text(label, style="bold"), "", "", "")
        for p in probes:
            table.add_row(p.what, _seconds(p.seconds), f"{si(p.rate)}{unit}", f"{p.spread:.2f}")
    console.print(table)
    peak = spec.peak_macs_per_s("fp32")
    console.print(
        f"host spec: fp32 {si(peak)}MAC/s, vector {si(spec.vector_ops_per_cycle * spec.clock_hz)}"
        f"op/s, last-level cache {binary_bytes(spec.sram_bytes)} at "
        f"{si(spec.sram_bandwidth_bytes_per_s)}B/s, RAM {binary_bytes(spec.dram_bytes)} at "
        f"{si(spec.dram_bandwidth_bytes_per_s)}B/s"
    )


def validate(
    model: ModelArg = None,
    hw: Annotated[
        str, typer.Option("--hw", help="the spec of this machine: host (edgewise calibrate)")
    ] = "host",
    set_: SetOpt = None,
    repeat: Annotated[
        int,
        typer.Option("--repeat", help="measured runs (after a warm-up)", callback=bounded(1, 1000)),
    ] = 5,
    by: Annotated[str, typer.Option("--by", help="layer | block")] = "layer",
    depth: DepthOpt = 2,
    rows: Annotated[
        int,
        typer.Option("--rows", help="slowest rows shown (0 = all)", callback=bounded(0, 1_000_000)),
    ] = ROWS_DEFAULT,
    json_out: JsonOpt = None,
    module: ModuleOpt = None,
    input_shape: InputShapeOpt = None,
    hf_config: HfConfigOpt = None,
    batch: BatchOpt = None,
    resolution: ResolutionOpt = None,
    frames: FramesOpt = None,
    cfg: CfgOpt = False,
    published: Annotated[
        str | None,
        typer.Option(
            "--published",
            metavar="FILE",
            help="instead: compare with published real-chip latencies, a CSV with the columns "
            "of edge_latency.csv, or 'default' for the table edgewise ships (--hw keeps one "
            "preset)",
        ),
    ] = None,
) -> None:
    """Run MODEL on this CPU (random fp32 weights) and compare every layer with the simulator;
    or, with --published, compare the presets with vendors' published latencies."""
    if published is not None:
        _validate_published(published, model, module, None if hw == "host" else hw, json_out)
        return
    from edgewise.capture.source import model_from_source
    from edgewise.execute.measure import available_memory_bytes, materialize
    from edgewise.execute.validate import compare, measure_scopes
    from edgewise.hardware.spec import load_spec
    from edgewise.simulate.simulator import simulate
    from edgewise.simulate.workload import op_workload

    if by not in ("layer", "block"):
        raise EdgewiseError(f"--by must be layer or block (got '{by}')")
    if repeat < 1:
        raise EdgewiseError(f"--repeat must be at least 1 (got {repeat})")
    if model and not module and (model.endswith(".json") or Path(model).is_file()):
        raise EdgewiseError(
            f"'{model}' is a saved graph, but validate runs the model itself: give a zoo name "
            "or --module"
        )
    spec = load_spec(hw, set_ or ())
    if "fp32" not in spec.macs_per_cycle:
        raise EdgewiseError(
            f"validate runs the model in fp32 on this CPU, but '{spec.name}' has no fp32 MACs; "
            "give the spec of this machine (`edgewise calibrate`, then --hw host)"
        )
    graph = graph_for(model, module, batch, resolution, frames, cfg, None, input_shape, hf_config)
    sim = simulate(op_workload(graph, "fp32", "fp32"), spec, "fp32")
    needed = 4 * graph.parameter_count + 4 * max(
        (t.storage_bytes for t in graph.tensors.values()), default=0
    )
    if needed > 0.8 * available_memory_bytes("cpu"):
        raise EdgewiseError(
            f"running {graph.model} in fp32 needs at least {needed / 2**30:.1f} GiB; this machine "
            f"has {available_memory_bytes('cpu') / 2**30:.1f} GiB available"
        )
    workload = workload_for(batch, resolution, frames, cfg)
    # a line, not a live spinner: its thread would steal time from the run
    progress_line(f"running {graph.model}: 1 warm-up + {repeat} profiled runs")
    real = materialize(*model_from_source(model, module, workload), dtype="fp32", device="cpu")
    measured = measure_scopes(*real, repeat=repeat)
    check = compare(graph, sim, measured, spec.peak_macs_per_s("fp32"), by=by, depth=depth)
    if json_out:
        write_output(json_out, to_json(validation_to_dict(check)))
    if json_out != "-":
        _render_validation(check, rows)


def _validate_published(
    table: str, model: str | None, module: str | None, hw: str | None, json_out: str | None
) -> None:
    from edgewise.execute.published import DEVICES, compare, read_published
    from edgewise.report.published_report import published_to_dict, render_published

    if model or module:
        raise EdgewiseError("--published compares the table's own models: give no MODEL")
    presets = sorted({p for p, _ in DEVICES.values()})
    if hw is not None and hw not in presets:
        raise EdgewiseError(
            f"--hw {hw}: no published rows for it (presets with rows: {', '.join(presets)})"
        )
    rows = read_published(table)
    comparisons = compare(rows, None if hw is None else [hw])
    if json_out:
        write_output(json_out, to_json(published_to_dict(comparisons)))
    if json_out != "-":
        render_published(comparisons, console)


def validation_to_dict(v: Validation) -> dict[str, object]:
    def number(x: float) -> float | None:
        return x if math.isfinite(x) else None

    return {
        "model": v.model,
        "hardware": v.spec_name,
        "by": v.by,
        "runs": v.runs,
        "threads": v.threads,
        "units": {
            "predicted_s": "seconds",
            "measured_s": "seconds",
            "error": "(predicted - measured) / measured",
        },
        "totals": {
            "predicted_s": v.totals.predicted_s,
            "measured_s": v.totals.measured_s,
            "error": v.totals.error,
            "profiled_s": v.totals.profiled_s,
            "runs_s": list(v.totals.run_s),
        },
        "median_abs_layer_error": number(v.median_abs_layer_error),
        "significant": {
            "share_of_total": v.significant_share,
            "layers": v.significant_layers,
            "time_share": v.significant_time_share,
        },
        "rows": [
            {
                "name": r.name,
                "predicted_s": r.predicted_s,
                "measured_s": r.measured_s,
                "error": number(r.error),
                "bound": r.bound,
                "op_count": r.op_count,
            }
            for r in v.rows
        ],
    }


def _seconds(value: float) -> str:  # the one formatter, imported when a table is drawn
    from edgewise.report.format import seconds

    return seconds(value)


def _percent(error: float) -> str:
    return f"{error:+.0%}" if math.isfinite(error) else "-"


def _render_validation(v: Validation, limit: int) -> None:
    from rich.table import Table

    slow = sorted(v.rows, key=lambda r: -max(r.measured_s, r.predicted_s))[: limit or None]
    kept = {id(r) for r in slow}
    table = Table(
        title=f"{v.model} on {v.spec_name}: slowest {len(slow)} of {len(v.rows)} {v.by}s "
        f"(measured: median of {v.runs} runs, {v.threads} threads; in execution order)"
    )
    for col in (v.by, "predicted", "measured", "error", "predicted bound"):
        table.add_column(col, justify="left" if col in (v.by, "predicted bound") else "right")
    for r in v.rows:
        if id(r) in kept:
            table.add_row(r.name or "<root>", _seconds(r.predicted_s), _seconds(r.measured_s),
                          _percent(r.error), r.bound)  # fmt: skip
    table.add_section()
    t = v.totals
    table.add_row("total", _seconds(t.predicted_s), _seconds(t.measured_s), _percent(t.error), "",
                  style="bold")  # fmt: skip
    console.print(table)
    console.print(
        f"measured: median of {v.runs} plain forwards ({_seconds(min(t.run_s))} to "
        f"{_seconds(max(t.run_s))}); the {v.by} times come from {v.runs} profiled forwards "
        f"(median {_seconds(t.profiled_s)}: labels and profiler add "
        f"{_seconds(max(0.0, t.profiled_s - t.measured_s))}), container modules' own Python "
        "time included"
    )
    if max(t.run_s) > 1.3 * min(t.run_s):
        console.print(
            Text.assemble(
                ("warning:", "yellow"),
                f" the plain runs vary from {_seconds(min(t.run_s))} to "
                f"{_seconds(max(t.run_s))}: something else was using this machine; "
                "the comparison is only as good as the measurement (rerun, or raise "
                "--repeat)",
            )
        )
    console.print(
        f"median |error| per {v.by}: {v.median_abs_layer_error:.0%} over the "
        f"{v.significant_layers} {v.by}s that take at least {v.significant_share:.1%} of the "
        f"profiled total ({v.significant_time_share:.0%} of its time); total error "
        f"{t.error:+.0%}"
    )
