"""`estm evaluate`: a classifier's metrics, a transfer judged (a method or a learned model), a WaveNet's likelihood; the
core computes each evaluation and writes its report files, this module prints them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from estm_core.families import METHODS, trained_by, transferring

from .common import (
    MAX_JOBS, MAX_SEED, Debug, Device, Force, Json, ProgressBar, Quiet, SegmentCache, bounded, cache_folder,
    handles_errors, note, plain, stdout,
)
from .evaluate_wavenet import wavenet

app = typer.Typer(help="Evaluate trained models on held-out data.", no_args_is_help=True)

Part = Annotated[str, typer.Option("--part", help="train, validation or test.")]
KeepAudio = Annotated[bool, typer.Option(
    "--keep-audio", help="Also keep every system's output audio, in the report folder's audio/ (for `estm listen "
                         "make`: people hear them).")]


@app.command()
@handles_errors
def classifier(
    data: SegmentCache,
    model: Annotated[Optional[str], typer.Option(
        "--model", help=f"A classifier ({', '.join(trained_by('classifier'))}): name or path (default: the newest "
                        "one that knows the data's labels).")] = None,
    part: Part = "test",
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Report folder (default: evaluations/MODEL-PART).")] = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", callback=bounded(1, 1024), help="Segments classified at once (1 to 1024).")] = 32,
    device: Device = "auto",
    force: Force = False,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Accuracy, macro-F1, per-class precision and recall, and the confusion matrix (CSV and PNG)."""
    from estm_core import model_file, store
    from estm_core.classify import check_batch_size
    from estm_core.device import choose_device
    from estm_core.evaluate import classifier_report_files, evaluate_classifier, write_classifier_report
    from estm_core.files import check_writable

    model_path = store.resolve(model) if model is not None else _classifier_for(data, part)
    check_batch_size(batch_size, model_file.read_info(model_path).audio.segment_length)  # before any work
    out_dir = output or Path("evaluations") / f"{store.model_name(model_path)}-{part}"
    for path in classifier_report_files(out_dir):  # before the work, not after it
        check_writable(path, force)
    target = choose_device(device)
    note(f"device: {target}", quiet)
    with ProgressBar("evaluating", None, unit="batches", quiet=quiet) as bar:
        summary, predictions = evaluate_classifier(str(model_path), data, part=part, device=target,
                                                   batch_size=batch_size, on_progress=bar)
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


def _classifier_for(data: Path, part: str) -> Path:
    """The newest classifier whose labels include every label of `part` of the cache `data`."""
    from estm_core import model_file, store
    from estm_core.datasets.segment import read_manifest
    from estm_core.errors import EstmError
    from estm_core.training.classifier import CLASSIFIER_FAMILIES

    manifest = read_manifest(data)
    segments = manifest[manifest["part"] == part]
    fitting = []
    for path in filter(None, map(store.newest, CLASSIFIER_FAMILIES)):
        info = model_file.read_info(path)
        column = info.training.label_column
        if column in segments.columns and set(segments[column]) <= set(info.labels):
            fitting.append(path)
    if not fitting:
        raise EstmError(f"no classifier in the store knows the labels of {data}; make one with "
                        f"`estm train {'|'.join(CLASSIFIER_FAMILIES)} --data {data}`")
    return max(fitting, key=lambda path: path.stat().st_mtime)


