"""`estm data split|segment|synth|pairs`: from dataset folders to a segment cache that training reads."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from estm_core.datasets.limits import MAX_BATCH, MAX_COUNT, MAX_PAIRS, MAX_SAMPLE_RATE, MAX_SECONDS, MIN_SAMPLE_RATE

from .common import (
    MAX_JOBS, MAX_SEED, Debug, Device, Force, ProgressBar, Quiet, SegmentCache, bounded, handles_errors, note,
    report_skipped, stderr, stdout,
)

app = typer.Typer(help="Prepare datasets: split by song, segment into a cache, make SynthEmo, make transfer pairs.",
                  no_args_is_help=True)

# Every numeric option is bounded (bounded refuses nan too): an unbounded one asked for 23 GB, or an internal error.
Seed = Annotated[int, typer.Option("--seed", callback=bounded(0, MAX_SEED),
                                   help="Random seed: the same seed gives the same result.")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", callback=bounded(1, MAX_JOBS),
                                   help="Files decoded in parallel (processes).")]
SampleRate = Annotated[int, typer.Option("--sample-rate", callback=bounded(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
                                         help="Hz.")]


def _counts_table(frame, title: str) -> None:
    from estm_core.datasets.split import summary

    counts = summary(frame)
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("label")
    for part in counts.columns:
        table.add_column(part, justify="right")
    for label, row in counts.iterrows():
        table.add_row(escape(str(label) or "(none)"), *(str(value) for value in row))
    stdout.print(table)


@app.command()
@handles_errors
def split(
    folder: Annotated[Path, typer.Argument(help="The dataset's folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The split CSV file to write.")],
    layout: Annotated[str, typer.Option(
        "--layout", help="auto, deam, taffc, gtzan, emotify, synthemo or folder.")] = "auto",
    test: Annotated[Optional[float], typer.Option(
        "--test", callback=bounded(0, 1),
        help="Fraction of songs held out for testing (default 0.2, or 0 with --test-collection).")] = None,
    test_collections: Annotated[Optional[list[str]], typer.Option(
        "--test-collection", help="Hold out every song of this collection (a corpus's `collection` column) as the "
                                  "test part; repeatable.")] = None,
    val: Annotated[Optional[float], typer.Option(
        "--val", callback=bounded(0, 1),
        help="Fraction of songs for validation (default 0.08, or 0 with --test 1: a held-out corpus, all test).")
    ] = None,
    seed: Seed = 0,
    from_: Annotated[Optional[Path], typer.Option(
        "--from", help="Use an original split file (deam_split.csv, mer_taffc_split.csv) instead of drawing one.")] = None,
    jobs: Jobs = 1,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Split a dataset by song, stratified by label, into train / validation / test; write the split CSV.

    Every file is decoded to its end first: truncated, corrupt and NaN files are left out and listed (exit code 3).
    """
    from estm_core.datasets.layouts import read_dataset, without_bad_audio
    from estm_core.datasets.split import split_from_original, split_table
    from estm_core.errors import EstmError
    from estm_core.files import check_writable, write_csv

    check_writable(output, force)
    with ProgressBar("reading", None, quiet=quiet) as bar:
        dataset = read_dataset(folder, layout, on_progress=bar)
    with ProgressBar("checking", len(dataset.table), quiet=quiet) as bar:
        dataset = without_bad_audio(dataset, jobs=jobs, on_progress=bar)
    if dataset.table.empty:
        report_skipped(dataset.problems, "files")
        raise EstmError(f"{folder}: no usable audio file; nothing written")
    note(f"{dataset.layout} layout: {len(dataset.table)} songs in {folder}", quiet)
    if from_ is not None:
        result, not_found, both = split_from_original(dataset.table, from_)
        if not_found and not quiet:
            shown = ", ".join(not_found[:5]) + (" …" if len(not_found) > 5 else "")
            stderr.print(f"[yellow]{len(not_found)} songs of {from_} not found here:[/] {escape(shown)}", highlight=False)
        if both:
            note(f"{both} songs flagged both test and validation in {from_}: counted as test", quiet)
    else:
        default_test = 0.0 if test_collections else 0.2
        test = default_test if test is None else test
        validation = (0.0 if test == 1 else 0.08) if val is None else val
        result = split_table(dataset.table, test=test, validation=validation, seed=seed,
                             test_collections=test_collections or ())
    write_csv(result, output, force=force)
    _counts_table(result, f"songs per part → {output}")
    raise typer.Exit(report_skipped(dataset.problems, "files"))


