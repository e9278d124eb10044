"""`estm demo`: the whole mission end to end on a synthetic corpus, with a report."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from .common import Debug, Device, Force, Json, ProgressBar, Quiet, handles_errors, note, plain


@handles_errors
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the corpus, figures, audio and report.")]
    = Path("estm-demo"),
    fast: Annotated[bool, typer.Option("--fast", help="Tiny models, about 2 minutes (a smoke test).")] = False,
    source: Annotated[str, typer.Option(
        "--source", help="The corpus: scores (real works played by SoundFont instruments) or tones (SynthEmo).")]
    = "scores",
    device: Device = "auto",
    force: Force = False,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Make a paired emotion corpus, train small models of every family (into the store as demo-*), classify, transfer,
    generate, evaluate, and write OUTPUT/report.html. A rerun reuses what is done; --force starts over."""
    from dataclasses import replace

    from estm_core.demo import PLANS, SOURCES, Demo
    from estm_core.device import choose_device
    from estm_core.errors import EstmError

    if source not in SOURCES:
        raise EstmError(f"--source must be {' or '.join(SOURCES)}, not {source!r}")
    target = choose_device(device)
    plan = replace(PLANS["fast" if fast else "full"], source=source)
    runner = Demo(output, plan, force=force, device=str(target), say=lambda line: note(line, quiet),
                  progress=lambda description, total, unit: ProgressBar(description, total, unit=unit, quiet=quiet))
    note(f"estm demo ({plan.name}, {SOURCES[source].name}) into {output}; device: {target}", quiet)
    started = time.perf_counter()
    reports = runner.run()
    elapsed = time.perf_counter() - started
    done = runner.state["done"]
    summary = {"report": str(reports[0]), "markdown": str(reports[1]), "plan": plan.name,
               "wall_seconds": round(elapsed, 1), "models": sorted(key[6:] for key in done if key.startswith("train:")),
               "recognition": done["recognition"], "transfer": done["transfer"],
               "generation": {system: {key: figures["overall"]["cue_judge"][key]["share"]
                                       for key in ("accuracy", "arousal", "valence")}
                              for system, figures in done["generation"]["systems"].items()}}
    if json_:
        print(json.dumps(plain(summary)))
        return
    note(f"report: {reports[0]} ({elapsed / 60:.1f} min)", quiet)
    note("try: estm transfer content.wav emotion.wav -o out.wav | estm classify song.mp3 | "
         "estm generate --emotion Q1", quiet)
