"""`estm transfer CONTENT EMOTION -o OUT`: the content of one song with the emotion of another."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from estm_core.families import METHODS, transferring

from .common import Debug, Device, Force, Json, ProgressBar, Quiet, bounded, handles_errors, note, plain, segment_cache

PairsCache = segment_cache(" that the --pairs refer to")
Content = Annotated[Optional[Path], typer.Argument(help="The song whose content to keep.")]
EmotionFile = Annotated[Optional[Path], typer.Argument(
    metavar="EMOTION", help="The song whose emotion to take (or use --emotion).")]
Output = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="The audio file to write (format by extension); with --pairs, the folder for the "
                           "transfers. Required: there is no default.")]
Emotion = Annotated[Optional[str], typer.Option("--emotion", help="A quadrant instead of an emotion file: Q1..Q4.")]
Method = Annotated[Optional[str], typer.Option(
    "--method", help="A transfer method that needs no trained weights (default, unless --model: cues): "
                     + "; ".join(f"{method.name}, {method.about}" for method in METHODS.values()) + ".")]
Model = Annotated[Optional[str], typer.Option(
    "--model", help=f"A learned model ({', '.join(transferring())}; name or path) instead of the method.")]
Mer = Annotated[Optional[str], typer.Option(
    "--mer", help="For estm1: the mer model that decides the emotion file's quadrant (default: the newest).")]
Pairs = Annotated[Optional[Path], typer.Option(
    "--pairs", help="A pairs CSV (`estm data pairs`): transfer each pair with --model (default: the newest "
                    f"{' or '.join(transferring())} model).")]
# the cue method's settings (families.TransferSettings)
Strength = Annotated[float, typer.Option(
    "--strength", callback=bounded(0, 1),
    help="Cue method: how far each cue moves, 0 (not at all) to 1 (all the way).")]
Cues = Annotated[Optional[str], typer.Option(
    "--cues", help="Cue method: the cues to move, comma-separated (default: tempo,register,loudness,"
                   "dynamics,brightness,articulation,mode).")]
Range = Annotated[str, typer.Option(
    "--range", help="Cue method: natural (default: what a mixing engineer would do to a finished mix: tempo "
                    "x0.75-x1.33, a mastering tilt, no transposition) or wide (octaves, tempo x0.25-x4).")]
Match = Annotated[str, typer.Option(
    "--match", help="Cue method with an EMOTION file: emotion (default: move the content by the difference "
                    "between the emotions heard in the two files) or cues (copy the file's raw cue values).")]
# a learned model's
Overlap = Annotated[float, typer.Option(
    "--overlap", callback=bounded(0, 60), help="--model: seconds of crossfade between segments (0 to 60; at most "
                                               "half a segment is used).")]
BatchSize = Annotated[int, typer.Option(
    "--batch-size", callback=bounded(1, 256), help="--model: segments decoded at once (1 to 256).")]


@handles_errors
def transfer(content: Content = None, emotion_file: EmotionFile = None, output: Output = None, emotion: Emotion = None,
             method: Method = None, model: Model = None, mer: Mer = None, pairs: Pairs = None, data: PairsCache = None,
             strength: Strength = 1.0, cues: Cues = None, range_: Range = "natural", match: Match = "emotion",
             overlap: Overlap = 1.0, batch_size: BatchSize = 4, device: Device = "auto", force: Force = False,
             json_: Json = False, quiet: Quiet = False, debug: Debug = False) -> None:
    """Combine the content of CONTENT with the emotion of EMOTION (a file, or --emotion Q1..Q4); any length.

    By default the cue method, with no trained model: the emotion (arousal and valence) of the content and of the
    EMOTION file (or the quadrant) is recognised from their cues, and the content's tempo, register, loudness,
    brightness, articulation and mode move from where they are by the difference; OUT keeps the content's rate and
    channels, and a tempo move changes its length. With --model, a learned ESTM model: the
    content is cut into 10.08 s segments and joined again by crossfades, so OUT has the content's duration.

    CONTENT is refused, with one line, as every command refuses a file: under 1 s, silent once any DC offset is
    removed, NaN samples, or a float file's samples beyond full scale (refused, not clipped). The cue method removes a
    DC offset before its edit; its output never peaks above -0.1 dBFS, and no gain takes it past -9 LUFS.
    """
    from estm_core.errors import EstmError
    from estm_core.families import TransferSettings, method_module

    emotion = _checked_inputs(content, emotion_file, output, emotion)
    if method is not None and (model is not None or pairs is not None):
        raise EstmError("--method runs a method that needs no weights: leave out --model and --pairs")
    if model is None and pairs is None:
        chosen = tuple(name.strip() for name in cues.split(",") if name.strip()) if cues else None
        _transfer_method(method_module(method or "cues"), content, emotion_file, output, emotion,
                         TransferSettings(strength, chosen, range_, match), force, json_, quiet)
        return
    if strength != 1.0 or cues is not None or range_ != "natural" or match != "emotion":
        raise EstmError("--strength, --cues, --range and --match belong to the cue method: leave out --model and "
                        "--pairs")
    _transfer_learned(model, content, emotion_file, output, emotion, mer, pairs, data, overlap, batch_size, device,
                      force, json_, quiet)


def _checked_inputs(content, emotion_file, output, emotion) -> str | None:
    """The quadrant asked (upper case) or None, after the checks every transfer makes before loading anything: an
    output named, a quadrant that is one, and the input files' headers."""
    from estm_core.errors import EstmError
    from estm_core.labels import QUADRANTS

    if output is None:
        raise EstmError("say where the result goes: -o OUT")
    if emotion is not None and emotion.upper() not in QUADRANTS.labels:
        raise EstmError(f"--emotion must be one of {', '.join(QUADRANTS.labels)}, not {emotion!r}")
    if content is not None:  # the inputs before the model
        from estm_core.audio import probe

        for path in (content, emotion_file):
            if path is not None:
                probe(path)
    return emotion and emotion.upper()

