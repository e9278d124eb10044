"""`estm info` and `estm inspect`."""

from __future__ import annotations

import json
import math

import typer
from rich.markup import escape

from .common import (
    Batch, Column, Csv, Debug, Files, Json, ProgressBar, Quiet, Recursive, expand_inputs, file_failure,
    handles_errors, output_mode, plain, stdout,
)


@handles_errors
def info(json_: Json = False, debug: Debug = False) -> None:
    """Versions, devices, audio formats and the model store."""
    from estm_core.environment import describe

    facts = describe()
    if json_:
        print(json.dumps(plain(facts)))
        return
    devices = ", ".join(
        f"{device['device']} ({device['name']}" + (f", {device['memory_gib']} GiB" if "memory_gib" in device else "")
        + ")" for device in facts["devices"]
    )
    lines = [
        ("estm", facts["estm"]),
        ("python", facts["python"]),
        ("torch", facts["torch"] + (f" (CUDA {facts['cuda']})" if facts["cuda"] else " (no CUDA)")),
        ("soundfile", f"{facts['soundfile']} (libsndfile {facts['libsndfile']})"),
        ("soxr", facts["soxr"]),
        ("devices", devices),
        ("auto device", facts["auto_device"]),
        ("threads", str(facts["threads"])),
        ("reads", ", ".join(format_.lower() for format_ in facts["readable_formats"])),
        ("writes", ", ".join(facts["writable_extensions"])),
        ("C kernel", ("compiled: " if facts["wavenet_kernel"]["available"] else "unavailable, WaveNet generation "
                      "runs in torch (slower): ") + facts["wavenet_kernel"]["detail"]),
        ("model store", facts["store"]),
        ("models", ", ".join(f"{m['family']}/{m['name']}" for m in facts["models"]) or "none yet"),
    ]
    for key, value in lines:
        stdout.print(f"[bold]{key:>12}[/]  {escape(value)}", highlight=False)


def _seconds(value) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.2f}"


def _decibels(value) -> str:
    return "-inf" if value is None or value == -math.inf else f"{value:.1f}"


INSPECT_COLUMNS = [
    Column("path", "file"),
    Column("format", "format"),
    Column("duration", "seconds", _seconds, "right"),
    Column("sample_rate", "rate", str, "right"),
    Column("channels", "ch", str, "right"),
    Column("peak_dbfs", "peak dBFS", _decibels, "right"),
    Column("rms_dbfs", "RMS dBFS", _decibels, "right"),
    Column("zero_fraction", "zeros", lambda value: f"{value:.1%}", "right"),
    Column("complete", "whole", lambda value: "yes" if value else "NO", "center"),
]


@handles_errors
def inspect(
    files: Files,
    recursive: Recursive = False,
    json_: Json = False,
    csv_: Csv = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Decode each file whole and report its format, duration, rate, channels, levels and zero fraction.

    A file that cannot be decoded, or decodes only in part, or holds NaN or (a float file) samples beyond full scale,
    gets one line on stderr; short and silent files are shown, not refused, since inspecting is how one finds them.
    The exit code is 0 when all files are fine, 3 when some failed and 1 when none could be read.
    """
    from estm_core import audio_info

    batch = Batch(INSPECT_COLUMNS, output_mode(json_, csv_))
    paths, problems = expand_inputs(files, recursive, quiet)
    for item, cause in problems:
        batch.failed(item, cause)
    with ProgressBar("inspecting", len(paths), quiet=quiet) as bar:
        for path in paths:
            try:
                found = audio_info.inspect(path)
            except Exception as error:  # that file's line; the batch goes on
                batch.failed(path, file_failure(error, debug))
            else:
                record = {
                    "path": str(path),
                    "format": found.format.lower(),
                    "subtype": found.subtype,
                    "duration": found.duration,
                    "sample_rate": found.sample_rate,
                    "channels": found.channels,
                    "frames": found.frames,
                    "header_frames": found.header_frames,
                    "peak": found.peak,
                    "peak_dbfs": 20 * math.log10(found.peak) if found.peak > 0 else -math.inf,
                    "rms_dbfs": found.rms_dbfs,
                    "zero_fraction": found.zero_fraction,
                    "complete": found.complete,
                }
                if found.problem:
                    batch.failed(path, found.problem, record)
                else:
                    batch.ok(record)
            bar.advance()
    raise typer.Exit(batch.finish())
