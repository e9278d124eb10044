"""The scores corpus: real compositions played by real instrument samples, each excerpt in all four quadrants.

An excerpt is a passage of a work from music21's bundled corpus (Bach chorales, Irish fiddle tunes, Palestrina
masses, Monteverdi madrigals, trecento songs, string quartets; nothing downloads) that starts on a bar line. It is
played in a quadrant by editing the score and the performance with the cues listeners read as emotion
(../shared/spec/EMOTION_CUES.md): parallel mode (Livingstone et al. 2010, CMERS), tempo as notes per second,
dynamics, articulation and register (Eerola, Friberg & Bresin 2013, whose cue levels the factorial design uses),
and timbre (Juslin & Laukka 2003). `CUES` is the one table. Each excerpt draws its cues around the table's values
(`SPREAD`): real recordings differ in level and tempo, and a model should learn more than one cue.

The notes are rendered through a General MIDI SoundFont with tinysoundfont (by default the small GM SoundFont that
pretty_midi's wheel ships), in a small room, about a thousand times faster than real time. Parsing the score is most
of the cost (0.1 s for a chorale, a few seconds for a quartet movement).

The corpus folder has SynthEmo's layout and tables (a folder per quadrant, `synthemo.csv` with the cues and the
source work, `pairs.csv`), so `estm data split/segment` and training read it unchanged. A work gives one excerpt,
and `group` names the work, so a split holds out whole works; `collection` lets a split hold out whole collections.
With `factorial`, each excerpt is instead played four times with every cue drawn from its own levels (Eerola's
design), the cue values in the table and no quadrant label: data for fitting how cues map to emotion.

Here: which works a corpus takes (COLLECTIONS, catalogue, candidates) and the corpus itself (generate). The table is
score_cues.py's, reading an excerpt score_excerpts.py's, playing and rendering it score_rendering.py's.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd

from .. import audio
from ..errors import EstmError
from ..files import sha256
from ..keys import PITCH_NAMES
from ..workers import in_order
from . import synth
from .score_cues import (CUES, FACTORIAL, FACTORIAL_LEVEL_DB, FACTORIAL_VELOCITY, INSTRUMENTS, NO_SPREAD, SAMPLE_RATE,
                         SECONDS, SPREAD, VELOCITY_PER_DB, ScoreCues, Spread, rng_for)
from .score_excerpts import Excerpt, Work, key_of, read_excerpt
from .score_rendering import ROOM_DAMPING_HZ, check_soundfont, perform, render

SOURCE_VERSION = 2  # bump when a rendering would sound different with the same table; 2: fermatas held
RENDERINGS_PER_EXCERPT = 4  # so a factorial corpus has as many files as a quadrant corpus of the same count

# Collections of music21's corpus: name -> (folder in the corpus, file types read). Each is a different kind of
# music: four-part chorales, monophonic fiddle tunes, Renaissance polyphony, madrigals, 14th-century songs, quartets.
COLLECTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bach": (("bach",), (".mxl",)),
    "ryans-mammoth": (("ryansMammoth",), (".abc",)),
    "palestrina": (("palestrina",), (".krn",)),
    "monteverdi": (("monteverdi",), (".mxl",)),
    "trecento": (("trecento",), (".xml", ".mxl")),
    "quartets": (("haydn", "mozart", "beethoven"), (".mxl",)),
}


# --------------------------------------------------------------------------------------------------- the works


def music21_corpus() -> Path:
    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        raise EstmError("the scores corpus needs music21: pip install music21")
    return Path(spec.submodule_search_locations[0]) / "corpus"


def catalogue(collections: Iterable[str] | None = None) -> list[Work]:
    """Every work of `collections` (default all of COLLECTIONS) in music21's corpus, sorted by name."""
    root = music21_corpus()
    names = list(COLLECTIONS) if collections is None else list(collections)
    unknown = sorted(set(names) - set(COLLECTIONS))
    if unknown:
        raise EstmError(f"unknown collection(s) {', '.join(unknown)} (known: {', '.join(COLLECTIONS)})")
    works: dict[str, list[str]] = {}
    for collection in names:
        folders, suffixes = COLLECTIONS[collection]
        for folder in folders:
            for path in sorted((root / folder).rglob("*")):
                if path.suffix in suffixes:
                    relative = path.relative_to(root).as_posix()
                    works.setdefault(f"{collection}/{_work_of(relative, len(folders) > 1)}", []).append(relative)
    return [Work(name, name.split("/")[0], tuple(files)) for name, files in sorted(works.items())]


