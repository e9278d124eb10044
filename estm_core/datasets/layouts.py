"""Dataset layouts: find the songs of a dataset folder and their labels, as one table.

`read_dataset(root)` recognises the layout (or takes the one named), lists the songs the layout defines, checks
every file with `audio.probe` (header only) and returns a `DatasetTable`: one row per usable song with the columns
song_id, path (absolute), label ("" where the layout has none) and group (the unit a split keeps together), plus
what the layout knows about each song. Files that are listed but unusable are skipped and reported in `problems`.

The layouts, as the datasets ship:

  deam      MEMD_audio/{song_id}.mp3 (DEAM_audio/MEMD_audio/ in the Kaggle copy) and, anywhere below root, the
            static annotations: in the official download annotations/annotations averaged per song/song_level/
            static_annotations_averaged_songs_1_2000.csv
            (`song_id, valence_mean, valence_std, arousal_mean, arousal_std`) and ..._2000_2058.csv (the same
            plus min/max columns, one misspelt `valence_ max_mean`); headers have a space after each comma.
            label = the original's quadrant of the 1-9 means.
  taffc     MER TAFFC: Q1/ .. Q4/ of clips named by their AllMusic id (MT0000040632.mp3); label = the folder.
            CSVs in root with a `Song` (or song_id) column are merged in: the download has
            panda_dataset_taffc_annotations.csv (Song, Quadrant) and panda_dataset_taffc_metadata.csv (Song,
            Artist, Title, Quadrant, PQuad, MoodsTotal, ..., GenresStr, Sample, SampleURL).
  gtzan     genre folders blues/ .. rock/ of {genre}.000NN files, directly in root or inside genres_original/
            (the Kaggle copy, wav) or genres/ (the original archive, au); label = the genre.
  emotify   classical/ rock/ electronic/ pop/ of 1.mp3 .. 100.mp3 (directly or inside emotifymusic/), and
            data.csv: one row per listener and track, `track id, genre, amazement, ..., sadness, mood, liked,
            disliked, age, gender, mother tongue`, the nine GEMS columns 0/1. `track id` runs 1..400 over the
            four genres; track id T is the file ((T - 1) mod 100) + 1 of its genre.
  synthemo  synthemo.csv (our synthetic corpus): song_id, path (relative to root, POSIX), label, group, cues.
  folder    any tree of audio files; label = the first folder below root ("" for files in root).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

import pandas as pd

from ..audio import AUDIO_EXTENSIONS, AudioError, inspect, probe
from ..errors import EstmError
from ..finding import audio_files, files_in, visible
from ..labels import GEMS9, GTZAN_GENRES, QUADRANTS, deam_quadrant
from ..workers import process_pool

LAYOUTS = ("deam", "taffc", "gtzan", "emotify", "synthemo", "folder")
CORE_COLUMNS = ("song_id", "path", "label", "group")

# Tried in this order: SynthEmo also has Q1..Q4 folders, so its manifest decides first; "folder" is the fallback.
DETECTION_ORDER = ("synthemo", "deam", "taffc", "gtzan", "emotify")

# What each layout looks like, for the messages that say what was expected.
EXPECTED = {
    "synthemo": "synthemo.csv",
    "deam": "MEMD_audio/ (or DEAM_audio/MEMD_audio/) and the static annotation CSVs",
    "taffc": "folders Q1/ Q2/ Q3/ Q4/",
    "gtzan": "genre folders blues/ .. rock/ of {genre}.000NN files (optionally inside genres_original/)",
    "emotify": "folders classical/ rock/ electronic/ pop/ and data.csv",
    "folder": "audio files in any folders",
}

DEAM_AUDIO_FOLDERS = ("MEMD_audio", "DEAM_audio/MEMD_audio")  # the official download; the Kaggle copy
DEAM_ANNOTATION_PATTERN = "static_annotations_averaged_songs_*.csv"
DEAM_ANNOTATION_COLUMNS = ("valence_mean", "valence_std", "arousal_mean", "arousal_std")
GTZAN_GENRE_PARENTS = ("genres_original", "genres")
EMOTIFY_GENRES = ("classical", "rock", "electronic", "pop")
EMOTIFY_TRACKS_PER_GENRE = 100
EMOTIFY_RATINGS = "data.csv"
SYNTHEMO_MANIFEST = "synthemo.csv"

Problem = tuple[str, str]  # (path, cause)
ProgressCallback = Callable[[int, int], None]


@dataclass
class DatasetTable:
    layout: str
    root: Path
    table: pd.DataFrame  # one row per usable song/clip: song_id, path, label, group, then the layout's columns
    problems: list[Problem] = field(default_factory=list)  # files listed but unusable, skipped


# ------------------------------------------------------------------------------------------------- public API


def detect_layout(root: str | os.PathLike) -> str:
    """The layout of the dataset folder `root`; EstmError saying what each layout looks like when none fits."""
    root = _existing_folder(root)
    for layout in DETECTION_ORDER:
        if _MATCHES[layout](root):
            return layout
    if _matches_folder(root):  # any audio at all
        return "folder"
    raise EstmError(f"{root}: no audio files found; {_what_each_layout_expects()}")


def read_dataset(
    root: str | os.PathLike, layout: str = "auto", on_progress: ProgressCallback | None = None
) -> DatasetTable:
    """Read the dataset folder `root` in `layout` ("auto" to detect it).

    `on_progress(done, total)` is called after each file is probed. Rows are sorted by song_id in natural order
    ("2" before "10"). Raises EstmError when the folder is missing or does not look like the layout named, or is a
    corpus `estm data synth` started and did not finish (whatever the layout: its part would split as if whole).
    """
    from . import synth

    root = _existing_folder(root)
    if synth.unfinished(root):
        raise EstmError(f"{root}: an unfinished corpus (`estm data synth` stopped before the end); finish it with "
                        f"`{synth.rerun_command(root)}`")
    if layout == "auto":
        layout = detect_layout(root)
    elif layout not in LAYOUTS:
        raise EstmError(f"unknown layout {layout!r} (expected auto or one of {', '.join(LAYOUTS)})")
    elif not _MATCHES[layout](root):
        raise EstmError(
            f"{root} does not look like a {layout} dataset: expected {EXPECTED[layout]}; found {_contents(root)}"
        )
    candidates, problems = _READERS[layout](root)
    table, unusable = _keep_usable(_with_core_columns(candidates), on_progress)
    return DatasetTable(layout, root, table, _sorted_problems(problems + unusable))


def without_bad_audio(dataset: DatasetTable, jobs: int = 1,
                      on_progress: ProgressCallback | None = None) -> DatasetTable:
    """`dataset` without the songs whose audio does not decode to the end or holds NaN or infinite samples; they
    join its problems. Decodes every file in full (a header can look fine on a truncated file), `jobs` at a time."""
    paths = dataset.table["path"].tolist()
    if jobs > 1 and len(paths) > 1:
        with process_pool(jobs) as pool:
            causes = _with_progress(pool.map(_decode_problem, paths), len(paths), on_progress)
    else:
        causes = _with_progress(map(_decode_problem, paths), len(paths), on_progress)
    bad = [(path, cause) for path, cause in zip(paths, causes) if cause is not None]
    table = dataset.table[[cause is None for cause in causes]].reset_index(drop=True)
    return DatasetTable(dataset.layout, dataset.root, table, _sorted_problems(dataset.problems + bad))


def _decode_problem(path: str) -> str | None:
    """Why the audio at `path` cannot be trusted, or None. Runs in worker processes."""
    try:
        return inspect(path).problem
    except AudioError as error:
        return error.cause


def _with_progress(results, total: int, on_progress: ProgressCallback | None) -> list:
    """The results of an iterator as a list, calling on_progress(done, total) after each."""
    done = []
    for result in results:
        done.append(result)
        if on_progress is not None:
            on_progress(len(done), total)
    return done


def _sorted_problems(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda item: _natural_key(item[0]))


# ------------------------------------------------------------------------------------------------------- deam


def _deam_audio_folder(root: Path) -> Path | None:
    return next((root / folder for folder in DEAM_AUDIO_FOLDERS if (root / folder).is_dir()), None)


def _matches_deam(root: Path) -> bool:
    return _deam_audio_folder(root) is not None


def _read_deam(root: Path) -> tuple[pd.DataFrame, list[Problem]]:
    """MEMD_audio/{id}.mp3 joined to the static annotations; songs missing either side are problems."""
    audio_folder = _deam_audio_folder(root)
    problems: list[Problem] = []
    rows = []
    for path in _audio_files(audio_folder):
        if path.stem.isdecimal():
            rows.append({"song_id": path.stem, "path": str(path)})
        else:
            problems.append((str(path), "not a DEAM song: the file name should be the song id (2.mp3)"))
    audio = pd.DataFrame(rows, columns=["song_id", "path"])

    songs = audio.merge(_deam_annotations(root), on="song_id", how="outer", indicator=True)
    for song_id, path in songs.loc[songs["_merge"] == "left_only", ["song_id", "path"]].itertuples(index=False):
        problems.append((path, f"no static annotation for song {song_id}"))
    for song_id in songs.loc[songs["_merge"] == "right_only", "song_id"]:
        problems.append((str(audio_folder / f"{song_id}.mp3"), f"song {song_id} is annotated but has no audio file"))
    songs = songs[songs["_merge"] == "both"].drop(columns="_merge")

    unannotated = songs[["valence_mean", "arousal_mean"]].isna().any(axis=1)
    problems += [(path, "its annotation has no valence or arousal mean") for path in songs.loc[unannotated, "path"]]
    songs = songs[~unannotated].copy()
    songs["label"] = [deam_quadrant(v, a) for v, a in zip(songs["valence_mean"], songs["arousal_mean"])]
    return songs[["song_id", "path", "label", *DEAM_ANNOTATION_COLUMNS]], problems


def _deam_annotations(root: Path) -> pd.DataFrame:
    """The static annotations of every song: song_id (str) and the four means/stds, from both shipped files."""
    files = sorted(root.rglob(DEAM_ANNOTATION_PATTERN))
    if not files:
        raise EstmError(
            f"{root}: DEAM static annotations not found (static_annotations_averaged_songs_1_2000.csv and "
            f"_2000_2058.csv, shipped in annotations/annotations averaged per song/song_level/)"
        )
    frames = []
    for path in files:
        frame = _read_csv(path)
        missing = [column for column in ("song_id", *DEAM_ANNOTATION_COLUMNS) if column not in frame.columns]
        if missing:
            raise EstmError(f"{path}: missing column(s) {', '.join(missing)} (found {', '.join(frame.columns)})")
        try:
            frame["song_id"] = frame["song_id"].astype(int).astype(str)
            values = frame[list(DEAM_ANNOTATION_COLUMNS)].apply(pd.to_numeric)
        except (TypeError, ValueError) as error:
            raise EstmError(f"{path}: expected integer song ids and numeric annotations ({error})") from None
        frames.append(pd.concat([frame[["song_id"]], values], axis=1))
    # The two shipped files do not overlap; copies of them elsewhere in the tree must not duplicate songs.
    return pd.concat(frames, ignore_index=True).drop_duplicates("song_id")


# ------------------------------------------------------------------------------------------------------ taffc


def _matches_taffc(root: Path) -> bool:
    return all((root / quadrant).is_dir() for quadrant in QUADRANTS.labels)


def _read_taffc(root: Path) -> tuple[pd.DataFrame, list[Problem]]:
    """Q1..Q4 folders of clips; the clip's folder is its label; per-song CSVs in root add columns."""
    rows = [
        {"song_id": path.stem, "path": str(path), "label": quadrant}
        for quadrant in QUADRANTS.labels
        for path in _audio_files(root / quadrant)
    ]
    clips = pd.DataFrame(rows, columns=["song_id", "path", "label"])
    metadata = _taffc_metadata(root)
    if metadata is not None:
        clips = clips.merge(metadata, on="song_id", how="left")
    return clips, []


