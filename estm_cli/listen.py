"""`estm listen`: a blind listening test in the browser. `make` builds a test folder from an `estm evaluate
transfer` report (or from folders of files), `serve` runs it for listeners, `results` reads their answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .common import MAX_SEED, Debug, Force, Json, ProgressBar, Quiet, bounded, handles_errors, note, plain, stdout

app = typer.Typer(help="A blind listening test in the browser: make it, serve it, read its results.",
                  no_args_is_help=True)

TestFolder = Annotated[Path, typer.Argument(help="A test folder made by `estm listen make`.")]


@app.command()
@handles_errors
def make(
    sources: Annotated[list[str], typer.Argument(
        help="An `estm evaluate transfer` report folder (made with --keep-audio), or folders of audio files, one "
             "per system (named after the folder, or NAME=FOLDER); a file's path within its folder names its item "
             "in every folder, and a Q1..Q4 in that path the quadrant it was asked for.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The test folder to make.")] = Path("listening-test"),
    reference: Annotated[Optional[Path], typer.Option(
        "--reference", help="With folders: the originals (the same paths), rated against in quality trials.")] = None,
    corpus: Annotated[Optional[str], typer.Option(
        "--corpus", help="From a report: development or held-out (default: held-out where it has one).")] = None,
    count: Annotated[Optional[int], typer.Option(
        "--count", "-n", callback=bounded(1), help="How many items (pairs), drawn balanced over the asked quadrants "
                                                   "(default: 8 from a report, all from folders).")] = None,
    quality: Annotated[Optional[int], typer.Option(
        "--quality", callback=bounded(0), help="How many of them also get a quality trial (default: 4; all from "
                                               "folders).")] = None,
    duplicates: Annotated[Optional[int], typer.Option(
        "--duplicates", callback=bounded(0), help="How many emotion trials come twice, hidden (default: 10 %, at "
                                                  "least 2).")] = None,
    listeners: Annotated[int, typer.Option(
        "--listeners", callback=bounded(1, 10000), help="How many listeners' orders to plan.")] = 20,
    seconds: Annotated[Optional[float], typer.Option(
        "--seconds", callback=bounded(above=0, high=600), help="Play at most this much of each file (default: all "
                                                              "of it).")] = None,
    level: Annotated[float, typer.Option(
        "--level", callback=bounded(-70, 0), help="Loudness every stimulus is set to, LUFS (lower where a peak would "
                                                  "pass -1 dBFS).")] = -23.0,
    no_match: Annotated[bool, typer.Option("--no-match", help="Keep each file's own loudness.")] = False,
    seed: Annotated[int, typer.Option("--seed", callback=bounded(0, MAX_SEED), help="Draws items and orders.")] = 0,
    force: Force = False,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Make a blind listening test: loudness-matched audio under opaque names, and a plan of emotion and quality
    trials with hidden duplicates, in an order of its own for each listener."""
    from estm_core.listening.make import make_test
    from estm_core.listening.plan import EMOTION

    items, made, from_report = _items(sources, reference, corpus)
    with ProgressBar("preparing audio", None, unit="files", quiet=quiet) as bar:
        plan = make_test(items, output, made=made, count=count if count or not from_report else 8,
                         quality=quality if quality is not None or not from_report else 4, duplicates=duplicates,
                         listeners=listeners, seed=seed, match=not no_match, level=level, seconds=seconds,
                         force=force, on_progress=bar)
    emotion = [trial for trial in plan["trials"] if trial["kind"] == EMOTION]
    repeated = sum(bool(trial.get("duplicate_of")) for trial in emotion)
    facts = {"test": str(output), "emotion_trials": len(emotion), "hidden_duplicates": repeated,
             "quality_trials": len(plan["trials"]) - len(emotion), "stimuli": len(plan["stimuli"]),
             "listeners": listeners, "level_lufs": plan["made"]["level_lufs"]}
    if json_:
        print(json.dumps(plain(facts)))
        return
    level_note = "not matched" if no_match else f"matched at {facts['level_lufs']:.1f} LUFS"
    stdout.print(f"{output}: {len(emotion)} emotion trials ({repeated} hidden duplicates), "
                 f"{facts['quality_trials']} quality trials, {facts['stimuli']} sounds ({level_note}), orders for "
                 f"{listeners} listeners", highlight=False)
    note(f"next: estm listen serve {output}", quiet)


def _items(sources: list[str], reference: Path | None, corpus: str | None):
    """(items, what the test was made from, whether from a report) for the command's arguments."""
    from estm_core.errors import EstmError
    from estm_core.listening.sources import evaluation_items, folder_items, is_evaluation

    if len(sources) == 1 and "=" not in sources[0] and is_evaluation(Path(sources[0])):
        if reference is not None:
            raise EstmError("--reference is for folders of files: a report's originals are its contents")
        items, chosen = evaluation_items(Path(sources[0]), corpus)
        return items, {"from": "evaluation", "source": str(Path(sources[0]).resolve()), "corpus": chosen}, True
    if corpus is not None:
        raise EstmError(f"--corpus is for an `estm evaluate transfer` report folder, which {sources[0]} is not "
                        "(it has no evaluation.json and pairs.csv)")
    systems = {}
    for source in sources:
        name, _, folder = source.rpartition("=") if "=" in source else (Path(source).name, "", source)
        if not name or name in systems:
            raise EstmError(f"{source}: every system needs a name of its own (NAME=FOLDER)")
        systems[name] = Path(folder)
    items = folder_items(systems, reference)
    return items, {"from": "folders", "source": {name: str(path.resolve()) for name, path in systems.items()},
                   "reference": None if reference is None else str(reference.resolve())}, False


