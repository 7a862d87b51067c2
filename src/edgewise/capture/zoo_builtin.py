"""Small modules the zoo needs that no installed library provides as published.

- `MobileNetV2`: torchvision's `mobilenet_v2` (width 1.0, 1000 classes), written out so the
  zoo does not depend on torchvision; the transformers port differs (1001 classes, TF
  "same" padding). Module names follow torchvision's, so its state-dict keys load as is.
- `GoogLeNet`: torchvision's `googlenet` (Inception v1) as its ImageNet weights load it,
  for the same reason: no library besides torchvision ships it. Module names follow
  torchvision's.
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


class BasicConv2d(nn.Module):
    """torchvision's GoogLeNet conv: conv (no bias), batch norm (eps 0.001), ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """Four branches concatenated: 1x1; 1x1 then 3x3; 1x1 then the "5x5", which is a 3x3
    in torchvision (the known bug of pytorch/vision#906, kept by its weights); 3x3 max pool
    then 1x1."""

    def __init__(self, c_in: int, c1: int, c3_red: int, c3: int, c5_red: int, c5: int,
                 pool_proj: int) -> None:  # fmt: skip
        super().__init__()
        self.branch1 = BasicConv2d(c_in, c1, 1)
        self.branch2 = nn.Sequential(
            BasicConv2d(c_in, c3_red, 1), BasicConv2d(c3_red, c3, 3, padding=1)
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(c_in, c5_red, 1), BasicConv2d(c5_red, c5, 3, padding=1)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), BasicConv2d(c_in, pool_proj, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return torch.cat([branch(x) for branch in branches], 1)


class GoogLeNet(nn.Module):
    """torchvision.models.googlenet with its ImageNet weights: 6,624,904 parameters.

    The auxiliary heads run only in training and the loaded model drops them, so they are
    left out. So is `transform_input` (the weights' rescaling of normalized input to
    [-1, 1], three multiply-adds per pixel): it is input preprocessing, not the network.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self.conv1 = BasicConv2d(3, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        # channels: in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection
        # (Szegedy et al. 2014, Table 1)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.maxpool1(self.conv1(pixel_values))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4c(self.inception4b(self.inception4a(x)))
        x = self.maxpool4(self.inception4e(self.inception4d(x)))
        x = self.inception5b(self.inception5a(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


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
