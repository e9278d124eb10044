"""`estm train FAMILY --data CACHE`: train a model of any family into the model store."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from estm_core.families import FAMILIES, trained_by, transferring
from estm_core.training.config import TrainConfig

from .common import (
    EXIT_SOME_FAILED, Debug, Device, Force, Json, ProgressBar, Quiet, SegmentCache, error_line, handles_errors, note,
    plain, renamed, stderr,
)

app = typer.Typer(help="Train models into the model store.", no_args_is_help=True)


def between(low: float, high: float):
    """A callback refusing a number outside low..high, NaN included (typer's own range lets NaN through, or names a
    bound it does not break)."""
    def check(value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            raise typer.BadParameter(f"{value} is not a number from {low:g} to {high:g}")
        return value

    return check


Name = Annotated[Optional[str], typer.Option(
    "--name", help="Model name in the store (default: FAMILY-DATA, the family and the data's name).")]
Epochs = Annotated[int, typer.Option(
    "--epochs", min=1, max=100_000, help="Most epochs to train; with --resume, the run's new total (at least the "
                                         "epochs it has run: a run that finished its epochs goes on to it).")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, max=1 << 16, help="Segments per batch.")]
LearningRate = Annotated[float, typer.Option("--lr", help="Adam learning rate.")]  # TrainConfig refuses NaN, <= 0
MaxSteps = Annotated[Optional[int], typer.Option(
    "--max-steps", min=1, help="Stop after this many optimiser steps; with --resume, the run's new total (a run "
                               "that stopped at its steps goes on to it).")]
Seed = Annotated[int, typer.Option(
    "--seed", min=0, max=2**32 - 1, help="Seed for weights, shuffling and dropout.")]
Patience = Annotated[Optional[int], typer.Option(
    "--patience", min=0, help="Stop after this many epochs without improvement (default: never).")]
Monitor = Annotated[str, typer.Option(
    "--monitor", help="History column for the best epoch and early stopping (val_loss, val_accuracy, loss, …).")]
Resume = Annotated[bool, typer.Option(
    "--resume", help="Continue an interrupted run of the same name, with the options it was started with: any "
                     "other given is refused (--epochs and --max-steps set new totals; --device, --workers and "
                     "a wavenet's --cooldown may change).")]
Workers = Annotated[int, typer.Option("--workers", min=0, max=256, help="DataLoader worker processes.")]


def default_name(family: str, data: Path) -> str:
    """FAMILY-DATA: the family, then the data folder's name (or the split CSV's, without .csv); never the same for
    two families trained on the same data."""
    data = data.resolve()
    return f"{family}-{data.stem if data.is_file() else data.name}"


PLACE = ("workers", "device")  # where a run trains: a resume may change them
NEW_TOTALS = ("epochs", "max_steps")  # given with --resume, a new total for the run
SCHEDULE = ("cooldown",)  # given with --resume, the run's new one


def run_options(context: typer.Context, family: str, name: str, resume: bool) -> tuple[dict, dict[str, int]]:
    """This command's option values by parameter name, and with --resume the run's new totals of epochs and steps
    (those of --epochs and --max-steps given). A resume takes the run's own options (its checkpoint's) in place of
    those not given, and refuses in one line any given that contradicts them."""
    from estm_core import store
    from estm_core.errors import EstmError
    from estm_core.training.checkpoint import read_run_state

    if name:
        store.check_name(name)  # before any data is read
    values = dict(context.params)
    if not resume:
        return values, {}
    state = read_run_state(store.resume_path(store.model_path(family, name)))
    own = {**state["config"], **(state.get("model") or {}), **(state.get("options") or {})}
    given = {key for key in values if getattr(context.get_parameter_source(key), "name", "DEFAULT") != "DEFAULT"}
    contradictions = []
    flags = {parameter.name: parameter.opts[0] for parameter in context.command.params}
    for key, value in values.items():
        run_key, mine = _as_run(key, value)
        if key in PLACE or (key in NEW_TOTALS + SCHEDULE and key in given) or run_key not in own:
            continue
        if key in given and not _same(mine, own[run_key]):
            contradictions.append(f"{flags[key]} {_shown(key, mine)} (the run's: {_shown(key, own[run_key])})")
        values[key] = not own[run_key] if key == "unconditioned" else own[run_key]
    if contradictions:
        raise EstmError(f"{name} was started with other options, and a resume keeps them: {'; '.join(contradictions)}"
                        "; leave them out, or start over with --force")
    return values, {key: values[key] for key in NEW_TOTALS if key in given}


def _as_run(key: str, value):
    """A command-line option as a run records it: (its name there, its value there)."""
    if key == "data" and value is not None:
        return key, str(Path(value).resolve())
    if key == "style_labels" and value not in (None, "truth"):
        return key, str(Path(value).resolve())
    return {"windows": ("windows_per_epoch", value), "unconditioned": ("conditioned", not value)}.get(key, (key, value))


def _same(mine, theirs) -> bool:
    if isinstance(mine, str) and isinstance(theirs, str) and mine.startswith("val_"):
        return theirs in (mine, mine.removeprefix("val_"))  # a run with nothing held out watches the training loss
    return mine == theirs


def _shown(key: str, value) -> str:
    return str(not value if key == "unconditioned" else value)


def train_config(values: dict) -> TrainConfig:
    """The TrainConfig of a command's option values (its own, or a resumed run's)."""
    from dataclasses import fields

    return TrainConfig(**{item.name: values[item.name] for item in fields(TrainConfig) if item.name in values})


def run_training(train, *, quiet: bool, json_: bool, epochs: int) -> None:
    """Run `train(on_step, on_epoch)` with a progress bar and one line per epoch; report where the model went."""
    def on_epoch(row: dict) -> None:
        shown = "  ".join(f"{key} {value:.4g}" for key, value in row.items()
                          if key not in ("epoch", "lr", "seconds") and isinstance(value, float))
        note(f"epoch {row['epoch']}: {shown}  ({row['seconds']:.1f} s)", quiet)

    with ProgressBar("training", None, unit="steps", quiet=quiet) as bar:
        def on_step(epoch: int, step: int, steps: int) -> None:
            bar.describe(f"epoch {epoch}/{epochs}")  # the losses come once an epoch, in its line
            bar(step, steps)

        try:
            result = train(on_step, on_epoch)
        except KeyboardInterrupt:
            error_line("interrupted; the same command with --resume continues from the last finished epoch")
            raise typer.Exit(130) from None
    if result.message:
        stderr.print(f"[yellow]{result.message}[/]", highlight=False)
    import os

    if os.environ.get("RANK", "0") != "0":  # under torchrun, one report from the process that wrote the model
        return
    summary = {"model": str(result.path), "status": result.status, "best_epoch": result.best_epoch,
               "best_value": result.best_value, "epochs": len(result.history)}
    if json_:
        print(json.dumps(plain(summary)))
    else:
        note(f"{result.status}: best epoch {result.best_epoch} ({result.best_value:.4g}) saved to {result.path}", quiet)


def _classifier_command(family: str, help_text: str):
    settings = TrainConfig(**FAMILIES[family].training)
    defaults = FAMILIES[family].options

    @handles_errors
    def command(
        context: typer.Context,
        data: SegmentCache,
        name: Name = None,
        width: Annotated[float, typer.Option(
            "--width", callback=between(0, 16),
            help="Scales every convolution's channels: 1 is the paper's; 0.25 trains about 10x faster on a "
                 "CPU.")] = defaults.get("width"),
        epochs: Epochs = settings.epochs,
        batch_size: BatchSize = settings.batch_size,
        lr: LearningRate = settings.lr,
        max_steps: MaxSteps = None,
        seed: Seed = settings.seed,
        patience: Patience = settings.patience,
        monitor: Monitor = settings.monitor,
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

        note(f"device: {choose_device(device)}", quiet)
        model_name = name or default_name(family, data)
        values, new_totals = run_options(context, family, model_name, resume)
        run_training(lambda on_step, on_epoch: train_classifier(
            family, data, model_name, train_config(values), label_column=values["label_column"], resume=resume,
            resume_totals=new_totals, force=force,
            model_options={"width": values["width"]} if "width" in defaults else None,
            on_step=on_step, on_epoch=on_epoch), quiet=quiet, json_=json_, epochs=values["epochs"])

    command.__doc__ = help_text
    return _without(command, set() if "width" in defaults else {"width"})


# ------------------------------------------------------------------------------------------- transfer families

VQVAE_OPTIONS = {family: FAMILIES[family].options for family in trained_by("vqvae")}  # and their defaults
# Latent channels are --d in every family, the ESTM paper's name; hvqvae's model (and its files) call them latent_dim
LatentChannels = Annotated[int, typer.Option(
    "--d", min=5, max=4096, help="Latent channels (the last 4 the emotion's).")]
ContentChannels = Annotated[int, typer.Option("--d", min=4, max=4096, help="Latent channels (all content).")]
FormerLatentDim = renamed("--latent-dim", "--d")
Beta = Annotated[float, typer.Option("--beta", callback=between(0, 100), help="VQ commitment weight.")]
BetaE = Annotated[float, typer.Option("--beta-e", callback=between(0, 100), help="Style loss weight.")]
CodebookSize = Annotated[int, typer.Option("--codebook-size", min=1, max=1 << 16, help="Entries per codebook (K).")]
StyleLabels = Annotated[Optional[str], typer.Option(
    "--style-labels", help="'truth' (the manifest's quadrants) or a predictions CSV from `estm data label` (its "
                           "argmax, as the original).")]
GridName = Annotated[Optional[str], typer.Option(
    "--name", help="Model name in the store (default: FAMILY-DATA, the family and the data's name, as in "
                   "estm2-cache); with --grid, a prefix of the points' names.")]
OriginalPatience = Annotated[Optional[int], typer.Option(
    "--patience", min=0, help="Early stopping patience (the original's).")]
StartEpoch = Annotated[int, typer.Option(
    "--start-epoch", min=1, help="First epoch early stopping may stop at (the original's).")]
Grid = Annotated[bool, typer.Option("--grid", help="Train the paper's grid (data/grids/FAMILY.csv).")]
GridFile = Annotated[Optional[Path], typer.Option("--grid-file", help="A grid CSV of one's own.")]
GridPoint = Annotated[Optional[int], typer.Option("--grid-point", min=0, help="Train only point I of the grid.")]
GridJobs = Annotated[int, typer.Option("--jobs", "-j", min=1, max=256, help="Grid points trained at once.")]
Slurm = Annotated[Optional[Path], typer.Option(
    "--slurm", help="Write an sbatch job-array script for the grid instead of training.")]
GridSummary = Annotated[Optional[Path], typer.Option(
    "--summary", help="Where the grid summary CSV goes (default: beside the models).")]
LEARNS_EMOTION = transferring()  # the families that take --style-labels
GRID_ONLY_OPTIONS = {"--grid": 0, "--jobs": 1, "--slurm": 1, "--summary": 1}  # option -> values it takes


def _point_command() -> list[str]:
    """This very command line, minus the grid-wide options, to train one point: `... --grid-point I`."""
    import sys

    args, skip = [], 0
    for arg in sys.argv[1:]:
        if skip:
            skip -= 1
            continue
        option = arg.split("=", 1)[0]
        if option in GRID_ONLY_OPTIONS:
            skip = GRID_ONLY_OPTIONS[option] if "=" not in arg else 0
            continue
        args.append(arg)
    return [sys.executable, "-m", "estm_cli", *args, "--grid-point"]


def _without(command, options: set[str]):
    """`command` without the parameters `options` (they keep their defaults), so that its --help shows only the
    options it uses and its parser refuses the others."""
    import inspect

    signature = inspect.signature(command, eval_str=True)
    command.__signature__ = signature.replace(
        parameters=[parameter for parameter in signature.parameters.values() if parameter.name not in options])
    return command


def _report_grid(family: str, points, prefix: str, failed: list, summary: Path | None, json_: bool,
                 quiet: bool) -> None:
    """The grid's summary table (written as CSV, and shown), then the points that failed."""
    from estm_core import store
    from estm_core.files import write_csv
    from estm_core.training import grid as grids

    table = grids.summary(family, points, prefix)
    destination = summary or store.models_dir() / family / f"{prefix}grid-summary.csv"
    write_csv(table, destination, force=True)
    if json_:
        for row in table.to_dict(orient="records"):
            print(json.dumps(plain(row)))
    else:
        _grid_table(table)
    note(f"summary: {destination}", quiet)
    if failed:
        stderr.print(f"[bold red]{len(failed)} of {len(points)} grid points failed:[/]", highlight=False)
        for index, cause in failed:
            stderr.print(f"  point {index}: {escape(cause)}", highlight=False)
        raise typer.Exit(EXIT_SOME_FAILED)


