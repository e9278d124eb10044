"""Model families, one module each; each registers its classes with `estm_core.store.register`."""

from torch import nn


def keras_init(model: nn.Module) -> None:
    """Keras' default initialisation, which the original models trained from: Glorot-uniform weights and zero biases
    for every convolution and dense layer. (PyTorch's default makes the ESTM decoder start ~6x louder than its input,
    its reconstruction loss near 6 instead of the original's 1.)"""
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
