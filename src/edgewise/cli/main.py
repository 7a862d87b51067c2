"""The `edgewise` command: a thin layer over the Python API.

User mistakes raise `EdgewiseError`; `main` prints its message as one line and exits 2.
`--debug` (anywhere on the command line) shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from edgewise.errors import EdgewiseError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Where a vision model's memory and compute go, layer by layer.",
)
console = Console(width=None if sys.stdout.isatty() else 160)  # pipes and CI get a wide table

# --- options shared by every command that takes a model --------------------------------
ModelArg = Annotated[
    str | None,
    typer.Argument(help="zoo name (see `edgewise zoo`) or a graph file from `edgewise capture`"),
]
ModuleOpt = Annotated[
    str | None,
    typer.Option(
        "--module",
        help="your own model: 'package.module:factory' returning (model, args[, kwargs])",
    ),
]
BatchOpt = Annotated[int | None, typer.Option("--batch", help="batch size (zoo models)")]
ResolutionOpt = Annotated[
    int | None, typer.Option("--resolution", help="image size in pixels (zoo models)")
]
FramesOpt = Annotated[int | None, typer.Option("--frames", help="video frames (vivit-b)")]
CfgOpt = Annotated[
    bool, typer.Option("--cfg", help="classifier-free guidance: doubles the U-Net batch")
]
JsonOpt = Annotated[str | None, typer.Option("--json", help="write JSON to FILE ('-' for stdout)")]
CsvOpt = Annotated[str | None, typer.Option("--csv", help="write CSV to FILE ('-' for stdout)")]


def _graph(model: str | None, module: str | None, batch: int | None, resolution: int | None,
           frames: int | None, cfg: bool):  # type: ignore[no-untyped-def]  # fmt: skip
    from edgewise.capture.source import graph_from_source
    from edgewise.capture.zoo import Workload

    workload = Workload(batch=batch if batch is not None else 1, resolution=resolution,
                        frames=frames, cfg=cfg)  # fmt: skip
    if batch is not None and batch < 1:
        raise EdgewiseError(f"--batch must be at least 1 (got {batch})")
    return graph_from_source(model, module, workload)


def _write(target: str, text: str) -> None:
    """'-' is stdout; a file is written whole or not at all."""
    if target == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    path = Path(target)
    if not path.parent.exists():
        raise EdgewiseError(f"cannot write '{target}': folder '{path.parent}' does not exist")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _json(data: Any) -> str:
    return json.dumps(data, indent=2)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
) -> None:
    """edgewise: capture, profile, and (in later stages) simulate and plan vision models."""


@app.command()
def zoo(json_out: JsonOpt = None) -> None:
    """List the zoo: models built from shipped configs, their inputs and published figures."""
    from rich.table import Table

    from edgewise.capture.zoo import ZOO

    if json_out:
        data = [
            {
                "name": e.name,
                "description": e.description,
                "inputs": e.inputs,
                "options": sorted(e.options),
                "published": [vars(p) for p in e.published],
            }
            for e in ZOO.values()
        ]
        _write(json_out, _json(data))
        if json_out == "-":
            return
    table = Table(title="edgewise zoo (configs only, no weights)")
    for col in ("model", "inputs", "options", "published figures (source)"):
        table.add_column(col, overflow="fold")
    for e in ZOO.values():
        figures = "\n".join(
            f"{p.quantity} {p.value:,} [{p.convention}] ({p.source})" for p in e.published
        )
        table.add_row(e.name, e.inputs, ", ".join(sorted(e.options)) or "-", figures or "-")
    console.print(table)


@app.command()
def capture(
    model: ModelArg = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="graph JSON file to write")] = Path(
        "graph.json"
    ),
    module: ModuleOpt = None,
    batch: BatchOpt = None,
    resolution: ResolutionOpt = None,
    frames: FramesOpt = None,
    cfg: CfgOpt = False,
) -> None:
    """Capture a model's op graph (no weights) and save it as JSON."""
    from edgewise.ir.serialize import graph_to_dict

    graph = _graph(model, module, batch, resolution, frames, cfg)
    _write(str(output), json.dumps(graph_to_dict(graph), separators=(",", ":")))
    if str(output) != "-":
        console.print(
            f"{graph.model}: {len(graph.ops)} ops, {len(graph.tensors)} tensors, "
            f"{graph.parameter_count:,} parameters -> {output}"
        )


