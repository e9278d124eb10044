"""Resume checkpoints: weights, optimiser state, RNG state and the loop's own state in one safetensors file.

Optimiser state is flattened into tensors ("optimizer/3/exp_avg") plus JSON for its numbers and param groups, so
that resuming never unpickles.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import EstmError
from ..files import atomic_write


def save_resume_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    tensors = {f"model/{key}": value.detach().cpu().contiguous().clone() for key, value in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    numbers = {}
    for index, entries in optimizer_state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optimizer/{index}/{key}"] = value.detach().cpu().contiguous().clone()
            else:
                numbers[f"{index}/{key}"] = value
    tensors["rng/torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for index, rng_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{index}"] = rng_state
    metadata = {
        "state": json.dumps(state),
        "optimizer_numbers": json.dumps(numbers),
        "optimizer_groups": json.dumps(optimizer_state["param_groups"]),
    }
    with atomic_write(path, force=True) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)


def load_resume_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore model weights, optimiser and RNG from `path`; returns the loop's state dict."""
    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata()
            tensors = {key: file.get_tensor(key) for key in file.keys()}
    except Exception as error:
        raise EstmError(f"{path}: unreadable resume checkpoint ({error})") from None
    model.load_state_dict({key[len("model/"):]: value for key, value in tensors.items() if key.startswith("model/")})
    optimizer_state: dict = {"state": {}, "param_groups": json.loads(metadata["optimizer_groups"])}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            optimizer_state["state"].setdefault(int(index), {})[name] = value
    for key, value in json.loads(metadata["optimizer_numbers"]).items():
        index, name = key.split("/", 1)
        optimizer_state["state"].setdefault(int(index), {})[name] = value
    optimizer.load_state_dict(optimizer_state)
    torch.set_rng_state(tensors["rng/torch"])
    cuda_states = [tensors[key] for key in sorted(tensors) if key.startswith("rng/cuda/")]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    return json.loads(metadata["state"])
