"""`estm plot`: figures as PNG files (training curves, spectrograms, confusion matrices, codebook usage).

Without -o each figure goes to the current folder, named after its input; an existing file is kept unless --force.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from estm_core.families import with_codebooks

from .common import (
    Debug, Device, Force, ProgressBar, Quiet, Recursive, expand_inputs, handles_errors, note, readable, report_skipped,
    segment_cache,
)

app = typer.Typer(help="Figures as PNG files: training curves, spectrograms, confusion matrices, codebook usage.",
                  no_args_is_help=True)


def png_output(default: str) -> Any:
    """The -o option of a plot: a PNG file, by default `default` in the current folder."""
    return Annotated[Optional[Path], typer.Option(
        "--output", "-o", help=f"The PNG file to write (default: {default} in the current folder).")]


HistoryPng = png_output("NAME-history.png")
SpectrogramPng = png_output("STEM-spectrogram.png for one file, spectrogram.png for several")
ConfusionPng = png_output("MODEL-PART-confusion.png")
CodebookPng = png_output("MODEL-codebook.png")
CodebookCache = segment_cache(", whose segments to encode instead of AUDIO")
MAX_COLUMNS = 12  # spectrogram columns side by side


def _wrote(path: Path, quiet: bool) -> None:
    note(f"wrote {path}", quiet)


def _input_problem(problems: list[tuple[str, str]]):
    from estm_core.errors import EstmError

    item, cause = problems[0]
    more = f" (and {len(problems) - 1} more bad inputs)" if len(problems) > 1 else ""
    return EstmError(f"{item}: {cause}{more}")


@app.command()
@handles_errors
def history(
    model: Annotated[str, typer.Argument(
        metavar="NAME_OR_FILE", help="A model (store name or .safetensors path) or its NAME.history.csv.")],
    output: HistoryPng = None,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Training curves: one panel per kind of term (loss, accuracy, ...), train and validation, best epoch marked."""
    from estm_core import model_file, store
    from estm_core.errors import EstmError, StoreError
    from estm_core.files import check_writable
    from estm_core.plots import best_epoch, history_png

    given = Path(model).expanduser()
    if given.suffix.lower() == ".csv" or (given.is_file() and not given.name.endswith(store.MODEL_SUFFIX)):
        csv_path = given
        beside_model = given.name.endswith(store.HISTORY_SUFFIX)  # NAME.history.csv: maybe NAME.safetensors too
        name = given.name.removesuffix(store.HISTORY_SUFFIX) if beside_model else given.stem
        model_path = given.with_name(name + store.MODEL_SUFFIX)
        model_path = model_path if beside_model and model_path.is_file() else None
    else:
        model_path = store.resolve(model)
        name = store.model_name(model_path)
        csv_path = store.history_path(model_path)
        if not csv_path.is_file():
            raise EstmError(f"{model_path}: no training history beside it ({csv_path.name} is missing)")
    output = output or Path(f"{name}-history.png")
    check_writable(output, force)
    frame = store.read_history(csv_path)
    best, title = None, name
    if model_path is not None:
        try:
            info = model_file.read_info(model_path)
        except StoreError:
            info = None
        if info is not None:
            best, monitor = info.training.best_epoch, info.training.monitor
            title = f"{info.family} {name}"
            if best is not None and monitor:
                title += f": best epoch {best} by {monitor}"
    if best is None:
        best = best_epoch(frame)
        title += f": best epoch {best} by {'val_loss' if 'val_loss' in frame.columns else 'loss'}"
    _wrote(history_png(frame, output, title=title, best=best, force=force), quiet)