@app.command()
@handles_errors
def serve(
    test: TestFolder,
    host: Annotated[str, typer.Option(
        "--host", help="Address to listen on: 127.0.0.1 (this computer only) unless you mean others to reach it, "
                       "e.g. 0.0.0.0 for every network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", callback=bounded(0, 65535), help="Port (0: any free one).")] = 8000,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Run the test in the browser: prints its address; answers go to TEST/answers/ as they are given. Ctrl-C
    stops it; a listener resumes with their id."""
    from estm_core.listening.server import ListeningTest, address, make_server
    from estm_core.store import lock

    listening = ListeningTest(test, on_event=lambda message: note(message, quiet))
    with lock(test / ".serve.lock", busy=f"{test} is being served already", then="open that server's address"):
        server = make_server(listening, host, port)
        print(f"listening test at {address(server)}", flush=True)
        if host != "127.0.0.1":
            note(f"listening on {host}: anyone who can reach this computer can open the test", quiet)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            note(f"stopped; the answers are in {test / 'answers'}", quiet)
        finally:
            server.server_close()


@app.command()
@handles_errors
def results(
    test: TestFolder,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Folder for results.json, results.csv, answers.csv and results.png (default: "
                               "TEST/results).")] = None,
    force: Force = False,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Per system: identification rate, arousal and valence hit rates and mean quality with 95 % intervals, the
    confusion matrices, the listeners excluded and why, and Fleiss' kappa."""
    from estm_core.files import check_writable
    from estm_core.listening.results import RESULTS_FOLDER, results_files, summarise, write_results

    summary, emotion, quality = summarise(test)
    out_dir = output or test / RESULTS_FOLDER
    for path in results_files(out_dir):  # before the work
        check_writable(path, force)
    written = write_results(summary, emotion, quality, out_dir, force=force)
    if json_:
        print(json.dumps(plain({**summary, "files": [str(path) for path in written]})))
        return
    _print_results(summary)
    note(f"results: {', '.join(str(path) for path in written)}", quiet)


def _print_results(summary: dict) -> None:
    from rich.columns import Columns

    listeners = summary["listeners"]
    stdout.print(f"{summary['test']}: {listeners['started']} listeners ({listeners['finished']} finished), "
                 f"{listeners['kept']} kept; Fleiss' kappa {_number(summary['agreement']['fleiss_kappa'])} over "
                 f"{summary['agreement']['trials']} trials. Shares with their 95 % intervals; chance: quadrant 0.25, "
                 "arousal and valence 0.5.", highlight=False)
    for listener, reasons in listeners["excluded"].items():
        stdout.print(f"excluded {listener}: {'; '.join(reasons)}", highlight=False)
    view = Table(show_edge=False)
    for header in ("system", "n", "quadrant heard\nas asked", "arousal", "valence", "kappa", "quality\nn",
                   "quality\n(0-100)"):
        view.add_column(header, justify="left" if header == "system" else "right")
    for system, figures in summary["systems"].items():
        shares = [_share(figures.get(name)) for name in ("identified", "arousal", "valence")]
        rated = figures.get("quality")
        view.add_row(system, str(figures["identified"]["items"]) if "identified" in figures else "-", *shares,
                     _number(figures.get("fleiss_kappa")), str(rated["items"]) if rated else "-",
                     _interval(rated["mean"], rated["interval"], "{:.0f}") if rated else "-")
    stdout.print(view)
    stdout.print("\nasked quadrant (rows) by the quadrant answered (columns)", highlight=False)
    stdout.print(Columns([_confusion(system, figures["confusion"]) for system, figures in summary["systems"].items()
                          if "confusion" in figures], padding=(0, 4)))


def _number(value, form: str = "{:.2f}") -> str:
    return "-" if value is None or value != value else form.format(value)


def _interval(value, interval, form: str = "{:.2f}") -> str:
    if value is None or value != value:
        return "-"
    low, high = interval
    return form.format(value) if low != low else f"{form.format(value)} ({form.format(low)}-{form.format(high)})"


def _share(figures: dict | None) -> str:
    return "-" if figures is None else _interval(figures["share"], figures["interval"])


def _confusion(system: str, confusion: dict) -> Table:
    view = Table(title=system, show_edge=False)
    view.add_column("")
    quadrants = list(confusion)
    for quadrant in quadrants:
        view.add_column(quadrant, justify="right")
    for asked, counts in confusion.items():
        view.add_row(asked, *(str(counts[heard]) for heard in quadrants))
    return view