def _vqvae_command(family: str, help_text: str):
    defaults = VQVAE_OPTIONS[family]
    settings = TrainConfig(**FAMILIES[family].training)  # the paper's

    @handles_errors
    def command(
        context: typer.Context,
        data: SegmentCache,
        style_labels: StyleLabels = None,
        name: GridName = None,
        d: LatentChannels = defaults.get("d"),
        latent_dim: ContentChannels = defaults.get("latent_dim"),
        former_latent_dim: FormerLatentDim = None,
        beta: Beta = defaults["beta"],
        beta_e: BetaE = defaults.get("beta_e"),
        codebook_size: CodebookSize = defaults["codebook_size"],
        epochs: Epochs = settings.epochs,
        batch_size: BatchSize = settings.batch_size,
        lr: LearningRate = settings.lr,
        max_steps: MaxSteps = None,
        seed: Seed = settings.seed,
        patience: OriginalPatience = settings.patience,
        start_epoch: StartEpoch = settings.start_epoch,
        monitor: Monitor = settings.monitor,
        grid: Grid = False,
        grid_file: GridFile = None,
        grid_point: GridPoint = None,
        jobs: GridJobs = 1,
        slurm: Slurm = None,
        summary: GridSummary = None,
        resume: Resume = False,
        workers: Workers = 0,
        device: Device = "auto",
        force: Force = False,
        json_: Json = False,
        quiet: Quiet = False,
        debug: Debug = False,
    ) -> None:
        _train_vqvae(context, family)  # which reads every option from context.params

    command.__doc__ = help_text
    unused = {option for options in VQVAE_OPTIONS.values() for option in options} - set(defaults)
    unused |= set() if "latent_dim" in defaults else {"former_latent_dim"}
    return _without(command, unused if family in LEARNS_EMOTION else unused | {"style_labels"})