@app.command()
def profile(
    model: ModelArg = None,
    by: Annotated[str, typer.Option("--by", help="op | layer | block")] = "layer",
    depth: Annotated[int, typer.Option("--depth", help="scope depth of a block")] = 2,
    convention: Annotated[
        str, typer.Option("--convention", help="default | thop | fvcore | torch")
    ] = "default",
    rows: Annotated[int, typer.Option("--rows", help="table rows shown (0 = all)")] = 40,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="write the per-layer charts (PNG)")
    ] = None,
    json_out: JsonOpt = None,
    csv_out: CsvOpt = None,
    module: ModuleOpt = None,
    batch: BatchOpt = None,
    resolution: ResolutionOpt = None,
    frames: FramesOpt = None,
    cfg: CfgOpt = False,
) -> None:
    """Per-op, per-layer or per-block parameters, MACs, vector ops and activation bytes."""
    from edgewise.analysis.profile import profile as run_profile
    from edgewise.report.profile_report import profile_to_csv, profile_to_dict, render_profile

    if by not in ("op", "layer", "block"):
        raise EdgewiseError(f"--by must be op, layer or block (got '{by}')")
    if plot is not None and plot.suffix.lower() != ".png":
        raise EdgewiseError(f"--plot writes PNG: give a file ending in .png (got '{plot}')")
    graph = _graph(model, module, batch, resolution, frames, cfg)
    prof = run_profile(graph, by=by, depth=depth, convention_name=convention)  # type: ignore[arg-type]
    if json_out:
        _write(json_out, _json(profile_to_dict(prof)))
    if csv_out:
        _write(csv_out, profile_to_csv(prof))
    if plot is not None:
        from edgewise.report.profile_plot import plot_profile

        layer_prof = (
            prof if by == "layer" else run_profile(graph, "layer", convention_name=convention)
        )
        plot_profile(graph, layer_prof, plot)
    if "-" not in (json_out, csv_out):
        render_profile(prof, console, limit=rows)
        if plot is not None:
            console.print(f"charts written to {plot}")


@app.command()
def conventions(
    model: ModelArg = None,
    json_out: JsonOpt = None,
    module: ModuleOpt = None,
    batch: BatchOpt = None,
    resolution: ResolutionOpt = None,
    frames: FramesOpt = None,
    cfg: CfgOpt = False,
) -> None:
    """Every counting convention side by side, split by op category."""
    from rich.table import Table

    from edgewise.analysis.compare import convention_breakdown
    from edgewise.analysis.conventions import CONVENTIONS
    from edgewise.report.format import si

    graph = _graph(model, module, batch, resolution, frames, cfg)
    results = convention_breakdown(graph)
    if json_out:
        data = {
            "model": graph.model,
            "conventions": {
                r.convention: {
                    "flops_per_mac": r.flops_per_mac, "headline": r.headline,
                    "macs": r.total.macs, "vector_ops": r.total.vector_ops,
                    "by_category": {c.value: {"macs": n.macs, "vector_ops": n.vector_ops}
                                    for c, n in r.by_category.items()},
                }
                for r in results
            },
        }  # fmt: skip
        _write(json_out, _json(data))
        if json_out == "-":
            return
    categories = list(dict.fromkeys(c for r in results for c in r.by_category))
    table = Table(title=f"{graph.model}: what each convention counts (MACs / vector ops)")
    table.add_column("category")
    for r in results:
        table.add_column(r.convention, justify="right")
    for c in categories:
        cells = []
        for r in results:
            n = r.by_category.get(c)
            cells.append(f"{si(n.macs)} / {si(n.vector_ops)}" if n else "-")
        table.add_row(c.value, *cells)
    table.add_section()
    table.add_row("MACs", *(si(r.total.macs) for r in results))
    table.add_row("vector ops", *(si(r.total.vector_ops) for r in results))
    table.add_row("FLOPs per MAC", *(str(r.flops_per_mac) for r in results))
    table.add_row(
        "headline (what the tool prints)", *(si(r.headline) for r in results), style="bold"
    )
    console.print(table)
    for r in results:
        console.print(f"[bold]{r.convention}[/bold]: {CONVENTIONS[r.convention].summary}")


