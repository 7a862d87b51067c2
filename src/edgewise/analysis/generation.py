"""Counts and memory of a generation: prefill once, then decode steps over a growing cache.

Counts: a decode step's MACs and vector ops are affine in its context L, so the N - 1
steps at L = P .. P + N - 2 sum to (N - 1) x (the first step + the last) / 2, from two
captures. Memory: the weights stay loaded; the KV cache holds P tokens after the prefill
and P + N - 1 at the last step; beside them the activations of the phase running. The
generation's peak is the larger of (weights + P tokens of KV + the prefill's activation
peak) and (weights + the final cache + the last decode step's activation peak).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgewise.analysis.memory import memory_timeline
from edgewise.analysis.pipeline import weight_bytes
from edgewise.analysis.profile import ProfileRow, profile
from edgewise.ir.graph import Graph


@dataclass(frozen=True)
class GenerationCounts:
    model: str
    prompt_tokens: int
    new_tokens: int
    prefill: ProfileRow
    decode_macs: int  # every decode step
    decode_vector_ops: int
    flops_per_mac: int

    @property
    def macs(self) -> int:
        return self.prefill.macs + self.decode_macs

    @property
    def decode_flops(self) -> int:
        return self.flops_per_mac * self.decode_macs + self.decode_vector_ops


def count_generation(
    prefill: Graph, first_step: Graph, last_step: Graph, prompt: int, new_tokens: int,
    convention_name: str = "default",
) -> GenerationCounts:  # fmt: skip
    pre = profile(prefill, "layer", convention_name=convention_name)
    a = profile(first_step, "layer", convention_name=convention_name).totals
    b = profile(last_step, "layer", convention_name=convention_name).totals
    steps = new_tokens - 1
    macs = steps * (a.macs + b.macs) // 2 if steps else 0
    vector = steps * (a.vector_ops + b.vector_ops) // 2 if steps else 0
    return GenerationCounts(prefill.model, prompt, new_tokens, pre.totals, macs, vector,
                            pre.flops_per_mac)  # fmt: skip


@dataclass(frozen=True)
class GenerationMemory:
    model: str
    weight_bytes: int
    kv_after_prefill_bytes: int
    kv_final_bytes: int
    prefill_activation_bytes: int
    decode_activation_bytes: int  # the last step's activation peak

    @property
    def prefill_bytes(self) -> int:
        return self.weight_bytes + self.kv_after_prefill_bytes + self.prefill_activation_bytes

    @property
    def decode_bytes(self) -> int:
        return self.weight_bytes + self.kv_final_bytes + self.decode_activation_bytes

    @property
    def peak_bytes(self) -> int:
        return max(self.prefill_bytes, self.decode_bytes)


def generation_memory(
    prefill: Graph, last_step: Graph, prompt: int, new_tokens: int, kv_bytes_per_token: float,
    dtype: str | None = None, **options: object,
) -> GenerationMemory:  # fmt: skip
    pre = memory_timeline(prefill, dtype=dtype, **options)  # type: ignore[arg-type]
    last = memory_timeline(last_step, dtype=dtype, **options)  # type: ignore[arg-type]
    return GenerationMemory(
        prefill.model,
        weight_bytes(prefill, dtype),
        round(kv_bytes_per_token * prompt),
        round(kv_bytes_per_token * (prompt + new_tokens - 1)),
        pre.peak_bytes,
        last.peak_bytes,
    )
