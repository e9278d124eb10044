"""SynthEmo: a synthetic music-emotion corpus where each piece of *content* is rendered in all four quadrants.

A content is a seeded melody (scale degrees and durations in beats), a chord progression (scale degrees), an
accompaniment rhythm and an instrument (harmonic colour and envelope), composed and scored in `synth_music`. What it
means to be in a quadrant is the `CUES` table below: the performance and composition cues that listeners read as
emotion (Gabrielsson & Lindström 2010, "The role of structure in the musical expression of emotions"; Juslin & Laukka
2003). Arousal is carried by tempo, loudness, brightness, articulation and percussion; valence by mode, register and
dissonance. Rendering is additive synthesis through band-limited wavetables, in `synth_sound`.

On disk the corpus has the MER TAFFC layout (a folder per quadrant) plus three tables: `synthemo.csv` (one row per
file with its cues), `pairs.csv` (one row per content: the four renderings an emotion transfer should map between)
and `synthemo.json` (the parameters, so a rerun can tell whether the folder already holds what it is asked for).
A run marks the folder unfinished (`.synthemo-unfinished`) before anything else and removes the mark after the
tables, last: until then `estm data split` refuses the folder (a part of a corpus would split as if whole), and a
rerun with the same options finishes it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict
from itertools import product
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .. import audio
from ..errors import EstmError
from ..files import atomic_write
from ..labels import QUADRANTS
from .limits import MAX_SAMPLE_RATE, MAX_SECONDS, available_memory, check_free_space, size, writing
from .synth_music import Cues, compose, score
from .synth_sound import in_a_room, synthesise, ticks

SAMPLE_RATE = 22050
MIN_SAMPLE_RATE = 8000
SECONDS = 10.08  # the ESTM/MER clip length
RENDER_BYTES_PER_FRAME = 48  # a rendering's peak memory per frame (of its FFT size): the room's spectra, the copies


# The one table to tune. Q1 happy/excited, Q2 angry/tense, Q3 sad, Q4 calm (see labels.QUADRANTS).
CUES: dict[str, Cues] = {
    "Q1": Cues(mode="major", tempo_bpm=140.0, loudness_db=-4.0, rolloff_db_per_octave=-6.0, articulation=0.4,
               register_octaves=1, dissonance=0.0, percussion=0.5),
    "Q2": Cues(mode="minor", tempo_bpm=150.0, loudness_db=-2.0, rolloff_db_per_octave=-2.0, articulation=0.3,
               register_octaves=0, dissonance=0.8, percussion=0.8),
    "Q3": Cues(mode="minor", tempo_bpm=65.0, loudness_db=-20.0, rolloff_db_per_octave=-18.0, articulation=1.0,
               register_octaves=-1, dissonance=0.0, percussion=0.0),
    "Q4": Cues(mode="major", tempo_bpm=75.0, loudness_db=-16.0, rolloff_db_per_octave=-12.0, articulation=0.9,
               register_octaves=0, dissonance=0.0, percussion=0.0),
}

# Bump when the synthesis itself (not the table) changes what a rendering sounds like: synth_music's score,
# synth_sound, or render's mix below.
SYNTH_VERSION = 2  # 2: a room around every rendering


def render(content: int, quadrant: str, *, seconds: float = SECONDS, seed: int = 0,
           sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Content number `content` of the corpus with `seed`, played in `quadrant` ("Q1".."Q4").

    Returns (round(seconds * sample_rate),) float32, mono, its peak at the quadrant's loudness (so never above 1).
    """
    quadrant = QUADRANTS.labels[QUADRANTS.index(quadrant)]
    check_parameters(seconds, seed, sample_rate)
    cues = CUES[quadrant]
    piece = compose(content, seed)
    frames = round(seconds * sample_rate)
    mix = synthesise(score(piece, cues, seconds), piece, cues, frames, sample_rate)
    if cues.percussion:
        mix += np.float32(cues.percussion) * ticks(piece, cues, frames, sample_rate)
    mix = in_a_room(mix, sample_rate, seed=[seed, content])
    peak = float(np.abs(mix).max())
    return mix * np.float32(10.0 ** (cues.loudness_db / 20.0) / peak) if peak > 0 else mix


# ---------------------------------------------------------------------------------------------------- corpus


MANIFEST_NAME, PAIRS_NAME, PARAMETERS_NAME = "synthemo.csv", "pairs.csv", "synthemo.json"
UNFINISHED_NAME = ".synthemo-unfinished"  # hidden: folder readers list no such file


def cues_version() -> str:
    """A short hash of the synthesis version and the cue table: it changes whenever a rendering would."""
    table = json.dumps({"synth": SYNTH_VERSION, "cues": {q: asdict(c) for q, c in CUES.items()}}, sort_keys=True)
    return f"{SYNTH_VERSION}-{hashlib.sha256(table.encode()).hexdigest()[:12]}"


