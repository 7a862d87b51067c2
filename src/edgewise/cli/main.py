"""The `edgewise` command: a thin layer over the Python API.

User mistakes raise `EdgewiseError`; `main` prints its message as one line and exits 2.
`--debug` (anywhere on the command line) shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from edgewise.cli.common import (
    ROWS_DEFAULT,
    BatchOpt,
    CfgModeOpt,
    CfgOpt,
    ContextOpt,
    CsvOpt,
    DepthOpt,
    FramesOpt,
    HfConfigOpt,
    ImageSizeOpt,
    InputShapeOpt,
    JsonOpt,
    ModelArg,
    ModuleOpt,
    NewTokensOpt,
    PhaseOpt,
    PromptTokensOpt,
    ResolutionOpt,
    StepsOpt,
    bounded,
    check_plot,
    console,
    emit,
    generation_graphs,
    graph_for,
    llm_request,
    output_target,
    pipeline_for,
    to_json,
    write_output,
)
from edgewise.errors import EdgewiseError


def _commit(*_: object, **__: object) -> None:
    """The command succeeded: write the files it produced."""
    from edgewise.ir.files import commit_outputs

    commit_outputs()


def _is_plain(value: Any, annotation: Any) -> bool:
    """`value` already has the text or number type its option is annotated with."""
    kind = type(value)
    return kind in (str, int, float) and annotation in (kind, kind | None)


def _pass_plain_values_through() -> None:
    """Values that need no coercion skip typer's: an option left out (None: "not given",
    as in click), and text or a number already of the option's type (a model name, a
    default). typer 0.2x coerces every value through a pydantic TypeAdapter, so every
    command imported pydantic (about 100 ms) before it ran, for `zoo` or a cached graph.
    Text given for a number, flags and lists are coerced as before; an older typer (click's
    own conversion) lacks the class and is left alone. Callbacks run either way."""
    parameter = getattr(typer.core, "_TyperParameter", None)
    if parameter is None or getattr(parameter, "_edgewise_passes_plain", False):
        return
    coerce = parameter.process_value

    def process_value(self: Any, ctx: Any, value: Any) -> Any:
        try:
            missing = value is None and not self.required
            plain = missing or _is_plain(value, self.type_descriptor.annotation)
            callback = self.callback
        except AttributeError:  # a typer whose parameters look otherwise: its own way
            plain = False
        if not plain:
            return coerce(self, ctx, value)
        return value if callback is None else callback(ctx, self, value)

    parameter.process_value = process_value
    parameter._edgewise_passes_plain = True


_pass_plain_values_through()

app = typer.Typer(
    rich_markup_mode=None,  # plain help: typer's rich formatter costs 100 ms of imports per call
    add_completion=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    result_callback=_commit,
    help="Where a vision model's memory and compute go, layer by layer.",
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"edgewise {version('edgewise')}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="capture again instead of reading the graph cache (accepted anywhere on the "
            "line; EDGEWISE_NO_CACHE=1 does the same)",
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", help="no progress on stderr (accepted anywhere on the line)"),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="print the version and exit",
            is_eager=True,
            callback=lambda v: _version(v),
        ),
    ] = False,
) -> None:
    """edgewise: capture, profile, simulate, plan and run vision models."""
    from edgewise.ir.files import discard_outputs, stage_outputs

    stage_outputs()  # files are written when the command succeeds (`_commit`), and only then
    ctx.call_on_close(discard_outputs)  # however the command ends


@app.command()
def zoo(json_out: JsonOpt = None) -> None:
    """List the zoo: models built from shipped configs, their inputs and published figures."""
    from rich.table import Table

    from edgewise.capture.llm import LLMS
    from edgewise.capture.pipelines import PIPELINES
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
        ] + [
            {
                "name": p.name,
                "description": p.description,
                "inputs": "a prompt -> an image",
                "options": ["batch", "cfg", "cfg_mode", "resolution", "steps"],
                "published": [],
                "phases": [m for _, m in p.text_encoders] + [p.denoiser, p.decoder],
            }
            for p in PIPELINES.values()
        ] + [
            {
                "name": e.name,
                "description": e.description,
                "inputs": "tokens (and an image)" if e.vision else "tokens",
                "options": ["context", "image_size", "new_tokens", "phase", "prompt_tokens"],
                "published": [{"quantity": "params", "value": e.params, "convention": "-",
                               "source": e.source, "precision": e.precision}],
                "kv_bytes_per_token_fp16": e.kv_bytes_per_token(2),
            }
            for e in LLMS.values()
        ]  # fmt: skip
        write_output(json_out, to_json(data))
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
    pipes = Table(title="pipelines (phases x calls: profile, memory, simulate and plan per image)")
    for col in ("pipeline", "phases (calls per image)", "options"):
        pipes.add_column(col, overflow="fold")
    for p in PIPELINES.values():
        phases = [f"{m} (1)" for _, m in p.text_encoders]
        phases += [f"{p.denoiser} (steps; x2 with --cfg-mode sequential)", f"{p.decoder} (1)"]
        pipes.add_row(p.name, " -> ".join(phases), "--steps, --cfg, --cfg-mode, --batch, "
                      "--resolution")  # fmt: skip
    console.print(pipes)
    llms = Table(title="language and vision-language models (--phase prefill | decode | generate)")
    for col in ("model", "architecture", "KV bytes/token (fp16)", "published parameters (source)"):
        llms.add_column(col, overflow="fold")
    for lm in LLMS.values():
        llms.add_row(lm.name, lm.description, f"{lm.kv_bytes_per_token(2):,.0f}",
                     f"{lm.params:,} ({lm.source})")  # fmt: skip
    console.print(llms)


@app.command()
def capture(
    model: ModelArg = None,
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="graph JSON file to write", callback=output_target),
    ] = Path("graph.json"),
    module: ModuleOpt = None,
    input_shape: InputShapeOpt = None,
    hf_config: HfConfigOpt = None,
    batch: BatchOpt = None,
    resolution: ResolutionOpt = None,
    frames: FramesOpt = None,
    cfg: CfgOpt = False,
    phase: PhaseOpt = None,
    prompt_tokens: PromptTokensOpt = None,
    context: ContextOpt = None,
    image_size: ImageSizeOpt = None,
) -> None:
    """Capture a model's op graph (no weights) and save it as JSON."""
    from edgewise.ir.serialize import graph_json

    request = None if module else llm_request(model, phase, prompt_tokens, None, context,
                                              image_size, generate=False)  # fmt: skip
    graph = graph_for(
        model, module, batch, resolution, frames, cfg, request, input_shape, hf_config
    )
    write_output(str(output), graph_json(graph))
    if str(output) != "-":
        console.print(
            f"{graph.model}: {len(graph.ops)} ops, {len(graph.tensors)} tensors, "
            f"{graph.parameter_count:,} parameters -> {output}"
        )