def _taffc_metadata(root: Path) -> pd.DataFrame | None:
    """Every CSV in root with a song id column (`Song`, `song_id`), merged on it; None when there is none.

    A column name already taken (the metadata and annotation files both have Quadrant) keeps its first value,
    taken from the CSVs in name order; CSVs without a song id column (a split file, say) are not per-song tables.
    """
    merged = None
    for path in files_in(root, {".csv"}, recursive=False):
        frame = _read_csv(path)
        id_column = next((name for name in frame.columns if _squashed(name) in ("song", "songid")), None)
        if id_column is None:
            continue
        frame = frame.rename(columns={id_column: "song_id"})
        frame["song_id"] = frame["song_id"].astype(str).str.strip()
        taken = {name.lower() for name in (*CORE_COLUMNS, *([] if merged is None else merged.columns))}
        extra = [name for name in frame.columns if name.lower() not in taken]
        frame = frame[["song_id", *extra]].drop_duplicates("song_id")
        merged = frame if merged is None else merged.merge(frame, on="song_id", how="outer")
    return merged


# ------------------------------------------------------------------------------------------------------ gtzan


def _gtzan_genres_folder(root: Path) -> Path | None:
    """The folder holding GTZAN's genre folders, or None: every subfolder is a GTZAN genre and at least one file
    is named like GTZAN's (jazz.00054.wav), so a user's own rock/ and pop/ folders stay a plain folder layout."""
    for folder in (*(root / parent for parent in GTZAN_GENRE_PARENTS), root):
        genres = _subfolders(folder)
        if not genres or any(genre.name not in GTZAN_GENRES.labels for genre in genres):
            continue
        named_like_gtzan = (
            re.fullmatch(rf"{genre.name}\.\d+", path.stem) for genre in genres for path in _audio_files(genre)
        )
        if any(named_like_gtzan):
            return folder
    return None


