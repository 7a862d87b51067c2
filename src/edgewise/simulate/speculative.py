"""Speculative decoding on a spec (Leviathan et al. 2023, "Fast Inference from
Transformers via Speculative Decoding"): a draft model proposes G tokens one decode step
at a time; the target verifies them in one pass over G + 1 tokens. With each drafted
token accepted with probability A (independently), one round yields

    E = (1 - A^(G+1)) / (1 - A)     tokens (G + 1 when A = 1),

at a cost of G draft decode steps + one target verify pass, each simulated on the spec
(not assumed). Decode speedup = E x t(target step) / (G x t(draft step) + t(verify)).
The end-to-end speedup adds the prefill (the target's, and the draft's, which must see
the prompt too) to both sides over `new_tokens`. Costs are taken at one context length
(the generation's mean), which is exact for the affine decode costs when the steps are
spread evenly.
"""

from __future__ import annotations

from dataclasses import dataclass


def expected_tokens(acceptance: float, gamma: int) -> float:
    """Tokens per target pass: (1 - A^(G+1)) / (1 - A)."""
    if acceptance >= 1.0:
        return float(gamma + 1)
    return (1.0 - acceptance ** (gamma + 1)) / (1.0 - acceptance)


@dataclass(frozen=True)
class Speculation:
    target: str
    draft: str
    gamma: int
    acceptance: float
    context: int  # the context length the steps were costed at
    new_tokens: int
    target_step_s: float  # one target decode step (no speculation)
    draft_step_s: float  # one draft decode step
    verify_s: float  # one target pass over gamma + 1 tokens
    target_prefill_s: float
    draft_prefill_s: float
    target_energy_j: float  # per step / pass, as the times
    draft_energy_j: float
    verify_energy_j: float
    weight_bytes: int  # both models' weights (at their precisions)
    kv_bytes: float  # both KV caches at the end of the generation

    @property
    def tokens_per_round(self) -> float:
        return expected_tokens(self.acceptance, self.gamma)

    @property
    def round_s(self) -> float:
        return self.gamma * self.draft_step_s + self.verify_s

    @property
    def decode_speedup(self) -> float:
        return self.tokens_per_round * self.target_step_s / self.round_s

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_per_round / self.round_s

    @property
    def energy_per_token_j(self) -> float:
        return (self.gamma * self.draft_energy_j + self.verify_energy_j) / self.tokens_per_round

    @property
    def end_to_end_speedup(self) -> float:
        plain = self.target_prefill_s + self.new_tokens * self.target_step_s
        spec = (self.target_prefill_s + self.draft_prefill_s
                + self.new_tokens / self.tokens_per_round * self.round_s)  # fmt: skip
        return plain / spec
