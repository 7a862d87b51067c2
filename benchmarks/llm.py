"""Language models on every preset: decode tokens/s and time to first token, and how long
a 1,024-token generation takes to cost.

    .venv/bin/python benchmarks/llm.py [--models NAME ...] [--prompt 128] [--new 128]

Per zoo LLM (and LLaVA's language model), per preset, at w4a16 (where the preset has
int16 MACs) and int8: the prefill over the prompt (TTFT) and the mean decode step over
the generation, each simulated (`simulate --phase generate`). Then the 1,024-token sweep:
`simulate_generation` on Llama-3.2-1B with its three decode captures already made, timed
(the target: at most 1 s after capture). Published Snapdragon 8 Elite figures (Qualcomm
AI Hub) are printed beside, with their source.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import cache

from edgewise.capture.llm import LLMS, capture_llm
from edgewise.hardware.spec import PRESETS, compute_precision, load_spec, parse_precision
from edgewise.ir.vocab import PRECISION_BYTES
from edgewise.simulate.generation import simulate_generation
from edgewise.simulate.workload import op_workload

PUBLISHED = (  # model, precision, tokens/s on Snapdragon 8 Elite QRD (context 4096)
    ("llama-3.2-1b", "w4a16", 53.64, "quic/ai-hub-models llama_v3_2_1b_instruct/perf.yaml"),
    ("llama-3.2-3b", "w4a16", 23.47, "quic/ai-hub-models llama_v3_2_3b_instruct/perf.yaml"),
)
SOURCE_COMMIT = "33c3d0323591a9165457ff564b0a0ec8ef09fccb"


@cache
def _graph(name: str, phase: str, tokens: int):  # type: ignore[no-untyped-def]
    if phase == "prefill":
        return capture_llm(name, "prefill", prompt_tokens=tokens)
    return capture_llm(name, "decode", context=tokens)


def generation(name: str, spec, precision: str, prompt: int, new: int):  # type: ignore[no-untyped-def]
    weights, activations = parse_precision(precision, spec)
    compute = compute_precision(weights, activations)
    prefill = op_workload(_graph(name, "prefill", prompt), weights, activations)
    return simulate_generation(
        prefill, lambda L: op_workload(_graph(name, "decode", L), weights, activations), spec,
        compute, prompt, new, LLMS[name].kv_bytes_per_token(PRECISION_BYTES[activations]),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=list(LLMS))
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--new", type=int, default=128)
    opts = parser.parse_args()
    start = time.perf_counter()
    print(f"### Decode tokens/s (TTFT at {opts.prompt} prompt tokens), {opts.new} new tokens\n")
    presets = list(PRESETS)
    print("| model | precision | " + " | ".join(presets) + " |")
    print("|---|---|" + "---|" * len(presets))
    for name in opts.models:
        for precision in ("w4a16", "int8"):
            cells = []
            for preset in presets:
                spec = load_spec(preset)
                try:
                    g = generation(name, spec, precision, opts.prompt, opts.new)
                except Exception as e:  # a preset without int16 MACs, weights that cannot fit
                    cells.append(f"- ({type(e).__name__})" if "MACs" not in str(e) else "-")
                    continue
                cells.append(
                    f"{g.tokens_per_s:.3g} ({g.ttft_s * 1e3:.0f} ms, {g.main_decode_bound})"
                )
            print(f"| {name} | {precision} | " + " | ".join(cells) + " |")
    print("\nPublished, Snapdragon 8 Elite QRD, Qualcomm AI Hub (Genie, context 4096), "
          f"commit {SOURCE_COMMIT}:\n")  # fmt: skip
    print("| model | precision | published tokens/s | edgewise on snapdragon-8elite | ratio |")
    print("|---|---|---|---|---|")
    for name, precision, tps, source in PUBLISHED:
        g = generation(name, load_spec("snapdragon-8elite"), precision, opts.prompt, opts.new)
        print(f"| {name} | {precision} | {tps} ({source}) | {g.tokens_per_s:.3g} "
              f"| {g.tokens_per_s / tps:.2f} |")  # fmt: skip
    name, spec = "llama-3.2-1b", load_spec("snapdragon-8gen3")
    generation(name, spec, "int8", opts.prompt, 1025)  # captures made (and cached)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        g = generation(name, spec, "int8", opts.prompt, 1025)
        times.append(time.perf_counter() - t)
    print(f"\n1,024 decode steps of {name} on {spec.name} costed in "
          f"{statistics.median(times):.2f} s median of 5 ({min(times):.2f}-{max(times):.2f}), "
          f"captures cached; {len(g.samples)} decode captures, "
          f"{g.tokens_per_s:.3g} tokens/s")  # fmt: skip
    print(f"\n(made in {time.perf_counter() - start:.0f} s by benchmarks/llm.py)")


if __name__ == "__main__":
    main()
