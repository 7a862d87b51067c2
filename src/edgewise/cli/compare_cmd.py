"""`edgewise compare`: two models, two specs or two plans, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgewise.cli.common import (
    BatchOpt,
    CfgOpt,
    FramesOpt,
    JsonOpt,
    ResolutionOpt,
    SetOpt,
    check_plot,
    command_line,
    console,
    emit,
    graph_for,
    output_target,
)
from edgewise.errors import EdgewiseError

USAGE = (
    "compare takes two models (edgewise compare A B [--hw NAME]), one model on two specs "
    "(--hw X --hw Y), or one model under two plans (--plan P --plan Q)"
)


def compare(
    ctx: typer.Context,
    models: Annotated[
        list[str] | None, typer.Argument(help="one or two zoo models or graph files")
    ] = None,
    hw: Annotated[
        list[str] | None, typer.Option("--hw", help="hardware preset or spec file (give 1 or 2)")
    ] = None,
    set_: SetOpt = None,
    precision: Annotated[
        str | None, typer.Option("--precision", help="fp32 | fp16 | bf16 | int8 | wXaY")
    ] = None,
    plan_files: Annotated[
        list[Path] | None, typer.Option("--plan", help="a plan file (give 2, one model)")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="the per-stage chart (.png, .svg or .pdf)", callback=output_target
        ),
    ] = None,
    html: Annotated[
        str | None,
        typer.Option("--html", help="an HTML report of the comparison", callback=output_target),
    ] = None,
    json_out: JsonOpt = None,
    batch: BatchOpt = None,
    resolution: ResolutionOpt = None,
    frames: FramesOpt = None,
    cfg: CfgOpt = False,
) -> None:
    """Totals and per-stage latency, energy and DRAM of A and B, with B's change."""
    from edgewise.hardware.spec import (
        compute_precision,
        default_precision,
        load_spec,
        parse_precision,
    )
    from edgewise.plan.plan import planned_workload
    from edgewise.report.compare_report import (
        Side,
        comparison_section,
        comparison_to_dict,
        plot_comparison,
        render_comparison,
    )
    from edgewise.report.compare_report import compare as make_comparison
    from edgewise.simulate.simulator import simulate

    check_plot(plot)
    if html is not None and not html.lower().endswith((".html", ".htm")):
        raise EdgewiseError(f"--html takes an .html file (got '{html}')")
    models, specs, plans = models or [], hw or [], plan_files or []
    pairs: list[tuple[str, str, Path | None]]
    if len(models) == 2 and len(specs) <= 1 and not plans:
        kind, pairs = "models", [(m, specs[0] if specs else "generic-npu", None) for m in models]
    elif len(models) == 1 and len(specs) == 2 and not plans:
        kind, pairs = "specs", [(models[0], s, None) for s in specs]
    elif len(models) == 1 and len(plans) == 2 and len(specs) <= 1:
        kind, pairs = "plans", [(models[0], specs[0] if specs else "generic-npu", p) for p in plans]
    else:
        raise EdgewiseError(USAGE + f" (got {len(models)} models, {len(specs)} --hw, "
                            f"{len(plans)} --plan)")  # fmt: skip
    graphs: dict[str, object] = {}
    sides = []
    for model, spec_name, plan_file in pairs:
        spec = load_spec(spec_name, set_ or ())
        weights, activations = parse_precision(precision or default_precision(spec), spec)
        compute = compute_precision(weights, activations)
        if model not in graphs:
            graphs[model] = graph_for(model, None, batch, resolution, frames, cfg)
        graph = graphs[model]
        work, schedule, _ = planned_workload(graph, plan_file, spec, weights, activations)
        sim = simulate(work, spec, compute, schedule=schedule)
        label = {"models": model, "specs": spec.name, "plans": str(plan_file)}[kind]
        sides.append(Side(label, graph, spec, sim))  # type: ignore[arg-type]
    comparison = make_comparison(kind, sides[0], sides[1])
    if plot is not None:
        plot_comparison(comparison, plot)
    if html is not None:
        from edgewise.cli.common import write_output
        from edgewise.report.html_report import page, spec_section, totals_section

        sections = [comparison_section(comparison)]
        for tag, side in (("A", comparison.a), ("B", comparison.b)):
            sections.append(totals_section(side.sim, side.spec, f"{tag}: {side.label}"))
        specs_seen = {s.spec.name: s.spec for s in (comparison.a, comparison.b)}
        sections += [spec_section(s) for s in specs_seen.values()]
        title = f"{comparison.a.label} against {comparison.b.label}"
        write_output(html, page(title, sections, command_line(ctx)))
    emit(json_out, lambda: comparison_to_dict(comparison),
         lambda: render_comparison(comparison, console))  # fmt: skip
    if json_out != "-":
        for what, target in (("chart", plot), ("report", html)):
            if target is not None:
                console.print(f"{what} written to {target}")