def _matches_gtzan(root: Path) -> bool:
    return _gtzan_genres_folder(root) is not None


def _read_gtzan(root: Path) -> tuple[pd.DataFrame, list[Problem]]:
    """One row per clip; song_id is the file stem (jazz.00054), unique as it starts with the genre."""
    rows = [
        {"song_id": path.stem, "path": str(path), "label": genre.name}
        for genre in _subfolders(_gtzan_genres_folder(root))
        for path in _audio_files(genre)
    ]
    return pd.DataFrame(rows, columns=["song_id", "path", "label"]), []


# ---------------------------------------------------------------------------------------------------- emotify


def _emotify_genres_folder(root: Path) -> Path | None:
    """root/emotifymusic (the unpacked archive) or root, whichever holds the four genre folders."""
    for folder in (root / "emotifymusic", root):
        if all((folder / genre).is_dir() for genre in EMOTIFY_GENRES):
            return folder
    return None


def _matches_emotify(root: Path) -> bool:
    return (root / EMOTIFY_RATINGS).is_file() and _emotify_genres_folder(root) is not None


def _read_emotify(root: Path) -> tuple[pd.DataFrame, list[Problem]]:
    """Genre folders of N.mp3 joined to the per-track summary of data.csv.

    song_id is "{genre}-{N}" (classical-1 .. pop-100), after the file; track_id keeps data.csv's 1..400 id.
    """
    genres_folder = _emotify_genres_folder(root)
    problems: list[Problem] = []
    rows = []
    for genre in EMOTIFY_GENRES:
        for path in _audio_files(genres_folder / genre):
            if path.stem.isdecimal():
                rows.append({"song_id": f"{genre}-{path.stem}", "path": str(path), "genre": genre})
            else:
                problems.append((str(path), "not an Emotify track: the files are named 1.mp3 .. 100.mp3"))
    files = pd.DataFrame(rows, columns=["song_id", "path", "genre"])

    tracks = files.merge(_emotify_tracks(root / EMOTIFY_RATINGS), on=["song_id", "genre"], how="outer", indicator=True)
    for path in tracks.loc[tracks["_merge"] == "left_only", "path"]:
        problems.append((path, f"no ratings for this track in {EMOTIFY_RATINGS}"))
    unheard = tracks.loc[tracks["_merge"] == "right_only", ["song_id", "track_id"]]
    for song_id, track_id in unheard.itertuples(index=False):
        genre, number = song_id.rsplit("-", 1)
        expected = genres_folder / genre / f"{number}.mp3"
        problems.append((str(expected), f"track id {track_id:.0f} is rated in {EMOTIFY_RATINGS} but has no audio file"))
    tracks = tracks[tracks["_merge"] == "both"].drop(columns="_merge")
    unlabelled = tracks["label"] == ""
    problems += [(path, "no listener ticked any GEMS category for it") for path in tracks.loc[unlabelled, "path"]]
    tracks = tracks[~unlabelled].copy()
    tracks["track_id"] = tracks["track_id"].astype(int)
    tracks["raters"] = tracks["raters"].astype(int)
    gems = [f"gems_{category}" for category in GEMS9.labels]
    return tracks[["song_id", "path", "label", "genre", "track_id", *gems, "raters"]], problems