@app.command()
def profile(
    model: ModelArg = None,
    by: Annotated[str, typer.Option("--by", help="op | layer | block")] = "layer",
    depth: DepthOpt = 2,
    convention: Annotated[
        str, typer.Option("--convention", help="default | thop | fvcore | torch")
    ] = "default",
    rows: Annotated[
        int,
        typer.Option("--rows", help="table rows shown (0 = all)", callback=bounded(0, 1_000_000)),
    ] = ROWS_DEFAULT,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="write the per-layer charts (.png, .svg or .pdf)", callback=output_target
        ),
    ] = None,
    json_out: JsonOpt = None,
    csv_out: CsvOpt = None,
    module: ModuleOpt = None,
    input_shape: InputShapeOpt = None,
    hf_config: HfConfigOpt = None,
    batch: BatchOpt = None,
    resolution: ResolutionOpt = None,
    frames: FramesOpt = None,
    cfg: CfgOpt = False,
    steps: StepsOpt = None,
    cfg_mode: CfgModeOpt = None,
    phase: PhaseOpt = None,
    prompt_tokens: PromptTokensOpt = None,
    new_tokens: NewTokensOpt = None,
    context: ContextOpt = None,
    image_size: ImageSizeOpt = None,
) -> None:
    """Per-op, per-layer or per-block parameters, MACs, vector ops and activation bytes;
    for a pipeline (sd15, sdxl), per phase and per image; for a language model's
    generation, prefill and decode."""
    from edgewise.analysis.profile import profile as run_profile
    from edgewise.report.profile_report import profile_to_csv, profile_to_dict, render_profile

    if by not in ("op", "layer", "block"):
        raise EdgewiseError(f"--by must be op, layer or block (got '{by}')")
    if depth < 0:
        raise EdgewiseError(f"--depth must be 0 or more (got {depth})")
    check_plot(plot)
    pipeline = None if module else pipeline_for(model, batch, resolution, frames, cfg, steps,
                                                 cfg_mode)  # fmt: skip
    if pipeline is not None:
        from edgewise.analysis.pipeline import count_pipeline
        from edgewise.report.pipeline_report import (
            pipeline_counts_to_dict,
            render_pipeline_counts,
        )

        if csv_out or plot is not None:
            raise EdgewiseError(
                "--csv and --plot take one graph: give a phase's zoo model (e.g. sd15-unet)"
            )
        counts = count_pipeline(pipeline, convention)
        emit(
            json_out,
            lambda: pipeline_counts_to_dict(counts),
            lambda: render_pipeline_counts(counts, console),
        )
        return
    request = None if module else llm_request(model, phase, prompt_tokens, new_tokens, context,
                                              image_size)  # fmt: skip
    if request is not None and request["phase"] == "generate":
        from edgewise.analysis.generation import count_generation
        from edgewise.report.generation_report import (
            generation_counts_to_dict,
            render_generation_counts,
        )

        if csv_out or plot is not None:
            raise EdgewiseError("--phase generate: --csv and --plot take one graph")
        prefill, first, last, prompt = generation_graphs(request)
        gen_counts = count_generation(prefill, first, last, prompt, request["new_tokens"],
                                      convention)  # fmt: skip
        emit(
            json_out,
            lambda: generation_counts_to_dict(gen_counts),
            lambda: render_generation_counts(gen_counts, console),
        )
        return
    graph = graph_for(
        model, module, batch, resolution, frames, cfg, request, input_shape, hf_config
    )
    prof = run_profile(graph, by=by, depth=depth, convention_name=convention)  # type: ignore[arg-type]
    if json_out:
        write_output(json_out, to_json(profile_to_dict(prof)))
    if csv_out:
        write_output(csv_out, profile_to_csv(prof))
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
    input_shape: InputShapeOpt = None,
    hf_config: HfConfigOpt = None,
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

    graph = graph_for(model, module, batch, resolution, frames, cfg, None, input_shape, hf_config)
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
        write_output(json_out, to_json(data))
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
        console.print(
            Text.assemble((r.convention, "bold"), f": {CONVENTIONS[r.convention].summary}")
        )


