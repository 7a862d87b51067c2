"""`edgewise sweep`: design-space sweeps into a DuckDB store, queries, Pareto fronts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from edgewise.cli.common import (
    JsonOpt,
    check_plot,
    console,
    output_target,
    to_json,
    working,
    write_output,
)
from edgewise.errors import EdgewiseError


class _SpaceFirst(TyperGroup):
    """`edgewise sweep SPACE.yaml ...` runs the sweep; `sweep query|pareto|export|schema`
    are the other commands."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


sweep_app = typer.Typer(
    rich_markup_mode=None,
    cls=_SpaceFirst,
    help="Design-space sweeps: `sweep SPACE.yaml -o results.duckdb`, then `sweep query`, "
    "`sweep pareto`, `sweep export`; `sweep schema` prints the space file's JSON schema.",
    no_args_is_help=True,
)
StoreArg = Annotated[Path, typer.Argument(help="a store written by `edgewise sweep`")]


@sweep_app.command("run")
def run(
    space_file: Annotated[Path, typer.Argument(help="the space (YAML or JSON)")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="the store (.duckdb)", callback=output_target)
    ] = Path("sweep.duckdb"),
    workers: Annotated[
        int | None, typer.Option("--workers", help="local processes (default: one per CPU)")
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option("--ray", help="run on Ray: local (start one here), auto or ADDRESS"),
    ] = None,
    batch_points: Annotated[
        int | None, typer.Option("--batch-points", help="points per batch (65,536; 64 planned)")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="a line per stored batch on stderr (for logs)")
    ] = False,
    parquet: Annotated[
        Path | None, typer.Option("--parquet", help="also export the table to Parquet")
    ] = None,
) -> None:
    """Evaluate every point of the space not yet in the store."""
    import sys

    from rich.progress import Progress

    from edgewise.sweep.run import base_spec, check_sweep_options, run_sweep, space_graphs
    from edgewise.sweep.space import load_space

    if output.suffix.lower() != ".duckdb":
        raise EdgewiseError(f"-o takes a .duckdb file (got '{output}'); --parquet exports too")
    check_sweep_options(workers, batch_points)
    space = load_space(space_file)
    base_spec(space)  # the spec and precisions, before any capture
    with working(f"capturing {len(space.models)} model(s) of the space"):
        graphs = space_graphs(space)
    err = typer.get_text_stream("stderr")
    with Progress(console=_stderr(), disable=not sys.stderr.isatty(), transient=True) as bar:
        job = bar.add_task("sweep", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(job, completed=done, total=total)

        def on_batch(k: int, n: int) -> None:
            if verbose:
                print(f"batch {k}/{n} stored", file=err, flush=True)

        summary = run_sweep(space, graphs, output, workers, ray, batch_points, progress,
                            on_batch)  # fmt: skip
    if parquet is not None:
        from edgewise.sweep.query import export_parquet

        export_parquet(output, parquet)
    rate = summary.evaluated / summary.seconds if summary.seconds else 0.0
    console.print(
        f"{summary.points:,} points: {summary.skipped:,} already stored, {summary.evaluated:,} "
        f"evaluated in {summary.batches} batches ({summary.executor}, {summary.seconds:.1f} s, "
        f"{rate:,.0f} points/s) -> {output}"
    )


def _stderr():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=True, markup=False, emoji=False)


@sweep_app.command("query")
def query(
    store: StoreArg,
    sql: Annotated[str, typer.Argument(help="SQL over the table `points`")],
    json_out: JsonOpt = None,
    rows: Annotated[int, typer.Option("--rows", help="rows shown (0 = all)")] = 20,
) -> None:
    """Run SQL on the store (read-only), e.g. "SELECT min(latency_s) FROM points"."""
    from edgewise.sweep.query import query as query_store

    names, data = query_store(store, sql)
    if json_out:
        write_output(json_out, to_json([dict(zip(names, r, strict=True)) for r in data]))
        if json_out == "-":
            return
    _table(names, data if rows == 0 else data[:rows], f"{len(data):,} rows")


def _table(names: list[str], data: list[tuple[Any, ...]], title: str) -> None:
    """Figures through the formatter by their column's unit (`--json` keeps full precision)."""
    from rich.table import Table

    from edgewise.report.format import by_name

    table = Table(title=title)
    for n in names:
        table.add_column(n, justify="right")
    render = [by_name(n) for n in names]
    for r in data:
        table.add_row(*(f(v) if isinstance(v, float) else str(v)
                        for f, v in zip(render, r, strict=True)))  # fmt: skip
    console.print(table)