def _train_vqvae(context: typer.Context, family: str) -> None:
    """What `estm train FAMILY` does for a transfer family, with its command's options (context.params): one run,
    or the grid's."""
    from estm_core.device import choose_device
    from estm_core.errors import EstmError
    from estm_core.training.estm import train_vqvae

    given = context.params
    data, force, json_, quiet = given["data"], given["force"], given["json_"], given["quiet"]
    if family in LEARNS_EMOTION and given["style_labels"] is None:
        raise EstmError("say where the style labels come from: --style-labels truth or a predictions "
                        "CSV from `estm data label`")
    on_grid = given["grid"] or given["grid_file"] or given["grid_point"] is not None
    model_name = given["name"] or ("" if on_grid else default_name(family, data))
    # a grid resumes each point with the grid's options; one run takes its own from its checkpoint
    values, new_totals = run_options(context, family, model_name, given["resume"] and not on_grid)
    model_options = VQVAE_OPTIONS[family]

    def train_one(model_name: str, options: dict, resume_run: bool) -> None:
        """Train one model: the command's options, those of a grid point (`options`) in their place."""
        note(f"training {family} {model_name} on {choose_device(given['device'])}", quiet)
        run_training(lambda on_step, on_epoch: train_vqvae(
            family, data, model_name, train_config(values), style_labels=values.get("style_labels") or "truth",
            model_options={**{option: values[option] for option in model_options}, **options}, resume=resume_run,
            resume_totals=new_totals, force=force, on_step=on_step, on_epoch=on_epoch),
            quiet=quiet, json_=json_, epochs=values["epochs"])

    if on_grid:
        _train_grid(family, given["grid_file"], given["grid_point"], model_name, given["slurm"], given["jobs"],
                    given["summary"], train_one, given["resume"], force, json_, quiet)
    else:
        train_one(model_name, {}, given["resume"])


