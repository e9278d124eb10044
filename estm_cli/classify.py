"""`estm classify FILES…`: Russell quadrant (mer), genre and GEMS emotion (gems) of whole files."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from estm_core.families import trained_by

from .common import (
    Batch, Column, Csv, Debug, Device, Files, Json, ProgressBar, Quiet, Recursive, bounded, expand_inputs,
    file_failure, handles_errors, note, output_mode, readable,
)


def _columns(tasks: list[str], labels: dict[str, list[str]], segments: bool) -> list[Column]:
    from estm_core.families import FAMILIES

    columns = [Column("path", "file"),
               Column("start", "from s", lambda v: "" if v is None else f"{v:.2f}", "right", hidden=not segments),
               Column("duration", "seconds", lambda v: "" if v is None else f"{v:.2f}", "right")]
    for task in tasks:
        columns += [Column(task, FAMILIES[task].decides),
                    Column(f"{task}_probability", "p", lambda v: "" if v is None else f"{v:.2f}", "right")]
    # the full distributions go to --json/--csv (the table shows only the columns above)
    columns += [Column(f"{task}_{label}", f"{task}_{label}", hidden=True) for task in tasks for label in labels[task]]
    return columns


@handles_errors
def classify(
    files: Files,
    task: Annotated[str, typer.Option(
        "--task", help=f"{', '.join(trained_by('classifier'))}, or all available.")] = "all",
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", help="A model name or path (repeat for several tasks); default: the newest of each family.")] = None,
    hop: Annotated[Optional[float], typer.Option(
        "--hop", callback=bounded(0.01, 3600),
        help="Seconds between segment starts, 0.01 to 3600 (default: the segment length, no overlap).")] = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", callback=bounded(1, 1024), help="Segments classified at once (1 to 1024).")] = 16,
    segments: Annotated[bool, typer.Option("--segments", help="Add a row per segment.")] = False,
    recursive: Recursive = False,
    device: Device = "auto",
    json_: Json = False,
    csv_: Csv = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Classify whole files: each is cut into the model's segments, and their probabilities are averaged. Where
    the store holds no mer model, the cue recogniser (no network) gives the quadrant of the whole file, and says so.

    Every command refuses the same files, each with one line: under 1 s (too short to measure), silent once any DC
    offset is removed, NaN samples, or a float file's samples beyond full scale (refused, not clipped). Exit code 0
    when every file was classified, 3 when some failed, 1 when none could be.
    """
    from estm_core import audio
    from estm_core.classify import classify_file, recognised_decision

    mode = output_mode(json_, csv_)
    paths, problems = expand_inputs(files, recursive, quiet)
    paths, unreadable = readable(paths)
    problems += unreadable
    classifiers, recognising = _classifiers(task, model, device, batch_size, quiet)
    tasks = (["mer"] if recognising else []) + [classifier.family for classifier in classifiers]
    labels = {classifier.family: classifier.info.labels for classifier in classifiers}
    if recognising:
        from estm_core.labels import QUADRANTS

        labels["mer"] = list(QUADRANTS.labels)
    batch = Batch(_columns(tasks, labels, segments), mode)
    for item, cause in problems:
        batch.failed(item, cause)
    with ProgressBar("classifying", len(paths), quiet=quiet) as bar:
        for path in paths:
            try:
                result = classify_file(path, classifiers, hop_seconds=hop, batch_size=batch_size,
                                       keep_segments=segments, require_sound=True)
                if recognising:
                    result.decisions = {"mer": recognised_decision(path), **result.decisions}
                    result.duration = result.duration or audio.probe(path).duration
            except Exception as error:  # that file's line; the batch goes on
                batch.failed(path, file_failure(error, debug))
            else:
                _record(batch, path, result, mode)
            bar.advance()
    raise typer.Exit(batch.finish())


def _classifiers(task: str, model: list[str] | None, device: str, batch_size: int, quiet: bool):
    """(the classifiers for `task`, whether the cue recogniser stands in for a missing mer model), each checked for
    what `batch_size` segments of it would hold before any file is read."""
    from estm_core.classify import RECOGNISER, TASKS, check_batch_size, load_classifiers
    from estm_core.device import choose_device
    from estm_core.errors import EstmError
    from estm_core.model_file import read_info
    from estm_core.store import resolve

    if task not in (*TASKS, "all"):
        raise EstmError(f"--task must be one of {', '.join(TASKS)} or all")
    chosen = {}
    for name in model or []:
        family = read_info(resolve(name)).family
        if family not in TASKS:
            raise EstmError(f"{name} is a {family} model, not a classifier")
        chosen[family] = name
    tasks = list(chosen) if chosen and task == "all" else list(TASKS) if task == "all" else [task]
    recognising = "mer" in tasks and "mer" not in chosen and not _has_model("mer")
    target = choose_device(device)
    if recognising:  # the other tasks as far as the store has models for them
        modelled = [name for name in tasks if name != "mer" and _has_model(name)]
        classifiers = load_classifiers(modelled, chosen, target) if modelled else []
    else:
        classifiers = load_classifiers(tasks, chosen, target, skip_missing=task == "all" and not chosen)
    for classifier in classifiers:
        check_batch_size(batch_size, classifier.segment_length)
    used = [f"{c.family} {c.name}" for c in classifiers] + ([f"mer: the {RECOGNISER} (no mer model in the store)"]
                                                             if recognising else [])
    note(f"device: {target}; models: " + ", ".join(used), quiet)
    return classifiers, recognising


def _record(batch, path, result, mode: str) -> None:
    """A classified file's row (and with --segments, a row per segment)."""
    record = {"path": str(path), "start": None, "duration": result.duration}
    for name, decision in result.decisions.items():
        record[name] = decision["label"]
        record[f"{name}_probability"] = decision["probability"]
        record.update({f"{name}_{label}": p for label, p in decision["probabilities"].items()})
    if mode == "json":
        record["models"] = {name: {"model": d["model"], "version": d["model_version"], "segments": d["segments"]}
                            for name, d in result.decisions.items()}
    batch.ok(record)
    for segment in result.segments:
        best = max(segment["probabilities"], key=segment["probabilities"].get)
        batch.extra({
            "path": str(path), "start": segment["start"], "duration": segment["end"] - segment["start"],
            segment["task"]: best, f"{segment['task']}_probability": segment["probabilities"][best],
            **{f"{segment['task']}_{label}": p for label, p in segment["probabilities"].items()},
        })


def _has_model(family: str) -> bool:
    from estm_core.errors import StoreError
    from estm_core.store import find_model

    try:
        find_model(family)
    except StoreError:
        return False
    return True
