"""Language and vision-language models: KV bytes, parameter counts, decode affine in the
context, generation totals, speculative decoding."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

import edgewise
from edgewise.capture import llm as llm_module
from edgewise.capture.llm import LLMS, Vision, _prefill_module, capture_llm, llm_entry
from edgewise.cli.main import app
from edgewise.errors import EdgewiseError
from edgewise.hardware.spec import load_spec
from edgewise.simulate.generation import simulate_generation
from edgewise.simulate.simulator import simulate
from edgewise.simulate.speculative import Speculation, expected_tokens
from edgewise.simulate.workload import op_workload


def test_kv_bytes_per_token_by_hand() -> None:
    # GQA: Llama-3.2-1B, 16 layers x 2 x 8 KV heads x head_dim 64 x 2 bytes (fp16)
    assert llm_entry("llama-3.2-1b").kv_bytes_per_token(2) == 16 * 2 * 8 * 64 * 2 == 32768
    # head_dim as the config states it: Gemma 2 2B's is 256, not 2304 / 8 = 288
    gemma = llm_entry("gemma-2-2b")
    assert gemma.head_dim == 256 and gemma.kv_bytes_per_token(1) == 26 * 2 * 4 * 256
    # MHA: Llama-2-7B's architecture (Vicuna-7B, LLaVA-1.5's LM), fp16: 524,288 B/token
    assert llm_entry("llava-1.5-7b").kv_bytes_per_token(2) == 524_288
    # MQA: one KV head
    mqa = replace(llm_entry("llama-3.2-1b"), config={**LLMS["llama-3.2-1b"].config,
                                                     "num_key_value_heads": 1})  # fmt: skip
    assert mqa.kv_bytes_per_token(0.5) == 16 * 2 * 1 * 64 * 0.5  # int4 KV


@pytest.mark.parametrize("name", list(LLMS))
def test_parameter_counts_match_the_model_cards(name: str) -> None:
    entry = LLMS[name]
    module = _prefill_module(entry, 336 if entry.vision else None)
    seen = {id(p): p.numel() for p in module.parameters()}
    assert abs(sum(seen.values()) - entry.params) < entry.precision, sum(seen.values())


def test_llava_at_336_has_576_image_tokens() -> None:
    assert Vision({"patch_size": 14}, 336).image_tokens(336) == 576
    graph = capture_llm("llava-1.5-7b", "prefill", prompt_tokens=8)
    assert graph.meta["image_tokens"] == 576
    shapes = {graph.tensors[t].shape for op in graph.ops for t in op.outputs}
    assert (1, 576 + 8, 4096) in shapes  # the language model sees image + prompt tokens


def test_decode_macs_are_affine_in_the_context() -> None:
    """Three lengths; per cached token each layer's heads add head_dim MACs for Q K^T and
    head_dim for A V: 24 layers x 14 heads x 64 x 2 = 43,008 for Qwen2.5-0.5B."""
    from edgewise.analysis.profile import profile

    macs = [profile(capture_llm("qwen2.5-0.5b", "decode", context=c)).totals.macs
            for c in (16, 48, 80)]  # fmt: skip
    assert macs[1] - macs[0] == macs[2] - macs[1] == 32 * 24 * 14 * 64 * 2


def test_generate_is_prefill_plus_every_decode_step() -> None:
    """The interpolated steps equal a decode step captured and simulated at that length,
    and the totals are the prefill plus the sum of the steps."""
    spec = load_spec("snapdragon-8gen3")
    name = "qwen2.5-0.5b"
    entry = llm_entry(name)

    def decode_at(context: int):  # type: ignore[no-untyped-def]
        return op_workload(capture_llm(name, "decode", context=context), "int4", "int8")

    prefill = op_workload(capture_llm(name, "prefill", prompt_tokens=32), "int4", "int8")
    gen = simulate_generation(prefill, decode_at, spec, "int8", 32, 41, entry.kv_bytes_per_token(1))
    assert len(gen.decode_latency_s) == 40 and list(gen.contexts) == list(range(32, 72))
    assert gen.latency_s == pytest.approx(gen.ttft_s + gen.decode_latency_s.sum())
    direct = simulate(decode_at(57), spec, "int8").totals
    assert gen.decode_latency_s[57 - 32] == pytest.approx(direct.latency_s, rel=1e-9)
    assert gen.decode_energy_j[57 - 32] == pytest.approx(direct.energy_j, rel=1e-9)
    assert gen.main_decode_bound == "dram"  # decode is weight-bandwidth bound on an edge NPU
    assert gen.kv_cache_bytes == entry.kv_bytes_per_token(1) * (32 + 41 - 1)
    assert np.all(np.diff(gen.decode_latency_s) >= 0)  # a longer cache never costs less


def test_speculative_expected_tokens_and_speedup_by_hand() -> None:
    assert expected_tokens(0.8, 4) == pytest.approx(3.3616)
    assert expected_tokens(1.0, 4) == 5
    s = Speculation("t", "d", 4, 0.8, 100, 64, target_step_s=0.02, draft_step_s=0.004,
                    verify_s=0.022, target_prefill_s=0.1, draft_prefill_s=0.02,
                    target_energy_j=0, draft_energy_j=0, verify_energy_j=0, weight_bytes=0,
                    kv_bytes=0)  # fmt: skip
    # E x t_target / (G t_draft + t_verify) = 3.3616 x 0.02 / (4 x 0.004 + 0.022)
    assert s.decode_speedup == pytest.approx(3.3616 * 0.02 / 0.038)
    plain = 0.1 + 64 * 0.02
    assert s.end_to_end_speedup == pytest.approx(plain / (0.1 + 0.02 + 64 / 3.3616 * 0.038))


def test_cli_generate_json_and_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["simulate", "qwen2.5-0.5b", "--phase", "generate",
                              "--prompt-tokens", "16", "--new-tokens", "9", "--hw",
                              "snapdragon-8gen3", "--json", "-"])  # fmt: skip
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    for key in ("ttft_s", "tokens_per_s", "decode_s_per_token", "kv_cache_bytes"):
        assert data[key] > 0
    assert data["decode"]["contexts"] == list(range(16, 24))
    # the API: the same figures, its graphs from the cache the CLI filled (no capture)
    captured: list[str] = []
    real_capture = llm_module.capture_llm
    monkeypatch.setattr(llm_module, "capture_llm",
                        lambda *a, **k: captured.append(a[1]) or real_capture(*a, **k))  # fmt: skip
    api = edgewise.simulate("qwen2.5-0.5b", phase="generate", prompt_tokens=16, new_tokens=9,
                            hw="snapdragon-8gen3")  # fmt: skip
    assert json.loads(json.dumps(api.to_dict())) == data
    steps = sum(r["latency_s"] for r in api.rows)
    assert api.totals.latency_s == pytest.approx(api.totals.ttft_s + steps)
    assert [r["context"] for r in api.rows] == list(range(16, 24))
    assert "per generation of 9 tokens on snapdragon-8gen3" in repr(api)
    assert captured == []
    step = edgewise.simulate("qwen2.5-0.5b", phase="decode", context=16, hw="snapdragon-8gen3")
    cli_step = runner.invoke(app, ["simulate", "qwen2.5-0.5b", "--phase", "decode", "--context",
                                   "16", "--hw", "snapdragon-8gen3", "--json", "-"])  # fmt: skip
    assert json.loads(json.dumps(step.to_dict())) == json.loads(cli_step.stdout)
    # the KV cache's precision, as --kv-precision: the same figures, checked the same way
    kv4 = edgewise.simulate("qwen2.5-0.5b", phase="decode", context=16, hw="snapdragon-8gen3",
                            kv_precision="int4")  # fmt: skip
    cli_kv4 = runner.invoke(app, ["simulate", "qwen2.5-0.5b", "--phase", "decode", "--context",
                                  "16", "--hw", "snapdragon-8gen3", "--kv-precision", "int4",
                                  "--json", "-"])  # fmt: skip
    assert json.loads(json.dumps(kv4.to_dict())) == json.loads(cli_kv4.stdout)
    assert kv4.totals.dram_bytes < step.totals.dram_bytes
    with pytest.raises(EdgewiseError, match="--kv-precision is for language models"):
        edgewise.simulate("resnet18", kv_precision="int8")
    with pytest.raises(EdgewiseError, match="--kv-precision must be one of"):
        edgewise.simulate("qwen2.5-0.5b", phase="generate", kv_precision="int9")
    with pytest.raises(EdgewiseError, match="not a Graph"):
        edgewise.run(edgewise.load("qwen2.5-0.5b", phase="decode", context=16))
    with pytest.raises(EdgewiseError, match="for pipelines"):
        edgewise.simulate("resnet18", steps=4)
    with pytest.raises(EdgewiseError, match="--phase must be"):
        edgewise.profile("qwen2.5-0.5b", phase="generate")
    for args, says in (
        (["simulate", "resnet18", "--context", "5"], "for language models"),
        (["simulate", "qwen2.5-0.5b", "--phase", "train"], "--phase must be"),
        (["simulate", "qwen2.5-0.5b", "--image-size", "336"], "vision-language"),
        (["simulate", "llava-1.5-7b", "--image-size", "300"], "multiple of 14"),
        (["speculative", "--target", "llama-3.2-3b", "--draft", "qwen2.5-0.5b"], "vocabulary"),
    ):
        bad = runner.invoke(app, args)
        assert isinstance(bad.exception, EdgewiseError) and says in str(bad.exception), args


def test_speculative_cli_prices_every_pass() -> None:
    args = ["speculative", "--target", "qwen2.5-1.5b", "--draft", "qwen2.5-0.5b",
            "--acceptance", "0.8", "--hw", "snapdragon-8gen3", "--new-tokens", "32",
            "--json", "-"]  # fmt: skip
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    row = json.loads(out.stdout)["rows"][0]
    assert row["tokens_per_round"] == pytest.approx(3.3616)
    expected = 3.3616 * row["target_step_s"] / (4 * row["draft_step_s"] + row["verify_s"])
    assert row["decode_speedup"] == pytest.approx(expected)
    assert row["draft_step_s"] < row["target_step_s"] <= row["verify_s"]


def test_the_decode_graph_is_the_eager_decode_step_bit_for_bit() -> None:
    """The captured decode step (the cache as inputs, the new K and V written in place)
    computes what transformers computes with its own cache: a tiny Llama, random weights."""
    import torch
    from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

    from edgewise.capture.llm import _classes

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=16)  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    prompt, token = torch.randint(0, 128, (1, 9)), torch.randint(0, 128, (1, 1))
    _, decode_step = _classes()
    with torch.no_grad():
        cache = DynamicCache(config=config)
        model(input_ids=prompt, cache=cache, use_cache=True)
        buffers = []
        for layer in cache.layers:
            for t in (layer.keys, layer.values):
                b = torch.zeros(1, 2, 10, 16)
                b[:, :, :9] = t
                buffers.append(b)
        mine = decode_step(model, 9)(token, *buffers)
        reference = model(input_ids=token, cache=cache, use_cache=True).logits
    assert torch.equal(mine, reference)


def test_kv_precision_scales_only_the_cache() -> None:
    graph = capture_llm("qwen2.5-0.5b", "decode", context=16)
    assert len(graph.meta["kv_inputs"]) == 2 * 24
    base = op_workload(graph, "int8", "int8")
    int4 = op_workload(graph, "int8", "int8", kv_precision="int4")
    cache = 2 * 24 * 2 * 17 * 64  # K and V, 24 layers, 2 KV heads, 17 positions, head_dim 64
    assert base.input_bytes - int4.input_bytes == cache // 2  # int8 -> int4
    assert base.total_weight_bytes == int4.total_weight_bytes


def test_profile_and_memory_of_a_generation() -> None:
    """Decode counts sum over every step: MACs(L) = MACs(16) + (L - 16) x 43,008 for
    Qwen2.5-0.5B (the affine test above), so 8 steps at L = 16..23 add 8 x MACs(16) +
    43,008 x (0 + ... + 7); the cache holds 16 + 9 - 1 tokens at the end."""
    from edgewise.analysis.profile import profile

    runner = CliRunner()
    args = ["--phase", "generate", "--prompt-tokens", "16", "--new-tokens", "9", "--json", "-"]
    counts = json.loads(runner.invoke(app, ["profile", "qwen2.5-0.5b", *args]).stdout)
    first = profile(capture_llm("qwen2.5-0.5b", "decode", context=16)).totals.macs
    assert counts["decode_macs"] == 8 * first + 43_008 * sum(range(8))
    assert counts["macs"] == counts["prefill"]["macs"] + counts["decode_macs"]
    memory = json.loads(runner.invoke(app, ["memory", "qwen2.5-0.5b", *args]).stdout)
    per_token = llm_entry("qwen2.5-0.5b").kv_bytes_per_token(4)  # captured fp32
    assert memory["kv_final_bytes"] == per_token * (16 + 9 - 1)
    assert memory["kv_after_prefill_bytes"] == per_token * 16
    assert memory["peak_bytes"] == max(memory["prefill_bytes"], memory["decode_bytes"])


def test_qwen2_vl_image_tokens_follow_the_image_size() -> None:
    """transformers' smart_resize: sides to multiples of 28 px, the area within [56^2,
    28^2 x 1280]; one token per 28 x 28 pixels (14 px patches merged 2 x 2)."""
    from edgewise.capture.llm import smart_resize

    vision = llm_entry("qwen2-vl-2b").vision
    assert vision is not None
    assert smart_resize(448, 448) == (448, 448) and vision.image_tokens(448) == 256
    assert smart_resize(500, 300) == (504, 308)  # rounded to the nearest multiple of 28
    assert vision.image_tokens(2000) == 35 * 35  # capped at 1,003,520 pixels
    assert vision.image_tokens(30) == 4  # raised to 56 x 56
    graph = capture_llm("qwen2-vl-2b", "prefill", prompt_tokens=8, image_size=336)
    assert graph.meta["image_tokens"] == 144
    shapes = {graph.tensors[t].shape for op in graph.ops for t in op.outputs}
    assert (1, 144 + 8, 1536) in shapes


def test_run_replays_a_decode_step_with_a_real_cache() -> None:
    """`run --phase decode`: random weights, a random 32-token cache; the interpreter's
    replay of the captured step is bit-exact against the eager step, and the measured peak
    of the tensors it allocates is the predicted one."""
    out = CliRunner().invoke(app, ["run", "smolvlm-256m", "--phase", "decode", "--context",
                                   "32", "--json", "-"])  # fmt: skip
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["replay_bit_exact"] and data["bit_exact"]
    assert data["eager_peak_bytes"] == data["predicted_eager_peak_bytes"]
    assert data["baseline_peak_bytes"] == data["predicted_baseline_peak_bytes"]


def test_kv_cache_residency_equals_brute_force() -> None:
    """A tiny Llama's decode step over 20 calls, only its KV cache holdable (4 inputs):
    every subset held, each simulated, against the MILP; its figure is the simulator's."""
    import itertools

    from edgewise.ir.vocab import Objective
    from edgewise.plan.knobs import with_residency
    from edgewise.plan.milp import TENSOR_ACTIONS, solve_milp
    from edgewise.plan.problem import plan_problem
    from edgewise.simulate.pipeline import simulate_phase
    from edgewise.simulate.schedule import Schedule, belady
    from edgewise.simulate.simulator import activation_capacity

    graph = _tiny_decode_graph(199)
    spec = load_spec("generic-npu", ["sram_bytes=24KiB"])
    work = op_workload(graph, "int8", "int8")
    base = simulate(work, spec, "int8")
    problem = replace(plan_problem(graph, work, base, spec), calls=20)
    problem = replace(with_residency(problem, graph, work), layers=(), bits_ratio=None)
    assert len(problem.held_inputs) == 4
    capacity = activation_capacity(work, spec)[0]
    best = float("inf")
    for held in itertools.product((False, True), repeat=4):
        chosen = frozenset(s for s, h in zip(problem.held_inputs, held, strict=True) if h)
        nbytes = sum(work.storage[s].nbytes for s in chosen)
        free = belady(work, capacity - nbytes)
        schedule = Schedule(capacity, free.kept, free.tiled, free.recompute, None, chosen)
        run = simulate_phase("decode", work, spec, "int8", 20, schedule)
        if run.totals.feasible:
            best = min(best, run.totals.latency_s)
    result = solve_milp(problem, Objective.LATENCY, TENSOR_ACTIONS)
    assert result.status == "optimal" and result.schedule is not None
    planned = simulate_phase("decode", work, spec, "int8", 20, result.schedule).totals.latency_s
    assert planned == pytest.approx(result.objective, rel=1e-9)
    assert planned == pytest.approx(best, rel=1e-9)
    assert 0 < len(result.schedule.resident_inputs) < 4  # 6.25 KiB each: a real trade