@app.command()
def memory(
    model: ModelArg = None,
    lifetimes: Annotated[
        str, typer.Option("--lifetimes", help="last-use (compiler) | eager (as PyTorch runs)")
    ] = "last-use",
    attention: Annotated[
        str, typer.Option("--attention", help="captured | materialized | fused")
    ] = "captured",
    dtype: Annotated[
        str | None, typer.Option("--dtype", help="rescale activations: fp32|fp16|bf16|int8")
    ] = None,
    long_lived: Annotated[
        int, typer.Option("--long-lived", help="a tensor outliving N ops is long-lived")
    ] = 100,
    tile_sram: Annotated[
        int, typer.Option("--tile-sram", help="SRAM bytes a fused attention tile fits in")
    ] = 256 * 1024,
    measure: Annotated[
        bool, typer.Option("--measure", help="run the real model and measure its peak")
    ] = False,
    device: Annotated[str, typer.Option("--device", help="cpu | cuda (with --measure)")] = "cpu",
    rows: Annotated[int, typer.Option("--rows", help="long-lived rows shown (0 = all)")] = 15,
    plot: Annotated[Path | None, typer.Option("--plot", help="write the timeline (PNG)")] = None,
    json_out: JsonOpt = None,
    csv_out: CsvOpt = None,
    module: ModuleOpt = None,
    batch: BatchOpt = None,
    resolution: ResolutionOpt = None,
    frames: FramesOpt = None,
    cfg: CfgOpt = False,
) -> None:
    """Live memory at every op: activations, skips, attention scores; peak; real-run check."""
    from edgewise.analysis.memory import memory_timeline
    from edgewise.report.memory_report import (
        memory_to_csv,
        memory_to_dict,
        plot_memory,
        render_memory,
    )

    if plot is not None and plot.suffix.lower() != ".png":
        raise EdgewiseError(f"--plot writes PNG: give a file ending in .png (got '{plot}')")
    if device not in ("cpu", "cuda"):
        raise EdgewiseError(f"--device must be cpu or cuda (got '{device}')")
    graph = _graph(model, module, batch, resolution, frames, cfg)
    options = dict(attention=attention, dtype=dtype, long_lived_ops=long_lived,
                   tile_sram_bytes=tile_sram)  # fmt: skip
    tl = memory_timeline(graph, lifetimes=lifetimes, **options)  # type: ignore[arg-type]
    measured, eager_peak = None, None
    if measure:
        measured, eager_peak = _measure(graph, model, module, batch, resolution, frames, cfg,
                                        dtype or "fp32", device, options)  # fmt: skip
    if json_out:
        data = memory_to_dict(tl, measured)
        if eager_peak is not None:
            data["predicted_eager_peak_bytes"] = eager_peak
        _write(json_out, _json(data))
    if csv_out:
        _write(csv_out, memory_to_csv(tl))
    if plot is not None:
        plot_memory(graph, tl, plot)
    if "-" not in (json_out, csv_out):
        render_memory(tl, console, measured, eager_peak, rows)
        if plot is not None:
            console.print(f"timeline written to {plot}")


def _measure(graph, model, module, batch, resolution, frames, cfg, dtype, device, options):  # type: ignore[no-untyped-def]
    """Run the real model and measure; refuse first if it would not fit in memory."""
    from edgewise.analysis.memory import memory_timeline
    from edgewise.capture.source import model_from_source
    from edgewise.capture.zoo import Workload
    from edgewise.execute.measure import TORCH_DTYPES, check_fits, materialize, measure_peak

    if dtype not in TORCH_DTYPES:
        raise EdgewiseError(f"--measure runs in {', '.join(TORCH_DTYPES)} (got --dtype {dtype})")
    eager = memory_timeline(graph, lifetimes="eager", **{**options, "dtype": dtype})
    scale = TORCH_DTYPES[dtype].itemsize
    weights = graph.parameter_count * scale
    check_fits(int(weights + eager.inputs.max(initial=0) + 1.2 * eager.peak_bytes), device)
    workload = Workload(batch=batch or 1, resolution=resolution, frames=frames, cfg=cfg)
    built = model_from_source(model, module, workload)
    real = materialize(*built, dtype=dtype, device=device)
    return measure_peak(*real, device=device), eager.peak_bytes


