"""`edgewise speculative`: what speculative decoding buys on a spec, every pass simulated."""

from __future__ import annotations

from typing import Annotated

import typer

from edgewise.cli.common import (
    HwOpt,
    JsonOpt,
    NewTokensOpt,
    PromptTokensOpt,
    SetOpt,
    bounded,
    console,
    to_json,
    write_output,
)
from edgewise.errors import EdgewiseError


def speculative(
    target: Annotated[str, typer.Option("--target", help="the language model to speed up")],
    draft: Annotated[str, typer.Option("--draft", help="the small model that drafts")],
    gamma: Annotated[
        int, typer.Option("--gamma", help="tokens drafted per round", callback=bounded(1, 64))
    ] = 4,
    acceptance: Annotated[
        list[float] | None,
        typer.Option(
            "--acceptance",
            help="chance a drafted token is accepted (repeatable: a sweep); default 0.6 0.7 "
            "0.8 0.9",
            callback=lambda v: [bounded(0, 1)(None, a) for a in v] if v else v,  # type: ignore[arg-type]
        ),
    ] = None,
    hw: HwOpt = "generic-npu",
    set_: SetOpt = None,
    precision: Annotated[
        str | None, typer.Option("--precision", help="both models: int8, w4a8, w4a16, ...")
    ] = None,
    prompt_tokens: PromptTokensOpt = None,
    new_tokens: NewTokensOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Draft G tokens with a small model, verify them with the target in one pass: the
    decode and end-to-end speedup per acceptance rate (Leviathan et al. 2023)."""
    from dataclasses import asdict

    from rich.table import Table

    from edgewise.capture.llm import capture_llm, check_tokens, llm_entry
    from edgewise.hardware.spec import (
        compute_precision,
        default_precision,
        load_spec,
        parse_precision,
    )
    from edgewise.ir.vocab import PRECISION_BYTES
    from edgewise.report.format import binary_bytes, joules, si
    from edgewise.report.format import seconds as _seconds
    from edgewise.simulate.simulator import simulate
    from edgewise.simulate.speculative import Speculation
    from edgewise.simulate.workload import op_workload

    t_entry, d_entry = llm_entry(target), llm_entry(draft)
    if t_entry.vision is not None or d_entry.vision is not None:
        raise EdgewiseError("--target and --draft must be language models without an image")
    if t_entry.config["vocab_size"] != d_entry.config["vocab_size"]:
        raise EdgewiseError(
            f"the draft must share the target's vocabulary: {draft} has "
            f"{d_entry.config['vocab_size']:,} tokens, {target} {t_entry.config['vocab_size']:,}"
        )
    prompt = check_tokens("--prompt-tokens", 128 if prompt_tokens is None else prompt_tokens)
    new = check_tokens("--new-tokens", 128 if new_tokens is None else new_tokens)
    rates = acceptance or [0.6, 0.7, 0.8, 0.9]
    spec = load_spec(hw, set_ or ())
    weights, activations = parse_precision(precision or default_precision(spec), spec)
    compute = compute_precision(weights, activations)
    context = prompt + new // 2

    def cost(name: str, phase: str, tokens: int = 1):  # type: ignore[no-untyped-def]
        graph = capture_llm(name, phase, prompt_tokens=prompt, context=context, tokens=tokens)
        return simulate(op_workload(graph, weights, activations), spec, compute).totals

    t_step, d_step = cost(target, "decode"), cost(draft, "decode")
    verify = cost(target, "decode", gamma + 1)
    t_pre, d_pre = cost(target, "prefill"), cost(draft, "prefill")
    kv = (t_entry.kv_bytes_per_token(PRECISION_BYTES[activations])
          + d_entry.kv_bytes_per_token(PRECISION_BYTES[activations])) * (prompt + new)  # fmt: skip
    w_bytes = PRECISION_BYTES[weights]
    results = [
        Speculation(
            target,
            draft,
            gamma,
            a,
            context,
            new,
            t_step.latency_s,
            d_step.latency_s,
            verify.latency_s,
            t_pre.latency_s,
            d_pre.latency_s,
            t_step.energy_j,
            d_step.energy_j,
            verify.energy_j,
            round((t_entry.params + d_entry.params) * w_bytes),
            kv,
        )
        for a in rates
    ]
    if json_out:
        rows = [{**asdict(r), "tokens_per_round": r.tokens_per_round,
                 "decode_speedup": r.decode_speedup, "end_to_end_speedup": r.end_to_end_speedup,
                 "tokens_per_s": r.tokens_per_s, "energy_per_token_j": r.energy_per_token_j}
                for r in results]  # fmt: skip
        write_output(json_out, to_json({"hardware": spec.name, "rows": rows}))
        if json_out == "-":
            return
    r0 = results[0]
    console.print(
        f"{target} drafted by {draft}, G = {gamma}, on {spec.name} ({weights} weights, "
        f"{activations} activations), costed at {context} cached tokens: target step "
        f"{_seconds(r0.target_step_s)}, draft step {_seconds(r0.draft_step_s)}, verify pass "
        f"over {gamma + 1} tokens {_seconds(r0.verify_s)} "
        f"({r0.verify_s / r0.target_step_s:.2f}x a step)"
    )
    table = Table(title="speculative decoding: E = (1 - A^(G+1)) / (1 - A) tokens per round")
    for col in ("acceptance A", "tokens per round E", "tokens/s", "decode speedup",
                f"end-to-end ({prompt} prompt, {new} new)", "energy per token"):  # fmt: skip
        table.add_column(col, justify="right")
    plain = 1 / r0.target_step_s
    table.add_row("no draft", "1", si(plain), "1.00x", "1.00x",
                  joules(r0.target_energy_j))  # fmt: skip
    for r in results:
        table.add_row(f"{r.acceptance:g}", si(r.tokens_per_round), si(r.tokens_per_s),
                      f"{r.decode_speedup:.2f}x", f"{r.end_to_end_speedup:.2f}x",
                      joules(r.energy_per_token_j))  # fmt: skip
    console.print(table)
    console.print(
        f"memory: both models' weights {binary_bytes(r0.weight_bytes)} (published parameter "
        f"counts at {weights}), both KV caches {binary_bytes(r0.kv_bytes)} at the end"
    )
