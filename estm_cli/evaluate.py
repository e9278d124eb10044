"""`estm evaluate classifier`: metrics of a trained model on held-out data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .common import Debug, Device, Force, Json, ProgressBar, Quiet, handles_errors, note, plain, stdout

app = typer.Typer(help="Evaluate trained models on held-out data.", no_args_is_help=True)


@app.command()
@handles_errors
def classifier(
    model: Annotated[str, typer.Option("--model", help="A classifier (mer, genre, emotion): name or path.")],
    data: Annotated[Path, typer.Option("--data", help="A segment cache folder from `estm data segment`.")],
    part: Annotated[str, typer.Option("--part", help="train, validation or test.")] = "test",
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Report folder (default: evaluations/MODEL-PART).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    device: Device = "auto",
    force: Force = False,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Accuracy, macro-F1, per-class precision and recall, and the confusion matrix (CSV and PNG)."""
    from estm_core import store
    from estm_core.device import choose_device
    from estm_core.evaluate import classifier_report_files, evaluate_classifier, write_classifier_report
    from estm_core.files import check_writable

    out_dir = output or Path("evaluations") / f"{store.model_name(store.resolve(model))}-{part}"
    for path in classifier_report_files(out_dir):  # before the work, not after it
        check_writable(path, force)
    target = choose_device(device)
    note(f"device: {target}", quiet)
    with ProgressBar("evaluating", None, unit="batches", quiet=quiet) as bar:
        summary, predictions = evaluate_classifier(model, data, part=part, device=target, batch_size=batch_size,
                                                   on_progress=bar)
    written = write_classifier_report(summary, predictions, out_dir, force=force)
    if json_:
        print(json.dumps(plain({**summary, "files": [str(path) for path in written]})))
        return
    stdout.print(f"{summary['model']} on {summary['count']} {part} segments: accuracy {summary['accuracy']:.1%}, "
                 f"macro-F1 {summary['macro_f1']:.3f} (majority class {summary['chance']:.1%}); "
                 f"per song {summary['songs']['accuracy']:.1%} of {summary['songs']['count']}", highlight=False)
    table = Table(show_edge=False)
    for header in ("label", "precision", "recall", "F1", "support"):
        table.add_column(header, justify="left" if header == "label" else "right")
    for label, scores in summary["per_class"].items():
        table.add_row(label, f"{scores['precision']:.3f}", f"{scores['recall']:.3f}", f"{scores['f1']:.3f}",
                      str(scores["support"]))
    stdout.print(table)
    note(f"report: {', '.join(str(path) for path in written)}", quiet)


@app.command("transfer")
@handles_errors
def transfer_(
    model: Annotated[str, typer.Option("--model", help="An estm1 or estm2 model: name or path.")],
    pairs: Annotated[Path, typer.Option("--pairs", help="A pairs CSV from `estm data pairs`.")],
    data: Annotated[Path, typer.Option("--data", help="The segment cache the pairs refer to.")],
    judge: Annotated[str, typer.Option(
        "--judge", help="A mer model that judges the outputs' emotion; not the one that made the style labels.")],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Report folder (default: evaluations/MODEL-transfer-JUDGE).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    device: Device = "auto",
    force: Force = False,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """The paper's transfer metrics: MSE_C, PEA, AEA, CD, and on SynthEmo the distance to the true target."""
    import pandas as pd

    from estm_core import store
    from estm_core.device import choose_device
    from estm_core.evaluate import evaluate_transfer
    from estm_core.files import atomic_write, check_writable, write_csv

    out_dir = output or Path("evaluations") / f"{store.model_name(store.resolve(model))}-transfer-{judge}"
    for path in (out_dir / "evaluation.json", out_dir / "pairs.csv"):  # before the work, not after it
        check_writable(path, force)
    target = choose_device(device)
    note(f"device: {target}", quiet)
    table = pd.read_csv(pairs, dtype={"content": str, "style": str, "target": str}, keep_default_na=False)
    with ProgressBar("evaluating", len(table), unit="pairs", quiet=quiet) as bar:
        summary, per_pair = evaluate_transfer(model, table, data, judge, device=target, batch_size=batch_size,
                                              on_progress=bar)
    with atomic_write(out_dir / "evaluation.json", force) as temporary:
        temporary.write_text(json.dumps(plain(summary), indent=2))
    write_csv(per_pair, out_dir / "pairs.csv", force)
    if json_:
        print(json.dumps(plain(summary)))
        return
    stdout.print(f"{summary['model']} ({summary['family']}) on {summary['pairs']} pairs, judged by {summary['judge']}",
                 highlight=False)
    table_view = Table(show_edge=False)
    table_view.add_column("metric")
    table_view.add_column("value", justify="right")
    for key in ("mse_c", "pea", "aea", "cd_x1e5", "output_keeps_content_emotion", "lsd_target_db",
                "lsd_content_target_db", "chance"):
        if summary.get(key) is not None:
            table_view.add_row(key, f"{summary[key]:.4g}")
    stdout.print(table_view)
    note(f"report: {out_dir}/evaluation.json, {out_dir}/pairs.csv", quiet)


@app.command("wavenet")
@handles_errors
def wavenet_(
    model: Annotated[Optional[str], typer.Option("--model", help="A wavenet model (default: the newest).")] = None,
    judge: Annotated[Optional[str], typer.Option(
        "--judge", help="A classifier whose labels include the model's: judges clips generated per label.")] = None,
    per_label: Annotated[int, typer.Option("--per-label", help="Clips generated per label for the judge.")] = 4,
    seconds: Annotated[float, typer.Option("--seconds", help="Length of each judged clip.")] = 4.0,
    temperature: Annotated[float, typer.Option("--temperature")] = 0.9,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Device = "auto",
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Held-out NLL and accuracy of a WaveNet; with --judge, how often its clips are judged as the label asked for."""
    from estm_core.device import choose_device
    from estm_core.evaluate import evaluate_wavenet

    target = choose_device(device)
    note(f"device: {target}", quiet)
    with ProgressBar("generating", None, unit="samples", quiet=quiet) as bar:
        summary = evaluate_wavenet(model, judge=judge, per_label=per_label, seconds=seconds, temperature=temperature,
                                   seed=seed, device=target, on_progress=bar)
    if json_:
        print(json.dumps(plain(summary)))
        return
    stdout.print(f"{summary['model']} (labels: {', '.join(summary['labels']) or 'none'})", highlight=False)
    for key in ("held_out_nll", "held_out_accuracy", "judged_label_accuracy", "chance", "brightness_order_agreement"):
        if summary.get(key) is not None:
            stdout.print(f"  {key:<26} {summary[key]:.4g}", highlight=False)
    for row in summary.get("cues", []):
        data = (f"training audio {row['data_rms_db']:6.1f} dB {row['data_centroid_hz']:6.0f} Hz"
                if row["data_rms_db"] is not None else "")
        stdout.print(f"  {row['label']:<8} generated {row['generated_rms_db']:6.1f} dB {row['generated_centroid_hz']:6.0f} Hz"
                     f"   {data}", highlight=False)