def _tiny_decode_graph(context: int):  # type: ignore[no-untyped-def]
    """A tiny Llama's decode step (2 layers, 2 KV heads of 16) against `context` cached
    tokens: its 4 cache inputs named as `capture_llm` names them."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from edgewise import capture
    from edgewise.capture.llm import _classes

    config = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=16)  # fmt: skip
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    _, decode_step = _classes()
    kv = [torch.empty(1, 2, context + 1, 16, device="meta") for _ in range(4)]
    return capture(decode_step(model, context),
                   torch.empty(1, 1, dtype=torch.int64, device="meta"), *kv,
                   meta={"kv_inputs": [f"arg{i}" for i in range(1, 5)]})  # fmt: skip


def test_kv_precision_is_a_planner_decision() -> None:
    """`--allow kv-precision`: the plan at each KV precision the floor keeps, the best
    returned; it is the best of the plans made with the KV precision fixed, and its figure
    is the simulator's for that cache width and schedule."""
    from edgewise.plan.planner import make_plan

    graph = _tiny_decode_graph(199)
    spec = load_spec("generic-npu", ["sram_bytes=24KiB"])
    allow = frozenset({"keep", "spill", "recompute", "residency", "kv-precision"})
    fixed = {kv: make_plan(graph, spec, "int8", "fp16", "fp16", calls=20, kv_precision=kv)
             for kv in (None, "int8", "int4")}  # fmt: skip
    best = min(fixed, key=lambda kv: fixed[kv].plan.objective_value)  # type: ignore[union-attr]
    chosen = make_plan(graph, spec, "int8", "fp16", "fp16", allow=allow, calls=20,
                       floors=["kv_cache=int4"])  # fmt: skip
    assert chosen.plan is not None and chosen.plan.kv_precision == best == "int4"
    assert chosen.plan.objective_value == pytest.approx(fixed["int4"].plan.objective_value)
    values = [fixed[kv].plan.objective_value for kv in (None, "int8", "int4")]  # type: ignore[union-attr]
    assert values[0] > values[1] > values[2]  # a decode step reads its whole cache
    assert "KV cache at int4" in chosen.plan.note
    work = op_workload(graph, "int8", "fp16", kv_precision="int4")
    again = simulate(work, spec, "fp16", schedule=chosen.plan.sram_schedule(work), warm=True)
    first = simulate(work, spec, "fp16", schedule=chosen.plan.sram_schedule(work))
    total = first.totals.latency_s + 19 * again.totals.latency_s
    assert total == pytest.approx(chosen.plan.objective_value, rel=1e-9)
    # a floor keeps the cache at int8 at least; an error budget spends on it like on a layer
    floored = make_plan(graph, spec, "int8", "fp16", "fp16", allow=allow, calls=20,
                        floors=["kv_*=int8"])  # fmt: skip
    assert floored.plan is not None and floored.plan.kv_precision == "int8"