def _transfer_learned(model, content, emotion_file, output, emotion, mer, pairs, data, overlap, batch_size, device,
                      force, json_, quiet):
    """A learned ESTM model: one content file, or every pair of a pairs CSV."""
    from estm_core.classify import check_batch_size
    from estm_core.device import choose_device  # torch: only the learned models need it
    from estm_core.errors import EstmError
    from estm_core.transfer import load_transfer_model, transfer_file, transfer_pairs

    target = choose_device(device)
    transfer_model = load_transfer_model(model, target)
    check_batch_size(batch_size, transfer_model.segment_length)
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
        result = transfer_file(transfer_model, content, output, reference=emotion_file, quadrant=emotion,
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
             f"({result['duration'] / elapsed:.1f}x real time)", quiet)


def _transfer_method(method, content, emotion_file, output, emotion, settings, force, json_, quiet):
    """A transfer method that needs no weights (its module, families.TransferMethod): one content file toward one
    emotion file or a quadrant, the settings checked once, through the method's contract."""
    from estm_core.errors import EstmError
    from estm_core.families import check_settings

    if content is None or (emotion_file is None) == (emotion is None):
        raise EstmError("give CONTENT and either an EMOTION file or --emotion Q1..Q4")
    settings = check_settings(method, settings)
    if settings.match != "emotion" and emotion_file is None:
        raise EstmError(f"--match {settings.match} copies an EMOTION file's cues: give one instead of --emotion")
    started = time.perf_counter()
    result = method.transfer_file(content, output, reference=emotion_file, quadrant=emotion, settings=settings,
                                  force=force, measure_output=json_)
    elapsed = time.perf_counter() - started
    result["seconds"] = round(elapsed, 3)
    if json_:
        print(json.dumps(plain(result)))
        return
    for line in method.describe(result):
        note(line, quiet)
    note(f"wrote {output}: {result['duration']:.1f} s with the emotion of {emotion_file or emotion} in {elapsed:.1f} s "
         f"({result['content_duration'] / elapsed:.1f}x real time)", quiet)
