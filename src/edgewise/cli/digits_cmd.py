"""`edgewise digits`: a small CNN trained here, and its accuracy under quantization."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from edgewise.cli.common import JsonOpt, console, to_json, write_output


def digits(
    train: Annotated[
        bool, typer.Option("--train", help="train again even when cached weights exist")
    ] = False,
    plan_file: Annotated[
        Path | None,
        typer.Option("--plan", help="also run a plan's per-layer weight precisions"),
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option("--weights", help="the .safetensors cache (default ~/.cache/edgewise)"),
    ] = None,
    json_out: JsonOpt = None,
) -> None:
    """Train (or load) the digits CNN; test accuracy in float, int8, int4, int2, a plan."""
    from edgewise.execute import digits as d

    path = weights or d.cache_dir() / d.WEIGHTS_FILE
    model, training = d.load_or_train(path, retrain=train)
    runs = [d.evaluate(model, name="float")]
    for precision in ("int8", "int4", "int2"):
        name = f"{precision} weights (all layers), int8 activations"
        runs.append(d.evaluate(model, d.uniform(model, precision), 8, name))
    if plan_file is not None:
        from edgewise.capture.torch_capture import capture
        from edgewise.plan.plan import load_plan

        graph = capture(model, d.load_data().test_x[:1], name=d.FACTORY)
        plan = load_plan(plan_file, graph)
        assignment, activation_bits = d.plan_assignment(
            model, plan.precision.weights, plan.precision.activations, plan.weights
        )
        counts: dict[str, int] = {}
        for precision in assignment.values():
            counts[precision] = counts.get(precision, 0) + 1
        mix = ", ".join(f"{n} {p}" for p, n in sorted(counts.items()))
        acts = f"int{activation_bits}" if activation_bits else "float"
        runs.append(
            d.evaluate(model, assignment, activation_bits, f"plan: {mix}; {acts} activations")
        )
    if json_out:
        data: dict[str, Any] = {
            "model": d.FACTORY,
            "weights_file": str(path),
            "training": asdict(training) if training else None,
            "test_images": len(d.load_data().test_y),
            "runs": [
                {k: (None if isinstance(v, float) and math.isinf(v) else v)
                 for k, v in asdict(r).items()}
                for r in runs
            ],
        }  # fmt: skip
        write_output(json_out, to_json(data))
        if json_out == "-":
            return
    if training is not None:
        console.print(
            f"trained {training.epochs} epochs in {training.seconds:.1f} s -> {path} "
            f"(test accuracy {training.test_accuracy:.1%})"
        )
    else:
        console.print(f"weights loaded from {path} (--train to train again)")
    render_runs(runs, len(d.load_data().test_y))


def render_runs(runs: list[Any], test_images: int) -> None:
    from rich.table import Table

    table = Table(title=f"digits CNN on {test_images} test images (logits compared with float)")
    for col, justify in (("run", "left"), ("accuracy", "right"), ("vs float", "right"),
                         ("logits SQNR", "right"), ("cosine", "right"),
                         ("weight bytes", "right")):  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    base = runs[0].accuracy
    for r in runs:
        table.add_row(
            r.name,
            f"{r.accuracy:.1%}",
            f"{(r.accuracy - base) * 100:+.1f} pt",
            "exact" if math.isinf(r.sqnr_db) else f"{r.sqnr_db:.1f} dB",
            f"{r.cosine:.5f}",
            f"{r.weight_bytes:,.0f}",
        )
    console.print(table)
