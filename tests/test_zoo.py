"""The zoo: every entry builds on the meta device, captures, and reproduces its published
figures; workloads shape the inputs as documented and bad options fail with one clear line.

Expected values are either published figures (each with its source, in the entry) or
derived here by hand from the architecture.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
import torch

from edgewise.analysis.conventions import CONVENTIONS
from edgewise.analysis.formulas import Count
from edgewise.analysis.profile import op_costs, profile
from edgewise.capture.torch_capture import capture
from edgewise.capture.zoo import OPTIONS, ZOO, PublishedFigure, Workload, capture_zoo, zoo_entry
from edgewise.errors import EdgewiseError
from edgewise.ir.graph import Graph


@cache
def _graph(name: str) -> Graph:
    """Each entry's default-workload graph, captured once for the whole module."""
    return capture_zoo(name)


def _measure(graph: Graph, figure: PublishedFigure) -> int:
    if figure.quantity == "params":
        return graph.parameter_count
    totals = profile(graph, convention_name=figure.convention).totals
    return totals.flops if figure.quantity == "ops" else totals.macs


# The reference-path entries run the selective scan one token at a time (vim-s-reference:
# 154,000 ops, a minute to capture): their weights are the fused entries', which
# `test_reference_scan_entries_share_the_fused_weights` checks without capturing them.
_CAPTURED = [name for name in ZOO if not name.endswith("-reference")]


@pytest.mark.parametrize("name", _CAPTURED)
def test_captured_parameters_are_the_models_parameters(name: str) -> None:
    model, _, _ = ZOO[name].build(Workload())
    assert {p.device.type for p in model.parameters()} == {"meta"}  # no weight bytes
    assert _graph(name).parameter_count == sum(p.numel() for p in model.parameters())


_FIGURES = [(name, f) for name in _CAPTURED for f in ZOO[name].published]


@pytest.mark.parametrize(
    ("name", "figure"), _FIGURES, ids=[f"{n}-{f.quantity}-{f.convention}" for n, f in _FIGURES]
)
def test_published_figure_is_reproduced(name: str, figure: PublishedFigure) -> None:
    """To within one unit of the figure's last published digit (exact where exact)."""
    measured = _measure(_graph(name), figure)
    assert figure.matches(measured), f"{name}: {figure.source}: measured {measured:,}"


def test_published_figures_are_well_formed() -> None:
    for entry in ZOO.values():
        assert entry.options <= set(OPTIONS) and "batch" in entry.options
        for f in entry.published:
            assert f.quantity in ("params", "macs", "ops") and f.source and f.precision >= 1
            assert f.convention == "-" if f.quantity == "params" else f.convention in CONVENTIONS
    # every figure of the project's reference table (shared/reference/figures.md) is cited
    cited = {(name, f.quantity) for name, f in _FIGURES}
    assert {("sd15-unet", "params"), ("resnet50", "params"), ("resnet50", "macs"),
            ("vit-b16", "params"), ("vit-b16", "macs")} <= cited  # fmt: skip
    # and so is every figure found for the models whose chip latencies are validated
    torchvision = ("resnet18", "efficientnet-b0", "convnext-tiny", "swin-tiny", "googlenet")
    assert {(n, q) for n in torchvision for q in ("params", "macs")} <= cited
    assert {("deit-small", "params"), ("mobilevit-s", "params"), ("bert-base", "params")} <= cited


def test_figure_matches_to_its_last_digit() -> None:
    rounded = PublishedFigure("params", 675_000_000, "-", "'675M'", precision=10**6)
    assert rounded.matches(674_834_720) and not rounded.matches(676_000_000)
    exact = PublishedFigure("params", 25_557_032, "-", "num_params 25557032")
    assert exact.matches(25_557_032) and not exact.matches(25_557_033)


def test_resnet50_conv_linear_macs_agree_under_thop_and_fvcore() -> None:
    """torchvision's 4.089 G counts conv + linear only; thop and fvcore count the same."""
    (figure,) = [f for f in ZOO["resnet50"].published if f.quantity == "macs"]
    for convention in ("thop", "fvcore"):
        macs = profile(_graph("resnet50"), convention_name=convention).totals.macs
        assert figure.matches(macs), convention