def _work_of(relative: str, keep_folder: bool) -> str:
    """The work a corpus file belongs to: a quartet's movements share their folder, a Palestrina mass's sections
    their number ("Credo_25_b" -> "mass025"), anything else is its own work."""
    path = PurePosixPath(relative)
    inner = path.parts[1:] if not keep_folder else path.parts
    if path.stem.startswith("movement"):
        return "/".join(inner[:-1])
    number = re.search(r"_(\d+)", path.stem) if path.parts[0] == "palestrina" else None
    if number:
        return f"mass{int(number.group(1)):03d}"
    return "/".join([*inner[:-1], path.stem])


def candidates(works: list[Work], seed: int) -> list[Work]:
    """`works` in the order a corpus takes them: each collection shuffled by `seed`, then one from each in turn, so
    that any prefix mixes the collections."""
    rng = np.random.default_rng(seed)
    by_collection: dict[str, list[Work]] = {}
    for work in works:
        by_collection.setdefault(work.collection, []).append(work)
    queues = [[group[i] for i in rng.permutation(len(group))] for _, group in sorted(by_collection.items())]
    order = []
    for turn in range(max((len(queue) for queue in queues), default=0)):
        order += [queue[turn] for queue in queues if turn < len(queue)]
    return order


# ------------------------------------------------------------------------------------------------------ corpus


def cues_version() -> str:
    """A short hash of the source version and every table a rendering reads."""
    tables = {"source": SOURCE_VERSION, "room_damping_hz": ROOM_DAMPING_HZ, "cues": {q: asdict(c) for q, c in CUES.items()}, "spread": asdict(SPREAD),
              "factorial": FACTORIAL, "instruments": INSTRUMENTS, "collections": COLLECTIONS}
    return f"{SOURCE_VERSION}-{hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()[:12]}"


def factorial_levels(count: int, seed: int) -> list[dict]:
    """`count` cue combinations in which each cue's levels appear equally often (within one), each cue shuffled on
    its own: a balanced random draw from Eerola's factorial design."""
    rng = np.random.default_rng([seed, 1])
    columns = {cue: [levels[i] for i in rng.permutation(np.resize(np.arange(len(levels)), count))]
               for cue, levels in FACTORIAL.items()}
    return [{cue: columns[cue][row] for cue in FACTORIAL} for row in range(count)]


def factorial_cues(levels: dict) -> ScoreCues:
    return ScoreCues(mode=levels["mode"], notes_per_second=levels["notes_per_second"],
                     level_db=FACTORIAL_LEVEL_DB + levels["dynamics_db"],
                     velocity=int(FACTORIAL_VELOCITY + VELOCITY_PER_DB * levels["dynamics_db"]),
                     articulation=levels["articulation"], register_octaves=levels["register_octaves"],
                     instruments=(levels["instrument"],))


def excerpt_or_reason(job: tuple[Work, int, float]) -> Excerpt | str:
    """read_excerpt(work, seed=, seconds=), or why the work gives no excerpt: what a worker process runs.

    An excerpt is kept only where each quadrant's performance, as far as it is heard, is in the excerpt's key and
    the quadrant's mode by key analysis: the parallel-mode rule can otherwise make a minor piece sound like its
    relative major, and a short slow rendering may not establish the key at all."""
    work, seed, seconds = job
    try:
        excerpt = read_excerpt(work, seed=seed, seconds=seconds)
    except EstmError as error:
        return str(error)
    for quadrant, cues in CUES.items():
        played = perform(excerpt, cues, rng_for(seed, work.name, quadrant), SPREAD, seconds)
        if key_of(played.midi, played.sounding_s)[:2] != (excerpt.tonic, cues.mode):
            return f"{excerpt.file}: its {quadrant} rendering is not heard in {cues.mode} (key analysis)"
    return excerpt


def excerpt_rows(excerpt: Excerpt, plays: list[tuple[str, ScoreCues, Spread, dict]], *, seed: int, seconds: float,
                 sample_rate: int, channels: int, soundfont: Path) -> Iterator[tuple[dict, np.ndarray]]:
    """(table row, audio) of each rendering of `excerpt`; `plays` names each and gives its cues, spread and factorial
    levels ({} for a quadrant)."""
    for name, cues, spread, levels in plays:
        samples, drawn = render(excerpt, cues, rng_for(seed, excerpt.work.name, name), soundfont=soundfont,
                                spread=spread, seconds=seconds, sample_rate=sample_rate, channels=channels)
        song_id = f"{excerpt.id}-{name}"
        row = {"song_id": song_id, "path": f"{'factorial' if levels else name}/{song_id}.wav",
               "label": "" if levels else name, "group": excerpt.work.name, "collection": excerpt.work.collection,
               "content": excerpt.id, "file": excerpt.file, "start_bar": excerpt.start_bar,
               "key": f"{PITCH_NAMES[excerpt.tonic]} {excerpt.mode}",
               "key_correlation": round(excerpt.key_correlation, 3), **drawn}
        if levels:
            row["dynamics_db"] = levels["dynamics_db"]
        yield row, samples