def _train_grid(family, grid_file, grid_point, prefix, slurm, jobs, summary, train_one, resume, force, json_,
                quiet) -> None:
    """The paper's grid (or `grid_file`): one point, an sbatch script for all, or every unfinished point here."""
    from estm_core.training import grid as grids

    points = grids.read_grid(family, grid_file)
    if grid_point is not None:
        point_name, options = grids.point(points, grid_point)
        if grids.is_finished(family, prefix + point_name) and not force:
            note(f"{prefix + point_name} is already trained", quiet)
            return
        train_one(prefix + point_name, options, resume or grids.resumes(family, prefix + point_name, force))
        return
    if slurm is not None:
        from estm_core.files import atomic_write

        with atomic_write(slurm, force) as temporary:
            temporary.write_text(grids.slurm_script(family, points, _point_command()))
        note(f"wrote {slurm}: {len(points)} array tasks; submit it with `sbatch {slurm}`", quiet)
        return
    failed = _run_grid(family, points, prefix, jobs, train_one, force, quiet)
    _report_grid(family, points, prefix, failed, summary, json_, quiet)


def _run_grid(family, points, prefix, jobs, train_one, force, quiet) -> list[tuple[int, str]]:
    """Train every unfinished point: in this process one after another, or `jobs` subprocesses at a time.
    A failing point does not stop the others; returns [(point, why it failed)]."""
    import os
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    from estm_core.errors import EstmError
    from estm_core.training import grid as grids

    todo = grids.pending(family, points, prefix, force)
    note(f"{family} grid: {len(points)} points, {len(points) - len(todo)} already trained, {len(todo)} to train",
         quiet)
    failed = []
    if jobs <= 1:
        for index in todo:
            point_name, options = grids.point(points, index)
            try:
                train_one(prefix + point_name, options, grids.resumes(family, prefix + point_name, force))
            except EstmError as error:
                failed.append((index, str(error)))
        return failed
    environment = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // jobs))}
    command = _point_command()

    def run(index: int) -> int:
        return subprocess.run([*command, str(index), "--quiet"], env=environment).returncode

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        codes = list(pool.map(run, todo))
    return [(index, f"exit code {code} (its messages are above)") for index, code in zip(todo, codes) if code != 0]


