"""The one training loop every model family uses.

A family supplies a model (registered in the store) and a `step(model, batch, device) -> {term: scalar tensor}`
(estm_core.steps) whose "loss" is minimised; every other term (accuracy, reconstruction, perplexity, ...) is averaged
and logged.
The loop owns the rest: epochs, validation, a history CSV (one row per epoch), the best model and a resume checkpoint
in the store (both atomic), early stopping, a NaN guard, max steps, bf16 autocast on CUDA, and DDP under torchrun.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .. import model_file, store
from ..device import autocast, choose_device, seed_everything
from ..errors import EstmError, FileError, StoreError
from ..files import remove_stale_temporaries, write_csv
from ..steps import Step, TermSums, held_out_sums
from .checkpoint import load_resume_state, read_run_state, save_resume_state
from .config import TrainConfig


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
    model: dict = field(default_factory=dict)  # the model's constructor arguments, which a resume must build again
    options: dict = field(default_factory=dict)  # the recipe's own options (data, labels, ...), which a resume keeps


class _Unsaved(EstmError):
    """A write of the run's files failed: a full disk, a read-only store."""


@contextlib.contextmanager
def _writing(path: Path):
    """Turn a failed write of `path` into one line naming it and the cause."""
    try:
        yield
    except FileError as error:  # atomic_write's own, already 'PATH: cannot write: cause'
        raise _Unsaved(str(error)) from None
    except OSError as error:
        raise _Unsaved(f"{path}: cannot write: {(error.strerror or str(error)).lower()}") from None


