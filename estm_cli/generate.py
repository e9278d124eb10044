"""`estm generate`: music from a WaveNet, on request for an emotion, a genre or any label, or like a reference file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import MAX_SEED, Debug, Device, Force, Json, ProgressBar, Quiet, bounded, handles_errors, note, plain


@handles_errors
def generate(
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="The audio file to write, or with -n above 1 the folder for the streams (default: "
                               "LABEL.wav, or the folder generated/).")]
    = None,
    model: Annotated[Optional[str], typer.Option("--model", help="A wavenet model (default: the newest).")] = None,
    emotion: Annotated[Optional[str], typer.Option(
        "--emotion", help="A quadrant, Q1..Q4 (a model on cue curves: curves in that quadrant's cue profile; with "
                          "--like, the reference's moved toward it).")] = None,
    like: Annotated[Optional[Path], typer.Option(
        "--like", help="A reference audio file whose cue curves (rhythm, dynamics, register, pitch classes) the "
                       "music follows (a model trained with --curves).")] = None,
    genre: Annotated[Optional[str], typer.Option("--genre", help="A genre the model was trained on.")] = None,
    label: Annotated[Optional[str], typer.Option("--label", help="Any label the model was trained on.")] = None,
    seconds: Annotated[Optional[float], typer.Option(
        "--seconds", callback=bounded(above=0),
        help="Length of each stream (default 4, or with --like the reference's; all streams together at most 2^26 "
             "samples, about 70 min at 16 kHz).")] = None,
    count: Annotated[int, typer.Option(
        "-n", "--count", callback=bounded(1, 1024), help="Streams generated at once (1 to 1024).")] = 1,
    temperature: Annotated[float, typer.Option(
        "--temperature", callback=bounded(above=0, high=100), help="Sampling temperature (0.5-1.0 suggested).")
    ] = 0.9,
    seed: Annotated[int, typer.Option(
        "--seed", callback=bounded(0, MAX_SEED), help="The same seed, the same samples.")] = 0,
    prime: Annotated[Optional[Path], typer.Option("--prime", help="Audio to continue (its last second).")] = None,
    device: Device = "auto",
    force: Force = False,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Generate audio with a WaveNet; one file per stream, named by label and index (or OUT itself when -n 1)."""
    from estm_core import audio, store
    from estm_core.device import choose_device
    from estm_core.generate import check_size, load_prime
    from estm_core.generate import generate as generate_audio

    wanted = _wanted(emotion, genre, label)
    stem = wanted or (like.stem if like else "generated")
    paths = _output_paths(output, stem, count, force)  # checked before the work, not after it
    target = choose_device(device)
    wavenet = store.load_model(store.find_model("wavenet", model), "wavenet", target)
    rate, seconds = wavenet.sample_rate, seconds or (audio.probe(like).duration if like is not None else 4.0)
    check_size(count, seconds, rate)  # what the run would hold, before it starts
    primer = load_prime(prime, rate) if prime is not None else None
    labels, curves = _conditions(wavenet.info, wanted, emotion, like, count, seconds, seed)
    note(f"device: {target}; model: {wavenet.name}", quiet)
    started = time.perf_counter()
    with ProgressBar("generating", None, unit="samples", quiet=quiet) as bar:
        streams = generate_audio(wavenet, labels, seconds=seconds, temperature=temperature, seed=seed,
                                 prime=primer, curves=curves, on_progress=bar)
    elapsed = time.perf_counter() - started
    _write(paths, streams, rate, force, json_, quiet, {
        "label": wanted, "like": str(like) if like else None, "seconds": seconds, "streams": count,
        "samples_per_second": round(streams.size / elapsed), "wall_seconds": round(elapsed, 3)})


def _write(paths: list[Path], streams, rate: int, force: bool, json_: bool, quiet: bool, summary: dict) -> None:
    """Each stream to its file, then the summary (one JSON line with --json)."""
    from estm_core import audio

    for path, stream in zip(paths, streams):
        audio.save(path, stream, rate, force=force)
    if json_:
        print(json.dumps(plain({"files": [str(path) for path in paths], **summary})))
    else:
        note(f"wrote {', '.join(map(str, paths))} ({summary['samples_per_second']:,} samples/s)", quiet)


def _wanted(emotion: str | None, genre: str | None, label: str | None) -> str | None:
    from estm_core.errors import EstmError
    from estm_core.labels import QUADRANTS

    chosen = [value for value in (emotion, genre, label) if value is not None]
    if len(chosen) > 1:
        raise EstmError("choose one of --emotion, --genre and --label")
    if emotion is not None and emotion.upper() not in QUADRANTS.labels:
        raise EstmError(f"--emotion must be one of {', '.join(QUADRANTS.labels)}, not {emotion!r}")
    return emotion.upper() if emotion is not None else (chosen[0] if chosen else None)


def _output_paths(output: Path | None, stem: str, count: int, force: bool) -> list[Path]:
    from estm_core.files import check_writable

    if output is None:
        output = Path(f"{stem}.wav" if count == 1 else "generated")
    paths = [output] if count == 1 else [output / f"{stem}-{index}.wav" for index in range(count)]
    for path in paths:
        check_writable(path, force)
    return paths


def _conditions(info, wanted: str | None, emotion: str | None, like: Path | None, count: int, seconds: float,
                seed: int):
    """(each stream's label, each stream's cue curves or None) for what the model takes."""
    from estm_core.errors import EstmError
    from estm_core.generate import asked_curves, takes_curves

    if not takes_curves(info):
        if like is not None:
            raise EstmError("--like needs a wavenet conditioned on cue curves (estm train wavenet --curves)")
        return [wanted] * count, None
    if wanted is not None and emotion is None and not info.labels:
        raise EstmError("this wavenet is conditioned on cue curves, not labels: ask with --emotion or --like")
    quadrant = emotion.upper() if emotion else None
    curves = asked_curves(info, [quadrant] * count, seconds=seconds, like=like, seed=seed)
    return [wanted if info.labels else None] * count, curves