def generate(
    out_dir: str | os.PathLike,
    *,
    count: int = 32,
    seconds: float = SECONDS,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    channels: int = 1,
    soundfont: str | os.PathLike | None = None,
    factorial: bool = False,
    collections: Iterable[str] | None = None,
    jobs: int = 1,
    force: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Render `count` excerpts (one per work, the collections interleaved) into `out_dir`; return the table.

    Each excerpt is played in Q1..Q4 (folders Q1..Q4) or, with `factorial`, four times with factorial cue levels
    (folder `factorial/`). Works without a usable excerpt are skipped. A folder that already holds this corpus is
    reused as it is; one holding another is an EstmError unless `force`. `on_progress(done, count)` follows excerpts.
    """
    if count < 1:
        raise EstmError(f"count must be at least 1 (got {count})")
    if channels not in (1, 2):
        raise EstmError(f"channels must be 1 or 2 (got {channels})")
    synth.check_parameters(seconds, seed, sample_rate)
    soundfont = check_soundfont(soundfont).resolve()
    import music21

    works = candidates(catalogue(collections), seed)
    out_dir = Path(out_dir)
    parameters = {"source": "scores", "count": count, "seconds": seconds, "seed": seed, "sample_rate": sample_rate,
                  "channels": channels, "factorial": factorial, "collections": sorted(collections or COLLECTIONS),
                  "soundfont": _file_digest(soundfont), "music21": music21.__version__,
                  "cues_version": cues_version()}
    previous = synth.reuse_or_refuse(out_dir, parameters, force)
    if previous is not None:
        return previous

    synth.check_room(out_dir, count * RENDERINGS_PER_EXCERPT, seconds, sample_rate, channels)
    synth.start_corpus(out_dir, parameters)
    rows = _render_excerpts(out_dir, works, count, seed=seed, seconds=seconds, sample_rate=sample_rate,
                            channels=channels, soundfont=soundfont, factorial=factorial, jobs=jobs,
                            on_progress=on_progress)
    table = pd.DataFrame(rows)
    synth.finish_corpus(out_dir, table)
    return table


def _render_excerpts(out_dir: Path, works: list[Work], count: int, *, seed: int, seconds: float, sample_rate: int,
                     channels: int, soundfont: Path, factorial: bool, jobs: int,
                     on_progress: Callable[[int, int], None] | None) -> list[dict]:
    """Render the first `count` usable excerpts of `works` into `out_dir`; their table rows."""
    levels = factorial_levels(count * RENDERINGS_PER_EXCERPT, seed) if factorial else None
    rows: list[dict] = []
    accepted = 0
    excerpts = in_order(excerpt_or_reason, [(work, seed, seconds) for work in works], jobs)
    for excerpt in excerpts:
        if isinstance(excerpt, str):
            continue
        for row, samples in excerpt_rows(excerpt, _plays(levels, accepted), seed=seed, seconds=seconds,
                                         sample_rate=sample_rate, channels=channels, soundfont=soundfont):
            audio.save(out_dir / row["path"], samples, sample_rate, force=True)
            rows.append(row)
        accepted += 1
        if on_progress is not None:
            on_progress(accepted, count)
        if accepted == count:
            excerpts.close()
            break
    if accepted < count:
        raise EstmError(f"only {accepted} of the {len(works)} works have a usable excerpt; ask for at most that many")
    return rows


def _plays(levels: list[dict] | None, accepted: int) -> list[tuple[str, ScoreCues, Spread, dict]]:
    """How excerpt number `accepted` is played: in the four quadrants, or with its own factorial levels."""
    if levels is None:
        return [(quadrant, cues, SPREAD, {}) for quadrant, cues in CUES.items()]
    own = levels[RENDERINGS_PER_EXCERPT * accepted: RENDERINGS_PER_EXCERPT * (accepted + 1)]
    return [(f"F{index + 1}", factorial_cues(level), NO_SPREAD, level) for index, level in enumerate(own)]


def _file_digest(path: Path) -> str:
    return f"{path.name} sha256:{sha256(path)[:16]}"
