"""Device choice and seeding, in one place for every task."""

from __future__ import annotations

import random

import numpy as np
import torch

from .errors import EstmError


def devices_seen() -> list[dict]:
    """Every device torch can use here, with a description (name, memory) for `estm info`."""
    seen = [{"device": "cpu", "name": "CPU", "threads": torch.get_num_threads()}]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            seen.append({
                "device": f"cuda:{index}",
                "name": properties.name,
                "memory_gib": round(properties.total_memory / 2**30, 1),
                "bf16": torch.cuda.is_bf16_supported(),
            })
    if torch.backends.mps.is_available():
        seen.append({"device": "mps", "name": "Apple Metal"})
    return seen


def choose_device(spec: str = "auto") -> torch.device:
    """'auto' (cuda -> mps -> cpu), 'cpu', 'cuda', 'cuda:N' or 'mps'; an unavailable device is an EstmError."""
    spec = spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise EstmError(f"unknown device {spec!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise EstmError(f"device {spec!r} asked for, but torch sees no CUDA GPU here (torch {torch.__version__})")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise EstmError(f"device {spec!r} asked for, but only {torch.cuda.device_count()} CUDA GPU(s) are visible")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise EstmError("device 'mps' asked for, but Apple Metal is not available here")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise EstmError(f"unsupported device {spec!r} (use auto, cpu, cuda, cuda:N or mps)")
    return device


def autocast(device: torch.device, enabled: bool = True):
    """bf16 mixed precision on CUDA, where it is safe and fast; a no-op elsewhere."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices) so the same seed gives the same split, weights and samples."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
