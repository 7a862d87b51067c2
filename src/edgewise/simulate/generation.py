"""A generation on a spec: prefill once, then one decode step per new token.

Time to first token = the prefill (its last logits give the first new token). Token t
(t = 2..N) comes from a decode step that writes token t - 1's K and V into a cache
holding the P prompt tokens (image tokens included) and t - 2 generated ones, so the N -
1 decode steps run at contexts L = P, P + 1, ..., P + N - 2.

A decode step's per-op demand (MACs, vector ops, the K and N of each product, DRAM and
SRAM bytes under the default schedule) is affine in L: the KV cache grows by one token
per step and nothing else changes. So the steps are not captured one by one: the decode
graph is captured and simulated at the two ends of the range, the demand interpolated
for every L, and checked against a capture at the midpoint; where it is not affine (the
schedule changes, e.g. the cache stops fitting in SRAM) the range is split at the
midpoint and each half checked the same way. Every step is then priced by the one cost
function (`cost.price`, vectorized over steps x ops), mapping utilization included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from edgewise.hardware.spec import HardwareSpec
from edgewise.simulate.cost import BOUNDS, Rates, compute_seconds, price
from edgewise.simulate.simulator import Simulation, simulate
from edgewise.simulate.workload import OpWorkload

MAX_SPLITS = 4  # at most 2^4 segments, 2^4 + 1 captures
_AFFINE_FIELDS = ("macs", "vector_ops", "reduce_dim", "out_dim", "weight_bytes")
_REL = 1e-9


@dataclass(frozen=True)
class DecodeSample:
    """One decode step simulated at context `context`."""

    context: int
    sim: Simulation

    def demand(self) -> dict[str, np.ndarray]:
        w = self.sim.work
        out = {f: np.asarray(getattr(w, f), dtype=np.float64) for f in _AFFINE_FIELDS}
        out["dram_bytes"] = self.sim.dram_bytes.astype(np.float64)
        out["sram_bytes"] = self.sim.sram_bytes.astype(np.float64)
        return out


@dataclass(frozen=True)
class Generation:
    model: str
    spec_name: str
    precision: str
    prompt_tokens: int  # cached before the first decode step (image tokens included)
    new_tokens: int
    prefill: Simulation
    contexts: np.ndarray  # per decode step: tokens in the cache it reads
    decode_latency_s: np.ndarray  # per decode step
    decode_energy_j: np.ndarray
    decode_dram_bytes: np.ndarray
    decode_bound: np.ndarray  # per step: the bound taking most of its time (BOUNDS index)
    samples: tuple[DecodeSample, ...]  # the captures the steps were interpolated from
    kv_bytes_per_token: float
    kv_precision: str = ""  # the cache's precision (the activations' unless given)

    @property
    def ttft_s(self) -> float:
        return self.prefill.totals.latency_s

    @property
    def decode_s(self) -> float:
        return float(self.decode_latency_s.sum())

    @property
    def latency_s(self) -> float:
        return self.ttft_s + self.decode_s

    @property
    def energy_j(self) -> float:
        return self.prefill.totals.energy_j + float(self.decode_energy_j.sum())

    @property
    def decode_s_per_token(self) -> float:
        """Mean decode step (nan when only one token is made: no decode step)."""
        n = len(self.decode_latency_s)
        return self.decode_s / n if n else float("nan")

    @property
    def tokens_per_s(self) -> float:
        """Decode throughput: new tokens after the first, per second of decoding."""
        return len(self.decode_latency_s) / self.decode_s if self.decode_s else float("nan")

    @property
    def energy_per_token_j(self) -> float:
        n = len(self.decode_energy_j)
        return float(self.decode_energy_j.sum()) / n if n else float("nan")

    @property
    def kv_cache_bytes(self) -> float:
        """The cache at the end: prompt and every new token's K and V but the last."""
        return self.kv_bytes_per_token * (self.prompt_tokens + self.new_tokens - 1)

    @property
    def main_decode_bound(self) -> str:
        if not len(self.decode_bound):
            return "none"
        return BOUNDS[int(np.bincount(self.decode_bound, weights=self.decode_latency_s).argmax())]


