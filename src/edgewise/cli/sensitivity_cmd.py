"""`edgewise sensitivity`: each layer's output error when its weights alone are quantized."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from edgewise.cli.common import (
    ROWS_DEFAULT,
    BatchOpt,
    CfgOpt,
    FramesOpt,
    JsonOpt,
    ModelArg,
    ModuleOpt,
    ResolutionOpt,
    bounded,
    console,
    output_target,
    to_json,
    workload_for,
    write_output,
)
from edgewise.errors import EdgewiseError

if TYPE_CHECKING:
    from edgewise.execute.sensitivity import Sensitivity


def sensitivity(
    model: ModelArg = None,
    weights: Annotated[
        Path | None,
        typer.Option("--weights", help=".safetensors weights (default: the factory's, or random)"),
    ] = None,
    calib: Annotated[
        int,
        typer.Option(
            "--calib",
            help="calibration inputs: forwards per layer and bit-width",
            callback=bounded(1, 10_000),
        ),
    ] = 16,
    bits: Annotated[
        str, typer.Option("--bits", help="comma list of int8, int4, int2")
    ] = "int8,int4,int2",
    layers: Annotated[
        str | None,
        typer.Option("--layers", help="comma list of globs over layer names, e.g. 'down_*'"),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="write the planner's file (plan --sensitivity)",
            callback=output_target,
        ),
    ] = None,
    rows: Annotated[
        int,
        typer.Option(
            "--rows", help="most sensitive rows shown (0 = all)", callback=bounded(0, 1_000_000)
        ),
    ] = ROWS_DEFAULT,
    json_out: JsonOpt = None,
    module: ModuleOpt = None,
    batch: BatchOpt = None,
    resolution: ResolutionOpt = None,
    frames: FramesOpt = None,
    cfg: CfgOpt = False,
) -> None:
    """Per-layer quantization sensitivity. Costs (layers x bits + 1) x N forwards."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from edgewise.capture.source import model_from_source
    from edgewise.execute.measure import materialize
    from edgewise.execute.sensitivity import (
        calibration_inputs,
        measure_sensitivity,
        parse_bits,
        weight_layers,
    )

    precisions = parse_bits(bits)
    workload = workload_for(batch, resolution, frames, cfg)
    if module and workload is not None:
        raise EdgewiseError(
            "--batch/--resolution/--frames/--cfg apply to zoo models; for --module, build the "
            "example inputs you want in the factory"
        )
    built, args, kwargs = model_from_source(model, module, workload)
    if weights is not None:
        from edgewise.execute.weights import describe, read_weights

        built, loaded = read_weights(built, weights)
        source = describe(loaded)
    elif any(t.is_meta for t in [*built.parameters(), *built.buffers()]):
        built, args, kwargs = materialize(built, args, kwargs, "fp32", "cpu")
        source = (
            "random (normal, std 0.02), so errors of the architecture, not of a trained "
            "model (give --weights FILE)"
        )
    else:
        source = "the factory's own"
    chosen = weight_layers(built, [g.strip() for g in (layers or "").split(",") if g.strip()])
    inputs, calibration = calibration_inputs(built, args, kwargs, calib)
    name = module or model or ""
    quiet = json_out == "-"
    if not quiet:
        forwards = (len(chosen) * len(precisions) + 1) * len(inputs)
        console.print(
            f"{name}: {len(chosen)} layers x {len(precisions)} bit-widths x {len(inputs)} "
            f"inputs = {forwards:,} forwards; weights: {source}; inputs: {calibration}",
            markup=False,
            emoji=False,
        )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=Console(stderr=True, markup=False, emoji=False),
        transient=True,
    ) as bar:
        task = bar.add_task("sensitivity", total=len(chosen) * len(precisions))

        def step(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what)

        result = measure_sensitivity(built, inputs, chosen, precisions, name, calibration, step)
    if output is not None:
        write_output(str(output), to_json(result.planner_dict()))
    if json_out:
        write_output(json_out, to_json({**result.to_dict(), "weights": source}))
    if not quiet:
        render_sensitivity(result, precisions, rows)
        if output is not None:
            console.print(
                f"sensitivity written to {output} (use: edgewise plan ... --allow "
                f"keep,spill,precision --sensitivity {output} --accuracy-budget X)"
            )


def render_sensitivity(result: Sensitivity, precisions: tuple[str, ...], rows: int) -> None:
    from rich.table import Table
    from rich.text import Text

    narrowest = precisions[-1] if precisions else ""
    ordered = sorted(result.layers, key=lambda layer: -layer.errors.get(narrowest, 0.0))
    shown = ordered if rows == 0 else ordered[:rows]
    title = (
        f"{result.model}: output relative MSE with one layer's weights quantized "
        f"(mean over {result.inputs} inputs), most sensitive at {narrowest} first"
    )
    table = Table(title=Text(title))  # a plain Text: 'pkg.mod:factory:' is no emoji code
    table.add_column("layer", overflow="fold")
    table.add_column("kind")
    table.add_column("weights", justify="right")
    for p in precisions:
        table.add_column(p, justify="right")
    for layer in shown:
        table.add_row(
            layer.scope,
            layer.kind,
            f"{layer.weight_params:,}",
            *(f"{layer.errors[p]:.3g}" for p in precisions),
        )
    console.print(table)
    hidden = len(ordered) - len(shown)
    more = f"; {hidden} more layers not shown (--rows 0 shows all)" if hidden else ""
    console.print(f"{result.forwards:,} forwards in {result.seconds:.1f} s{more}")
