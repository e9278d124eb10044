"""Model families, one module each; each registers its classes with `estm_core.families.register`."""

import math
from numbers import Integral, Real

from torch import nn

from ..errors import EstmError

# The most any layer may have: far past the papers' models (256 channels, 1 024 codes), little enough that a
# model file's config cannot ask for a network of millions of layers or channels
MAX_CHANNELS = 4096
MAX_CLASSES = 1 << 16  # mu-law classes of a 16-bit wavenet; labels are far fewer


def check_whole(name: str, value, low: int, high: int) -> None:
    """Refuse, in one line, a count or size outside low..high (a bool is none)."""
    if not (isinstance(value, Integral) and not isinstance(value, bool) and low <= value <= high):
        raise EstmError(f"{name} must be a whole number from {low} to {high} (got {value!r})")


def check_real(name: str, value, low: float, high: float) -> None:
    """Refuse, in one line, a weight or rate outside low..high, or NaN."""
    if not (isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and low <= value <= high):
        raise EstmError(f"{name} must be a number from {low} to {high} (got {value!r})")


def keras_init(model: nn.Module) -> None:
    """Keras' default initialisation, which the original models trained from: Glorot-uniform weights and zero biases
    for every convolution and dense layer. (PyTorch's default makes the ESTM decoder start ~6x louder than its input,
    its reconstruction loss near 6 instead of the original's 1.)"""
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
