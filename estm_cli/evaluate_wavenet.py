"""`estm evaluate wavenet`: WaveNets' held-out likelihood and, with a judge, what their generated music is heard as."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .common import MAX_JOBS, MAX_SEED, Debug, Device, Force, Json, ProgressBar, Quiet, bounded, handles_errors, note, \
    plain, stdout


@handles_errors
def wavenet(
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", help="A wavenet model; repeat it to compare several trained on the same data, e.g. one on cue "
                        "curves, one on labels and one on neither (default: the newest).")] = None,
    judge: Annotated[Optional[str], typer.Option(
        "--judge", help="A classifier whose labels include those of the training audio (a mer model for an emotion "
                        "corpus): clips generated per label are then judged by it and by the cue judge (default: "
                        "none, the held-out NLL and accuracy only).")] = None,
    count: Annotated[int, typer.Option(
        "--count", "-n", callback=bounded(1, 256), help="Clips generated per label and model (1 to 256).")] = 32,
    seconds: Annotated[float, typer.Option(
        "--seconds", callback=bounded(above=0, high=600), help="Length of each judged clip (at most 600).")] = 4.0,
    temperature: Annotated[float, typer.Option(
        "--temperature", callback=bounded(above=0, high=100), help="Sampling temperature of the judged clips.")
    ] = 0.9,
    seed: Annotated[int, typer.Option(
        "--seed", callback=bounded(0, MAX_SEED), help="Seeds the clips' sampling and sketches.")] = 0,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Report folder for the judged clips (default: evaluations/MODEL-generation).")] = None,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", callback=bounded(1, MAX_JOBS), help="Training files analysed in parallel (processes).")] = 1,
    device: Device = "auto",
    force: Force = False,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Held-out NLL and accuracy of each WaveNet; with --judge, how often the clips it generates for each label are
    heard as it (and for quadrants, in the asked arousal and valence), beside the training audio (the ceiling), and
    how close they follow the cue curves asked."""
    from estm_core.device import choose_device
    from estm_core.evaluate import evaluate_wavenet, write_generation_report
    from estm_core.files import check_writable
    from estm_core.generation_evaluation import evaluate_generation

    target = choose_device(device)
    note(f"device: {target}", quiet)
    names = model or [None]
    likelihoods = [evaluate_wavenet(name, seed=seed, device=target) for name in names]
    summary = {"likelihood": likelihoods}
    if judge is not None:
        output = output or Path("evaluations") / f"{likelihoods[0]['model']}-generation"
        for path in (output / "evaluation.json", output / "clips.csv"):
            check_writable(path, force)
        with ProgressBar("generating", None, unit="samples", quiet=quiet) as bar:
            judged, clips = evaluate_generation([item["model"] for item in likelihoods], judge=judge, per_label=count,
                                                seconds=seconds, temperature=temperature, seed=seed, device=target,
                                                jobs=jobs, on_progress=bar)
        summary["generation"] = judged
        written = write_generation_report(summary, clips, output, force=force)
    if json_:
        print(json.dumps(plain(summary)))
        return
    _print_likelihoods(likelihoods)
    if judge is not None:
        _print_generation(summary["generation"])
        note(f"report: {', '.join(str(path) for path in written)}", quiet)


def _print_likelihoods(likelihoods: list[dict]) -> None:
    for item in likelihoods:
        held_out = (f"held-out NLL {item['held_out_nll']:.4g} nats, accuracy {item['held_out_accuracy']:.3f}"
                    if "held_out_nll" in item else "no held-out audio in the store")
        asked = " and ".join(part for part in (", ".join(item["labels"]), "cue curves" if item["curves"] else "")
                             if part) or "nothing"
        stdout.print(f"{item['model']} (conditioned on {asked}): {held_out}", highlight=False)


def _print_generation(judged: dict) -> None:
    judges = [("cue_judge", "cue judge"), *([("judge", judged["judge"])] if judged["judge"] else [])]
    stdout.print(f"\n{judged['per_label']} clips of {judged['seconds']:g} s per label and model, judged by "
                 f"{' and '.join(title for _, title in judges)} (chance {judged['chance']:.2f}); the cue judge: "
                 f"{judged['cue_judge']}. Tempo and level: the share of clips within 15 % of the onsets per second "
                 "and 2 dB of the level of the cue curves asked.", highlight=False)
    quadrants = any("arousal" in figures["overall"].get("cue_judge", {}) for figures in judged["systems"].values())
    view = Table(show_edge=False)
    view.add_column("system")
    view.add_column("asked by")
    for _, title in judges:
        for heading in ("label", *(("arousal", "valence") if quadrants else ())):
            view.add_column(f"{title}\n{heading}", justify="right")
    for label in judged["labels"]:
        view.add_column(f"{label}\n", justify="right")
    view.add_column("tempo\nas asked", justify="right")
    view.add_column("level\nas asked", justify="right")
    for system, figures in judged["systems"].items():
        overall = figures["overall"]
        cells = []
        for key, _ in judges:
            cells += [_share(overall[key][measure]) for measure in ("accuracy", "arousal", "valence")
                      if measure in overall[key]]
        cells += [_share(figures[label]["cue_judge"]["accuracy"]) for label in judged["labels"]]
        cells += [_share(overall.get("tempo_within")), _share(overall.get("level_within"))]
        view.add_row(system, figures["asked_by"] or "-", *cells)
    stdout.print(view)
    stdout.print("(per-label columns: the cue judge's share heard as asked)", highlight=False)


def _share(figure: dict | None) -> str:
    if not figure or figure["share"] != figure["share"]:
        return "-"
    interval = figure.get("interval")
    return f"{figure['share']:.2f}" + (f" ({interval[0]:.2f}-{interval[1]:.2f})" if interval else "")