def _affine(a: DecodeSample, b: DecodeSample, at: np.ndarray) -> dict[str, np.ndarray]:
    """Each demand array at contexts `at` (rows), on the line through samples a and b."""
    da, db = a.demand(), b.demand()
    span = max(b.context - a.context, 1)
    t = ((at - a.context) / span)[:, None]
    return {k: da[k][None, :] + t * (db[k] - da[k])[None, :] for k in da}


def _matches(predicted: dict[str, np.ndarray], actual: dict[str, np.ndarray]) -> bool:
    return all(np.allclose(predicted[k][0], actual[k], rtol=_REL, atol=0.5) for k in actual)


def decode_steps(
    sample_at: Callable[[int], DecodeSample],
    first: int,
    last: int,
    spec: HardwareSpec,
    precision: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[DecodeSample, ...]]:
    """Latency, energy, DRAM bytes and bound of the decode steps at contexts first..last,
    from samples (`sample_at(L)`: capture and simulate one step) checked to be affine."""
    samples: dict[int, DecodeSample] = {}

    def at(context: int) -> DecodeSample:
        if context not in samples:
            samples[context] = sample_at(context)
        return samples[context]

    segments: list[tuple[int, int]] = []

    def cover(lo: int, hi: int, depth: int) -> None:
        mid = (lo + hi) // 2
        if hi - lo < 2 or depth >= MAX_SPLITS:
            segments.append((lo, hi))
            return
        predicted = _affine(at(lo), at(hi), np.array([mid], dtype=np.float64))
        if _matches(predicted, at(mid).demand()):
            segments.append((lo, hi))
        else:
            cover(lo, mid, depth + 1)
            cover(mid, hi, depth + 1)

    cover(first, last, 0)
    rates = Rates.of(spec, precision)  # type: ignore[arg-type]
    parts = []
    for k, (lo, hi) in enumerate(segments):
        start = lo if k == 0 else lo + 1  # a shared end belongs to the earlier segment
        contexts = np.arange(start, hi + 1, dtype=np.float64)
        if not len(contexts):
            continue
        base = at(lo)
        d = _affine(base, at(hi), contexts) if hi > lo else {
            key: v[None, :] for key, v in base.demand().items()}  # fmt: skip
        fields: dict = {f: d[f] for f in _AFFINE_FIELDS}
        work: OpWorkload = replace(base.sim.work, **fields)
        mac_s, vector_s, _ = compute_seconds(work, rates)
        cost = price(mac_s, vector_s, d["macs"], d["vector_ops"], d["dram_bytes"],
                     d["sram_bytes"], base.sim.overhead_s[None, :], rates)  # fmt: skip
        latency = cost.latency_s.sum(axis=-1)
        bound_time = np.stack([np.where(cost.bound == b, cost.latency_s, 0.0).sum(axis=-1)
                               for b in range(4)])  # fmt: skip
        parts.append((latency, cost.energy_j.sum(axis=-1), d["dram_bytes"].sum(axis=-1),
                      bound_time.argmax(axis=0)))  # fmt: skip
    latency, energy, dram, bound = (np.concatenate(x) for x in zip(*parts, strict=True))
    return latency, energy, dram, bound, tuple(samples[c] for c in sorted(samples))


def simulate_generation(
    prefill: OpWorkload,
    decode_at: Callable[[int], OpWorkload],
    spec: HardwareSpec,
    precision: str,
    prompt_tokens: int,
    new_tokens: int,
    kv_bytes_per_token: float,
    kv_precision: str | None = None,
) -> Generation:
    """Prefill, then the decode steps (see the module docstring); `decode_at(L)` gives the
    decode workload at context L (a capture)."""
    first = simulate(prefill, spec, precision)
    steps = new_tokens - 1
    if steps:
        lo, hi = prompt_tokens, prompt_tokens + steps - 1
        latency, energy, dram, bound, samples = decode_steps(
            lambda L: DecodeSample(L, simulate(decode_at(L), spec, precision)),
            lo, hi, spec, precision,
        )  # fmt: skip
        contexts = np.arange(lo, hi + 1)
    else:
        latency = energy = dram = np.zeros(0)
        bound, contexts, samples = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), ()
    kv = kv_precision or first.work.activation_precision
    return Generation(first.work.model, spec.name, precision, prompt_tokens, new_tokens, first,
                      contexts, latency, energy, dram, bound.astype(np.int64), samples,
                      kv_bytes_per_token, kv)  # fmt: skip
