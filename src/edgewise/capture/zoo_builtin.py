"""Small modules the zoo needs that no installed library provides as published.

- `MobileNetV2`: torchvision's `mobilenet_v2` (width 1.0, 1000 classes), written out so the
  zoo does not depend on torchvision; the transformers port differs (1001 classes, TF
  "same" padding). Module names follow torchvision's, so its state-dict keys load as is.
- `VaeDecoder`: the decode path of an `AutoencoderKL` alone (post_quant_conv + decoder),
  so a captured graph holds the decoder's parameters only, not the unused encoder's.
- `DigitsCNN`: the small CNN `edgewise digits` trains on scikit-learn's 8x8 digits (the
  architecture only; `execute.digits` trains it and adds its data).
- `share_parameters`: ties copies of one module's weights, as in a checkpoint that
  stores the same tensor under several names.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# expansion t, output channels c, repeats n, first stride s (Sandler et al. 2018, Table 2)
_MOBILENETV2_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip


def _conv_bn_relu6(
    c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    """torchvision's Conv2dNormActivation: conv (no bias), batch norm, ReLU6."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Expand 1x1, depthwise 3x3, linear project 1x1; residual when shapes allow."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = c_in * expand_ratio
        self.use_res_connect = stride == 1 and c_in == c_out
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_relu6(c_in, hidden, 1))
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision.models.mobilenet_v2 at width 1.0: 3,504,872 parameters."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        c_in = 32
        features: list[nn.Module] = [_conv_bn_relu6(3, c_in, 3, stride=2)]
        for t, c, n, s in _MOBILENETV2_BLOCKS:
            for i in range(n):
                features.append(InvertedResidual(c_in, c, s if i == 0 else 1, t))
                c_in = c
        features.append(_conv_bn_relu6(c_in, 1280, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.features(pixel_values)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        return self.classifier(torch.flatten(x, 1))


class VaeDecoder(nn.Module):
    """Latent -> image: an AutoencoderKL's `post_quant_conv` then its `decoder`.

    Takes the latent as the pipeline hands it over, already divided by the VAE's
    scaling factor.
    """

    def __init__(self, post_quant_conv: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.post_quant_conv = post_quant_conv
        self.decoder = decoder

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.decoder(self.post_quant_conv(latent))
        return out


def share_parameters(source: nn.Module, target: nn.Module) -> None:
    """Make every parameter of `target` the very tensor `source` holds under that name."""
    for qual_name, param in source.named_parameters():
        owner, _, leaf = qual_name.rpartition(".")
        setattr(target.get_submodule(owner), leaf, param)


class DigitsCNN(nn.Module):
    """Three 3x3 convolutions and two linear layers for 1x8x8 digits: 40,394 parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc = nn.Linear(64 * 2 * 2, 64)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        return self.head(F.relu(self.fc(x.flatten(1))))
