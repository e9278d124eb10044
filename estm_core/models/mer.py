"""The MER paper's CNN: four Russell quadrants from a 128 x 435 log-mel of 10.08 s (1 793 220 parameters).

Every convolution is 3x3 'same' + LeakyReLU(0.01), as the Keras original; its L2(1e-3) on the two hidden dense
layers is `regularization()`, which the training step adds to the loss.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import EstmError
from ..families import register
from . import MAX_CHANNELS, MAX_CLASSES, check_real, check_whole, keras_init

# (out channels of each 3x3 conv in the stage, pooling after it, dropout after the pooling)
STAGES = (
    ((64, 64), (2, 2), 0.0),
    ((64, 64), (2, 2), 0.0),
    ((128,), (3, 3), 0.25),
    ((256,), (3, 3), 0.25),
    ((256,), (3, 6), 0.25),
    ((256,), (1, 2), 0.25),
)


@register("mer")
class MER(nn.Module):
    """(B, 1, n_mels, frames) standardised log-mel -> (B, classes) logits."""

    def __init__(self, classes: int = 4, hidden: int = 256, dense_dropout: float = 0.4, l2: float = 1e-3,
                 slope: float = 0.01, width: float = 1.0):
        """`width` scales every convolution's channels (1: the paper's; the demo's CPU models use less)."""
        if not (isinstance(width, (int, float)) and math.isfinite(width) and round(min(STAGES[0][0]) * width) >= 1):
            raise EstmError(f"width must leave every convolution a channel: above 1/128 (got {width})")
        check_real("width", width, 0, MAX_CHANNELS / max(max(stage[0]) for stage in STAGES))
        check_whole("classes", classes, 1, MAX_CLASSES)
        check_whole("hidden", hidden, 1, MAX_CHANNELS)
        check_real("dense_dropout", dense_dropout, 0, 1)
        check_real("l2", l2, 0, 1)
        check_real("slope", slope, 0, 1)
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for widths, pool, dropout in STAGES:
            for stage_width in widths:
                layers += [nn.Conv2d(channels, round(stage_width * width), 3, padding="same"), nn.LeakyReLU(slope)]
                channels = round(stage_width * width)
            layers.append(nn.MaxPool2d(pool))
            if dropout:
                layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers)
        self.hidden = nn.ModuleList([nn.Linear(channels, hidden), nn.Linear(hidden, hidden)])
        self.activation = nn.LeakyReLU(slope)
        self.dropout = nn.Dropout(dense_dropout)
        self.output = nn.Linear(hidden, classes)
        self.l2 = l2
        keras_init(self)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.features(mel).flatten(1)  # 128 x 435 pools down to 256 x 1 x 1
        for layer in self.hidden:
            x = self.dropout(self.activation(layer(x)))
        return self.output(x)

    def regularization(self) -> torch.Tensor:
        """Keras' L2 kernel regulariser on the hidden dense layers: l2 * sum(w^2)."""
        return self.l2 * sum(layer.weight.square().sum() for layer in self.hidden)
