"""The vector quantiser of the ESTM paper: nearest codebook entry by L2, straight-through gradient, and
loss = beta * mean((sg(q) - x)^2) + mean((q - sg(x))^2) (commitment weighted by beta, plus the codebook term).
No EMA and no dead-code restarts, as the original."""

from __future__ import annotations

import torch
from torch import nn


class VectorQuantizer(nn.Module):
    """(B, dim, T) -> (quantized (B, dim, T), indices (B, T), loss scalar).

    `codebook_size` entries of `dim` values, initialised uniform in [-init, init] (Keras' default for the original).
    """

    CHUNK = 1 << 16  # vectors whose distances are computed at once

    def __init__(self, dim: int, codebook_size: int = 1024, beta: float = 0.25, init: float = 0.05):
        super().__init__()
        self.beta = beta
        self.codebook = nn.Parameter(torch.empty(codebook_size, dim).uniform_(-init, init))

    def forward(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flat = latents.transpose(1, 2).reshape(-1, latents.shape[1]).float()  # (B*T, dim)
        codebook = self.codebook.float()
        # float32 even under autocast: bf16 distances pick a different "nearest" code for ~2 % of vectors
        with torch.no_grad(), torch.autocast(latents.device.type, enabled=False):
            # |x - e|^2 = |x|^2 - 2 x.e + |e|^2, and |x|^2 does not change the argmin. In row chunks: a batch of 128
            # segments has 3.6 M bottom-level vectors, and all their distances at once would take 14 GB.
            squared_norms = codebook.square().sum(dim=1)
            indices = torch.cat([torch.addmm(squared_norms, chunk, codebook.t(), alpha=-2.0).argmin(dim=1)
                                 for chunk in flat.split(self.CHUNK)])
        quantized = codebook[indices].view(latents.shape[0], latents.shape[2], -1).transpose(1, 2)
        commitment = torch.mean((quantized.detach() - latents.float()) ** 2)
        codebook_loss = torch.mean((quantized - latents.float().detach()) ** 2)
        quantized = latents + (quantized - latents).detach()  # straight through: the gradient skips the argmin
        return quantized, indices.view(latents.shape[0], -1), self.beta * commitment + codebook_loss

    def usage(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(perplexity, codes used) of a batch of indices: exp(entropy of the code histogram), distinct codes."""
        counts = torch.bincount(indices.flatten(), minlength=self.codebook.shape[0]).float()
        probabilities = counts / counts.sum()
        entropy = -(probabilities * torch.log(probabilities.clamp(min=1e-10))).sum()
        return entropy.exp(), (counts > 0).sum().float()
