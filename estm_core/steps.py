"""Steps and the means of their terms, shared by training (training.loop) and evaluation (evaluate.py).

A step is `step(model, batch, device) -> {term: scalar tensor}`; training minimises its "loss", and every term is
averaged over the items of a pass.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils.data import DataLoader

Step = Callable[[torch.nn.Module, object, torch.device], dict]


class TermSums:
    """Each term's sum over the items of a pass, kept on the device until `means` brings them all to the host at once
    (the one wait for the device)."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.items = 0

    def add(self, terms: dict[str, torch.Tensor], batch) -> None:
        """Count a batch's terms (each a mean over the batch) with the batch's weight."""
        size = _batch_size(batch)
        self.items += size
        for key, value in terms.items():
            self.sums[key] = self.sums.get(key, 0.0) + value.detach().double() * size

    def means(self) -> dict[str, float]:
        """Each term's mean per item."""
        totals = torch.stack(list(self.sums.values())).cpu().tolist() if self.sums else []
        return {key: total / max(self.items, 1) for key, total in zip(self.sums, totals)}


@torch.no_grad()
def held_out_sums(model: torch.nn.Module, step: Step, loader: DataLoader,
                  device: torch.device | None = None) -> TermSums:
    """Every term of `step` summed over `loader` in eval mode, in float32 whatever the training's precision: held-out
    metrics compare runs and epochs. `device`: where the batches go (default: the model's)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums = TermSums()
    for batch in loader:
        with torch.autocast(device.type, enabled=False):
            sums.add(step(model, batch, device), batch)
    model.train(was_training)
    return sums


def _batch_size(batch) -> int:
    first = batch[0] if isinstance(batch, (list, tuple)) else batch
    return len(first)