def test_vit_b16_macs_by_hand() -> None:
    """ViT-B/16 at 224: 196 patches + 1 class token, d = 768, MLP 3072, 12 layers."""
    tokens, d, layers = 197, 768, 12
    per_layer = tokens * (4 * d * d + 2 * d * 3072) + 2 * tokens * tokens * d  # linears + QK^T, AV
    expected = 196 * 3 * 16 * 16 * d + layers * per_layer + d * 1000  # + patch conv, head
    assert profile(_graph("vit-b16")).totals.macs == expected


def test_vit_b16_at_384_is_torchvision_swag_vit() -> None:
    """A resolution builds the position table a checkpoint at that size has: torchvision's
    ViT_B_16_Weights.IMAGENET1K_SWAG_E2E_V1 (384 px) publishes num_params 86859496 and
    _ops 55.484 GMACs."""
    graph = capture_zoo("vit-b16", Workload(resolution=384))
    assert graph.parameter_count == 86_859_496
    assert abs(profile(graph).totals.macs - 55_484_000_000) < 10**6


def test_sam_vit_h_against_timm() -> None:
    """timm's samvit_huge_patch16: 637.03 M parameters (the entry's figure) and 2982.23
    GMACs from fvcore, which counts every matmul, einsum and conv (edgewise's MACs,
    attention and relative-position einsums included) plus 5 per layer-norm input element
    (the 64 norms of the blocks on 4096 x 1280, the neck's two on 256 x 64 x 64)."""
    graph = _graph("sam-vit-h")
    macs = profile(graph).totals.macs
    norm_elements = 32 * 2 * 4096 * 1280 + 2 * 256 * 64 * 64
    assert abs(macs + 5 * norm_elements - 2_982_230_000_000) < 5 * 10**6


def test_vivit_b_against_vivit_table2() -> None:
    """ViViT Table 2, Model 1: 88.9 M parameters (the entry's figure) and 455.2 GFLOPs,
    multiply-adds as the ViT papers count them: edgewise's MACs plus one more tubelet
    embedding (16 x 14 x 14 tubelets x 768 channels x 2 x 16 x 16 x 3 weights)."""
    macs = profile(_graph("vivit-b")).totals.macs
    embedding = 16 * 14 * 14 * 768 * (2 * 16 * 16 * 3)
    assert abs(macs + embedding - 455_200_000_000) < 5 * 10**7


def test_reference_scan_entries_share_the_fused_weights() -> None:
    for name in ZOO:
        if name.endswith("-reference"):
            fused, _, _ = ZOO[name.removesuffix("-reference")].build(Workload())
            reference, _, _ = ZOO[name].build(Workload())
            assert {n: p.shape for n, p in fused.named_parameters()} == {
                n: p.shape for n, p in reference.named_parameters()
            }
            assert ZOO[name].published == ZOO[name.removesuffix("-reference")].published


def test_selective_scan_rule_and_reference_path() -> None:
    """The fused scan counts 9 B L D N + 2 B L D vector ops (state-spaces/mamba #110); the
    reference path of the same Vim block counts its steps as they run, and both compute
    the same function on real numbers."""
    from edgewise.capture.ssm import VisionMamba, selective_scan, selective_scan_reference

    graphs = {}
    for fused in (True, False):
        with torch.device("meta"):
            model = VisionMamba(dim=32, depth=1, image=32, classes=10, fused=fused)
        graphs[fused] = capture(model, torch.empty(1, 3, 32, 32, device="meta"))
    scans = [op for op in graphs[True].ops if op.name == "selective_scan"]
    assert len(scans) == 2 and scans[0].target == "edgewise.selective_scan.default"
    b, d, length, n = 1, 64, 5, 16  # 4 patches + the class token, inner width 2 x 32
    costs = [c for op, c in _counts(graphs[True]) if op.name == "selective_scan"]
    assert costs == [Count(vector_ops=9 * b * length * d * n + 2 * b * d * length)] * 2
    # outside the scans the two graphs count the same
    outside = [sum((c for op, c in _counts(g) if "_scan" not in op.scope), Count())
               for g in graphs.values()]  # fmt: skip
    assert outside[0] == outside[1]
    torch.manual_seed(0)
    args = (torch.randn(2, 8, 6), torch.randn(2, 8, 6), -torch.rand(8, 4), torch.randn(2, 4, 6),
            torch.randn(2, 4, 6), torch.randn(8), torch.randn(2, 8, 6), torch.randn(8))  # fmt: skip
    torch.testing.assert_close(selective_scan(*args), _scan_by_hand(*args))
    torch.testing.assert_close(selective_scan_reference(*args), _scan_by_hand(*args))