HwOpt = Annotated[str, typer.Option("--hw", help="hardware preset (edgewise hw list) or spec file")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override one spec field, PATH=VALUE (repeatable)"),
]


@app.command()
def simulate(
    model: ModelArg = None,
    hw: HwOpt = "generic-npu",
    set_: SetOpt = None,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision", help="fp32 | fp16 | bf16 | int8 | wXaY (e.g. w4a8); default int8"
        ),
    ] = None,
    attention: Annotated[
        str, typer.Option("--attention", help="captured | materialized | fused")
    ] = "captured",
    by: Annotated[str, typer.Option("--by", help="op | layer | block")] = "layer",
    depth: Annotated[int, typer.Option("--depth", help="scope depth of a block")] = 2,
    rows: Annotated[int, typer.Option("--rows", help="slowest rows shown (0 = all)")] = 15,
    plot: Annotated[Path | None, typer.Option("--plot", help="write the charts (PNG)")] = None,
    json_out: JsonOpt = None,
    csv_out: CsvOpt = None,
    module: ModuleOpt = None,
    batch: BatchOpt = None,
    resolution: ResolutionOpt = None,
    frames: FramesOpt = None,
    cfg: CfgOpt = False,
) -> None:
    """Latency, DRAM traffic, utilization and energy of every layer on an accelerator."""
    from edgewise.hardware.spec import compute_precision, load_spec, parse_precision
    from edgewise.report.simulate_report import (
        plot_simulation,
        render_simulation,
        simulation_to_csv,
        simulation_to_dict,
    )
    from edgewise.simulate.simulator import group_costs
    from edgewise.simulate.simulator import simulate as run_simulation
    from edgewise.simulate.workload import op_workload

    if by not in ("op", "layer", "block"):
        raise EdgewiseError(f"--by must be op, layer or block (got '{by}')")
    if attention not in ("captured", "materialized", "fused"):
        raise EdgewiseError(
            f"--attention must be captured, materialized or fused (got '{attention}')"
        )
    if plot is not None and plot.suffix.lower() != ".png":
        raise EdgewiseError(f"--plot writes PNG: give a file ending in .png (got '{plot}')")
    spec = load_spec(hw, set_ or ())
    weights, activations = parse_precision(precision or _default_precision(spec), spec)
    graph = _graph(model, module, batch, resolution, frames, cfg)
    work = op_workload(graph, weights, activations, attention)  # type: ignore[arg-type]
    mac_precision = compute_precision(weights, activations)
    sim = run_simulation(work, spec, mac_precision)
    keys = tuple(
        f"{op.index}:{op.target}"
        if by == "op"
        else op.scope
        if by == "layer"
        else graph.block_of(op, depth)
        for op in graph.ops
    )
    grouped = group_costs(sim, keys, spec.peak_macs_per_s(mac_precision))
    if json_out:
        _write(json_out, _json(simulation_to_dict(sim, grouped)))
    if csv_out:
        _write(csv_out, simulation_to_csv(grouped))
    if plot is not None:
        layer_rows = (
            grouped
            if by == "layer"
            else group_costs(
                sim, tuple(op.scope for op in graph.ops), spec.peak_macs_per_s(mac_precision)
            )
        )
        plot_simulation(graph, sim, layer_rows, plot, spec.peak_macs_per_s(mac_precision),
                        spec.dram_bandwidth_bytes_per_s)  # fmt: skip
    if "-" not in (json_out, csv_out):
        render_simulation(sim, grouped, console, rows)
        if plot is not None:
            console.print(f"charts written to {plot}")


def _default_precision(spec) -> str:  # type: ignore[no-untyped-def]
    """int8 where the spec has it (the edge default), else its narrowest float."""
    for choice in ("int8", "fp16", "bf16", "fp32"):
        if choice in spec.macs_per_cycle:
            return choice
    return next(iter(spec.macs_per_cycle))


def main() -> None:
    debug = "--debug" in sys.argv[1:]
    sys.argv = [a for a in sys.argv if a != "--debug"]  # accepted anywhere on the line
    try:
        app()
    except EdgewiseError as e:
        if debug:
            raise
        print(f"edgewise: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("edgewise: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # a bug, not a user mistake: still one line unless --debug
        if debug:
            raise
        print(
            f"edgewise: internal error: {type(e).__name__}: {e} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
