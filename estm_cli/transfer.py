"""`estm transfer CONTENT EMOTION -o OUT`: the content of one song with the emotion of another."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import Debug, Device, Force, Json, ProgressBar, Quiet, handles_errors, note, plain


@handles_errors
def transfer(
    content: Annotated[Optional[Path], typer.Argument(help="The song whose content to keep.")] = None,
    emotion_file: Annotated[Optional[Path], typer.Argument(
        metavar="EMOTION", help="The song whose emotion to take (or use --emotion).")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Output file (format by extension); with --pairs, a folder.")] = None,
    emotion: Annotated[Optional[str], typer.Option("--emotion", help="A quadrant instead of an emotion file: Q1..Q4.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="estm2 or estm1 model (default: the newest estm2).")] = None,
    mer: Annotated[Optional[str], typer.Option(
        "--mer", help="For estm1: the mer model that decides the emotion file's quadrant (default: the newest).")] = None,
    pairs: Annotated[Optional[Path], typer.Option("--pairs", help="A pairs CSV (`estm data pairs`): transfer each pair.")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="With --pairs: the segment cache the pairs refer to.")] = None,
    overlap: Annotated[float, typer.Option("--overlap", help="Seconds of crossfade between segments.")] = 1.0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Segments decoded at once.")] = 4,
    device: Device = "auto",
    force: Force = False,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Combine the content of CONTENT with the emotion of EMOTION (a file, or --emotion Q1..Q4); any length.

    The content is cut into the model's 10.08 s segments with overlap and joined again by crossfades, so OUT has
    the content's duration.
    """
    from estm_core.device import choose_device
    from estm_core.errors import EstmError
    from estm_core.labels import QUADRANTS
    from estm_core.transfer import load_transfer_model, transfer_file, transfer_pairs

    if output is None:
        raise EstmError("say where the result goes: -o OUT")
    if emotion is not None and emotion.upper() not in QUADRANTS.labels:
        raise EstmError(f"--emotion must be one of {', '.join(QUADRANTS.labels)}, not {emotion!r}")
    if overlap < 0:
        raise EstmError("--overlap must be zero or more seconds")
    if content is not None:  # the inputs before the model
        from estm_core.audio import probe

        for path in (content, emotion_file):
            if path is not None:
                probe(path)
    target = choose_device(device)
    transfer_model = load_transfer_model(model, target)
    note(f"device: {target}; model: {transfer_model.family} {transfer_model.name}", quiet)
    if pairs is not None:
        import pandas as pd

        if data is None:
            raise EstmError("--pairs needs --data, the segment cache the pairs refer to")
        table = pd.read_csv(pairs, dtype=str, keep_default_na=False)
        with ProgressBar("transferring", len(table), unit="pairs", quiet=quiet) as bar:
            written = transfer_pairs(transfer_model, table, data, output, force=force, on_progress=bar)
        note(f"{len(written)} transfers written to {output}", quiet)
        return
    if content is None or (emotion_file is None and emotion is None):
        raise EstmError("give CONTENT and EMOTION files (or CONTENT and --emotion Q1..Q4)")
    started = time.perf_counter()
    with ProgressBar("transferring", None, unit="segments", quiet=quiet) as bar:
        result = transfer_file(transfer_model, content, output, emotion_path=emotion_file, quadrant=emotion,
                               mer_model=mer, overlap_seconds=overlap, batch_size=batch_size, force=force,
                               on_progress=bar)
    elapsed = time.perf_counter() - started
    result["seconds"] = round(elapsed, 3)
    if json_:
        print(json.dumps(plain(result)))
    else:
        quadrant = f" ({result['quadrant']})" if result["quadrant"] else ""
        note(f"wrote {output}: {result['duration']:.1f} s with the emotion of "
             f"{emotion_file or emotion}{quadrant} in {elapsed:.1f} s "
             f"({result['duration'] / elapsed:.1f}x real time)", quiet=False)
