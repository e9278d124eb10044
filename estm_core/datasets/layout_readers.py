"""The readers of each dataset layout: what a folder in that layout looks like (MATCHES) and the songs it lists
(READERS), each as (candidates, problems): a table with song_id and path, and label, group and the layout's own
columns where it has them; problems are (path, cause) of files listed but unusable. layouts.read_dataset adds the
core columns and probes every file.

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

import re
from pathlib import Path, PurePosixPath
from typing import Callable

import pandas as pd

from ..errors import EstmError
from ..finding import audio_files, files_in, visible
from ..labels import GEMS9, GTZAN_GENRES, QUADRANTS, deam_quadrant

CORE_COLUMNS = ("song_id", "path", "label", "group")
DEAM_AUDIO_FOLDERS = ("MEMD_audio", "DEAM_audio/MEMD_audio")  # the official download; the Kaggle copy
DEAM_ANNOTATION_PATTERN = "static_annotations_averaged_songs_*.csv"
DEAM_ANNOTATION_COLUMNS = ("valence_mean", "valence_std", "arousal_mean", "arousal_std")
GTZAN_GENRE_PARENTS = ("genres_original", "genres")
EMOTIFY_GENRES = ("classical", "rock", "electronic", "pop")
EMOTIFY_TRACKS_PER_GENRE = 100
EMOTIFY_RATINGS = "data.csv"
SYNTHEMO_MANIFEST = "synthemo.csv"

Problem = tuple[str, str]  # (path, cause)


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


MATCHES: dict[str, Callable[[Path], bool]] = {
    "synthemo": _matches_synthemo,
    "deam": _matches_deam,
    "taffc": _matches_taffc,
    "gtzan": _matches_gtzan,
    "emotify": _matches_emotify,
    "folder": _matches_folder,
}
READERS: dict[str, Callable[[Path], tuple[pd.DataFrame, list[Problem]]]] = {
    "deam": _read_deam,
    "taffc": _read_taffc,
    "gtzan": _read_gtzan,
    "emotify": _read_emotify,
    "synthemo": _read_synthemo,
    "folder": _read_folder,
}


# ----------------------------------------------------------------------------------------------------- helpers


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