def _emotify_tracks(ratings_path: Path) -> pd.DataFrame:
    """data.csv (one row per listener) -> one row per track: song_id, genre, track_id, gems_<category> (the share
    of listeners who ticked it, 0..1), raters, and label, the category most listeners ticked ("" if none)."""
    listeners = _read_csv(ratings_path)
    missing = [name for name in ("track id", "genre", *GEMS9.labels) if name not in listeners.columns]
    if missing:
        raise EstmError(f"{ratings_path}: missing column(s) {', '.join(missing)} (is this Emotify's data.csv?)")
    listeners["genre"] = listeners["genre"].astype(str).str.lower()
    unknown = sorted(set(listeners["genre"]) - set(EMOTIFY_GENRES))
    if unknown:
        raise EstmError(f"{ratings_path}: unknown genre(s) {', '.join(unknown)} (expected {', '.join(EMOTIFY_GENRES)})")
    try:
        listeners["track id"] = listeners["track id"].astype(int)
        ticks = listeners[list(GEMS9.labels)].apply(pd.to_numeric)
    except (TypeError, ValueError) as error:
        raise EstmError(f"{ratings_path}: expected integer track ids and 0/1 GEMS columns ({error})") from None

    by_track = pd.concat([listeners[["genre", "track id"]], ticks], axis=1).groupby(["genre", "track id"])
    shares = by_track.mean()
    tracks = shares.add_prefix("gems_")
    tracks["raters"] = by_track.size()
    # idxmax takes the first of equal shares, so ties go to the category listed first in GEMS9; a track nobody
    # ticked anything for has no label (read_emotify reports it).
    tracks["label"] = shares.idxmax(axis=1).where(shares.max(axis=1) > 0, "")
    tracks = tracks.reset_index().rename(columns={"track id": "track_id"})
    number = (tracks["track_id"] - 1) % EMOTIFY_TRACKS_PER_GENRE + 1
    tracks["song_id"] = tracks["genre"] + "-" + number.astype(str)
    return tracks


