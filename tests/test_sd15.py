"""The headline model: SD 1.5 U-Net figures derived by hand, and the shape of the U."""

from __future__ import annotations

from collections import defaultdict

import pytest

from edgewise.analysis.profile import profile
from edgewise.analysis.stages import stage_of_ops, stages
from edgewise.capture.zoo import Workload, capture_zoo
from edgewise.ir.graph import Graph


@pytest.fixture(scope="module")
def unet() -> Graph:
    return capture_zoo("sd15-unet")


def test_attention_macs_derived_by_hand(unet: Graph) -> None:
    # Per transformer block at a level with N = H*W tokens and C channels (8 heads of
    # C/8): self-attention QK^T + AV = 2 * N * N * C, cross-attention to 77 text tokens
    # = 2 * N * 77 * C. Blocks per level: 64: 2 down + 3 up, 32: 2 + 3, 16: 2 + 3, 8: mid 1.
    def block(n: int, c: int) -> int:
        return 2 * n * n * c + 2 * n * 77 * c

    expected = (
        5 * block(64 * 64, 320) + 5 * block(32 * 32, 640) + 5 * block(16 * 16, 1280)
    ) + block(8 * 8, 1280)
    default = profile(unet).totals.macs
    thop = profile(unet, convention_name="thop").totals.macs
    assert default - thop == expected == 63_026_135_040


def test_cfg_doubles_every_count(unet: Graph) -> None:
    doubled = capture_zoo("sd15-unet", Workload(cfg=True))
    assert doubled.inputs["sample"] == (2, 4, 64, 64)
    one, two = profile(unet).totals, profile(doubled).totals
    assert two.macs == 2 * one.macs
    assert two.params == one.params == 859_520_964


def test_stages_read_like_the_u(unet: Graph) -> None:
    labels = [s.label for s in stages(unet) if s.name.startswith(("down", "mid", "up"))]
    assert labels == ["down 64", "down 32", "down 16", "down 8", "mid 8",
                      "up 8", "up 16", "up 32", "up 64"]  # fmt: skip


def test_parameters_peak_in_the_centre_and_macs_at_the_ends(unet: Graph) -> None:
    costs = profile(unet, by="op").rows
    by_stage_params: dict[str, int] = defaultdict(int)
    by_stage_macs: dict[str, int] = defaultdict(int)
    for row, stage in zip(costs, stage_of_ops(unet), strict=True):
        by_stage_params[stage] += row.params
        by_stage_macs[stage] += row.macs
    resolution = {s.name: s.resolution for s in stages(unet)}
    heaviest_params = max(by_stage_params, key=by_stage_params.__getitem__)
    heaviest_macs = max(by_stage_macs, key=by_stage_macs.__getitem__)
    assert resolution[heaviest_params] in (8, 16)  # low-resolution centre of the U
    assert resolution[heaviest_macs] == 64  # high-resolution end