@app.command("transfer")
@handles_errors
def transfer_(
    data: Annotated[Path, typer.Option(
        "--data", help="A split CSV of a paired corpus (`estm data synth`, then `estm data split`), the development "
                       "corpus: its --part is judged, its train part teaches the cue judge. With --pairs: the segment "
                       "cache folder (or its manifest.csv) that the pairs refer to.")],
    held_out: Annotated[Optional[Path], typer.Option(
        "--held-out", help="The split CSV of a second paired corpus that development never saw (other works, "
                           "another SoundFont; `estm data split DIR --test 1`): its test part is judged beside "
                           "--data's, by the same judges.")] = None,
    method: Annotated[Optional[str], typer.Option(
        "--method", help=f"A transfer method that needs no trained weights, to judge: {', '.join(METHODS)} "
                         "(the default, unless --model); judged asked both ways, with an emotion file (NAME) and "
                         "with the target quadrant (NAME --emotion).")] = None,
    range_: Annotated[str, typer.Option(
        "--range", help="With --method: natural (the default: edits a mixing engineer would make) or wide (large "
                        "moves, octaves).")] = "natural",
    model: Annotated[Optional[str], typer.Option(
        "--model", help=f"A learned model ({', '.join(transferring())}; name or path) to judge instead of a method "
                        "(with --pairs: default the newest of them).")] = None,
    judge: Annotated[Optional[str], typer.Option(
        "--judge", help="The mer model that judges; never the one that made the style labels (default: the newest "
                        "mer model; without one, only the cue judge).")] = None,
    part: Part = "test",
    count: Annotated[Optional[int], typer.Option(
        "--count", "-n", callback=bounded(1),
        help="How many pairs of each corpus, drawn at random (default: every pair of the part).")] = None,
    pairs: Annotated[Optional[Path], typer.Option(
        "--pairs", help="The paper's metrics instead (MSE_C, PEA, AEA, CD) for --model on the segment pairs of this "
                        "CSV (`estm data pairs`).")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Report folder (default: evaluations/METHOD-transfer-PART; with --pairs, "
                               "evaluations/MODEL-transfer-JUDGE).")] = None,
    seed: Annotated[int, typer.Option(
        "--seed", callback=bounded(0, MAX_SEED), help="Draws the pairs and their references.")] = 0,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", callback=bounded(1, MAX_JOBS), help=f"Processes analysing the corpus files (1 to {MAX_JOBS}).")
    ] = 1,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", callback=bounded(1, 256), help="With --pairs: segments decoded at once (1 to 256).")] = 8,
    keep_audio: KeepAudio = False,
    device: Device = "auto",
    force: Force = False,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Does a transfer transfer? Each pair asks for an excerpt in another quadrant, with another excerpt as the
    emotion reference; the method's output is judged beside copy-content, copy-reference and the true target by a
    mer model and a cue judge, with its distance to the target, the content it keeps and the cues it moved. With
    --held-out, on the development corpus and a held-out one side by side.
    """
    from estm_core.device import choose_device

    _check_which_evaluation(method, model, pairs, held_out, range_, keep_audio)
    if pairs is not None:
        _paper_metrics(model, pairs, cache_folder(data), judge, output, batch_size, choose_device(device), force,
                       json_, quiet)
        return
    _judged_transfer(data, held_out, method, model, range_, judge, part, count, output, seed, jobs, device, force,
                     json_, quiet, keep_audio)


def _check_which_evaluation(method, model, pairs, held_out, range_, keep_audio=False) -> None:
    """A method is judged on a paired corpus; the paper's metrics (--pairs) are a learned model's alone."""
    from estm_core.errors import EstmError

    if method is not None and (model is not None or pairs is not None):
        raise EstmError("--method judges a method that needs no weights: leave out --model and --pairs")
    if pairs is not None and (held_out is not None or range_ != "natural" or keep_audio):
        raise EstmError("--held-out, --range and --keep-audio are for the judged transfer: leave out --pairs")


def _judged_transfer(data, held_out, method, model, range_, judge, part, count, output, seed, jobs, device, force,
                     json_, quiet, keep_audio=False) -> None:
    """A method (asked both ways) or a learned model judged on a paired corpus, and on a held-out one beside it."""
    from estm_core import transfer_evaluation as evaluation
    from estm_core.datasets.split import PARTS
    from estm_core.device import choose_device
    from estm_core.errors import EstmError
    from estm_core.evaluate import transfer_report_files, write_transfer_report
    from estm_core.files import check_writable

    if part not in PARTS:
        raise EstmError(f"--part must be one of {', '.join(PARTS)}, not {part!r}")
    split = _paired_split(data)
    held_out_split = None if held_out is None else _paired_split(held_out)
    if held_out_split is not None:
        evaluation.check_held_out(held_out_split, split)
    target = choose_device(device)
    name, methods, labellers = _judged_systems(method, model, range_, target)
    out_dir = output or Path("evaluations") / f"{name}-transfer-{part}"
    for path in transfer_report_files(out_dir):  # before the work, not after it
        check_writable(path, force)
    if keep_audio:  # each output also saved where `estm listen make` finds it again
        from estm_core.transfer_outputs import check_kept_folder, keeping

        methods = keeping(methods, check_kept_folder(out_dir, force), force)
    note(f"device: {target}; systems: {', '.join(methods)}", quiet)
    with ProgressBar("judging", None, unit="pairs", quiet=quiet) as bar:
        summary, table = evaluation.evaluate(methods, split, part=part, held_out=held_out_split, judge=judge,
                                             labellers=labellers, count=count, seed=seed, jobs=jobs, device=target,
                                             on_progress=bar)
    for corpus, source in zip(summary["corpora"], (data, held_out)):
        summary["corpora"][corpus]["data"] = str(source)
    if model is None and (method or "cues") == "cues":  # the cue method on signals whose right answer is known
        from estm_core.transfer_artifacts import check_all

        summary["artifacts"] = check_all(range_)
    written = write_transfer_report(summary, table, out_dir, methods=methods, force=force)
    if json_:
        print(json.dumps(plain({**summary, "files": [str(path) for path in written]})))
        return
    _print_judged(name, summary)
    for check, result in summary.get("artifacts", {}).items():
        stdout.print(f"artifact check {check}: {result['value']:.2f} (limit {result['limit']:.2f}) "
                     f"{'passed' if result['passed'] else 'FAILED'}: {result['what']}", highlight=False)
    note(f"report: {', '.join(str(path) for path in written)}", quiet)


def _paired_split(path: Path):
    """A paired corpus's split CSV, its paths made absolute (they are relative to the CSV's folder)."""
    from estm_core.datasets.split import read_split

    split = read_split(path)
    split["path"] = [str((Path(path).parent / file).resolve()) for file in split["path"]]
    return split


def _judged_systems(method: str | None, model: str | None, range_: str, device) -> tuple[str, dict, tuple]:
    """(the report's name, the systems judged as {name: method}, the models that labelled their training data):
    a method asked both ways, with an emotion file (NAME) and with the target quadrant (NAME --emotion), or one
    learned model."""
    from estm_core import transfer_evaluation as evaluation
    from estm_core.errors import EstmError
    from estm_core.families import TransferSettings, check_settings, method_module

    if model is not None:
        if range_ != "natural":
            raise EstmError("--range is a method's (--method): a learned model (--model) has no range to choose")
        run, name, labeller = evaluation.model_method(model, device)
        return name, {name: run}, () if labeller is None else (labeller,)
    name = method or "cues"
    module = method_module(name)
    settings = check_settings(module, TransferSettings(range=range_))
    methods = {name: module.evaluation_method(settings, asked="reference"),
               f"{name} --emotion": module.evaluation_method(settings, asked="quadrant")}
    return name if range_ == "natural" else f"{name}-{range_}", methods, ()


def _print_judged(name: str, summary: dict) -> None:
    """Per corpus, the judged transfer's table (a row for each baseline, method and the ceiling); then per corpus
    and judge, each method's confusion matrix."""
    from rich.columns import Columns

    judges = {"mer": summary["judges"]["mer"], "cue_judge": "the cue judge"}
    judged = [judge for judge, title in judges.items() if title]
    stdout.print(f"{name}, judged by {' and '.join(judges[judge] for judge in judged)}, which learned from the "
                 "development corpus alone. Per judge: the share heard in the asked quadrant ((a-b): its 95 % "
                 "interval; chance 0.25), and in the asked arousal and valence where the pair flips them (chance "
                 "0.5); the share of arousal flips whose loudness moved as asked; the chroma kept.", highlight=False)
    for corpus, scores in summary["corpora"].items():
        ceiling = ", ".join(f"{judges[judge]} {accuracy:.2f}" for judge, accuracy in scores["ceiling"].items())
        stdout.print(f"\n{corpus}: {scores['pairs']} pairs of {scores['excerpts']} {scores['part']} excerpts; "
                     f"ceiling (the target heard in its quadrant): {ceiling}", highlight=False)
        stdout.print(_judged_table(scores, judged))
    for corpus, scores in summary["corpora"].items():
        for judge in judged:
            stdout.print(f"\n{corpus}, {judges[judge]}: asked quadrant (rows) by heard quadrant (columns)",
                         highlight=False)
            stdout.print(Columns([_confusion_table(method, scores["systems"][method]["judges"][judge])
                                  for method in summary["methods"]], padding=(0, 4)))


def _judged_table(scores: dict, judged: list[str]) -> Table:
    """One corpus's systems by each judge's quadrant heard (with its interval), arousal and valence flips, then the
    share of arousal asks whose loudness moved the asked way and the chroma kept."""
    titles = {"mer": "mer", "cue_judge": "cue judge"}
    view = Table(show_edge=False)
    view.add_column("system")
    for judge in judged:  # the judge named over its first column: the three are read as one group
        for title, measure in zip((titles[judge], "", ""), ("quadrant", "arousal", "valence")):
            view.add_column(f"{title}\n{measure}", justify="right")
    view.add_column("loudness\nas asked", justify="right")
    view.add_column("chroma\nkept", justify="right")
    for system, figures in scores["systems"].items():
        cells = []
        for judge in judged:
            heard = figures["judges"][judge]
            cells += [_with_interval(heard["target_accuracy"], heard["intervals"]["target_accuracy"]),
                      _share(heard["arousal_flips"]), _share(heard["valence_flips"])]
        view.add_row(system, *cells, _share(figures["loudness_direction"]), _share(figures["chroma_correlation"]))
    return view


def _share(value: float | None) -> str:
    """A share to two places; a dash where there was nothing to count (no pair asked for it)."""
    return "-" if value is None or value != value else f"{value:.2f}"


def _with_interval(share: float, interval: list[float] | None) -> str:
    return _share(share) if interval is None else f"{_share(share)} ({interval[0]:.2f}-{interval[1]:.2f})"


def _confusion_table(method: str, heard: dict) -> Table:
    """A method's confusion matrix by one judge (counts), with the share of each asked quadrant heard in it."""
    view = Table(title=method, show_edge=False)
    quadrants = list(heard["confusion"])
    view.add_column("asked")
    for quadrant in quadrants:
        view.add_column(quadrant, justify="right")
    view.add_column("heard as\nasked", justify="right")
    for asked, counts in heard["confusion"].items():
        view.add_row(asked, *(str(counts[quadrant]) for quadrant in quadrants),
                     _share(heard["per_quadrant"][asked]["share"]))
    return view


def _paper_metrics(model, pairs, data, judge, output, batch_size, target, force, json_, quiet) -> None:
    """The paper's transfer metrics on segment pairs: MSE_C, PEA, AEA, CD, and on SynthEmo the distance to the true
    target."""
    import pandas as pd

    from estm_core import store
    from estm_core.evaluate import evaluate_transfer, transfer_report_files, write_transfer_report
    from estm_core.files import check_writable

    model_path = store.find_model(transferring(), model)
    judge_path = store.find_model("mer", judge)
    out_dir = output or Path("evaluations") / f"{store.model_name(model_path)}-transfer-{store.model_name(judge_path)}"
    for path in transfer_report_files(out_dir, judged=False):  # before the work, not after it
        check_writable(path, force)
    note(f"device: {target}", quiet)
    table = pd.read_csv(pairs, dtype={"content": str, "style": str, "target": str}, keep_default_na=False)
    with ProgressBar("evaluating", len(table), unit="pairs", quiet=quiet) as bar:
        summary, per_pair = evaluate_transfer(str(model_path), table, data, str(judge_path), device=target,
                                              batch_size=batch_size, on_progress=bar)
    written = write_transfer_report(summary, per_pair, out_dir, force=force)
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
    note(f"report: {', '.join(str(path) for path in written)}", quiet)


app.command("wavenet")(wavenet)
