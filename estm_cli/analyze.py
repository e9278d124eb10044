"""`estm analyze FILES…`: the cues listeners read as emotion (tempo, loudness, brightness, articulation, register,
key and mode), measured in each file."""

from __future__ import annotations

import math
from typing import Annotated

import typer

from .common import (
    MAX_JOBS, Batch, Column, Csv, Debug, Files, Json, ProgressBar, Quiet, Recursive, bounded, expand_inputs,
    file_failure, handles_errors, output_mode, readable,
)


def _number(digits: int):
    """A table cell: the value to `digits` decimals, or empty where the cue could not be measured."""
    return lambda value: "" if value is None or math.isnan(value) else f"{value:.{digits}f}"


COLUMNS = [
    Column("path", "file"),
    Column("duration_s", "seconds", _number(1), "right"),
    Column("tempo_bpm", "bpm", _number(1), "right"),
    Column("onset_rate", "onsets/s", _number(2), "right"),
    Column("loudness_lufs", "LUFS", _number(1), "right"),
    Column("dynamic_range_db", "range dB", _number(1), "right"),
    Column("centroid_hz", "centroid Hz", _number(0), "right"),
    Column("tilt_db_per_octave", "tilt dB/oct", _number(1), "right"),
    Column("percussive_ratio", "percussive", _number(2), "right"),
    Column("onset_decay", "decay", _number(2), "right"),
    Column("pitch_centroid_midi", "pitch MIDI", _number(1), "right"),
    Column("key_confidence", "key r", _number(2), "right"),
    Column("arousal", "arousal", _number(2), "right"),
    Column("valence", "valence", _number(2), "right"),
    Column("quadrant", "heard"),
]


def _columns(mode: str) -> list[Column]:
    """The table shows the key as one column; --csv has the tonic and the mode apart, as --json does."""
    key = [Column("key", "key")] if mode == "table" else [Column("tonic", "tonic"), Column("mode", "mode")]
    return COLUMNS[:-4] + key + COLUMNS[-4:]


@handles_errors
def analyze(
    files: Files,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", callback=bounded(1, MAX_JOBS), help=f"Files analysed in parallel (processes, 1 to {MAX_JOBS}).")
    ] = 1,
    recursive: Recursive = False,
    json_: Json = False,
    csv_: Csv = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Measure the emotion cues of whole files: tempo and onsets per second, loudness (LUFS) and its range,
    spectral centroid and tilt, percussive share and note decay, pitch register, key and mode; and the emotion the
    cue recogniser hears in them: arousal and valence (-1 to +1) and the quadrant.

    Every command refuses the same files, each with one line: under 1 s (too short to measure), silent once any DC
    offset is removed, NaN samples, or a float file's samples beyond full scale (refused, not clipped). Exit code 0
    when every file was analysed, 3 when some failed, 1 when none could be.
    """
    from estm_core.cues.emotion import active_recogniser
    from estm_core.cues.meter import analyze_files

    mode = output_mode(json_, csv_)
    recogniser = active_recogniser()
    paths, problems = expand_inputs(files, recursive, quiet)
    paths, unreadable = readable(paths)
    problems += unreadable

    batch = Batch(_columns(mode), mode)
    for item, cause in problems:
        batch.failed(item, cause)
    with ProgressBar("analysing", len(paths), quiet=quiet) as bar:
        for path, result in analyze_files(paths, jobs=jobs):
            if isinstance(result, Exception):  # that file's line; the batch goes on
                batch.failed(path, file_failure(result, debug))
            else:
                cues = result.to_dict()
                emotion = recogniser.recognise(result)
                record = {"path": path, **{key: _rounded(value) for key, value in cues.items()},
                          "arousal": _rounded(emotion.arousal), "valence": _rounded(emotion.valence),
                          "quadrant": emotion.quadrant}
                if mode == "table":
                    record["key"] = f"{cues['tonic']} {cues['mode']}" if cues["tonic"] else ""
                batch.ok(record)
            bar.advance()
    raise typer.Exit(batch.finish())


def _rounded(value):
    return round(value, 4) if isinstance(value, float) and math.isfinite(value) else value
