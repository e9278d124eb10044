"""ResNet classifiers on log-mel for genre (GTZAN) and emotion (GEMS, Emotify), trained from scratch.

The seed fine-tuned an ImageNet ResNet-34 on spectrogram pictures; we train the same kind of network on the log-mel
itself, smaller by default so that it trains on a CPU, and with no downloaded weights.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import EstmError
from ..families import register
from . import MAX_CHANNELS, MAX_CLASSES, check_real, check_whole


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, channels_in: int, channels_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(channels_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels_out),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(nn.Conv2d(channels_in, channels_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """(B, 1, n_mels, frames) standardised log-mel -> (B, classes) logits; any number of frames.

    `blocks` per stage and `widths` per stage: (2, 2, 2, 2) is ResNet-18's depth, (3, 4, 6, 3) ResNet-34's.
    """

    def __init__(self, classes: int, blocks: tuple = (2, 2, 2, 2), widths: tuple = (32, 64, 128, 256),
                 dropout: float = 0.2):
        check_whole("classes", classes, 1, MAX_CLASSES)
        if not (isinstance(blocks, (list, tuple)) and isinstance(widths, (list, tuple))
                and 1 <= len(blocks) == len(widths) <= 8):
            raise EstmError(f"blocks and widths must be lists of 1 to 8 stages each (got {blocks!r}, {widths!r})")
        for count, width in zip(blocks, widths):
            check_whole("blocks per stage", count, 1, 16)
            check_whole("widths", width, 1, MAX_CHANNELS)
        check_real("dropout", dropout, 0, 1)
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        stages = []
        channels = widths[0]
        for index, (count, width) in enumerate(zip(blocks, widths)):
            for block in range(count):
                stride = 2 if block == 0 and index > 0 else 1
                stages.append(BasicBlock(channels, width, stride))
                channels = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(channels, classes))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(mel)))

    def regularization(self) -> torch.Tensor:
        return torch.zeros((), device=self.head[-1].weight.device)


@register("genre")
class GenreResNet(ResNet):
    """A ResNet whose labels are genres."""


@register("gems")
class GemsResNet(ResNet):
    """A ResNet whose labels are emotion categories (GEMS or any folder labels)."""
