"""Small models and factories the tests (and `--module` examples) use."""

from __future__ import annotations

import torch
from torch import nn


class TinyCNN(nn.Module):
    """conv -> BN -> ReLU, twice, then pool and a classifier: a U-Net-free CNN."""

    def __init__(self, channels: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.ReLU()
        self.body = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.stem(x)))
        x = self.act(self.body(x))
        return self.head(self.pool(x).flatten(1))


def tiny_cnn() -> tuple[nn.Module, tuple[torch.Tensor]]:
    return TinyCNN(), (torch.randn(1, 3, 16, 16),)


def tiny_cnn_with_kwargs() -> tuple[nn.Module, tuple[()], dict[str, torch.Tensor]]:
    return TinyCNN(), (), {"x": torch.randn(2, 3, 8, 8)}


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(4, 4), nn.Linear(5, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def broken() -> tuple[nn.Module, tuple[torch.Tensor]]:
    return Broken(), (torch.randn(2, 4),)


def not_a_model() -> int:
    return 3


def mlp() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """Three linear layers: every matmul can run on an int8-weight kernel."""
    torch.manual_seed(0)
    layers = [nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)]
    return nn.Sequential(*layers), (torch.randn(8, 64),)


def tiny_unet() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The two-level diffusers U-Net of issue 9 (SRAM sweeps 40-300 KiB), on meta."""
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        model = UNet2DConditionModel(
            sample_size=16, in_channels=4, out_channels=4,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), block_out_channels=(32, 64),
            layers_per_block=1, cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
        )  # fmt: skip
    args = (
        torch.empty(1, 4, 16, 16, device="meta"),
        torch.tensor([10], device="meta"),
        torch.empty(1, 8, 32, device="meta"),
    )
    return model, args


class FailsWhenReal(nn.Module):
    """Captures (fake tensors), then fails on real data: a user model's own bug."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch._subclasses.fake_tensor import FakeTensor

        if not isinstance(x, FakeTensor):
            raise ValueError("boom: this model fails on real inputs")
        return self.fc(x)


def fails_when_real() -> tuple[nn.Module, tuple[torch.Tensor]]:
    return FailsWhenReal(), (torch.randn(2, 8),)


def kwargs_not_a_dict() -> tuple[nn.Module, tuple[torch.Tensor], list[int]]:
    return nn.Linear(8, 4), (torch.randn(2, 8),), [1, 2]


def huge_on_meta() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """1.6 x 10^11 parameters on the meta device: capturable, far too big to materialize."""
    return nn.Linear(400_000, 400_000, device="meta"), (torch.randn(1, 400_000),)


def no_ops() -> tuple[nn.Module, tuple[torch.Tensor]]:
    return nn.Identity(), (torch.randn(2, 8),)


HOSTILE = "<script>alert(1)</script>"


def hostile() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """A layer named like markup: every renderer must show it as text."""
    model = nn.Sequential()
    model.add_module(HOSTILE, nn.Linear(16, 32))
    model.add_module("[bold]x:factory:", nn.Linear(32, 8))
    return model, (torch.randn(4, 16),)


def tied_lm() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """An embedding and an output head sharing one weight (tied, as most small LMs), on
    meta: made real, the two must stay one tensor, as the capture saw them."""

    class TiedLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(64, 16)
            self.head = nn.Linear(16, 64, bias=False)
            self.head.weight = self.embed.weight

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.head(torch.relu(self.embed(ids)))

    with torch.device("meta"):
        model = TiedLM()
    return model, (torch.zeros(2, 8, dtype=torch.int64, device="meta"),)
