"""Resume checkpoints: weights, optimiser state, RNG state and the loop's own state in one safetensors file.

Optimiser state is flattened into tensors ("optimizer/3/exp_avg") plus JSON for its numbers and param groups, so
that resuming never unpickles.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

from .. import model_file
from ..errors import EstmError


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
    model_file.write_tensors(path, tensors, metadata, force=True)


def load_resume_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore model weights, optimiser and RNG from `path`; returns the loop's state dict."""
    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata()
            tensors = {key: file.get_tensor(key) for key in file.keys()}
    except Exception as error:
        raise EstmError(f"{path}: unreadable resume checkpoint ({error})") from None
    try:
        model.load_state_dict({key[len("model/"):]: value for key, value in tensors.items()
                               if key.startswith("model/")})
    except RuntimeError as error:  # a model of other options than the run's
        raise EstmError(f"{path}: the checkpoint's weights do not fit this model "
                        f"({str(error).strip().splitlines()[-1].strip()})") from None
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


def read_run_state(path: Path) -> dict:
    """The loop's state saved in a resume checkpoint (its settings, epochs, the model's and the recipe's options),
    without reading its tensors."""
    if not path.exists():
        raise EstmError(f"nothing to resume: no checkpoint {path}")
    try:
        with safe_open(str(path), framework="pt") as file:
            state = json.loads(file.metadata()["state"])
    except Exception as error:
        raise EstmError(f"{path}: unreadable resume checkpoint ({error})") from None
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
        raise EstmError(f"{path}: unreadable resume checkpoint (no run settings)")
    return state