def _grid_table(table) -> None:
    from rich.table import Table

    from .common import stdout

    shown = [column for column in ("point", "name", "status", "epochs", "loss", "reconstruction", "style_loss",
                                   "val_reconstruction") if column in table.columns]
    view = Table(show_edge=False)
    for column in shown:
        view.add_column(column, justify="left" if column in ("name", "status") else "right")
    for row in table.itertuples(index=False):
        values = row._asdict()
        view.add_row(*(f"{values[c]:.4g}" if isinstance(values[c], float) else str(values[c]) for c in shown))
    stdout.print(view)


# a subcommand per family of the table (estm_core.families), in its order; wavenet's recipe has a command of its own
for _family in FAMILIES.values():
    if _family.recipe in ("classifier", "vqvae"):
        make = _classifier_command if _family.recipe == "classifier" else _vqvae_command
        app.command(_family.name, short_help=_family.task)(make(_family.name, _family.about))


# ---------------------------------------------------------------------------------------------------- wavenet

WAVENET_TRAINING = TrainConfig(**FAMILIES["wavenet"].training)

@app.command("wavenet", help=FAMILIES["wavenet"].about, short_help=FAMILIES["wavenet"].task)
@handles_errors
def wavenet(
    context: typer.Context,
    data: Annotated[Path, typer.Option(
        "--data", help="A folder of audio (labels from its subfolders) or a split CSV from `estm data split`.")],
    name: Name = None,
    preset: Annotated[str, typer.Option(
        "--preset", help="seed (the seed's 3x10 model), or for CPUs small (2x8) or medium (2x10: 128 ms of memory "
                         "against 32, which holds long notes).")] = "small",
    unconditioned: Annotated[bool, typer.Option(
        "--unconditioned", help="Ignore the labels: one model of all the audio.")] = False,
    curves: Annotated[bool, typer.Option(
        "--curves", help="Condition on cue curves too (level, onsets, brightness, register, pitch classes, measured "
                         "from the audio: no labels needed), so that generation follows --emotion or --like.")] = False,
    output_length: Annotated[int, typer.Option(
        "--output-length", min=1, max=1 << 16,
        help="Outputs predicted per training window, a count (the seed: 16).")] = 16,
    windows: Annotated[Optional[int], typer.Option(
        "--windows", min=1, max=10**9,
        help="Training windows per epoch (default: the training audio once over).")] = None,
    holdout: Annotated[str, typer.Option(
        "--holdout", help="file (held-out files), time (the end of every file) or auto.")] = "auto",
    epochs: Epochs = WAVENET_TRAINING.epochs,
    batch_size: BatchSize = WAVENET_TRAINING.batch_size,
    lr: LearningRate = WAVENET_TRAINING.lr,
    max_steps: MaxSteps = None,
    cooldown: Annotated[int, typer.Option(
        "--cooldown", min=0, max=10**9,
        help="Take the learning rate linearly down toward 0 over the last this many steps before --max-steps "
             "(default 0: constant). With --resume, the run's new cooldown.")] = 0,
    seed: Seed = WAVENET_TRAINING.seed,
    patience: Patience = WAVENET_TRAINING.patience,
    monitor: Monitor = WAVENET_TRAINING.monitor,
    resume: Resume = False,
    workers: Workers = 0,
    device: Device = "auto",
    force: Force = False,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    from estm_core.device import choose_device
    from estm_core.training.wavenet import train_wavenet

    note(f"device: {choose_device(device)}", quiet)
    model_name = name or default_name("wavenet", data)
    values, new_totals = run_options(context, "wavenet", model_name, resume)
    problems = []

    def train(on_step, on_epoch):
        with ProgressBar("encoding", None, quiet=quiet) as bar:
            result, skipped = train_wavenet(
                data, model_name, train_config(values), preset=values["preset"],
                conditioned=not values["unconditioned"], curves=values["curves"],
                output_length=values["output_length"],
                holdout=values["holdout"], windows_per_epoch=values["windows"], on_step=on_step, on_epoch=on_epoch,
                on_cache_progress=bar, resume=resume, resume_totals=new_totals, force=force)
        problems.extend(skipped)
        return result

    run_training(train, quiet=quiet, json_=json_, epochs=values["epochs"])
    if problems:
        stderr.print(f"[bold red]{len(problems)} files skipped:[/]", highlight=False)
        for path, cause in problems:
            stderr.print(f"  {escape(path)}: {escape(cause)}", highlight=False)
        raise typer.Exit(EXIT_SOME_FAILED)


# ------------------------------------------------------------------------------------------------- recogniser

@app.command("recogniser", short_help="the cue recogniser: arousal and valence from the cue meter (no network)")
@handles_errors
def recogniser(
    data: Annotated[Path, typer.Option(
        "--data", help="A split CSV of quadrant-labelled audio (`estm data split`): its --part teaches it.")],
    part: Annotated[str, typer.Option("--part", help="train, validation or test.")] = "train",
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="The recogniser file to write (default: recogniser.json in the model store, which "
                               "estm then uses instead of the one it ships).")] = None,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", min=1, max=256, help="Files analysed in parallel (processes).")] = 1,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Fit the cue recogniser (what estm transfer, analyze and, without a mer model, classify hear emotion with):
    two logistic regressions on the cue meter's measurements, one for arousal and one for valence. The one estm
    ships was made by this command on the development corpus (the README says how)."""
    from estm_core.cues.emotion import fit_split, store_path
    from estm_core.datasets.split import PARTS, read_split
    from estm_core.errors import EstmError
    from estm_core.files import atomic_write, check_writable

    if part not in PARTS:
        raise EstmError(f"--part must be one of {', '.join(PARTS)}, not {part!r}")
    if jobs < 1:
        raise EstmError("--jobs must be at least 1")
    output = check_writable(output or store_path(), force)
    split = read_split(data)
    split["path"] = [str((Path(data).parent / path).resolve()) for path in split["path"]]
    with ProgressBar("analysing", None, unit="files", quiet=quiet) as bar:
        fitted = fit_split(split, part=part, jobs=jobs, on_progress=bar)
    with atomic_write(output, force) as temporary:
        temporary.write_text(fitted.to_json())
    typical = ", ".join(f"{q} ({e.arousal:+.2f}, {e.valence:+.2f})" for q, e in fitted.typical.items())
    note(f"fitted on {fitted.fitted_on}; typical (arousal, valence): {typical}", quiet)
    note(f"wrote {output}", quiet)
