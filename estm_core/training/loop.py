"""The one training loop every model family uses.

A family supplies a model (registered in the store) and a `step(model, batch, device) -> {term: scalar tensor}`
whose "loss" is minimised; every other term (accuracy, reconstruction, perplexity, ...) is averaged and logged.
The loop owns the rest: epochs, validation, a history CSV (one row per epoch), the best model and a resume checkpoint
in the store (both atomic), early stopping, a NaN guard, max steps, bf16 autocast on CUDA, and DDP under torchrun.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .. import store
from ..device import autocast, choose_device, seed_everything
from ..errors import EstmError
from ..files import write_csv
from .checkpoint import load_resume_state, save_resume_state
from .config import TrainConfig

Step = Callable[[torch.nn.Module, object, torch.device], dict]


@dataclass
class TrainResult:
    path: Path  # the best model
    history: pd.DataFrame
    status: str  # "finished", "early-stopped", "max-steps", "nan", or "already-finished"
    best_epoch: int | None
    best_value: float | None
    message: str = ""


@dataclass
class _State:
    """What a resume needs beyond weights and optimiser."""

    epoch: int = 0  # last completed epoch
    steps: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    epochs_without_improvement: int = 0
    status: str = "running"
    history: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)  # the run's own settings, which a resume keeps


class _Distributed:
    """torchrun's environment: rank, world size and this process's device; a no-op outside torchrun."""

    def __init__(self, device_spec: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1:
            backend = "nccl" if torch.cuda.is_available() and device_spec != "cpu" else "gloo"
            if not torch.distributed.is_initialized():
                torch.distributed.init_process_group(backend)
            self.device = torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")
            if backend == "nccl":
                torch.cuda.set_device(self.device)
        else:
            self.device = choose_device(device_spec)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mean(self, values: dict[str, float], weight: float) -> tuple[dict[str, float], float]:
        """Weighted means across processes (keys are the same on every rank)."""
        if self.world == 1:
            return values, weight
        keys = sorted(values)
        packed = torch.tensor([values[key] * weight for key in keys] + [weight], dtype=torch.float64)
        if self.device.type == "cuda":
            packed = packed.to(self.device)
        torch.distributed.all_reduce(packed)
        total = packed[-1].item()
        return {key: packed[i].item() / total for i, key in enumerate(keys)}, total

    def any(self, flag: bool) -> bool:
        """True on every process if `flag` is true on any (so all stop together)."""
        if self.world == 1:
            return flag
        packed = torch.tensor([float(flag)], device=self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(packed)
        return packed.item() > 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model itself, inside DistributedDataParallel or not."""
    return model.module if hasattr(model, "module") else model