def _counts(graph: Graph) -> list[tuple[Any, Count]]:
    return [(op, c.count) for op, c in zip(graph.ops, op_costs(graph, CONVENTIONS["default"]),
                                            strict=True)]  # fmt: skip


def _scan_by_hand(u, delta, A, B, C, D, z, bias):  # type: ignore[no-untyped-def]
    """h_t = exp(dt A) h_{t-1} + dt B_t u_t, y_t = C_t . h_t + D u_t, gated by silu(z_t)."""
    dt = torch.nn.functional.softplus(delta + bias[:, None])
    y = torch.zeros_like(u)
    for b in range(u.shape[0]):
        for d in range(u.shape[1]):
            h = torch.zeros(A.shape[1])
            for t in range(u.shape[2]):
                h = torch.exp(dt[b, d, t] * A[d]) * h + dt[b, d, t] * B[b, :, t] * u[b, d, t]
                y[b, d, t] = (C[b, :, t] * h).sum() + D[d] * u[b, d, t]
    return y * torch.nn.functional.silu(z)


def test_efficientnet_pooler_adds_its_7x7_map_once() -> None:
    """HF's pooler is AvgPool2d(1280, ceil_mode=True) on the 1280 x 7 x 7 head output: one
    window clipped to the map, so 7 x 7 adds and one divide per channel."""
    (pooler,) = [r for r in profile(_graph("efficientnet-b0")).rows if r.name.endswith("pooler")]
    assert pooler.vector_ops == 1280 * 7 * 7 + 1280


def test_bert_base_is_bertmodel_with_its_pooler() -> None:
    """BERT's "110M" by hand: 30522 tokens + 512 positions + 2 segments of 768, embedding
    norm; per layer Q, K, V, O, two norms, MLP 3072; the 768 x 768 pooler; no MLM head."""
    d, ff = 768, 3072
    layer = 4 * (d * d + d) + 2 * 2 * d + (d * ff + ff) + (ff * d + d)
    by_hand = (30522 + 512 + 2) * d + 2 * d + 12 * layer + (d * d + d)
    graph = _graph("bert-base")
    assert graph.parameter_count == by_hand == 109_482_240
    assert graph.inputs["input_ids"] == (1, 384)


def test_whisper_tiny_encoder_by_hand() -> None:
    """No figure is published for the encoder alone: two 3-wide convs (80 -> 384 -> 384),
    1500 positions, 4 layers (K has no bias), final norm; d = 384, MLP 1536."""
    d, ff = 384, 1536
    layer = (4 * d * d + 3 * d) + 2 * 2 * d + (d * ff + ff) + (ff * d + d)
    by_hand = (80 * 3 * d + d) + (d * 3 * d + d) + 1500 * d + 4 * layer + 2 * d
    graph = _graph("whisper-tiny-encoder")
    assert graph.parameter_count == by_hand == 8_208_384
    assert graph.inputs["input_features"] == (1, 80, 3000)


def test_resnet50_at_coral_resolution() -> None:
    """Coral's ResNet-50 runs at 299 x 299: same parameters, a larger input."""
    graph = capture_zoo("resnet50", Workload(resolution=299))
    assert graph.inputs["pixel_values"] == (1, 3, 299, 299)
    assert graph.parameter_count == _graph("resnet50").parameter_count


