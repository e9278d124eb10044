"""`estm generate`: music from a WaveNet, on request for an emotion, a genre or any label."""

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
    emotion: Annotated[Optional[str], typer.Option("--emotion", help="A quadrant, Q1..Q4.")] = None,
    genre: Annotated[Optional[str], typer.Option("--genre", help="A genre the model was trained on.")] = None,
    label: Annotated[Optional[str], typer.Option("--label", help="Any label the model was trained on.")] = None,
    seconds: Annotated[float, typer.Option(
        "--seconds", callback=bounded(above=0),
        help="Length of each stream (all streams together at most 2^26 samples, about 70 min at 16 kHz).")] = 4.0,
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
    from estm_core.errors import EstmError
    from estm_core.files import check_writable
    from estm_core.generate import check_size, load_prime
    from estm_core.generate import generate as generate_audio

    chosen = [value for value in (emotion, genre, label) if value is not None]
    if len(chosen) > 1:
        raise EstmError("choose one of --emotion, --genre and --label")
    wanted = chosen[0] if chosen else None
    stem = wanted or "generated"
    if output is None:
        output = Path(f"{stem}.wav" if count == 1 else "generated")
    paths = [output] if count == 1 else [output / f"{stem}-{index}.wav" for index in range(count)]
    for path in paths:  # before the work, not after it
        check_writable(path, force)
    target = choose_device(device)
    wavenet = store.load_model(store.find_model("wavenet", model), "wavenet", target)
    rate = wavenet.sample_rate
    check_size(count, seconds, rate)  # what the run would hold, before it starts
    primer = load_prime(prime, rate) if prime is not None else None
    note(f"device: {target}; model: {wavenet.name}", quiet)
    started = time.perf_counter()
    with ProgressBar("generating", None, unit="samples", quiet=quiet) as bar:
        streams = generate_audio(wavenet, [wanted] * count, seconds=seconds, temperature=temperature, seed=seed,
                                 prime=primer, on_progress=bar)
    elapsed = time.perf_counter() - started
    for path, stream in zip(paths, streams):
        audio.save(path, stream, rate, force=force)
    speed = streams.size / elapsed
    summary = {"files": [str(path) for path in paths], "label": wanted, "seconds": seconds, "streams": count,
               "samples_per_second": round(speed), "wall_seconds": round(elapsed, 3)}
    if json_:
        print(json.dumps(plain(summary)))
    else:
        note(f"wrote {', '.join(map(str, paths))} ({speed:,.0f} samples/s)", quiet)