from edgewise.cli.calibrate_cmd import calibrate, validate  # noqa: E402
from edgewise.cli.compare_cmd import compare  # noqa: E402
from edgewise.cli.digits_cmd import digits  # noqa: E402
from edgewise.cli.hw import hw_app  # noqa: E402  (commands register after the app exists)
from edgewise.cli.memory_cmd import memory  # noqa: E402
from edgewise.cli.plan_cmd import plan  # noqa: E402
from edgewise.cli.report_cmd import report  # noqa: E402
from edgewise.cli.run_cmd import run  # noqa: E402
from edgewise.cli.sensitivity_cmd import sensitivity  # noqa: E402
from edgewise.cli.simulate_cmd import simulate  # noqa: E402
from edgewise.cli.speculative_cmd import speculative  # noqa: E402
from edgewise.cli.sweep_cmd import sweep_app  # noqa: E402

app.command()(memory)
app.command()(simulate)
app.command()(calibrate)
app.command()(validate)
app.command()(plan)
app.command()(run)
app.command()(sensitivity)
app.command()(digits)
app.command()(speculative)
app.command()(report)
app.command()(compare)


@app.command()
def docs() -> None:
    """Where the documentation is (shipped inside the package): conventions, hardware,
    calibration, validation, quantization, recomputation, the pipeline."""
    from pathlib import Path

    from edgewise import docs_path

    folder = Path(docs_path())
    console.print(str(folder))
    for page in sorted(folder.glob("*.md")):
        console.print(f"  {page.name}")


cache_app = typer.Typer(
    rich_markup_mode=None,
    help="The graph cache: where it is, what it holds; clear it.",
    no_args_is_help=True,
)