@app.command()
@handles_errors
def segment(
    split_csv: Annotated[Path, typer.Argument(help="A split CSV from `estm data split`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The cache folder to write (a rerun finishes it).")],
    jobs: Annotated[int, typer.Option("--jobs", "-j", callback=bounded(1, MAX_JOBS),
                                      help="Songs decoded in parallel (processes).")] = 1,
    wav: Annotated[bool, typer.Option("--wav", help="Also write {song_id}-{k}.wav per segment, as the original.")] = False,
    sample_rate: SampleRate = 22050,
    seconds: Annotated[float, typer.Option(
        "--seconds", callback=bounded(above=0, high=MAX_SECONDS),
        help="Length of each segment (the paper's 222 264 samples at 22 050 Hz).")] = 10.08,
    hop: Annotated[Optional[float], typer.Option(
        "--hop", callback=bounded(above=0, high=MAX_SECONDS),
        help="Seconds between segment starts (default: the segment length, no overlap).")] = None,
    max_zeros: Annotated[float, typer.Option(
        "--max-zeros", callback=bounded(0, 1),
        help="Drop segments with a larger fraction of exact-zero samples.")] = 0.5,
    normalise_song: Annotated[bool, typer.Option(help="Peak-normalise each song before cutting.")] = True,
    normalise_segment: Annotated[bool, typer.Option(help="Peak-normalise each segment.")] = True,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Cut every song of a split into fixed-length segments: a manifest CSV and one int16 memory-mapped cache.

    Resumable: a rerun skips the songs already done; --force starts over. Bad files are listed and skipped (exit
    code 3), by the rerun of a finished cache too. One run at a time writes a cache folder: a second is refused.
    """
    from estm_core.datasets.segment import SegmentSettings, segment_split
    from estm_core.datasets.split import read_split
    from estm_core.errors import EstmError

    segment_length = round(seconds * sample_rate)  # the cache counts samples; the flags, seconds
    hop_length = None if hop is None else round(hop * sample_rate)
    if segment_length < 1 or (hop_length is not None and hop_length < 1):
        raise EstmError(f"--seconds and --hop must be at least one sample long (1/{sample_rate} s)")
    split_table = read_split(split_csv)
    settings = SegmentSettings(sample_rate, segment_length, hop_length, max_zeros, normalise_song, normalise_segment)
    started = time.perf_counter()
    with ProgressBar("segmenting", len(split_table), unit="songs", quiet=quiet) as bar:
        result = segment_split(split_table, output, settings, jobs=jobs, write_wav=wav, force=force,
                               split_file=split_csv, on_progress=bar)
    elapsed = time.perf_counter() - started
    if result.songs_done_before:
        note(f"{result.songs_done_before} songs were already done", quiet)
    if result.audio_seconds:
        note(f"decoded {result.audio_seconds / 60:.1f} min of audio in {elapsed:.1f} s "
             f"({result.audio_seconds / elapsed:.0f}× real time, {jobs} job{'s' if jobs > 1 else ''})", quiet)
    _counts_table(result.manifest, f"segments per part → {output}")
    raise typer.Exit(report_skipped(result.problems, "songs"))


@app.command()
@handles_errors
def synth(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write the corpus into.")],
    source: Annotated[str, typer.Option(
        "--source", help="scores: excerpts of real works played by SoundFont instruments; tones: SynthEmo's "
                         "additive-synthesis melodies.")] = "scores",
    count: Annotated[int, typer.Option("--count", "-n", callback=bounded(1, MAX_COUNT),
                                       help="Excerpts (scores) or contents (tones), each rendered in Q1-Q4.")] = 32,
    seconds: Annotated[float, typer.Option("--seconds", callback=bounded(above=0, high=MAX_SECONDS),
                                           help="Length of each rendering.")] = 10.08,
    sample_rate: SampleRate = 22050,
    channels: Annotated[int, typer.Option("--channels", callback=bounded(1, 2), help="1 or 2 (scores only).")] = 1,
    soundfont: Annotated[Optional[Path], typer.Option(
        "--soundfont", help="A General MIDI .sf2 file (scores only; default: the TimGM6mb SoundFont that "
                            "pretty_midi ships).")] = None,
    factorial: Annotated[bool, typer.Option(
        "--factorial", help="Scores only: play each excerpt 4 times with every cue drawn from its own levels "
                            "(Eerola et al. 2013) into factorial/, unlabelled, the cue values in the table.")] = False,
    collections: Annotated[Optional[list[str]], typer.Option(
        "--collection", help="Scores only: take works from this collection of music21's corpus (repeat for several; "
                             "default all). A held-out corpus takes collections that development never saw.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", callback=bounded(1, MAX_JOBS),
                                      help="Works parsed in parallel (scores only).")] = 1,
    seed: Seed = 0,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Make a paired emotion corpus: each excerpt rendered in the four quadrants (folders Q1..Q4, synthemo.csv with
    every rendering's cues, pairs.csv), ready for `estm data split`. An interrupted run is finished by running it
    again with the same options; until then `estm data split` refuses the folder."""
    from estm_core.errors import EstmError

    if source not in ("scores", "tones"):
        raise EstmError(f"--source must be scores or tones, not {source!r}")
    if source == "tones" and (channels != 1 or soundfont is not None or factorial or jobs != 1 or collections):
        raise EstmError("--channels, --soundfont, --factorial, --collection and --jobs are for --source scores")
    started = time.perf_counter()
    with ProgressBar("rendering", count if source == "scores" else count * 4,
                     unit="excerpts" if source == "scores" else "files", quiet=quiet) as bar:
        if source == "scores":
            from estm_core.datasets.scores import generate

            manifest = generate(output, count=count, seconds=seconds, seed=seed, sample_rate=sample_rate,
                                channels=channels, soundfont=soundfont, factorial=factorial, collections=collections,
                                jobs=jobs, force=force,
                                on_progress=bar)
        else:
            from estm_core.datasets.synth import generate

            manifest = generate(output, contents=count, seconds=seconds, seed=seed, sample_rate=sample_rate,
                                force=force, on_progress=bar)
    elapsed = time.perf_counter() - started
    note(f"{source}: {len(manifest)} files in {output} ({elapsed:.1f} s)", quiet)


@app.command()
@handles_errors
def pairs(
    data: SegmentCache,
    output: Annotated[Path, typer.Option("--output", "-o", help="The pairs CSV file to write.")],
    part: Annotated[str, typer.Option("--part", help="train, validation or test.")] = "test",
    count: Annotated[Optional[int], typer.Option(
        "--count", "-n", callback=bounded(1, MAX_PAIRS), help="How many pairs (default: one per song).")] = None,
    content_dev: Annotated[int, typer.Option(
        "--content-dev", callback=bounded(0, MAX_PAIRS), help="Rows flagged for the content-deviation metric.")] = 150,
    seed: Seed = 0,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Transfer-experiment pairs: content and emotion segments from different songs (the original's *_exp.csv)."""
    from estm_core.datasets.pairs import make_pairs
    from estm_core.datasets.segment import read_manifest
    from estm_core.files import write_csv

    table = make_pairs(read_manifest(data), part=part, n=count, content_dev=content_dev, seed=seed)
    write_csv(table, output, force=force)
    known = " with known targets" if "target" in table.columns else ""
    note(f"{len(table)} {part} pairs{known} → {output}", quiet)


@app.command()
@handles_errors
def label(
    data: SegmentCache,
    output: Annotated[Path, typer.Option("--output", "-o", help="The predictions CSV file to write.")],
    model: Annotated[Optional[str], typer.Option("--model", help="A mer model (default: the newest).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", callback=bounded(1, MAX_BATCH),
                                            help="Segments labelled at once.")] = 32,
    device: Device = "auto",
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Quadrant probabilities of every segment from a mer model: ESTM's style labels (deam_predictions.csv columns)."""
    from estm_core.classify import label_segments
    from estm_core.device import choose_device
    from estm_core.files import check_writable, write_csv

    check_writable(output, force)
    with ProgressBar("labelling", None, unit="batches", quiet=quiet) as bar:
        table = label_segments(model, data, device=choose_device(device), batch_size=batch_size, on_progress=bar)
    write_csv(table, output, force=force)
    counts = table["style_label"].value_counts().sort_index()
    note(f"{len(table)} segments labelled ({', '.join(f'{k} {v}' for k, v in counts.items())}) → {output}", quiet)
