"""State-space models for the zoo: the selective scan, fused or step by step, and Vision Mamba.

Why two paths: a deployed Mamba runs the scan as one fused kernel, whose cost is the
published rule (`edgewise::selective_scan`, counted in `analysis.formulas`); the
reference path (`selective_scan_reference`, mamba_ssm's `selective_scan_ref`) runs it as
L small steps, and the capture counts those ops as they run. Both compute the same
function, so a zoo entry can be captured either way and the two counts compared.

- `selective_scan`: the custom op. Its fake implementation gives the output's shape, so
  the capture records it as one op, as the fused kernel runs.
- `use_fused_scan`: points a transformers `MambaMixer` at the fused op (its own CUDA path
  is skipped on the meta device).
- `VisionMamba`: Vim (Zhu et al. 2024, arXiv:2401.09417), its "v2" bidirectional blocks:
  one input and one output projection shared by a forward and a backward scan, each with
  its own convolution, projections, A and D; the class token in the middle of the
  sequence; RMS norms; a classification head on the class token.
"""

from __future__ import annotations

import math
import types
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


@torch.library.custom_op("edgewise::selective_scan", mutates_args=())
def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    z: torch.Tensor,
    delta_bias: torch.Tensor,
) -> torch.Tensor:
    """The fused scan (u, delta, z: [batch, D, L]; A: [D, N]; B, C: [batch, N, L]), with
    softplus(delta + bias), the D skip and the silu(z) gate, as mamba_ssm's kernel."""
    return selective_scan_reference(u, delta, A, B, C, D, z, delta_bias)


@selective_scan.register_fake
def _(u, delta, A, B, C, D, z, delta_bias):  # type: ignore[no-untyped-def]
    return torch.empty_like(u)


def selective_scan_reference(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    z: torch.Tensor,
    delta_bias: torch.Tensor,
) -> torch.Tensor:
    """mamba_ssm's selective_scan_ref, real-valued, one step per token."""
    delta = F.softplus(delta + delta_bias[..., None])
    delta_a = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    delta_b_u = torch.einsum("bdl,bnl,bdl->bdln", delta, B, u)
    x = u.new_zeros((u.shape[0], u.shape[1], A.shape[1]))
    ys = []
    for i in range(u.shape[2]):
        x = delta_a[:, :, i] * x + delta_b_u[:, :, i]
        ys.append(torch.einsum("bdn,bn->bd", x, C[:, :, i]))
    y = torch.stack(ys, dim=2) + u * D[:, None]
    return y * F.silu(z)


class _Scan(nn.Module):
    """One direction's own weights: causal depthwise convolution, x/dt projections, A, D."""

    def __init__(self, inner: int, state: int, dt_rank: int, conv: int = 4) -> None:
        super().__init__()
        self.conv1d = nn.Conv1d(inner, inner, conv, groups=inner, padding=conv - 1)
        self.x_proj = nn.Linear(inner, dt_rank + 2 * state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, inner)
        self.A_log = nn.Parameter(torch.empty(inner, state))
        self.D = nn.Parameter(torch.empty(inner))
        self.dt_rank, self.state = dt_rank, state

    def forward(self, x: torch.Tensor, z: torch.Tensor, fused: bool) -> torch.Tensor:
        """x, z: [batch, inner, L] -> [batch, inner, L]."""
        length = x.shape[-1]
        x = F.silu(self.conv1d(x)[..., :length])
        dt, b, c = self.x_proj(x.transpose(1, 2)).split(
            [self.dt_rank, self.state, self.state], dim=-1
        )
        delta = (dt @ self.dt_proj.weight.t()).transpose(1, 2)
        args = (x, delta, -torch.exp(self.A_log), b.transpose(1, 2).contiguous(),
                c.transpose(1, 2).contiguous(), self.D, z, self.dt_proj.bias)  # fmt: skip
        return selective_scan(*args) if fused else selective_scan_reference(*args)


class BiMambaMixer(nn.Module):
    """Vim's bidirectional mixer ("v2"): in_proj -> forward scan + scan of the flipped
    sequence -> their mean -> out_proj."""

    def __init__(self, dim: int, state: int = 16, expand: int = 2, fused: bool = True) -> None:
        super().__init__()
        inner = expand * dim
        self.in_proj = nn.Linear(dim, 2 * inner, bias=False)
        self.forward_scan = _Scan(inner, state, math.ceil(dim / 16))
        self.backward_scan = _Scan(inner, state, math.ceil(dim / 16))
        self.out_proj = nn.Linear(inner, dim, bias=False)
        self.fused = fused

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x, z = self.in_proj(h).transpose(1, 2).chunk(2, dim=1)
        y = self.forward_scan(x, z, self.fused)
        y_back = self.backward_scan(x.flip(-1), z.flip(-1), self.fused).flip(-1)
        return self.out_proj(((y + y_back) / 2).transpose(1, 2))


class _VimBlock(nn.Module):
    """Pre-norm residual block: h + mixer(RMSNorm(h))."""

    def __init__(self, dim: int, fused: bool) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(dim, eps=1e-5)
        self.mixer = BiMambaMixer(dim, fused=fused)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.mixer(self.norm(h))


class VisionMamba(nn.Module):
    """Vim: 16-pixel patches, a middle class token, learned positions, bidirectional
    Mamba blocks, a final RMS norm and the class-token head. Vim-S: dim 384, depth 24."""

    def __init__(self, dim: int = 384, depth: int = 24, image: int = 224, patch: int = 16,
                 classes: int = 1000, fused: bool = True) -> None:  # fmt: skip
        super().__init__()
        tokens = (image // patch) ** 2
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.empty(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.empty(1, tokens + 1, dim))
        self.layers = nn.ModuleList(_VimBlock(dim, fused) for _ in range(depth))
        self.norm_f = nn.RMSNorm(dim, eps=1e-5)
        self.head = nn.Linear(dim, classes)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(pixel_values).flatten(2).transpose(1, 2)
        middle = x.shape[1] // 2
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([x[:, :middle], cls, x[:, middle:]], dim=1) + self.pos_embed
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm_f(x)[:, middle])


def _fused_mamba_forward(self: Any, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
    """transformers' MambaMixer with the scan as the one fused op (no cache: a prompt)."""
    length = hidden_states.shape[1]
    x, z = self.in_proj(hidden_states).transpose(1, 2).chunk(2, dim=1)
    x = self.act(self.conv1d(x)[..., :length])
    dt, b, c = self.x_proj(x.transpose(1, 2)).split(
        [self.time_step_rank, self.ssm_state_size, self.ssm_state_size], dim=-1
    )
    delta = (dt @ self.dt_proj.weight.t()).transpose(1, 2)
    y = selective_scan(x, delta, -torch.exp(self.A_log.float()), b.transpose(1, 2).contiguous(),
                       c.transpose(1, 2).contiguous(), self.D.float(), z,
                       self.dt_proj.bias.float())  # fmt: skip
    return self.out_proj(y.transpose(1, 2))


def use_fused_scan(model: nn.Module) -> nn.Module:
    """Every MambaMixer in `model` runs its scan as `edgewise::selective_scan`."""
    for module in model.modules():
        if type(module).__name__ == "MambaMixer":
            module.forward = types.MethodType(_fused_mamba_forward, module)  # type: ignore[method-assign]
    return model