# --------------------------------------------------------------------------------------------------- synthemo


def _matches_synthemo(root: Path) -> bool:
    return (root / SYNTHEMO_MANIFEST).is_file()


def _read_synthemo(root: Path) -> tuple[pd.DataFrame, list[Problem]]:
    """synthemo.csv as written, every column kept, with its relative POSIX paths made absolute."""
    manifest_path = root / SYNTHEMO_MANIFEST
    manifest = _read_csv(manifest_path)
    missing = [name for name in CORE_COLUMNS if name not in manifest.columns]
    if missing:
        raise EstmError(f"{manifest_path}: missing column(s) {', '.join(missing)}")
    manifest["path"] = [str(root / PurePosixPath(path)) for path in manifest["path"].astype(str)]
    return manifest, []


# ----------------------------------------------------------------------------------------------------- folder


def _matches_folder(root: Path) -> bool:
    return next(_walk_audio(root), None) is not None


def _read_folder(root: Path) -> tuple[pd.DataFrame, list[Problem]]:
    """Every audio file below root; song_id is its relative path without extension, label its first folder."""
    rows = []
    for path in _walk_audio(root):
        relative = path.relative_to(root)
        label = relative.parts[0] if len(relative.parts) > 1 else ""
        rows.append({"song_id": relative.with_suffix("").as_posix(), "path": str(path), "label": label})
    return pd.DataFrame(rows, columns=["song_id", "path", "label"]), []


_MATCHES: dict[str, Callable[[Path], bool]] = {
    "synthemo": _matches_synthemo,
    "deam": _matches_deam,
    "taffc": _matches_taffc,
    "gtzan": _matches_gtzan,
    "emotify": _matches_emotify,
    "folder": _matches_folder,
}
_READERS: dict[str, Callable[[Path], tuple[pd.DataFrame, list[Problem]]]] = {
    "deam": _read_deam,
    "taffc": _read_taffc,
    "gtzan": _read_gtzan,
    "emotify": _read_emotify,
    "synthemo": _read_synthemo,
    "folder": _read_folder,
}


# ---------------------------------------------------------------------------------------------------- helpers