def _plain(value):
    """`value` as JSON gives it back (tuples become lists), so a checkpoint's options compare equal to a run's."""
    return json.loads(json.dumps(value))


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

    def means(self, sums: TermSums) -> dict[str, float]:
        """Each term's mean per item over every process's items (the terms are the same on every rank)."""
        means = sums.means()
        if self.world == 1:
            return means
        keys = sorted(means)
        packed = torch.tensor([means[key] * sums.items for key in keys] + [sums.items], dtype=torch.float64)
        if self.device.type == "cuda":
            packed = packed.to(self.device)
        torch.distributed.all_reduce(packed)
        total = packed[-1].item()
        return {key: packed[i].item() / total for i, key in enumerate(keys)}

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
    labels: Sequence[str] = (),
    audio: model_file.AudioSettings | None = None,
    training: model_file.TrainingSummary | None = None,
    options: dict | None = None,
    resume: bool = False,
    resume_totals: dict[str, int] | None = None,
    force: bool = False,
    on_step: Callable[[int, int, int], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train `model` and save it into the store as `name` (its family's folder), holding the name's lock: a second
    run of the same name is refused.

    `labels`, `audio` and `training` (the trainer's part of the summary; the run's outcome is filled in here) go into
    the model file; `options` (the recipe's own, such as its data) into the resume checkpoint. A resume continues
    with the checkpoint's settings and refuses a model or `options` other than the run's; `resume_totals` gives it
    new totals of "epochs" and "max_steps" (at least those it has run). `on_step(epoch, step_in_epoch,
    steps_per_epoch)` and `on_epoch(history_row)` report progress. A write that fails (a full disk) stops the run in
    one line and leaves no model file that --resume could not continue.
    """
    model_path = store.model_path(model.family, name)
    main = int(os.environ.get("RANK", "0")) == 0
    with store.model_lock(model_path) if main else contextlib.nullcontext():
        if main:
            remove_stale_temporaries(model_path.parent)
        dist = _Distributed(config.device)
        seed_everything(config.seed)
        if validation_data is not None and not len(validation_data):
            validation_data = None
        if validation_data is None and config.monitor.startswith("val_"):
            config = replace(config, monitor=config.monitor.removeprefix("val_"))  # nothing held out: watch training
        run = _Run(model, model_path, config, dist, labels=labels, audio=audio, training=training, options=options)
        try:
            ended = run.start(resume, force, resume_totals)
            if ended is not None:
                return ended
            return _train(run, step, train_data, validation_data, on_step, on_epoch)
        except _Unsaved as error:
            raise EstmError(f"{error}; {run.abandon()}") from None


def _train(run: _Run, step: Step, train_data: Dataset, validation_data: Dataset | None, on_step,
           on_epoch) -> TrainResult:
    """The epochs of a started run, then its end."""
    trained = run.model
    if run.dist.world > 1:
        trained = torch.nn.parallel.DistributedDataParallel(
            run.model, device_ids=[run.dist.device.index] if run.dist.device.type == "cuda" else None)
    loaders = _Loaders(train_data, validation_data, run.config, run.dist)
    message = ""
    while run.state.status == "running" and run.state.epoch < run.config.epochs:
        message = run.epoch(trained, step, loaders, on_step, on_epoch)
    return run.end(message)


class _Run:
    """One run: the model, its optimiser and the loop's state, and the files they go to (the model file, holding the
    best epoch and the run's summary; the history; the resume checkpoint), each written atomically."""

    def __init__(self, model: torch.nn.Module, model_path: Path, config: TrainConfig, dist: _Distributed, *,
                 labels: Sequence[str], audio: model_file.AudioSettings | None,
                 training: model_file.TrainingSummary | None, options: dict | None = None):
        self.model, self.path, self.config, self.dist = model, model_path, config, dist
        self.labels, self.audio, self.training = list(labels), audio, training or model_file.TrainingSummary()
        model.to(dist.device)  # before the optimiser, so that a resumed optimiser state lands on the same device
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        self.state = _State(config=asdict(config), model=_plain(model.config), options=_plain(options or {}))
        self.checkpointed: int | None = None  # the epoch of this run's resume checkpoint on disk

    def start(self, resume: bool, force: bool, totals: dict[str, int] | None = None) -> TrainResult | None:
        """Load the resume checkpoint (`resume`; `totals` new totals of epochs and steps), or refuse to replace an
        existing model unless `force`. A result when the resumed run had already ended."""
        resume_path, name = store.resume_path(self.path), store.model_name(self.path)
        if not resume:
            if self.dist.main and (self.path.exists() or resume_path.exists()):
                if not force:
                    raise EstmError(f"a {self.model.family} model named {name!r} already exists; --resume continues "
                                    "it, --force starts over")
                self._clear()
            return None
        self._check_own_options(read_run_state(resume_path))
        own = self.state
        self.state = _State(**load_resume_state(resume_path, self.model, self.optimizer))
        self.state.model, self.state.options = self.state.model or own.model, self.state.options or own.options
        self.checkpointed = self.state.epoch
        # the run continues with its own settings; only where it runs, its epochs and steps in all, and its
        # cooldown (counted back from the new total of steps) may change
        cooldown = self.config.cooldown
        self.config = TrainConfig(**{**self.state.config, "device": self.config.device,
                                     "workers": self.config.workers, "cooldown": 0})
        self._extend(totals or {})
        self.config = replace(self.config, cooldown=cooldown)
        self.state.config = {**self.state.config, "cooldown": cooldown}
        if self.state.status == "running":
            return None
        # a kill between the last checkpoint and the model file's final rewrite left the file saying "running"
        if self.dist.main and self.state.best_epoch is not None and _recorded_status(self.path) != self.state.status:
            self.save_model_file(store.load_model(self.path).model)
        more = {"finished": f" (--epochs above {self.state.epoch} with --resume trains it further)",
                "max-steps": f" (--max-steps above {self.state.steps} with --resume trains it further)"
                }.get(self.state.status, "")
        return TrainResult(self.path, pd.DataFrame(self.state.history), "already-finished", self.state.best_epoch,
                           self.state.best_value, f"{name} already finished ({self.state.status}); nothing to resume"
                           + more)

    def _check_own_options(self, saved: dict) -> None:
        """Refuse to resume with a model or recipe options other than those the run was started with."""
        theirs = {**(saved.get("model") or _model_file_config(self.path)), **saved.get("options", {})}
        mine = {**self.state.model, **self.state.options}
        differ = [f"{key} {mine[key]!r} (the run's: {theirs[key]!r})" for key in theirs
                  if key in mine and mine[key] != theirs[key]]
        if differ:
            raise EstmError(f"{store.model_name(self.path)} was started with other options than these: "
                            f"{'; '.join(differ)}; resume it with its own, or start over with --force")

    def _extend(self, totals: dict[str, int]) -> None:
        """New totals of epochs and steps for a resumed run: a run that ended at its last epoch or step goes on."""
        for key, done, words in (("epochs", self.state.epoch, "epochs"), ("max_steps", self.state.steps, "steps")):
            if key not in totals:
                continue
            if totals[key] < done:
                raise EstmError(f"{store.model_name(self.path)} has already trained {done} {words}: a resumed run's "
                                f"{words} (its new total) must be at least that")
            self.config = replace(self.config, **{key: totals[key]})
            self.state.config = {**self.state.config, key: totals[key]}
        steps_left = not self.config.max_steps or self.config.max_steps > self.state.steps
        if {"finished": True, "max-steps": steps_left}.get(self.state.status) and self.state.epoch < self.config.epochs:
            self.state.status = "running"

    def _clear(self) -> None:
        """--force: the old run's files go before this one writes any, so that no checkpoint of that run ever sits
        beside this run's model (a resume would mix them)."""
        for path in (self.path, store.history_path(self.path), store.resume_path(self.path)):
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                raise EstmError(f"{path}: cannot remove: {(error.strerror or str(error)).lower()}") from None

    def abandon(self) -> str:
        """After a failed write: keep what --resume continues from, else remove this run's model file and history
        (a model that reads "running" with no checkpoint would be picked by tasks and never finish). What was
        kept, in words."""
        if self.checkpointed is not None:
            return f"--resume continues after epoch {self.checkpointed} once the cause is gone"
        for path in (self.path, store.history_path(self.path)):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        return "training stopped; no model kept"

    def epoch(self, trained, step: Step, loaders: _Loaders, on_step, on_epoch) -> str:
        """Train, check and validate one epoch, then record it; returns why the run stopped if the epoch was bad."""
        state, epoch = self.state, self.state.epoch + 1
        started = time.perf_counter()
        means = self.dist.means(self._train_pass(trained, step, loaders.train(epoch), epoch, on_step))
        problem = (f"the loss became NaN or infinite in epoch {epoch}" if not math.isfinite(means["loss"]) else
                   _diverged(self.model, epoch))
        if problem:
            state.status = "nan"
            return _stopped(problem, state.epoch)  # the resume checkpoint still holds the last good epoch

        row = {"epoch": epoch, **means}
        if loaders.validation is not None:
            held_out = self.dist.means(held_out_sums(trained, step, loaders.validation, self.dist.device))
            row.update({f"val_{key}": value for key, value in held_out.items()})
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        row["seconds"] = round(time.perf_counter() - started, 3)
        state.history.append(row)
        state.epoch = epoch
        if on_epoch and self.dist.main:
            on_epoch(row)

        improved, status = _judge(state, self.config, row)
        if improved and self.dist.main:
            self.save_model_file(self.model)  # the best epoch so far, saved while the run still reads "running"
        state.status = status
        self.checkpoint()
        return ""

    def _train_pass(self, trained, step: Step, loader: DataLoader, epoch: int, on_step) -> TermSums:
        """One pass over `loader`, its terms summed on the device: the host waits for them once per epoch, not at
        every step."""
        config, device = self.config, self.dist.device
        trained.train()
        sums = TermSums()
        for index, batch in enumerate(loader):
            with autocast(device, config.amp):
                terms = step(trained, batch, device)
            self.optimizer.zero_grad(set_to_none=True)
            for group in self.optimizer.param_groups:  # set at every step: a resumed optimiser keeps its last
                group["lr"] = self._learning_rate()
            terms["loss"].backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(unwrap(trained).parameters(), config.grad_clip)
            self.optimizer.step()
            self.state.steps += 1
            sums.add(terms, batch)
            if on_step and self.dist.main:
                on_step(epoch, index + 1, len(loader))
            if config.max_steps and self.state.steps >= config.max_steps:
                self.state.status = "max-steps"
                break
        return sums

    def _learning_rate(self) -> float:
        """config.lr, or in the cooldown's last steps before max_steps, that fraction of it left: down toward 0."""
        config = self.config
        if not config.cooldown:
            return config.lr
        return config.lr * min(1.0, (config.max_steps - self.state.steps) / config.cooldown)

    def end(self, message: str) -> TrainResult:
        """The model file rewritten with the run's final summary; refused if no epoch finished."""
        state = self.state
        if state.status == "running":  # a resumed run that had already reached its last epoch
            state.status = "finished"
            self.checkpoint()
        if self.dist.main and state.best_epoch is not None:
            # the model file keeps the best epoch's weights; rewrite it with the run's final summary
            self.save_model_file(store.load_model(self.path).model)
        self.dist.barrier()
        if state.best_epoch is None and self.dist.main:
            raise EstmError(f"training stopped before a first epoch finished ({message or state.status}); "
                            "no model saved")
        return TrainResult(self.path, pd.DataFrame(state.history), state.status, state.best_epoch, state.best_value,
                           message)

    def save_model_file(self, weights: torch.nn.Module) -> None:
        state, config = self.state, self.config
        best = next((row for row in state.history if row["epoch"] == state.best_epoch), {})
        summary = replace(self.training, config=asdict(config), epochs_run=state.epoch, steps=state.steps,
                          status=state.status, best_epoch=state.best_epoch, monitor=config.monitor,
                          best_value=state.best_value, best=best, final=state.history[-1] if state.history else {},
                          device=str(self.dist.device), world_size=self.dist.world)
        with _writing(self.path):
            model_file.save_model(weights, self.path, labels=self.labels, audio=self.audio, training=summary,
                                  force=True)

    def checkpoint(self) -> None:
        """The history and the resume checkpoint, as of the last finished epoch."""
        if self.dist.main:
            with _writing(store.history_path(self.path)):
                write_csv(pd.DataFrame(self.state.history), store.history_path(self.path), force=True)
            with _writing(store.resume_path(self.path)):
                save_resume_state(store.resume_path(self.path), self.model, self.optimizer, asdict(self.state))
            self.checkpointed = self.state.epoch


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


def _diverged(model: torch.nn.Module, epoch: int) -> str | None:
    """Why the weights are unusable after `epoch` (a NaN or an infinity even though the loss stayed finite)."""
    name = model_file.nonfinite_weights(model.state_dict())
    return f"weight {name} became NaN or infinite in epoch {epoch}" if name else None


def _stopped(cause: str, last_good_epoch: int) -> str:
    return f"{cause}; stopped" + (f" and kept the weights of epoch {last_good_epoch}" if last_good_epoch else "")


def _model_file_config(model_path: Path) -> dict:
    """The model config in a run's model file (checkpoints from before they kept it), or {}."""
    try:
        return model_file.read_info(model_path).config
    except StoreError:
        return {}


def _recorded_status(model_path: Path) -> str | None:
    try:
        return model_file.read_info(model_path).training.status
    except StoreError:
        return None
