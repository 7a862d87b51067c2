"""Render a generation: time to first token, decode per token as the cache grows,
tokens per second, energy per token, the KV cache, and what bounds each phase."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgewise.analysis.generation import GenerationCounts, GenerationMemory
from edgewise.report.format import binary_bytes, joules, si
from edgewise.report.format import seconds as _seconds
from edgewise.report.pipeline_report import main_bound
from edgewise.report.simulate_report import what_bounds
from edgewise.simulate.generation import Generation


def generation_to_dict(gen: Generation) -> dict[str, Any]:
    w = gen.prefill.work
    return {
        "model": gen.model,
        "hardware": gen.spec_name,
        "precision": {
            "compute": gen.precision,
            "weights": w.weight_precision,
            "activations": w.activation_precision,
            "kv_cache": gen.kv_precision,
        },
        "prompt_tokens": gen.prompt_tokens,
        "new_tokens": gen.new_tokens,
        "units": {
            "ttft_s": "seconds",
            "tokens_per_s": "decode tokens per second",
            "kv_cache_bytes": "bytes at the end of the generation",
        },
        "ttft_s": gen.ttft_s,
        "decode_s_per_token": gen.decode_s_per_token,
        "tokens_per_s": gen.tokens_per_s,
        "energy_per_token_j": gen.energy_per_token_j,
        "latency_s": gen.latency_s,
        "energy_j": gen.energy_j,
        "kv_bytes_per_token": gen.kv_bytes_per_token,
        "kv_cache_bytes": gen.kv_cache_bytes,
        "prefill": asdict(gen.prefill.totals),
        "decode": {
            "bound": gen.main_decode_bound,
            "captured_contexts": [s.context for s in gen.samples],
            "contexts": gen.contexts.tolist(),
            "latency_s": gen.decode_latency_s.tolist(),
            "energy_j": gen.decode_energy_j.tolist(),
            "dram_bytes": gen.decode_dram_bytes.tolist(),
        },
    }


def render_generation(gen: Generation, console: Console) -> None:
    w = gen.prefill.work
    table = Table(
        title=f"{escape(gen.model)} on {escape(gen.spec_name)}: {gen.prompt_tokens} prompt "
        f"tokens, {gen.new_tokens} new ({w.weight_precision} weights, "
        f"{w.activation_precision} activations, {gen.kv_precision} KV cache, {gen.precision} "
        "MACs)"
    )
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("time to first token (prefill)", _seconds(gen.ttft_s), style="bold")
    table.add_row("  bound", main_bound(gen.prefill.totals))
    if len(gen.decode_latency_s):
        first, last = gen.decode_latency_s[0], gen.decode_latency_s[-1]
        table.add_row("decode per token", f"{_seconds(gen.decode_s_per_token)} (from "
                      f"{_seconds(first)} at {gen.contexts[0]} cached to {_seconds(last)} at "
                      f"{gen.contexts[-1]})")  # fmt: skip
        table.add_row("decode tokens/s", si(gen.tokens_per_s), style="bold")
        table.add_row("  bound", gen.main_decode_bound)
        table.add_row("energy per decoded token", joules(gen.energy_per_token_j))
    table.add_row("whole generation", f"{_seconds(gen.latency_s)}, {joules(gen.energy_j)}")
    table.add_row("KV cache", f"{binary_bytes(gen.kv_bytes_per_token)} per token, "
                  f"{binary_bytes(gen.kv_cache_bytes)} at the end")  # fmt: skip
    console.print(table)
    if gen.samples:
        last = gen.samples[-1].sim
        console.print("the last decode step: " + what_bounds(last.totals).replace("\n", "\n  "))


def render_generation_counts(c: GenerationCounts, console: Console) -> None:
    table = Table(title=f"{escape(c.model)}: {c.prompt_tokens} prompt tokens, {c.new_tokens} new")
    for col in ("phase", "calls", "MACs", "FLOPs"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    table.add_row("prefill", "1", si(c.prefill.macs), si(c.prefill.flops))
    table.add_row("decode", str(c.new_tokens - 1), si(c.decode_macs), si(c.decode_flops))
    table.add_row("generation", "", si(c.macs), si(c.prefill.flops + c.decode_flops), style="bold")
    console.print(table)
    console.print(f"parameters: {si(c.prefill.params)}")


def generation_counts_to_dict(c: GenerationCounts) -> dict[str, Any]:
    return {"model": c.model, "prompt_tokens": c.prompt_tokens, "new_tokens": c.new_tokens,
            "prefill": asdict(c.prefill), "decode_macs": c.decode_macs,
            "decode_vector_ops": c.decode_vector_ops, "decode_flops": c.decode_flops,
            "macs": c.macs}  # fmt: skip


def render_generation_memory(m: GenerationMemory, console: Console) -> None:
    table = Table(title=f"{escape(m.model)}: memory over the generation")
    for col in ("phase", "weights", "KV cache", "activation peak", "total"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    b = binary_bytes
    table.add_row("prefill", b(m.weight_bytes), b(m.kv_after_prefill_bytes),
                  b(m.prefill_activation_bytes), b(m.prefill_bytes))  # fmt: skip
    table.add_row("last decode step", b(m.weight_bytes), b(m.kv_final_bytes),
                  b(m.decode_activation_bytes), b(m.decode_bytes))  # fmt: skip
    console.print(table)
    console.print(f"peak over the generation: {binary_bytes(m.peak_bytes)}")


def generation_memory_to_dict(m: GenerationMemory) -> dict[str, Any]:
    return {**asdict(m), "prefill_bytes": m.prefill_bytes, "decode_bytes": m.decode_bytes,
            "peak_bytes": m.peak_bytes}  # fmt: skip