def relative_path(content: int, quadrant: str) -> str:
    """Where a rendering lives in the corpus folder, POSIX style: "Q1/synthemo-c000-Q1.wav"."""
    return f"{quadrant}/synthemo-c{content:03d}-{quadrant}.wav"


def manifest(contents: int) -> pd.DataFrame:
    """The table of a corpus of `contents` contents, one row per rendering, contents in order and the quadrants in
    order within each: song_id, path (relative, POSIX), label (the quadrant), group (the content), then the cues."""
    rows = []
    for content in range(contents):
        for quadrant, cues in CUES.items():
            path = relative_path(content, quadrant)
            rows.append({"song_id": Path(path).stem, "path": path, "label": quadrant, "group": f"c{content:03d}",
                         **asdict(cues)})
    return pd.DataFrame(rows)


def pairs(table: pd.DataFrame) -> pd.DataFrame:
    """One row per content of a manifest: its id ("content") and the paths of its four renderings ("Q1".."Q4")."""
    wide = table.pivot(index="group", columns="label", values="path").loc[table["group"].unique(), list(CUES)]
    return wide.rename_axis(index="content", columns=None).reset_index()


def generate(
    out_dir: str | os.PathLike,
    *,
    contents: int = 32,
    seconds: float = SECONDS,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    force: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Render `contents` contents in the four quadrants into `out_dir` and return the manifest (see the module doc).

    A folder already holding this corpus is reused: only missing files are rendered, so an interrupted run resumes.
    A folder holding another one is an EstmError unless `force`, which renders everything again and removes
    renderings the new corpus lacks. `on_progress(done, total)` is called after each file, rendered or reused.
    """
    if contents < 1:
        raise EstmError(f"contents must be at least 1 (got {contents})")
    check_parameters(seconds, seed, sample_rate)
    out_dir = Path(out_dir)
    parameters = {"contents": contents, "seconds": seconds, "seed": seed, "sample_rate": sample_rate,
                  "cues_version": cues_version()}
    table = manifest(contents)
    previous = reuse_or_refuse(out_dir, parameters, force)
    if previous is not None:
        return previous
    targets = [out_dir / relative_path(content, quadrant) for content, quadrant in product(range(contents), CUES)]
    check_room(out_dir, sum(force or not target.exists() for target in targets), seconds, sample_rate)
    if force:
        _remove_other_renderings(out_dir, set(table["path"]))

    start_corpus(out_dir, parameters)
    for done, (target, (content, quadrant)) in enumerate(zip(targets, product(range(contents), CUES)), start=1):
        if force or not target.exists():
            samples = render(content, quadrant, seconds=seconds, seed=seed, sample_rate=sample_rate)
            audio.save(target, samples, sample_rate, force=force)
        if on_progress is not None:
            on_progress(done, len(targets))
    finish_corpus(out_dir, table)
    return table


def check_parameters(seconds: float, seed: int, sample_rate: int) -> None:
    # Below 8 kHz the melody's highest notes would pass Nyquist; nan fails every comparison, so it is refused too.
    if not (seconds * sample_rate >= 0.5 and seconds <= MAX_SECONDS) \
            or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE or seed < 0:
        raise EstmError(f"SynthEmo needs at least one frame and at most {MAX_SECONDS:g} s, a sample rate of at least "
                        f"{MIN_SAMPLE_RATE} Hz and at most {MAX_SAMPLE_RATE} Hz and a seed of 0 or more "
                        f"(got {seconds} s, {sample_rate} Hz, seed {seed})")


def check_room(out_dir: Path, files: int, seconds: float, sample_rate: int, channels: int = 1) -> None:
    """Before a run starts: refuse one whose renderings would not fit the disk (16-bit wav), or one of them the
    memory."""
    frames = round(seconds * sample_rate)
    check_free_space(out_dir, files * (frames * channels * 2 + 44), f"{files} renderings")
    needed = (1 << math.ceil(math.log2(frames + 1))) * RENDER_BYTES_PER_FRAME * channels
    if needed > available_memory():
        raise EstmError(f"a rendering of {seconds:g} s at {sample_rate} Hz needs about {size(needed)} of memory, "
                        f"more than is available ({size(available_memory())}): ask for fewer seconds or a lower rate")


def start_corpus(out_dir: Path, parameters: dict) -> None:
    """Mark `out_dir` unfinished, then record the parameters (so that the next run recognises and resumes it)."""
    mark = out_dir / UNFINISHED_NAME
    with writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        mark.write_text("`estm data synth` has not finished this corpus; rerun it with the same options\n")
    write_json(out_dir / PARAMETERS_NAME, parameters, force=True)


def unfinished(root: Path) -> bool:
    """Whether `root` is a corpus that `estm data synth` started and did not finish: it holds the mark of an
    unfinished run, or (made before that mark) its parameters without its table, which came last."""
    return (root / UNFINISHED_NAME).exists() or (
        (root / PARAMETERS_NAME).is_file() and not (root / MANIFEST_NAME).is_file())


def rerun_command(root: Path) -> str:
    """The `estm data synth` command that finishes the unfinished corpus `root`, its options from the parameters."""
    try:
        parameters = _read_parameters(root / PARAMETERS_NAME) or {}
    except EstmError:
        parameters = {}
    flags = ["--source tones"] if "contents" in parameters else []
    for key, flag in (("contents", "-n"), ("count", "-n"), ("seconds", "--seconds"), ("seed", "--seed"),
                      ("sample_rate", "--sample-rate"), ("channels", "--channels")):
        if key in parameters and not (key == "channels" and parameters[key] == 1):
            flags.append(f"{flag} {parameters[key]}")
    if parameters.get("factorial"):
        flags.append("--factorial")
    if "count" in parameters:
        from .scores import COLLECTIONS

        if parameters.get("collections") != sorted(COLLECTIONS):
            flags.extend(f"--collection {name}" for name in parameters.get("collections", []))
        if not str(parameters.get("soundfont", "")).startswith("TimGM6mb.sf2 "):
            flags.append("--soundfont SF2")
    return " ".join(["estm data synth", *flags, f"-o {root}"])


def reuse_or_refuse(out_dir: Path, parameters: dict, force: bool) -> pd.DataFrame | None:
    """The table of the corpus `out_dir` holds when it was made with `parameters` and is complete; None where it is
    to be made (again). A folder holding a corpus made otherwise is an EstmError unless `force`."""
    existing = None if force else _read_parameters(out_dir / PARAMETERS_NAME)
    if existing is not None and existing != parameters:
        differing = ", ".join(f"{key} {existing.get(key)!r} (asked {value!r})" for key, value in parameters.items()
                              if existing.get(key) != value)
        raise EstmError(f"{out_dir}: holds another corpus ({differing}); "
                        "use --force to replace it or choose another folder")
    manifest_path = out_dir / MANIFEST_NAME
    if existing is None or not manifest_path.is_file() or (out_dir / UNFINISHED_NAME).exists():
        return None
    table = pd.read_csv(manifest_path, dtype={"song_id": str, "group": str, "label": str}, keep_default_na=False)
    complete = all((out_dir / path).exists() for path in table["path"])
    return table if complete and (out_dir / PAIRS_NAME).exists() == ("Q1" in set(table["label"])) else None


def finish_corpus(out_dir: Path, table: pd.DataFrame) -> None:
    """Write the corpus tables (pairs.csv where the files are quadrant renderings), after removing the files of the
    corpus the folder held before that this one lacks, so that folder readers find only this one; then commit the
    corpus by removing its unfinished mark."""
    manifest_path = out_dir / MANIFEST_NAME
    if manifest_path.is_file():
        before = pd.read_csv(manifest_path, usecols=["path"])["path"].astype(str)
        for path in set(before) - set(table["path"]):
            (out_dir / path).unlink(missing_ok=True)
    write_table(out_dir / MANIFEST_NAME, table)
    if set(table["label"]) == set(CUES):
        write_table(out_dir / PAIRS_NAME, pairs(table))
    else:
        (out_dir / PAIRS_NAME).unlink(missing_ok=True)
    (out_dir / UNFINISHED_NAME).unlink(missing_ok=True)


def _read_parameters(path: Path) -> dict | None:
    """The parameters a corpus folder was made with, or None where there is no corpus yet."""
    if not path.exists():
        return None
    try:
        parameters = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise EstmError(f"{path}: unreadable corpus parameters ({error}); use --force to replace them") from None
    if not isinstance(parameters, dict):
        raise EstmError(f"{path}: not corpus parameters; use --force to replace them")
    return parameters


def _remove_other_renderings(out_dir: Path, keep: set[str]) -> None:
    """Delete SynthEmo renderings in `out_dir` that are not in `keep` (relative paths), so that a smaller corpus made
    with --force leaves none of the old one's files for folder readers to find."""
    for quadrant in CUES:
        for path in (out_dir / quadrant).glob("synthemo-c*-Q?.wav"):
            if f"{quadrant}/{path.name}" not in keep:
                path.unlink()


def write_json(path: Path, value: dict, force: bool) -> None:
    with atomic_write(path, force=force) as temporary:
        temporary.write_text(json.dumps(value, indent=2) + "\n")


def write_table(path: Path, table: pd.DataFrame) -> None:
    # Always replaced: the tables describe the files, which have just been checked or written.
    with atomic_write(path, force=True) as temporary:
        table.to_csv(temporary, index=False)