def _improved(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    return value < best if mode == "min" else value > best


def fit(
    model: torch.nn.Module,
    step: Step,
    train_data: Dataset,
    validation_data: Dataset | None,
    config: TrainConfig,
    *,
    name: str,
    metadata: dict | None = None,
    resume: bool = False,
    force: bool = False,
    on_step: Callable[[int, int, int], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train `model` and save it into the store as `name` (its family's folder), holding the name's lock: a second
    run of the same name is refused.

    `metadata` holds the model file's `labels`, its `audio` (store.AudioSettings) and the trainer's part of its
    `training` summary (store.TrainingSummary; the run's outcome is filled in here).
    `on_step(epoch, step_in_epoch, steps_per_epoch)` and `on_epoch(history_row)` report progress.
    """
    model_path = store.model_path(model.family, name)
    main = int(os.environ.get("RANK", "0")) == 0
    with store.training_lock(model_path) if main else contextlib.nullcontext():
        return _fit(model, step, train_data, validation_data, config, model_path=model_path, metadata=metadata,
                    resume=resume, force=force, on_step=on_step, on_epoch=on_epoch)


def _fit(model, step, train_data, validation_data, config, *, model_path, metadata, resume, force, on_step,
         on_epoch) -> TrainResult:
    family, name = model.family, store.model_name(model_path)
    resume_path = store.resume_path(model_path)
    history_file = store.history_path(model_path)
    metadata = dict(metadata or {})
    dist = _Distributed(config.device)
    seed_everything(config.seed)

    if validation_data is None or not len(validation_data):
        validation_data = None
        if config.monitor.startswith("val_"):  # nothing held out: watch the training value instead
            config = replace(config, monitor=config.monitor.removeprefix("val_"))

    model.to(dist.device)  # before the optimiser, so that a resumed optimiser state lands on the same device
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    state = _State(config=asdict(config))

    def save_model_file(weights: torch.nn.Module) -> None:
        best = next((row for row in state.history if row["epoch"] == state.best_epoch), {})
        summary = replace(metadata.get("training") or store.TrainingSummary(), config=asdict(config),
                          epochs_run=state.epoch, steps=state.steps, status=state.status,
                          best_epoch=state.best_epoch, monitor=config.monitor, best_value=state.best_value,
                          best=best, final=state.history[-1] if state.history else {}, device=str(dist.device),
                          world_size=dist.world)
        store.save_model(weights, model_path, labels=metadata.get("labels", ()), audio=metadata.get("audio"),
                         training=summary, force=True)

    if resume:
        if not resume_path.exists():
            raise EstmError(f"nothing to resume: no checkpoint {resume_path}")
        state = _State(**load_resume_state(resume_path, model, optimizer))
        # the run continues with its own settings; only where it runs may change
        config = TrainConfig(**{**state.config, "device": config.device, "workers": config.workers})
        if state.status != "running":
            # a kill between the last checkpoint and the model file's final rewrite left the file saying "running"
            if dist.main and state.best_epoch is not None and _recorded_status(model_path) != state.status:
                save_model_file(store.load_model(model_path).model)
            history = pd.DataFrame(state.history)
            return TrainResult(model_path, history, "already-finished", state.best_epoch, state.best_value,
                               f"{name} already finished ({state.status}); nothing to resume")
    elif dist.main and not force and (model_path.exists() or resume_path.exists()):
        raise EstmError(f"a {family} model named {name!r} already exists; --resume continues it, --force starts over")

    trained = model
    if dist.world > 1:
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dist.device.index] if dist.device.type == "cuda" else None
        )
    loaders = _Loaders(train_data, validation_data, config, dist)

    def checkpoint() -> None:
        if dist.main:
            write_csv(pd.DataFrame(state.history), history_file, force=True)
            save_resume_state(resume_path, model, optimizer, asdict(state))

    message = ""
    while state.status == "running" and state.epoch < config.epochs:
        epoch = state.epoch + 1
        started = time.perf_counter()
        means = _train_one_epoch(trained, step, loaders.train(epoch), optimizer, config, dist, state, epoch, on_step)
        problem = (f"the loss became NaN or infinite in epoch {epoch}" if not math.isfinite(means["loss"]) else
                   _diverged(model, epoch))
        if problem:
            state.status = "nan"
            message = _stopped(problem, state.epoch)
            break  # the resume checkpoint still holds the last good epoch

        row = {"epoch": epoch, **means}
        if loaders.validation is not None:
            row.update({f"val_{key}": value for key, value in evaluate_terms(
                trained, step, loaders.validation, dist).items()})
        row["lr"] = optimizer.param_groups[0]["lr"]
        row["seconds"] = round(time.perf_counter() - started, 3)
        state.history.append(row)
        state.epoch = epoch
        if on_epoch and dist.main:
            on_epoch(row)

        improved, status = _judge(state, config, row)
        if improved and dist.main:
            save_model_file(model)  # the best epoch so far, saved while the run still reads "running"
        state.status = status
        checkpoint()
    if state.status == "running":  # a resumed run that had already reached its last epoch
        state.status = "finished"
        checkpoint()

    if dist.main and state.best_epoch is not None:
        # the model file keeps the best epoch's weights; rewrite it with the run's final summary
        save_model_file(store.load_model(model_path).model)
    dist.barrier()
    if state.best_epoch is None and dist.main:
        raise EstmError(f"training stopped before a first epoch finished ({message or state.status}); no model saved")
    return TrainResult(model_path, pd.DataFrame(state.history), state.status, state.best_epoch, state.best_value,
                       message)


class _Loaders:
    """The training and validation batches; `train(epoch)` is the training loader set for `epoch`: the same shuffle
    for an epoch whether the run was resumed or not, and new items for a dataset that draws them per epoch."""

    def __init__(self, train_data: Dataset, validation_data: Dataset | None, config: TrainConfig, dist: _Distributed):
        self.data, self.seed = train_data, config.seed
        self.sampler = DistributedSampler(train_data, seed=config.seed, drop_last=False) if dist.world > 1 else None
        self.generator = torch.Generator()
        # a dataset that draws new items each epoch (set_epoch) needs workers that are re-made each epoch
        self.per_epoch = hasattr(train_data, "set_epoch")
        self.loader = DataLoader(
            train_data, batch_size=config.batch_size, shuffle=self.sampler is None, sampler=self.sampler,
            generator=self.generator, num_workers=config.workers, pin_memory=dist.device.type == "cuda",
            persistent_workers=config.workers > 0 and not self.per_epoch)
        self.validation = None
        if validation_data is not None:
            sampler = DistributedSampler(validation_data, shuffle=False) if dist.world > 1 else None
            self.validation = DataLoader(validation_data, batch_size=config.batch_size, sampler=sampler,
                                         num_workers=config.workers)

    def train(self, epoch: int) -> DataLoader:
        self.generator.manual_seed(self.seed * 100_003 + epoch)
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        if self.per_epoch:
            self.data.set_epoch(epoch)
        return self.loader


def _judge(state: _State, config: TrainConfig, row: dict) -> tuple[bool, str]:
    """Record epoch `row`'s value in `state`: (whether it is the best so far, the run's status after it: early stopping
    or the last epoch ends it)."""
    if config.monitor not in row:
        raise EstmError(f"cannot monitor {config.monitor!r}: the history has {', '.join(row)}")
    epoch, value = row["epoch"], row[config.monitor]
    improved = _improved(value, state.best_value, config.direction)
    if improved:
        state.best_value, state.best_epoch, state.epochs_without_improvement = value, epoch, 0
    else:
        state.epochs_without_improvement += 1
    if (config.patience is not None and epoch >= config.start_epoch
            and state.epochs_without_improvement >= config.patience):
        return improved, "early-stopped"
    if state.status == "running" and epoch >= config.epochs:
        return improved, "finished"
    return improved, state.status


def _train_one_epoch(trained, step: Step, loader: DataLoader, optimizer, config: TrainConfig, dist: _Distributed,
                     state: _State, epoch: int, on_step) -> dict[str, float]:
    """One pass over `loader`: the mean of every term over its items (and over the processes). The terms stay on
    the device until the pass ends, so the host waits for it once per epoch, not at every step."""
    trained.train()
    sums: dict[str, torch.Tensor] = {}
    seen = 0
    for index, batch in enumerate(loader):
        with autocast(dist.device, config.amp):
            terms = step(trained, batch, dist.device)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(unwrap(trained).parameters(), config.grad_clip)
        optimizer.step()
        state.steps += 1
        size = _batch_size(batch)
        seen += size
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + value.detach().double() * size
        if on_step and dist.main:
            on_step(epoch, index + 1, len(loader))
        if config.max_steps and state.steps >= config.max_steps:
            state.status = "max-steps"
            break
    return _means(sums, seen, dist)


def _diverged(model: torch.nn.Module, epoch: int) -> str | None:
    """Why the weights are unusable after `epoch` (a NaN or an infinity even though the loss stayed finite)."""
    name = store.nonfinite_weights(model.state_dict())
    return f"weight {name} became NaN or infinite in epoch {epoch}" if name else None


def _stopped(cause: str, last_good_epoch: int) -> str:
    return f"{cause}; stopped" + (f" and kept the weights of epoch {last_good_epoch}" if last_good_epoch else "")


def _recorded_status(model_path: Path) -> str | None:
    try:
        return store.read_info(model_path).training.status
    except store.StoreError:
        return None


@torch.no_grad()
def evaluate_terms(model, step: Step, loader: DataLoader, dist: _Distributed | None = None) -> dict[str, float]:
    """The mean of every term of `step` over `loader`, weighted by batch size (and across processes), in float32
    whatever the training's precision: held-out metrics compare runs and epochs."""
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    seen = 0
    for batch in loader:
        device = dist.device if dist else next(model.parameters()).device
        with torch.autocast(device.type, enabled=False):
            terms = step(model, batch, device)
        size = _batch_size(batch)
        seen += size
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + value.double() * size
    model.train(was_training)
    return _means(sums, seen, dist)


def _means(sums: dict[str, torch.Tensor], seen: int, dist: _Distributed | None) -> dict[str, float]:
    """Each term's mean per item from its sum on the device, all brought to the host at once (the one wait for the
    device), and across processes."""
    totals = torch.stack(list(sums.values())).cpu().tolist() if sums else []
    means = {key: total / max(seen, 1) for key, total in zip(sums, totals)}
    return dist.mean(means, seen)[0] if dist else means


def _batch_size(batch) -> int:
    first = batch[0] if isinstance(batch, (list, tuple)) else batch
    return len(first)
