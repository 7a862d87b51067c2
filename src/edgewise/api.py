"""The Python API: the CLI's commands as functions a notebook can live in.

Each function takes what the command takes (a model as the CLI names it: a zoo name, a
graph file, an ONNX file, a Hugging Face config, or a `Graph` already captured; the
workload and hardware options by the same names) and returns a typed result:

- the figures as attributes (`.totals`, `.rows`, the underlying analysis as `.result`),
- `.to_dict()`: exactly what the command's `--json` writes (the same functions build it),
- `.to_pandas()`: one row per layer (or op, or block), for pandas users (`edgewise[api]`),
- a one-line `repr`, so a notebook cell shows what it holds, not 100,000 characters.

    import edgewise
    sim = edgewise.simulate("sd15-unet", hw="snapdragon-8gen3", precision="int8")
    sim.totals.latency_s, sim.to_pandas().sort_values("latency_s").tail()

A front end like the CLI: it reads every stage and no stage reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgewise.errors import EdgewiseError
from edgewise.ir.graph import Graph


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise EdgewiseError("to_pandas needs pandas: pip install 'edgewise[api]'") from None
    return pandas


@dataclass(frozen=True, repr=False)
class Result:
    """A command's answer: the analysis itself, its JSON form and its table rows."""

    kind: str
    model: str
    result: Any  # the analysis object (Profile, MemoryTimeline, Simulation, PlanOutcome, ...)
    data: dict[str, Any] = field(compare=False)  # what `--json` writes
    rows: tuple[dict[str, Any], ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def to_pandas(self) -> Any:
        return _pandas().DataFrame(list(self.rows))

    @property
    def totals(self) -> Any:
        return getattr(self.result, "totals", None)

    def _summary(self) -> str:
        return ""

    def __repr__(self) -> str:
        summary = self._summary()
        return f"<edgewise {self.kind} of {self.model}{': ' + summary if summary else ''}>"


class ProfileResult(Result):
    def _summary(self) -> str:
        from edgewise.report.format import count, si

        t = self.result.totals
        return f"{si(t.params)} params, {count(t.macs, 'MACs')}, {len(self.rows)} {self.result.by}s"


class MemoryResult(Result):
    def _summary(self) -> str:
        from edgewise.report.format import binary_bytes

        return f"peak {binary_bytes(self.data['peak_bytes'])}"


class SimulationResult(Result):
    def _summary(self) -> str:
        from edgewise.report.format import joules, seconds

        t = self.result.totals
        per = f" per {self.result.unit}" if hasattr(self.result, "unit") else ""
        return f"{seconds(t.latency_s)}, {joules(t.energy_j)}{per} on {self.result.spec_name}"


class PlanResult(Result):
    def _summary(self) -> str:
        plan = self.result.plan
        return "no plan fits" if plan is None else plan.described()

    def save(self, path: str | Path) -> None:
        """Write the plan file `simulate --plan` and `run --plan` read."""
        from edgewise.plan.plan import save_plan

        if self.result.plan is None:
            raise EdgewiseError("no plan fits this SRAM budget: nothing to save")
        save_plan(self.result.plan, Path(path))


class CompareResult(Result):
    def _summary(self) -> str:
        a, b = self.result.a.label, self.result.b.label
        return f"{b} vs {a}"


# --------------------------------------------------------------------------- models


def load(
    model: str | Path | Graph | None = None,
    module: str | None = None,
    *,
    batch: int | None = None,
    resolution: int | None = None,
    frames: int | None = None,
    cfg: bool = False,
    input_shape: Sequence[str] | dict[str, Sequence[int]] | None = None,
    phase: str | None = None,
    prompt_tokens: int | None = None,
    context: int | None = None,
    image_size: int | None = None,
) -> Graph:
    """The graph of a model named as the CLI names it (`Graph`s pass through); a language
    model's prefill or decode step with `phase` (`prompt_tokens`, `context`, `image_size`
    as the CLI's options)."""
    if isinstance(model, Graph):
        return model
    from edgewise.capture.llm import phase_graph, phase_request
    from edgewise.capture.onnx_capture import parse_input_shapes
    from edgewise.capture.source import graph_from_source
    from edgewise.capture.workload import workload_for

    name = None if model is None else str(model)
    request = None if module else phase_request(name, phase, prompt_tokens, None, context,
                                                image_size, generate=False)  # fmt: skip
    if request is not None:
        return phase_graph(request)
    if isinstance(input_shape, dict):
        shapes = {k: tuple(int(d) for d in v) for k, v in input_shape.items()}
    else:
        shapes = parse_input_shapes(list(input_shape or ()))
    workload = workload_for(batch, resolution, frames, cfg)
    return graph_from_source(name, module, workload, shapes)


def generation(request: dict[str, Any], spec: Any, weights: Any, activations: Any,
               attention: Any = "captured", kv: str | None = None) -> Any:  # fmt: skip
    """A language model's whole generation (`capture.llm.phase_request(..., "generate")`):
    the prefill, then every decode step, costed from three decode captures."""
    from edgewise.capture.llm import decode_context, llm_entry, phase_graph
    from edgewise.hardware.spec import compute_precision
    from edgewise.ir.vocab import PRECISION_BYTES
    from edgewise.simulate.generation import simulate_generation
    from edgewise.simulate.workload import op_workload

    entry = llm_entry(request["name"])
    prefill_graph = phase_graph({**request, "phase": "prefill"})
    prompt = decode_context(request, prefill_graph)

    def decode_at(context: int) -> Any:
        step = {**request, "phase": "decode", "context": context}
        return op_workload(phase_graph(step), weights, activations, attention, kv)

    return simulate_generation(
        op_workload(prefill_graph, weights, activations, attention), decode_at, spec,
        compute_precision(weights, activations), prompt, request["new_tokens"],
        entry.kv_bytes_per_token(PRECISION_BYTES[kv or activations]), kv,
    )  # fmt: skip


def _kv_precision(model: Any, module: str | None, workload: dict[str, Any]) -> str | None:
    """`kv_precision` taken out of `workload`, checked as `--kv-precision` is: a precision,
    for a language model's phase only."""
    from edgewise.capture.llm import kv_precision_for, phase_request

    kv = workload.pop("kv_precision", None)
    get = workload.get
    request = None if module or kv is None else phase_request(
        model, get("phase"), get("prompt_tokens"), None, get("context"), get("image_size"),
        generate=False)  # fmt: skip
    return kv_precision_for(kv, request)


def _pipeline(model: Any, workload: dict[str, Any]) -> Any:
    """The pipeline (sd15, sdxl) `model` names, or None for one graph."""
    from edgewise.capture.pipelines import is_pipeline, pipeline_named

    if not isinstance(model, str):
        return None
    taken = ("batch", "resolution", "frames", "cfg", "steps", "cfg_mode")
    if is_pipeline(model) and set(workload) - set(taken):
        raise EdgewiseError(f"pipeline '{model}' takes steps, cfg, cfg_mode, batch and resolution "
                            f"(got {', '.join(sorted(set(workload) - set(taken)))})")  # fmt: skip
    if workload.get("new_tokens") is not None:
        raise EdgewiseError(f"new_tokens is for phase=\"generate\"; '{model}' is one graph")
    get = workload.get  # one graph: pipeline_named refuses steps and cfg_mode, returns None
    return pipeline_named(model, batch=get("batch"), resolution=get("resolution"),
                          frames=get("frames"), cfg=bool(get("cfg")), steps=get("steps"),
                          cfg_mode=get("cfg_mode"))  # fmt: skip


def _spec(hw: str, set_: Sequence[str] | None) -> Any:
    from edgewise.hardware.spec import load_spec

    return load_spec(hw, tuple(set_ or ()))


def _precisions(spec: Any, precision: str | None) -> tuple[str, str, str]:
    from edgewise.hardware.spec import compute_precision, default_precision, parse_precision

    weights, activations = parse_precision(precision or default_precision(spec), spec)
    return weights, activations, compute_precision(weights, activations)


def _keys(graph: Graph, by: str, depth: int) -> tuple[str, ...]:
    from edgewise.analysis.profile import row_keys

    if by not in ("op", "layer", "block"):
        raise EdgewiseError(f"by must be op, layer or block (got '{by}')")
    return tuple(row_keys(graph, by, depth))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- commands


def profile(
    model: str | Graph | None = None,
    module: str | None = None,
    *,
    by: str = "layer",
    depth: int = 2,
    convention: str = "default",
    **workload: Any,
) -> ProfileResult:
    """`edgewise profile`: parameters, MACs, vector ops and activation bytes per row."""
    from dataclasses import asdict

    from edgewise.analysis.profile import profile as run_profile
    from edgewise.report.profile_report import profile_to_dict

    graph = load(model, module, **workload)
    prof = run_profile(graph, by=by, depth=depth, convention_name=convention)  # type: ignore[arg-type]
    return ProfileResult("profile", graph.model, prof, profile_to_dict(prof),
                         tuple(asdict(r) for r in prof.rows))  # fmt: skip


def memory(
    model: str | Graph | None = None,
    module: str | None = None,
    *,
    lifetimes: str = "last-use",
    attention: str = "captured",
    dtype: str | None = None,
    long_lived: int = 100,
    tile_sram: int | str = 256 * 1024,
    **workload: Any,
) -> MemoryResult:
    """`edgewise memory`: live bytes at every op, the peak and the long-lived tensors;
    `tile_sram` in bytes or with units ("256KiB"), as `--tile-sram`."""
    from edgewise.analysis.memory import memory_timeline
    from edgewise.hardware.spec import parse_bytes
    from edgewise.report.memory_report import memory_to_dict

    try:
        tile_sram = parse_bytes(str(tile_sram), lowest=1024)
    except ValueError as e:
        raise EdgewiseError(f"tile_sram: {e}") from None
    graph = load(model, module, **workload)
    tl = memory_timeline(graph, lifetimes=lifetimes, attention=attention, dtype=dtype,  # type: ignore[arg-type]
                         long_lived_ops=long_lived, tile_sram_bytes=tile_sram)  # fmt: skip
    data = memory_to_dict(tl)
    rows = tuple(data.get("long_lived", ()))
    return MemoryResult("memory", graph.model, tl, data, rows)


def simulate(
    model: str | Graph | None = None,
    module: str | None = None,
    *,
    hw: str = "generic-npu",
    precision: str | None = None,
    set: Sequence[str] = (),
    plan: str | Path | None = None,
    attention: str = "captured",
    by: str = "layer",
    depth: int = 2,
    **workload: Any,
) -> SimulationResult | GenerationResult:
    """`edgewise simulate`: latency, traffic and energy per row on an accelerator, with a
    plan file's decisions when `plan` names one. A pipeline (`"sd15"` with `steps`, `cfg`,
    `cfg_mode`; a language model with `phase="generate"`, `new_tokens`) is simulated phase
    by phase, one row per phase, its totals per image (or generation)."""
    from dataclasses import asdict

    from edgewise.plan.plan import planned_workload
    from edgewise.report.simulate_report import simulation_to_dict
    from edgewise.simulate.simulator import group_costs
    from edgewise.simulate.simulator import simulate as run_simulation

    spec = _spec(hw, set)
    weights, activations, compute = _precisions(spec, precision)
    if not module and workload.get("phase") == "generate":
        if plan is not None:
            raise EdgewiseError('phase="generate" with a plan file: use `edgewise simulate '
                                '--phase generate --plan` (the API costs a generation as '
                                "simulated, without one)")  # fmt: skip
        return _simulated_generation(model, spec, weights, activations, attention, workload)
    pipeline = None if module else _pipeline(model, workload)
    if pipeline is not None:
        from edgewise.report.pipeline_report import pipeline_run_to_dict
        from edgewise.simulate.pipeline import simulate_pipeline

        if plan is not None:
            raise EdgewiseError("the API simulates a pipeline without a plan: give a phase's "
                                "plan file with its zoo model, or use `edgewise simulate "
                                "PIPELINE --plan`")  # fmt: skip
        run = simulate_pipeline(pipeline, spec, weights, activations, compute, attention)  # type: ignore[arg-type]
        rows = tuple({"phase": p.name, "calls": p.calls, **asdict(p.totals)} for p in run.phases)
        return SimulationResult("pipeline simulation", pipeline.name, run,
                                pipeline_run_to_dict(run), rows)  # fmt: skip
    kv = _kv_precision(model, module, workload)
    graph = load(model, module, **workload)
    plan_path = Path(plan) if plan is not None else None
    work, schedule, loaded = planned_workload(graph, plan_path, spec, weights, activations,
                                              attention, kv)  # fmt: skip
    sim = run_simulation(work, spec, compute, schedule=schedule)
    grouped = group_costs(sim, _keys(graph, by, depth), spec.peak_macs_per_s(compute))
    record = None if loaded is None else {"file": str(plan_path), **loaded.summary()}
    data = simulation_to_dict(sim, grouped, record)
    return SimulationResult("simulation", graph.model, sim, data,
                            tuple(asdict(r) for r in grouped))  # fmt: skip


class GenerationResult(Result):
    """A whole generation: `.totals` is the generation (latency_s, energy_j, ttft_s,
    tokens_per_s); one row per decode step."""

    @property
    def totals(self) -> Any:
        return self.result

    def _summary(self) -> str:
        from edgewise.report.format import seconds

        g = self.result
        return (f"TTFT {seconds(g.ttft_s)}, {seconds(g.latency_s)} per generation of "
                f"{g.new_tokens} tokens on {g.spec_name}")  # fmt: skip


def _simulated_generation(
    model: Any, spec: Any, weights: str, activations: str, attention: str, workload: dict[str, Any]
) -> GenerationResult:
    from edgewise.capture.llm import kv_precision_for, phase_request
    from edgewise.report.generation_report import generation_to_dict

    get = workload.get
    unknown = set(workload) - {"phase", "prompt_tokens", "new_tokens", "context", "image_size",
                               "kv_precision"}  # fmt: skip
    if unknown:
        raise EdgewiseError(f'phase="generate" takes prompt_tokens, new_tokens, image_size and '
                            f"kv_precision (got {', '.join(sorted(unknown))})")  # fmt: skip
    request = phase_request(str(model), "generate", get("prompt_tokens"), get("new_tokens"),
                            get("context"), get("image_size"))  # fmt: skip
    assert request is not None
    kv = kv_precision_for(get("kv_precision"), request)
    gen = generation(request, spec, weights, activations, attention, kv)
    rows = tuple({"context": int(c), "latency_s": float(t), "energy_j": float(e),
                  "dram_bytes": float(d)}
                 for c, t, e, d in zip(gen.contexts, gen.decode_latency_s, gen.decode_energy_j,
                                       gen.decode_dram_bytes, strict=True))  # fmt: skip
    return GenerationResult("generation", gen.model, gen, generation_to_dict(gen), rows)


def plan(
    model: str | Graph | None = None,
    module: str | None = None,
    *,
    hw: str = "generic-npu",
    precision: str | None = None,
    set: Sequence[str] = (),
    objective: str = "latency",
    allow: str = "keep,spill,recompute,residency",
    solver: str = "milp",
    time_limit: float = 60.0,
    long_lived: int = 100,
    floor: Sequence[str] = (),
    sensitivity: str | Path | None = None,
    accuracy_budget: float | None = None,
    **workload: Any,
) -> PlanResult:
    """`edgewise plan`: keep, spill or recompute each long-lived tensor (and the other
    allowed levers), against the obvious plans; `.save(path)` writes the plan file."""
    from edgewise.plan.planner import make_plan
    from edgewise.report.plan_report import outcome_to_dict

    spec = _spec(hw, set)
    weights, activations, compute = _precisions(spec, precision)
    graph = load(model, module, **workload)
    allowed = frozenset(a.strip() for a in allow.split(",") if a.strip())
    outcome = make_plan(graph, spec, weights, activations, compute, objective, allowed, solver,  # type: ignore[arg-type]
                        time_limit, long_lived, tuple(floor),
                        Path(sensitivity) if sensitivity else None, accuracy_budget)  # fmt: skip
    data = outcome_to_dict(outcome)
    # one row per alternative (spill-all, keep-fit, recompute-all, the plan), simulated
    rows = tuple({"alternative": name, **figures} for name, figures in data["totals"].items())
    return PlanResult("plan", graph.model, outcome, data, rows)


def compare(
    a: str | Graph,
    b: str | Graph | None = None,
    *,
    hw: str | Sequence[str] = "generic-npu",
    precision: str | None = None,
) -> CompareResult:
    """`edgewise compare`: two models on one spec (`a`, `b`), or one model on two specs
    (`hw=[X, Y]`); totals and latency per stage, B against A."""
    from edgewise.report.compare_report import Side, comparison_to_dict
    from edgewise.report.compare_report import compare as run_compare

    specs = [hw] if isinstance(hw, str) else list(hw)
    if (b is None) == (len(specs) == 1):
        raise EdgewiseError("compare: give two models on one hw, or one model with hw=[X, Y]")
    sides = [(a, specs[0]), (b, specs[0])] if b is not None else [(a, specs[0]), (a, specs[1])]
    graphs = {id(m): load(m) for m, _ in sides}  # one model on two specs: loaded once
    built = []
    for model, spec_name in sides:
        graph = graphs[id(model)]
        sim = simulate(graph, hw=spec_name, precision=precision)
        label = sim.model if b is not None else spec_name
        built.append(Side(label, graph, _spec(spec_name, ()), sim.result))
    kind = "models" if b is not None else "specs"
    c = run_compare(kind, built[0], built[1])
    data = comparison_to_dict(c)
    return CompareResult("comparison", built[0].label, c, data,
                         tuple(data.get("stages", ())))  # fmt: skip


class RunResult(Result):
    def _summary(self) -> str:
        from edgewise.report.format import binary_bytes, timing

        r = self.result
        return f"peak {binary_bytes(r.planned.peak_bytes)}, {timing(r.planned.run_s)}"


def run(model: str | None = None, module: str | None = None, *, plan: str | Path | None = None,
        weights: str | Path | None = None, device: str = "cpu", repeat: int = 3,
        int8_kernels: bool = False, **workload: Any) -> RunResult:  # fmt: skip
    """`edgewise run` for a zoo model, a factory or a language model's phase (`phase=`):
    the real model (random weights, or a `.safetensors` file) with the plan applied;
    measured peaks, times and fidelity. The model is named, not a Graph: running needs the
    module itself."""
    from edgewise.capture.llm import phase_request
    from edgewise.capture.source import model_for_run
    from edgewise.capture.workload import workload_for
    from edgewise.execute.run import check_run, plan_run_to_dict, real_model, run_plan
    from edgewise.plan.plan import load_plan

    if isinstance(model, Graph):
        raise EdgewiseError("run takes a model's name or module, not a Graph: running needs "
                            "the module itself")  # fmt: skip
    get = workload.get
    request = None if module else phase_request(
        model, get("phase"), get("prompt_tokens"), None, get("context"), get("image_size"),
        generate=False)  # fmt: skip
    weights_file = None if weights is None else Path(weights)
    check_run(device, repeat, weights_file, request)
    graph = load(model, module, **workload)
    loaded = load_plan(Path(plan), graph) if plan is not None else None
    zoo = workload_for(get("batch"), get("resolution"), get("frames"), bool(get("cfg")))
    built = model_for_run(request, model, module, zoo)
    real, args, kwargs = real_model(graph, built, loaded, device, weights_file)
    result = run_plan(graph, real, args, kwargs, loaded, device, repeat, int8_kernels)
    data = plan_run_to_dict(result)
    data["plan"] = None if loaded is None else {"file": str(plan), **loaded.summary()}
    return RunResult("run", graph.model, result, data, ())


class ReportResult(Result):
    def _summary(self) -> str:
        return f"written to {self.data['file']}"


def report(
    model: str | Graph | None = None,
    module: str | None = None,
    *,
    output: str | Path = "report.html",
    hw: str = "generic-npu",
    precision: str | None = None,
    set: Sequence[str] = (),
    plan: str | Path | None = None,
    **workload: Any,
) -> ReportResult:
    """`edgewise report`: one HTML file that opens offline (a pipeline: one section per
    phase). Returns where it was written."""
    from edgewise.ir.files import check_target, write_atomic
    from edgewise.ir.vocab import AttentionMode
    from edgewise.report import html_report

    target = Path(output)
    if target.suffix.lower() not in (".html", ".htm"):
        raise EdgewiseError(f"output takes an .html file (got '{output}')")
    spec = _spec(hw, set)
    weights, activations, compute = _precisions(spec, precision)
    options = "".join(f", {k}={v!r}" for k, v in workload.items() if v is not None)
    command = f"edgewise.report({str(model)!r}, hw={hw!r}{options})"
    pipeline = None if module else _pipeline(model, workload)
    if pipeline is not None:
        from edgewise.simulate.pipeline import simulate_pipeline

        if plan is not None:
            raise EdgewiseError("a pipeline's report takes no plan: give a phase's zoo model")
        run = simulate_pipeline(pipeline, spec, weights, activations, compute,
                                AttentionMode.CAPTURED)  # fmt: skip
        text, name = html_report.pipeline_report(run, spec, command), pipeline.name
    else:
        kv = _kv_precision(model, module, workload)
        graph = load(model, module, **workload)
        text = html_report.graph_html(graph, spec, weights, activations, compute, command,
                                      Path(plan) if plan is not None else None, kv)  # fmt: skip
        name = graph.model
    write_atomic(check_target(str(target), "output"), text)
    return ReportResult("report", name, target, {"file": str(target), "bytes": len(text.encode())})


class SweepResult(Result):
    """A sweep's store: `.to_pandas()` is its table of points, `.query(sql)` and
    `.pareto(...)` read it as `edgewise sweep query` and `sweep pareto` do."""

    def _summary(self) -> str:
        s = self.result
        return f"{s.points:,} points ({s.evaluated:,} evaluated) in {self.data['store']}"

    @property
    def store(self) -> Path:
        return Path(self.data["store"])

    def to_pandas(self) -> Any:
        from edgewise.sweep.query import query_frame

        _pandas()  # DuckDB builds the frame, with pandas
        return query_frame(self.store, "SELECT * FROM points ORDER BY point_id")

    def query(self, sql: str) -> list[dict[str, Any]]:
        from edgewise.sweep.query import query

        names, rows = query(self.store, sql)
        return [dict(zip(names, r, strict=True)) for r in rows]

    def pareto(self, minimize: Sequence[str] = ("latency_s", "energy_j"),
               where: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """The front's points, sorted by the objectives (as `sweep pareto --json`)."""
        from edgewise.sweep.query import pareto_front

        return pareto_front(self.store, list(minimize), where).as_dicts()


def sweep(
    space: str | Path | dict[str, Any],
    output: str | Path = "sweep.duckdb",
    *,
    workers: int | None = None,
    ray: str | None = None,
    batch_points: int | None = None,
) -> SweepResult:
    """`edgewise sweep`: every point of a space (a space file, or its content as a dict)
    not yet in the store `output`, evaluated and stored (resumable, as the CLI's)."""
    from dataclasses import asdict

    from edgewise.sweep.run import base_spec, check_sweep_options, run_sweep, space_graphs
    from edgewise.sweep.space import load_space, space_from_mapping

    store = Path(output)
    if store.suffix.lower() != ".duckdb":
        raise EdgewiseError(f"output takes a .duckdb file (got '{output}')")
    check_sweep_options(workers, batch_points)
    loaded = space_from_mapping(space) if isinstance(space, dict) else load_space(Path(space))
    base_spec(loaded)  # the spec and precisions, before any capture
    summary = run_sweep(loaded, space_graphs(loaded), store, workers, ray, batch_points)
    models = ", ".join(m.key for m in loaded.models)
    return SweepResult("sweep", models, summary, {**asdict(summary), "store": str(store)})