def test_kv_precision_under_an_error_budget(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edgewise.plan.planner import make_plan

    graph = _tiny_decode_graph(63)
    spec = load_spec("generic-npu", ["sram_bytes=24KiB"])
    table = tmp_path / "s.json"
    table.write_text(json.dumps({"layers": {"kv_cache": {"int8": 0.001, "int4": 0.03}}}))
    allow = frozenset({"keep", "spill", "kv-precision"})
    for budget, expected in ((0.01, "int8"), (0.05, "int4"), (0.0, None)):
        out = make_plan(graph, spec, "int8", "fp16", "fp16", allow=allow, sensitivity=table,
                        accuracy_budget=budget)  # fmt: skip
        assert out.plan is not None and out.plan.kv_precision == expected, budget


def test_a_kv_precision_plan_round_trips_through_simulate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    plan_file = tmp_path / "p.json"
    common = ["qwen2.5-0.5b", "--phase", "decode", "--context", "32", "--hw", "generic-npu"]
    out = runner.invoke(app, ["plan", *common, "--allow", "keep,spill,kv-precision", "--floor",
                              "kv_cache=int4", "-o", str(plan_file), "--json", "-"])  # fmt: skip
    assert out.exit_code == 0, out.output
    planned = json.loads(out.stdout)
    assert json.loads(plan_file.read_text())["kv_precision"] == "int4"
    out = runner.invoke(app, ["simulate", *common, "--plan", str(plan_file), "--json", "-"])
    assert out.exit_code == 0, out.output
    simulated = json.loads(out.stdout)["totals"]["latency_s"]
    assert simulated == pytest.approx(planned["plan"]["objective_value"], rel=1e-12)
    refused = [
        ["simulate", *common, "--plan", str(plan_file), "--kv-precision", "int8"],
        ["plan", "resnet18", "--allow", "keep,kv-precision", "--floor", "kv_cache=int8"],
        ["plan", *common, "--allow", "keep,kv-precision"],  # nothing bounds the error
        # the cache's floor bounds no layer: layer precision is still unbounded
        ["plan", *common, "--allow", "keep,precision,kv-precision", "--floor", "kv_cache=int8"],
    ]
    for args in refused:
        out = runner.invoke(app, args)
        assert isinstance(out.exception, EdgewiseError), (args, out.output)
        assert "kv" in str(out.exception).lower() or "--floor LAYER" in str(out.exception), args


TINY_LLAMA = {"model_type": "llama", "vocab_size": 256, "hidden_size": 64,
              "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "head_dim": 16, "tie_word_embeddings": False}  # fmt: skip


def test_run_loads_real_weights_into_a_language_model(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`run --weights` on a text LLM: the checkpoint's names (as transformers saves them)
    fill the prefill module and the decode step (one prefix added); both replay bit-exact.
    A decode plan with an int4 KV cache is applied for real: the cache fake-quantized."""
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    from edgewise.capture.llm import LanguageEntry, build_llm
    from edgewise.execute.weights import load_weights

    monkeypatch.setitem(LLMS, "tiny-llama", LanguageEntry("tiny-llama", "a test model",
                                                          TINY_LLAMA, 0, 1, "test"))  # fmt: skip
    torch.manual_seed(0)
    config = {k: v for k, v in TINY_LLAMA.items() if k != "model_type"}
    state = LlamaForCausalLM(LlamaConfig(**config)).state_dict()
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    module = load_weights(build_llm("tiny-llama", "decode", context=8)[0], path)
    q = "model.layers.1.self_attn.q_proj.weight"
    assert torch.equal(module.model.get_parameter(q), state[q])
    runner = CliRunner()
    for phase in ("prefill", "decode"):
        out = runner.invoke(app, ["run", "tiny-llama", "--phase", phase, "--prompt-tokens", "6",
                                  "--context", "8", "--weights", str(path), "--json",
                                  "-"])  # fmt: skip
        assert out.exit_code == 0, out.output
        data = json.loads(out.stdout)
        assert data["replay_bit_exact"] and data["bit_exact"] and data["kv_bits"] is None
    plan = tmp_path / "plan.json"
    decode = ["tiny-llama", "--phase", "decode", "--context", "8"]
    out = runner.invoke(app, ["plan", *decode, "--allow", "keep,spill,kv-precision", "--floor",
                              "kv_cache=int4", "-o", str(plan)])  # fmt: skip
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["run", *decode, "--weights", str(path), "--plan", str(plan),
                              "--json", "-"])  # fmt: skip
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["kv_bits"] == 4 and data["replay_bit_exact"] and not data["bit_exact"]
    assert data["sqnr_db"] > 10  # 4-bit per-token scales: the logits move, not much
    vlm = runner.invoke(app, ["run", "smolvlm-256m", "--weights", str(path)])
    assert isinstance(vlm.exception, EdgewiseError) and "vision-language" in str(vlm.exception)