@cache_app.command("info")
def cache_info() -> None:
    """Where captured graphs are cached and how much they take."""
    from edgewise.capture.cache import cache_dir, usage
    from edgewise.report.format import binary_bytes

    files, size = usage()
    console.print(f"{cache_dir() / 'graphs'}: {files} graphs, {binary_bytes(size)}")


@cache_app.command("clear")
def cache_clear() -> None:
    """Remove every cached graph (the next command on each model captures again)."""
    from edgewise.capture.cache import cache_dir, clear
    from edgewise.report.format import binary_bytes

    files, size = clear()
    console.print(f"removed {files} graphs ({binary_bytes(size)}) from {cache_dir() / 'graphs'}")


app.add_typer(cache_app, name="cache")
app.add_typer(hw_app, name="hw")
app.add_typer(sweep_app, name="sweep")


def one_line(message: str, limit: int = 2000) -> str:
    """A message as one printable line: control characters escaped, length bounded."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    return text if len(text) <= limit else text[: limit - 20] + f"... ({len(text):,} chars)"


@contextlib.contextmanager
def _only_the_command_named(args: list[str]) -> Iterator[None]:
    """Build only the command the line names: typer turns every command's signature into
    click parameters on each call (100 ms for all of them), and one command needs one.
    The root help, and a name that is no command (click then suggests the close ones),
    keep them all."""
    name = next((a for a in args if not a.startswith("-")), None)
    commands, groups = list(app.registered_commands), list(app.registered_groups)

    def command_name(c: Any) -> str:
        return c.name or c.callback.__name__.replace("_", "-")

    keep = [c for c in commands if command_name(c) == name]
    keep_groups = [g for g in groups if g.name == name]
    if keep or keep_groups:
        app.registered_commands, app.registered_groups = keep, keep_groups
    try:
        yield
    finally:
        app.registered_commands, app.registered_groups = commands, groups


def main() -> None:
    try:  # typer >= 0.20 ships its own copy of click
        from typer._click import exceptions as click
    except ImportError:  # pragma: no cover
        from click import exceptions as click  # type: ignore[no-redef]

    from edgewise.cli.common import QUIET
    from edgewise.ir.files import discard_outputs

    debug = "--debug" in sys.argv[1:]
    no_cache = "--no-cache" in sys.argv[1:]
    if no_cache or "edgewise.capture.cache" in sys.modules:  # its import costs 20 ms: not
        from edgewise.capture.cache import set_enabled  # for `--help`; enabled by default

        set_enabled(not no_cache)
    QUIET[0] = "--quiet" in sys.argv[1:]
    flags = ("--debug", "--no-cache", "--quiet")
    sys.argv = [a for a in sys.argv if a not in flags]  # accepted anywhere on the line
    code = 0
    try:
        with _only_the_command_named(sys.argv[1:]):
            code = app(prog_name="edgewise", standalone_mode=False) or 0
    except click.NoArgsIsHelpError as e:
        print(e.ctx.get_help() if e.ctx else "usage: edgewise COMMAND")
    except click.UsageError as e:  # a bad option or argument: folded into our one line
        hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx else ""
        print(f"edgewise: error: {one_line(e.format_message())}{hint}", file=sys.stderr)
        code = 2
    except click.ClickException as e:
        print(f"edgewise: error: {one_line(e.format_message())}", file=sys.stderr)
        code = e.exit_code
    except EdgewiseError as e:
        if debug:
            raise
        print(f"edgewise: error: {one_line(str(e))}", file=sys.stderr)
        code = 2
    except (KeyboardInterrupt, typer.Abort):
        print("edgewise: interrupted", file=sys.stderr)
        code = 130
    except Exception as e:  # a bug, not a user mistake: still one line unless --debug
        if debug:
            raise
        print(
            f"edgewise: internal error: {type(e).__name__}: {one_line(str(e))} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        code = 1
    finally:
        discard_outputs()  # a failed command leaves nothing behind
    sys.exit(code)


def entry_point() -> None:
    """The `edgewise` executable: `main`, then an immediate exit. Freeing a million-op
    graph object by object takes seconds the process does not need (files are written
    and streams flushed first; in-process callers and tests use `main`)."""
    import os

    # pydantic scans every installed package's entry points for plugins when it first
    # builds a model (15 ms at every start); the CLI loads none
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry_point()