@app.command()
@handles_errors
def spectrogram(
    files: Annotated[list[str], typer.Argument(
        help="Audio files, shown side by side in this order (folders, globs, or - for paths on stdin).")],
    output: SpectrogramPng = None,
    seconds: Annotated[float, typer.Option(
        "--seconds", help="Show at most this many seconds from the start of each file.")] = 30.0,
    recursive: Recursive = False,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Each file's waveform above its log-mel spectrogram, one column per file."""
    from estm_core.errors import EstmError
    from estm_core.files import check_writable
    from estm_core.audio import load_clip
    from estm_core.plots import spectrogram_png

    if not seconds > 0:
        raise EstmError("--seconds must be more than 0")
    paths, problems = expand_inputs(files, recursive)
    paths, bad = readable(paths)
    if problems or bad:
        raise _input_problem(problems + bad)
    if len(paths) > MAX_COLUMNS:
        raise EstmError(f"{len(paths)} files: at most {MAX_COLUMNS} fit side by side in one figure")
    output = output or Path(f"{paths[0].stem}-spectrogram.png" if len(paths) == 1 else "spectrogram.png")
    check_writable(output, force)
    clips = [load_clip(path, seconds) for path in paths]
    _wrote(spectrogram_png(clips, output, force=force), quiet)


@app.command()
@handles_errors
def confusion(
    evaluation: Annotated[Path, typer.Argument(
        metavar="EVAL.json", help="The evaluation.json that `estm evaluate classifier` wrote.")],
    output: ConfusionPng = None,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """The confusion matrix of a classifier evaluation (rows: true label, columns: predicted)."""
    from estm_core.files import check_writable
    from estm_core.evaluate import read_evaluation
    from estm_core.plots import evaluation_confusion_png

    summary = read_evaluation(evaluation)
    stem = "-".join(str(summary[key]) for key in ("model", "part") if summary.get(key)) or evaluation.stem
    output = output or Path(f"{stem}-confusion.png")
    check_writable(output, force)
    _wrote(evaluation_confusion_png(summary, output, force=force), quiet)


AudioToEncode = Annotated[Optional[list[str]], typer.Argument(
    metavar="AUDIO", help="Audio to encode: files, folders, globs, or - for paths on stdin.")]
CodebookModel = Annotated[Optional[str], typer.Option(
    "--model", help=f"A model with codebooks ({', '.join(with_codebooks())}): store name or path (default: the "
                    "newest of them).")]
CachePart = Annotated[Optional[str], typer.Option(
    "--part", help="With --data: only this part (train, validation, test).")]
SegmentCount = Annotated[Optional[int], typer.Option(
    "--count", "-n", help="With --data: at most this many segments, spread evenly.")]
EncodeBatch = Annotated[int, typer.Option("--batch-size", help="Segments encoded at once.")]


@app.command()
@handles_errors
def codebook(files: AudioToEncode = None, model: CodebookModel = None, data: CodebookCache = None,
             part: CachePart = None, count: SegmentCount = None, output: CodebookPng = None,
             batch_size: EncodeBatch = 8, recursive: Recursive = False, device: Device = "auto", force: Force = False,
             quiet: Quiet = False, debug: Debug = False) -> None:
    """VQ codebook usage per level over AUDIO or --data; without either, the codebook entries (PCA).

    Per level: each code's share of the latent vectors, the shares sorted, perplexity and codes used. The audio is
    cut into the model's segments as `estm data segment` cuts it.
    """
    from estm_core import model_file, store
    from estm_core.datasets.segment import check_fits
    from estm_core.device import choose_device
    from estm_core.files import check_writable
    from estm_core.models.codebook_usage import check_vq_family, codebooks
    from estm_core.plots import codebook_png

    _check_codebook_options(files, data, part, count, batch_size)
    model_path = store.find_model(with_codebooks(), model)
    check_vq_family(model_file.read_info(model_path).family, str(model_path))
    output = output or Path(f"{store.model_name(model_path)}-codebook.png")
    check_writable(output, force)
    paths, failures = _readable_inputs(files, recursive) if files else ([], [])  # the inputs before the model

    target = choose_device(device)
    vq = store.load_model(model_path, device=target)
    if data is not None:
        check_fits(data, vq)  # before any output
    note(f"device: {target}; model: {vq.family} {vq.name}", quiet)
    title = f"{vq.family} {vq.name}"
    if not files and data is None:
        note("no audio given: plotting the codebook entries (PCA); give audio files or --data to see usage", quiet)
        _wrote(codebook_png(None, output, codebook=codebooks(vq.model), title=f"{title}: codebook entries",
                            force=force), quiet)
        return
    if data is not None:
        usage, where = _cache_usage(vq, data, part, count, batch_size, quiet)
    else:
        usage, where = _files_usage(vq, paths, failures, batch_size, quiet)
    note(f"{where}: " + "; ".join(f"{level.level} perplexity {level.perplexity:.1f}, {level.codes_used}/"
                                  f"{level.codebook_size} codes" for level in usage.values()), quiet)
    _wrote(codebook_png(usage, output, title=f"{title}: codebook usage over {where}", force=force), quiet)
    if failures:
        raise typer.Exit(report_skipped(failures, "inputs" if len(failures) > 1 else "input"))


def _check_codebook_options(files, data: Path | None, part: str | None, count: int | None, batch_size: int) -> None:
    """An EstmError for options that contradict each other or are out of range, before anything is read."""
    from estm_core.errors import EstmError

    if files and data is not None:
        raise EstmError("give AUDIO files or --data, not both")
    if (part is not None or count is not None) and data is None:
        raise EstmError("--part and --count go with --data")
    if batch_size < 1 or (count is not None and count < 1):
        raise EstmError("--batch-size and --count must be at least 1")


def _readable_inputs(files: list[str], recursive: bool) -> tuple[list[Path], list[tuple[str, str]]]:
    """(the files that open as audio, (item, cause) of every other input); EstmError where none opens."""
    paths, problems = expand_inputs(files, recursive)
    paths, bad = readable(paths)
    if not paths:
        raise _input_problem(problems + bad)
    return paths, problems + bad


def _cache_usage(vq, data: Path, part: str | None, count: int | None, batch_size: int, quiet: bool):
    """Codebook usage over a segment cache's segments, and what they were."""
    from estm_core.datasets.segment import cache_segments
    from estm_core.models.codebook_usage import codebook_usage

    segments, batches = cache_segments(data, vq, part=part, max_segments=count, batch_size=batch_size)
    with ProgressBar("encoding", segments, unit="segments", quiet=quiet) as bar:
        def counted():
            for batch in batches:
                yield batch
                bar.advance(len(batch))

        usage = codebook_usage(vq.model, counted(), batch_size=batch_size)
    return usage, f"{segments} segments of {data}" + (f" ({part})" if part else "")


def _files_usage(vq, paths: list, failures: list, batch_size: int, quiet: bool):
    """Codebook usage over audio files cut into the model's segments, and what they were; a file that cannot be
    decoded is added to `failures` and skipped."""
    from estm_core.errors import AudioError
    from estm_core.datasets.segment import file_segments
    from estm_core.errors import EstmError
    from estm_core.models.codebook_usage import codebook_usage

    segments = done = 0
    with ProgressBar("encoding", len(paths), unit="files", quiet=quiet) as bar:
        def file_batches():
            nonlocal segments, done
            for path in paths:
                try:
                    array = file_segments(path, vq.sample_rate, vq.segment_length)
                except AudioError as error:
                    failures.append((str(path), error.cause))
                else:
                    segments, done = segments + len(array), done + 1
                    yield array
                bar.advance()

        try:
            usage = codebook_usage(vq.model, file_batches(), batch_size=batch_size)
        except EstmError:
            if failures:
                raise _input_problem(failures) from None
            raise
    return usage, f"{segments} segments of {done} file{'s' if done != 1 else ''}"
