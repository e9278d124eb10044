"""A training run's settings, apart from the loop (no torch here), so that the command line can take its defaults
from them; each family's departures from them are in the family table (estm_core.families)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import EstmError


@dataclass
class TrainConfig:
    """Hyperparameters of a run; recorded in the model's metadata."""

    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    max_steps: int | None = None  # stop after this many optimiser steps (smoke tests, quick looks)
    cooldown: int = 0  # the last this many steps before max_steps take the learning rate linearly down toward 0
    seed: int = 0
    monitor: str = "val_loss"  # the history column that picks the best epoch and drives early stopping
    mode: str = "auto"  # "min", "max", or "auto": max for accuracy, perplexity and codes used, else min
    patience: int | None = None  # epochs without improvement before stopping; None: never stop early
    start_epoch: int = 1  # early stopping may trigger from this epoch on (the original ESTM: 25)
    workers: int = 0  # DataLoader worker processes
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA
    grad_clip: float | None = None

    def __post_init__(self):
        """Refuse settings no run can use, in one line each, before anything is built."""
        def refuse(name: str, rule: str):
            raise EstmError(f"{name} must be {rule} (got {getattr(self, name)})")

        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                refuse(name, "a whole number of 1 or more")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            refuse("lr", "a finite number above 0")
        if self.max_steps is not None and self.max_steps < 1:
            refuse("max_steps", "1 or more")
        if not isinstance(self.cooldown, int) or self.cooldown < 0:
            refuse("cooldown", "a whole number of 0 or more")
        if self.cooldown and not self.max_steps:
            raise EstmError("a cooldown counts back from max_steps: give both")
        if self.patience is not None and self.patience < 0:
            refuse("patience", "0 or more")
        if self.grad_clip is not None and not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            refuse("grad_clip", "a finite number above 0")
        if self.workers < 0:
            refuse("workers", "0 or more")

    @property
    def direction(self) -> str:
        if self.mode != "auto":
            return self.mode
        return "max" if any(word in self.monitor for word in ("accuracy", "perplexity", "codes_used")) else "min"
