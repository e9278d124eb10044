"""`estm train FAMILY --data CACHE`: train a model of any family into the model store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import Debug, Device, Force, Json, ProgressBar, Quiet, handles_errors, note, plain, stderr

app = typer.Typer(help="Train models into the model store.", no_args_is_help=True)

Data = Annotated[Path, typer.Option("--data", help="A segment cache folder from `estm data segment`.")]
Name = Annotated[Optional[str], typer.Option("--name", help="Model name in the store (default: the data folder's).")]
Epochs = Annotated[int, typer.Option("--epochs", help="Most epochs to train.")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Segments per batch.")]
LearningRate = Annotated[float, typer.Option("--lr", help="Adam learning rate.")]
MaxSteps = Annotated[Optional[int], typer.Option("--max-steps", help="Stop after this many optimiser steps.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed for weights, shuffling and dropout.")]
Patience = Annotated[Optional[int], typer.Option(
    "--patience", help="Stop after this many epochs without improvement (default: never).")]
Monitor = Annotated[str, typer.Option(
    "--monitor", help="History column for the best epoch and early stopping (val_loss, val_accuracy, loss, …).")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run of the same name.")]
Workers = Annotated[int, typer.Option("--workers", help="DataLoader worker processes.")]


def run_training(train, *, quiet: bool, json_: bool, epochs: int) -> None:
    """Run `train(on_step, on_epoch)` with a progress bar and one line per epoch; report where the model went."""
    def on_epoch(row: dict) -> None:
        shown = "  ".join(f"{key} {value:.4g}" for key, value in row.items()
                          if key not in ("epoch", "lr", "seconds") and isinstance(value, float))
        note(f"epoch {row['epoch']}: {shown}  ({row['seconds']:.1f} s)", quiet)

    with ProgressBar("training", None, unit="steps", quiet=quiet) as bar:
        def on_step(epoch: int, step: int, steps: int, loss: float) -> None:
            bar.describe(f"epoch {epoch}/{epochs}  loss {loss:.4f}")
            bar(step, steps)

        result = train(on_step, on_epoch)
    if result.message:
        stderr.print(f"[yellow]{result.message}[/]", highlight=False)
    summary = {"model": str(result.path), "status": result.status, "best_epoch": result.best_epoch,
               "best_value": result.best_value, "epochs": len(result.history)}
    if json_:
        print(json.dumps(plain(summary)))
    else:
        note(f"{result.status}: best epoch {result.best_epoch} ({result.best_value:.4g}) saved to {result.path}",
             quiet=False)


def _classifier_command(family: str, help_text: str):
    @handles_errors
    def command(
        data: Data,
        name: Name = None,
        epochs: Epochs = 30,
        batch_size: BatchSize = 128,
        lr: LearningRate = 1e-3,
        max_steps: MaxSteps = None,
        seed: Seed = 0,
        patience: Patience = None,
        monitor: Monitor = "val_loss",
        label_column: Annotated[str, typer.Option("--label-column", help="Manifest column with the labels.")] = "label",
        resume: Resume = False,
        workers: Workers = 0,
        device: Device = "auto",
        force: Force = False,
        json_: Json = False,
        quiet: Quiet = False,
        debug: Debug = False,
    ) -> None:
        from estm_core.device import choose_device
        from estm_core.training.classifier import train_classifier
        from estm_core.training.loop import TrainConfig

        note(f"device: {choose_device(device)}", quiet)
        config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, max_steps=max_steps, seed=seed,
                             monitor=monitor, mode="max" if "accuracy" in monitor else "min", patience=patience,
                             workers=workers, device=device)
        model_name = name or data.resolve().name
        run_training(lambda on_step, on_epoch: train_classifier(
            family, data, model_name, config, label_column=label_column, resume=resume, force=force,
            on_step=on_step, on_epoch=on_epoch), quiet=quiet, json_=json_, epochs=epochs)

    command.__doc__ = help_text
    return command


app.command("mer")(_classifier_command(
    "mer", "The MER paper's CNN (1 793 220 parameters): four quadrants from 10.08 s log-mel segments."))
app.command("genre")(_classifier_command(
    "genre", "A ResNet genre classifier (labels from the manifest, e.g. GTZAN's ten), trained from scratch."))
app.command("emotion")(_classifier_command(
    "emotion", "A ResNet emotion classifier (e.g. Emotify's GEMS-9, or any folder labels), trained from scratch."))