def _with_core_columns(candidates: pd.DataFrame) -> pd.DataFrame:
    """song_id, path, label, group first and as text; group defaults to the song itself, label to ""."""
    candidates = candidates.copy()
    if "label" not in candidates.columns:
        candidates["label"] = ""
    if "group" not in candidates.columns:
        candidates["group"] = candidates["song_id"]
    for name in CORE_COLUMNS:
        candidates[name] = candidates[name].fillna("").astype(str)
    rest = [name for name in candidates.columns if name not in CORE_COLUMNS]
    return candidates[[*CORE_COLUMNS, *rest]]


def _keep_usable(candidates: pd.DataFrame, on_progress: ProgressCallback | None) -> tuple[pd.DataFrame, list[Problem]]:
    """Sort by song_id (natural order), drop repeated song ids, probe every file; (usable rows, problems)."""
    keys = [(_natural_key(song_id), _natural_key(path))
            for song_id, path in zip(candidates["song_id"], candidates["path"])]
    candidates = candidates.iloc[sorted(range(len(keys)), key=keys.__getitem__)]
    problems: list[Problem] = []
    repeated = candidates["song_id"].duplicated()
    first_path = dict(zip(candidates["song_id"][~repeated], candidates["path"][~repeated]))
    for song_id, path in candidates.loc[repeated, ["song_id", "path"]].itertuples(index=False):
        problems.append((path, f"song id {song_id!r} is already taken by {first_path[song_id]}"))
    candidates = candidates[~repeated]

    usable = []  # row positions
    total = len(candidates)
    for row, path in enumerate(candidates["path"]):
        try:
            probe(path)
            usable.append(row)
        except AudioError as error:
            problems.append((error.path, error.cause))
        if on_progress is not None:
            on_progress(row + 1, total)
    return candidates.iloc[usable].reset_index(drop=True), problems


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV as the datasets ship them: the spaces after commas dropped from names and values; UTF-8, else
    Windows-1252 (metadata edited in Excel on Windows often is)."""
    try:
        try:
            frame = pd.read_csv(path, skipinitialspace=True, encoding="utf-8-sig")
        except UnicodeDecodeError:
            frame = pd.read_csv(path, skipinitialspace=True, encoding="cp1252", encoding_errors="replace")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise EstmError(f"{path}: cannot read the CSV ({error})") from None
    frame.columns = [str(name).strip() for name in frame.columns]
    return frame


def _existing_folder(root: str | os.PathLike) -> Path:
    """`root` as an absolute path; EstmError unless it is a folder."""
    root = Path(root).expanduser()
    if not root.exists():
        raise EstmError(f"{root}: no such folder; {_what_each_layout_expects()}")
    if not root.is_dir():
        raise EstmError(f"{root}: is a file; give the dataset's folder ({_what_each_layout_expects()})")
    return root.resolve()


def _what_each_layout_expects() -> str:
    return "expected a dataset folder: " + "; ".join(f"{layout}: {EXPECTED[layout]}" for layout in LAYOUTS)


def _contents(root: Path, shown: int = 8) -> str:
    """A short list of what `root` holds, folders with a trailing slash, for error messages."""
    entries = sorted((entry for entry in root.iterdir() if visible(entry.name)), key=lambda entry: entry.name)
    if not entries:
        return "an empty folder"
    names = [entry.name + ("/" if entry.is_dir() else "") for entry in entries[:shown]]
    more = f" and {len(entries) - shown} more" if len(entries) > shown else ""
    return " ".join(names) + more


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS and visible(path.name)


def _audio_files(folder: Path) -> list[Path]:
    """The audio files directly in `folder` (none if it does not exist), sorted by name."""
    return audio_files(folder, recursive=False) if folder.is_dir() else []


def _subfolders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted((path for path in folder.iterdir() if path.is_dir() and visible(path.name)), key=lambda p: p.name)


def _walk_audio(root: Path):
    """Every audio file below `root`, in a stable order; hidden folders are not entered, nor any folder twice."""
    return iter(audio_files(root))


def _squashed(name: str) -> str:
    """A column name without case, spaces or underscores: 'Song', 'song_id' and 'Song ID' compare alike."""
    return re.sub(r"[\s_]+", "", name).lower()


def _natural_key(text: str) -> tuple:
    """Sort key that orders the digits in `text` by value: '2' < '10', 'blues.00002' < 'blues.00010'."""
    return tuple((0, int(part), "") if part.isdecimal() else (1, 0, part) for part in re.split(r"(\d+)", text) if part)