@sweep_app.command("pareto")
def pareto(
    store: StoreArg,
    minimize: Annotated[
        str, typer.Option("--minimize", help="comma list of columns, e.g. latency_s,energy_j")
    ] = "latency_s,energy_j",
    where: Annotated[
        str | None, typer.Option("--where", help="SQL condition on the points first")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="the front (.png, .svg or .pdf)", callback=output_target),
    ] = None,
    html: Annotated[
        str | None,
        typer.Option("--html", help="an HTML report of the front", callback=output_target),
    ] = None,
    json_out: JsonOpt = None,
    rows: Annotated[int, typer.Option("--rows", help="rows shown (0 = all)")] = 20,
) -> None:
    """The points no other point beats on every --minimize column (feasible points only)."""
    from edgewise.sweep.query import pareto_front

    check_plot(plot)
    f = pareto_front(store, [m.strip() for m in minimize.split(",") if m.strip()], where)
    if json_out:
        record = {"minimize": list(f.objectives), "where": where, "points": len(f.values),
                  "front": f.as_dicts()}  # fmt: skip
        write_output(json_out, to_json(record))
    if plot is not None:
        _plot_front(f.values, f.mask, f.objectives, plot)
    if html is not None:
        _html_front(f.values, f.mask, f.objectives, f.names, f.points, html, where)
    if json_out != "-":
        others = [n for n in f.names if n not in f.objectives and n != "point_id"][:8]
        shown = ["point_id", *f.objectives, *others]
        pick = [f.names.index(n) for n in shown]
        front = f.points
        _table(shown, [tuple(r[i] for i in pick) for r in (front if rows == 0 else front[:rows])],
               f"Pareto front: {len(front)} of {len(f.values):,} feasible points, minimizing "
               f"{', '.join(f.objectives)}")  # fmt: skip


def _plot_front(values, mask, objectives, path) -> None:  # type: ignore[no-untyped-def]
    from edgewise.report.figures import pyplot, save_figure, unit_ticks
    from edgewise.report.format import by_name

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 6))
    x, y = (0, 1) if values.shape[1] >= 2 else (0, 0)
    ax.scatter(values[~mask, x], values[~mask, y], s=4, color="0.7", label="points")
    ax.scatter(values[mask, x], values[mask, y], s=14, color="#C44E52", label="front")
    ax.set_xlabel(objectives[x])
    ax.set_ylabel(objectives[y])
    ax.set_xscale("log")
    ax.set_yscale("log")
    unit_ticks(ax.xaxis, by_name(objectives[x]))
    unit_ticks(ax.yaxis, by_name(objectives[y]))
    ax.legend()
    save_figure(fig, path)


def _html_front(values, mask, objectives, names, front, path, where) -> None:  # type: ignore[no-untyped-def]
    import plotly.graph_objects as go

    from edgewise.report.html_report import Section, column_axis, esc, figure, page, table

    x, y = (0, 1) if values.shape[1] >= 2 else (0, 0)
    fig = go.Figure()
    sample = values[~mask][:: max(1, int((~mask).sum()) // 20_000)]  # at most ~20k drawn
    fig.add_scattergl(x=sample[:, x], y=sample[:, y], mode="markers", name="points",
                      marker={"size": 3, "color": "#bbb"})  # fmt: skip
    fig.add_scatter(x=values[mask, x], y=values[mask, y], mode="markers", name="front",
                    marker={"size": 7, "color": "#C44E52"})  # fmt: skip
    fig.update_layout(height=520, xaxis={"type": "log", "title": esc(objectives[x]),
                                         **column_axis(objectives[x])},
                      yaxis={"type": "log", "title": esc(objectives[y]),
                             **column_axis(objectives[y])})  # fmt: skip
    body = (f"<p>{int(mask.sum())} of {len(values):,} feasible points on the front"
            + (f", where {esc(where)}" if where else "") + "</p>" + figure(fig)
            + table(names, front[:500]))  # fmt: skip
    write_output(path, page(f"Pareto front: {', '.join(objectives)}",
                            [Section("Pareto front", body)], "edgewise sweep pareto"))  # fmt: skip


@sweep_app.command("export")
def export(
    store: StoreArg,
    target: Annotated[Path, typer.Argument(help="the Parquet file to write")],
) -> None:
    """The store's table as one Parquet file."""
    from edgewise.sweep.query import export_parquet

    export_parquet(store, target)
    console.print(f"{target} written")


@sweep_app.command("schema")
def schema() -> None:
    """The space file's JSON schema."""
    from edgewise.sweep.space import schema as space_schema

    print(json.dumps(space_schema(), indent=2))