def test_cfg_doubles_the_unet_batch() -> None:
    graph = capture_zoo("sd15-unet", Workload(cfg=True))
    assert graph.inputs["sample"] == (2, 4, 64, 64)
    assert graph.inputs["encoder_hidden_states"] == (2, 77, 768)
    assert graph.meta == {"batch": 1, "resolution": 512, "frames": None, "cfg": True}


def test_resolution_sets_the_latent_size() -> None:
    graph = capture_zoo("sd15-unet", Workload(resolution=768))
    assert graph.inputs["sample"] == (1, 4, 96, 96)
    assert _graph("sd21-unet").inputs["sample"] == (1, 4, 96, 96)  # SD 2.1 defaults to 768
    _, _, kwargs = ZOO["sd21-unet"].build(Workload(resolution=512))
    assert tuple(kwargs["sample"].shape) == (1, 4, 64, 64)


def test_batch_scales_macs_linearly() -> None:
    graph = capture_zoo("resnet50", Workload(batch=3))
    assert graph.inputs["pixel_values"] == (3, 3, 224, 224)
    assert profile(graph).totals.macs == 3 * profile(_graph("resnet50")).totals.macs


def test_vivit_frames_resize_the_position_table() -> None:
    """16 frames = 8 tubelet slices of 14 x 14 patches: 8 x 196 fewer 768-d positions."""
    graph = capture_zoo("vivit-b", Workload(frames=16))
    assert graph.inputs["pixel_values"] == (1, 16, 3, 224, 224)
    assert graph.parameter_count == _graph("vivit-b").parameter_count - 8 * 196 * 768


def test_dit_blocks_share_one_conditioning_embedder() -> None:
    model, _, _ = ZOO["dit-xl2-256"].build(Workload())
    table = "norm1.emb.class_embedder.embedding_table.weight"
    first = model.get_parameter(f"transformer_blocks.0.{table}")
    assert model.get_parameter(f"transformer_blocks.27.{table}") is first


@pytest.mark.parametrize(
    ("name", "workload", "words"),
    [
        ("resnet50", Workload(frames=8), ("frames", "batch, resolution")),
        ("resnet50", Workload(cfg=True), ("cfg",)),
        ("sd15-text-encoder", Workload(resolution=512), ("resolution", "batch")),
        ("resnet50", Workload(batch=0), ("batch", "1 or more")),
        ("sd15-unet", Workload(resolution=500), ("resolution", "multiple of 8", "500")),
        ("vit-b16", Workload(resolution=100), ("resolution", "multiple of 16")),
        ("clip-vit-l14", Workload(resolution=-14), ("resolution", "multiple of 14")),
        ("vivit-b", Workload(frames=31), ("frames", "multiple of 2")),
        ("swin-tiny", Workload(resolution=192), ("resolution", "at least 193", "7x7 window")),
        ("whisper-tiny-encoder", Workload(resolution=224), ("resolution", "batch")),
        ("sdxl-unet", Workload(batch=10**6), ("batch", "at most")),
    ],
)
def test_bad_workload_names_the_option(
    name: str, workload: Workload, words: tuple[str, ...]
) -> None:
    with pytest.raises(EdgewiseError) as info:
        capture_zoo(name, workload)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_unknown_model_lists_the_known_models() -> None:
    with pytest.raises(EdgewiseError) as info:
        zoo_entry("sd15-unte")
    message = str(info.value)
    assert "unknown model 'sd15-unte'" in message and "sd15-unet" in message
    assert all(name in message for name in ZOO) and "\n" not in message


def test_digits_cnn_entry_is_the_model_edgewise_digits_trains() -> None:
    from edgewise.execute.digits import DigitsCNN

    graph = capture_zoo("digits-cnn")
    # conv 1->16, 16->32, 32->64 (3x3, biased), fc 256->64, head 64->10
    by_hand = (9 * 16 + 16) + (16 * 9 * 32 + 32) + (32 * 9 * 64 + 64) + (256 * 64 + 64) + 650
    assert graph.parameter_count == by_hand == 40_394
    assert sum(p.numel() for p in DigitsCNN().parameters()) == by_hand
