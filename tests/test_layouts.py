"""Dataset layout readers, on small copies of each real layout: short tones where the songs go, the annotation files
with the headers the datasets ship, and one unusable file each."""

from pathlib import Path

import pandas as pd
import pytest

from estm_core.datasets.layouts import LAYOUTS, detect_layout, read_dataset
from estm_core.errors import EstmError
from estm_core.labels import GEMS9

from conftest import tone, write

RATE = 22050
CORE = ["song_id", "path", "label", "group"]


def clip(path: Path, seconds: float = 0.25, frequency: float = 440.0) -> Path:
    """A short tone at `path` (format from the extension), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write(path, tone(seconds, RATE, frequency), RATE)


def not_audio(path: Path) -> Path:
    """A text file with an audio extension, as a broken download leaves."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<html>404 not found</html>\n" * 10)
    return path


def empty(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def problem_names(dataset) -> dict[str, str]:
    return {Path(path).name: cause for path, cause in dataset.problems}


# ----------------------------------------------------------------------------------------------- the layouts


def make_deam(root: Path) -> Path:
    """DEAM as downloaded: MEMD_audio/ and both static annotation files, headers with a space after each comma
    (the second file with its min/max columns and the misspelt 'valence_ max_mean')."""
    for song in (2, 3, 4, 10, 11, 2001):  # 11 has audio but no annotation
        clip(root / "MEMD_audio" / f"{song}.mp3")
    not_audio(root / "MEMD_audio" / "7.mp3")
    song_level = root / "annotations" / "annotations averaged per song" / "song_level"
    song_level.mkdir(parents=True)
    (song_level / "static_annotations_averaged_songs_1_2000.csv").write_text(
        "song_id, valence_mean, valence_std, arousal_mean, arousal_std\n"
        "2,3.1,0.94,3,0.63\n"  # V -0.56, A -0.57: Q3
        "3,6.2,1.75,6.1,1.62\n"  # V +0.35, A +0.38: Q1
        "4,5.5,1.2,,\n"  # no arousal
        "7,4.4,1.2,5.5,1.1\n"  # the broken file
        "10,5,1.1,6.5,0.9\n"  # V exactly 0 counts as negative: Q2
        "12,4,1,4,1\n"  # annotated, no audio
    )
    (song_level / "static_annotations_averaged_songs_2000_2058.csv").write_text(
        "song_id, valence_mean, valence_std, valence_ max_mean, valence_max_std, valence_min_mean, "
        "valence_min_std, arousal_mean, arousal_std, arousal_max_mean, arousal_max_std, arousal_min_mean, "
        "arousal_min_std\n"
        "2001,6.4,0.49,8.2,0.98,5.0,1.1,4.0,1.17,7.4,1.36,2.2,1.17\n"  # V +0.41, A -0.26: Q4
    )
    return root


def make_taffc(root: Path) -> Path:
    """MER TAFFC: Q1..Q4 of clips (mp3 as shipped, one wav as converted), the two metadata CSVs, Windows-encoded."""
    clip(root / "Q1" / "MT0000040632.mp3")
    clip(root / "Q1" / "MT0000082187.mp3")
    clip(root / "Q2" / "MT0000218346.wav")
    clip(root / "Q4" / "MT0000004637.mp3")
    empty(root / "Q3" / "MT0000011357.mp3")
    (root / "panda_dataset_taffc_annotations.csv").write_text(
        '"Song","Quadrant"\n"MT0000040632","Q1"\n"MT0000082187","Q1"\n"MT0000218346","Q2"\n'
        '"MT0000011357","Q3"\n"MT0000004637","Q4"\n'
    )
    (root / "panda_dataset_taffc_metadata.csv").write_bytes(
        (
            '"Song","Artist","Title","Quadrant","PQuad","MoodsTotal"\n'
            '"MT0000040632","Beyoncé","Crazy in Love","Q1",0.8,10\n'
            '"MT0000082187","A","Don’t Stop","Q1",0.6,5\n'
            '"MT0000218346","C","D","Q2",1,3\n'
            '"MT0000004637","E","F","Q4",0.5,8\n'
        ).encode("cp1252")
    )
    return root


def make_gtzan(root: Path, level: str = "genres_original") -> Path:
    """GTZAN as on Kaggle (Data/genres_original/<genre>/<genre>.000NN.wav), with its unreadable jazz.00054."""
    genres = root / level if level else root
    for genre, number in (("blues", 0), ("blues", 10), ("blues", 2), ("jazz", 53), ("rock", 99)):
        clip(genres / genre / f"{genre}.{number:05d}.wav")
    not_audio(genres / "jazz" / "jazz.00054.wav")
    (root / "features_30_sec.csv").write_text("filename,length\nblues.00000.wav,661794\n")
    return root


# Emotify listeners (track id, genre, the nine GEMS ticks): track ids run 1..400 over the genres, 100 each.
EMOTIFY_LISTENERS = [
    #  id  genre       amaz sole tend nost calm powe joyf tens sadn
    (1, "classical", (1, 0, 0, 0, 1, 0, 0, 0, 0)),
    (1, "classical", (0, 0, 0, 0, 1, 0, 0, 0, 0)),
    (1, "classical", (0, 1, 0, 0, 1, 0, 0, 0, 0)),
    (1, "classical", (1, 0, 0, 0, 0, 0, 0, 0, 0)),
    (2, "classical", (0, 1, 0, 0, 0, 0, 0, 0, 0)),  # solemnity and tenderness tie 2 : 2
    (2, "classical", (0, 0, 1, 0, 0, 0, 0, 0, 0)),
    (2, "classical", (0, 1, 1, 0, 0, 0, 0, 0, 1)),
    (101, "rock", (0, 0, 0, 0, 0, 1, 0, 1, 0)),  # rock/1.mp3
    (101, "rock", (0, 0, 0, 0, 0, 1, 1, 0, 0)),
    (201, "electronic", (0, 0, 0, 0, 0, 0, 1, 0, 0)),  # electronic/1.mp3: an empty file
    (399, "pop", (0, 0, 0, 1, 0, 0, 0, 0, 1)),  # pop/99.mp3 is missing
    (302, "pop", (0, 0, 0, 0, 0, 0, 0, 0, 0)),  # pop/2.mp3: nobody ticked anything
    (302, "pop", (0, 0, 0, 0, 0, 0, 0, 0, 0)),
]


def make_emotify(root: Path, level: str = "") -> Path:
    """Emotify: genre folders of N.mp3 (in emotifymusic/ as unzipped, or not) and data.csv with its shipped header
    (a space after each comma)."""
    genres = root / level if level else root
    for genre, number in (("classical", 1), ("classical", 2), ("rock", 1), ("pop", 2), ("pop", 5)):  # pop/5: no ratings
        clip(genres / genre / f"{number}.mp3")
    empty(genres / "electronic" / "1.mp3")
    header = ("track id, genre, amazement, solemnity, tenderness, nostalgia, calmness, power, joyful_activation, "
              "tension, sadness, mood, liked, disliked, age, gender, mother tongue")
    rows = [f"{track}, {genre}, {', '.join(map(str, ticks))}, 3, 1, 0, 30, 1, English"
            for track, genre, ticks in EMOTIFY_LISTENERS]
    (root / "data.csv").write_text("\n".join([header, *rows]) + "\n")
    return root


def make_synthemo(root: Path) -> Path:
    """SynthEmo's manifest: one content rendered in two quadrants share a group."""
    clip(root / "Q1" / "c000-Q1.wav", frequency=660.0)
    clip(root / "Q3" / "c000-Q3.wav", frequency=220.0)
    clip(root / "Q2" / "c001-Q2.wav")
    (root / "Q4").mkdir()  # Q1..Q4 as in MER TAFFC: the manifest must decide
    (root / "synthemo.csv").write_text(
        "song_id,path,label,group,tempo,mode\n"
        "c000-Q1,Q1/c000-Q1.wav,Q1,c000,140,major\n"
        "c000-Q3,Q3/c000-Q3.wav,Q3,c000,70,minor\n"
        "c001-Q2,Q2/c001-Q2.wav,Q2,c001,150,minor\n"
        "c001-Q4,Q4/c001-Q4.wav,Q4,c001,75,major\n"  # never rendered
    )
    return root


def make_folder(root: Path) -> Path:
    """A user's own collection: loose files, nested folders, other files around."""
    clip(root / "intro.wav")
    clip(root / "happy" / "b.flac")
    clip(root / "happy" / "deep" / "a.wav")
    clip(root / "sad" / "track 2.ogg")
    clip(root / "sad" / "track 10.ogg")
    empty(root / "sad" / "broken.wav")
    (root / "sad" / "notes.txt").write_text("not audio, not listed\n")
    clip(root / ".cache" / "hidden.wav")
    empty(root / "happy" / "._b.wav")  # macOS resource fork from a zip: not a song, not a problem
    return root


MAKERS = {
    "deam": make_deam,
    "taffc": make_taffc,
    "gtzan": make_gtzan,
    "emotify": make_emotify,
    "synthemo": make_synthemo,
    "folder": make_folder,
}


# ---------------------------------------------------------------------------------------------------- readers


def test_deam_reads_both_annotation_files_and_assigns_the_original_quadrants(tmp_path):
    root = make_deam(tmp_path / "DEAM")
    dataset = read_dataset(root, "deam")
    table = dataset.table
    assert list(table.columns) == CORE + ["valence_mean", "valence_std", "arousal_mean", "arousal_std"]
    assert list(table["song_id"]) == ["2", "3", "10", "2001"]  # natural order, not "10" < "2"
    assert list(table["label"]) == ["Q3", "Q1", "Q2", "Q4"]
    assert list(table["group"]) == list(table["song_id"])
    assert table.loc[3, ["valence_mean", "valence_std", "arousal_mean", "arousal_std"]].tolist() == [
        6.4, 0.49, 4.0, 1.17]  # from the second file's own columns, not its min/max ones
    assert all(Path(path).is_absolute() and Path(path).is_file() for path in table["path"])
    assert table.loc[0, "path"] == str((root / "MEMD_audio" / "2.mp3").resolve())
    problems = problem_names(dataset)
    assert set(problems) == {"4.mp3", "7.mp3", "11.mp3", "12.mp3"}
    assert "no valence or arousal" in problems["4.mp3"]
    assert "corrupt" in problems["7.mp3"] or "not an audio file" in problems["7.mp3"]
    assert "no static annotation" in problems["11.mp3"]
    assert "no audio file" in problems["12.mp3"]


def test_deam_without_annotation_files_says_where_they_belong(tmp_path):
    clip(tmp_path / "MEMD_audio" / "2.mp3")
    with pytest.raises(EstmError, match="static_annotations_averaged_songs_1_2000.csv"):
        read_dataset(tmp_path)


def test_deam_as_copied_to_kaggle_is_recognised(tmp_path):
    # Kaggle's copy: DEAM_audio/MEMD_audio/ and DEAM_Annotations/annotations/annotations averaged per song/...
    clip(tmp_path / "DEAM_audio" / "MEMD_audio" / "2.mp3")
    song_level = tmp_path / "DEAM_Annotations" / "annotations" / "annotations averaged per song" / "song_level"
    song_level.mkdir(parents=True)
    (song_level / "static_annotations_averaged_songs_1_2000.csv").write_text(
        "song_id, valence_mean, valence_std, arousal_mean, arousal_std\n2,3.1,0.94,3,0.63\n")
    dataset = read_dataset(tmp_path)
    assert dataset.layout == "deam" and list(dataset.table["label"]) == ["Q3"] and not dataset.problems


def test_deam_annotations_found_twice_in_the_tree_count_once(tmp_path):
    root = make_deam(tmp_path / "DEAM")
    song_level = root / "annotations" / "annotations averaged per song" / "song_level"
    copy = root / "backup"
    copy.mkdir()
    for csv in song_level.iterdir():
        (copy / csv.name).write_bytes(csv.read_bytes())
    dataset = read_dataset(root)
    assert list(dataset.table["song_id"]) == ["2", "3", "10", "2001"]
    assert set(problem_names(dataset)) == {"4.mp3", "7.mp3", "11.mp3", "12.mp3"}


def test_deam_with_no_usable_song_gives_an_empty_table_with_its_columns(tmp_path):
    root = make_deam(tmp_path / "DEAM")
    for path in (root / "MEMD_audio").iterdir():
        path.unlink()
    empty(root / "MEMD_audio" / "2.mp3")
    dataset = read_dataset(root)
    assert dataset.table.empty
    assert list(dataset.table.columns) == CORE + ["valence_mean", "valence_std", "arousal_mean", "arousal_std"]
    assert len(dataset.problems) == 7  # 2.mp3 empty, six annotated songs without audio


def test_taffc_labels_by_folder_and_merges_the_metadata_csvs(tmp_path):
    root = make_taffc(tmp_path / "MER_audio_taffc_dataset")
    dataset = read_dataset(root, "taffc")
    table = dataset.table.set_index("song_id")
    assert list(dataset.table.columns[:4]) == CORE
    assert {"Quadrant", "Artist", "Title", "PQuad", "MoodsTotal"} <= set(table.columns)
    assert "Song" not in table.columns  # it is the song_id
    assert list(table.index) == ["MT0000004637", "MT0000040632", "MT0000082187", "MT0000218346"]
    assert table.loc["MT0000040632", "label"] == "Q1" and table.loc["MT0000218346", "label"] == "Q2"
    assert table.loc["MT0000218346", "path"].endswith("Q2/MT0000218346.wav")
    assert table.loc["MT0000040632", "Artist"] == "Beyoncé"  # read back from Windows-1252
    assert table.loc["MT0000082187", "Title"] == "Don’t Stop"
    assert (table["label"] == table["Quadrant"]).all()
    assert (table.index == table["group"]).all()
    assert set(problem_names(dataset)) == {"MT0000011357.mp3"}


def test_taffc_without_metadata_has_only_the_core_columns(tmp_path):
    for quadrant in ("Q1", "Q2", "Q3", "Q4"):
        clip(tmp_path / quadrant / f"MT000000000{quadrant[1]}.wav")
    table = read_dataset(tmp_path).table
    assert list(table.columns) == CORE
    assert list(table["label"]) == ["Q1", "Q2", "Q3", "Q4"]


@pytest.mark.parametrize("level", ["genres_original", "genres", ""])
def test_gtzan_labels_by_genre_and_skips_the_unreadable_jazz_00054(tmp_path, level):
    root = make_gtzan(tmp_path / "Data", level)
    assert detect_layout(root) == "gtzan"
    dataset = read_dataset(root)
    table = dataset.table
    assert list(table.columns) == CORE
    assert list(table["song_id"]) == ["blues.00000", "blues.00002", "blues.00010", "jazz.00053", "rock.00099"]
    assert list(table["label"]) == ["blues", "blues", "blues", "jazz", "rock"]
    assert list(problem_names(dataset)) == ["jazz.00054.wav"]


@pytest.mark.parametrize("level", ["", "emotifymusic"])
def test_emotify_summarises_listeners_per_track(tmp_path, level):
    root = make_emotify(tmp_path / "emotify", level)
    dataset = read_dataset(root, "emotify")
    gems = [f"gems_{category}" for category in GEMS9.labels]
    assert list(dataset.table.columns) == CORE + ["genre", "track_id"] + gems + ["raters"]
    table = dataset.table.set_index("song_id")
    assert list(table.index) == ["classical-1", "classical-2", "rock-1"]
    assert list(table["track_id"]) == [1, 2, 101]
    assert list(table["genre"]) == ["classical", "classical", "rock"]
    assert list(table["raters"]) == [4, 3, 2]

    first = table.loc["classical-1"]  # 4 listeners: amazement 2, solemnity 1, calmness 3
    assert first[gems].tolist() == pytest.approx([0.5, 0.25, 0, 0, 0.75, 0, 0, 0, 0])
    assert first["label"] == "calmness"
    second = table.loc["classical-2"]  # solemnity 2/3 ties tenderness 2/3: the first in GEMS-9 order wins
    shares = second[["gems_solemnity", "gems_tenderness", "gems_sadness"]].tolist()
    assert shares == pytest.approx([2 / 3, 2 / 3, 1 / 3])
    assert second["label"] == "solemnity"
    rock = table.loc["rock-1"]
    assert rock["gems_power"] == 1.0 and rock["gems_tension"] == 0.5 and rock["label"] == "power"
    assert table.loc["rock-1", "path"].endswith("rock/1.mp3")

    genres = (root / level).resolve()
    problems = {str(Path(path).relative_to(genres)): cause for path, cause in dataset.problems}
    assert set(problems) == {"electronic/1.mp3", "pop/2.mp3", "pop/5.mp3", "pop/99.mp3"}
    assert "no listener ticked" in problems["pop/2.mp3"]
    assert "empty" in problems["electronic/1.mp3"]
    assert "no ratings" in problems["pop/5.mp3"]
    assert "track id 399" in problems["pop/99.mp3"]


def test_synthemo_keeps_groups_and_cues_with_absolute_paths(tmp_path):
    root = make_synthemo(tmp_path / "synthemo")
    dataset = read_dataset(root, "synthemo")
    table = dataset.table
    assert list(table.columns) == CORE + ["tempo", "mode"]
    assert list(table["song_id"]) == ["c000-Q1", "c000-Q3", "c001-Q2"]
    assert list(table["group"]) == ["c000", "c000", "c001"]
    assert list(table["tempo"]) == [140, 70, 150]
    assert table.loc[0, "path"] == str(root.resolve() / "Q1" / "c000-Q1.wav")
    assert list(problem_names(dataset)) == ["c001-Q4.wav"]


def test_folder_labels_by_first_folder_and_names_songs_by_relative_path(tmp_path):
    root = make_folder(tmp_path / "mine")
    dataset = read_dataset(root, "folder")
    table = dataset.table
    assert list(table.columns) == CORE
    assert list(table["song_id"]) == ["happy/b", "happy/deep/a", "intro", "sad/track 2", "sad/track 10"]
    assert list(table["label"]) == ["happy", "happy", "", "sad", "sad"]
    assert list(table["group"]) == list(table["song_id"])
    assert list(problem_names(dataset)) == ["broken.wav"]


def test_a_song_id_used_twice_keeps_the_first_and_reports_the_other(tmp_path):
    clip(tmp_path / "Q1" / "MT1.mp3")
    clip(tmp_path / "Q2" / "MT1.wav")
    for quadrant in ("Q3", "Q4"):
        (tmp_path / quadrant).mkdir()
    dataset = read_dataset(tmp_path)
    assert list(dataset.table["label"]) == ["Q1"]
    [(path, cause)] = dataset.problems
    assert path.endswith("Q2/MT1.wav") and "already taken" in cause


# ------------------------------------------------------------------------------------ detection and errors


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_is_detected(tmp_path, layout):
    root = MAKERS[layout](tmp_path / layout)
    assert detect_layout(root) == layout
    assert read_dataset(root).layout == layout


def test_detection_tells_emotify_from_gtzan_and_genre_folders_from_gtzan(tmp_path):
    # Emotify's classical/ rock/ pop/ are GTZAN genres too; without data.csv and GTZAN's file names it is a folder.
    for genre in ("classical", "rock", "electronic", "pop"):
        clip(tmp_path / genre / "1.mp3")
    assert detect_layout(tmp_path) == "folder"
    table = read_dataset(tmp_path).table
    assert list(table["label"]) == ["classical", "electronic", "pop", "rock"]
    own = tmp_path / "own"
    for genre in ("blues", "rock"):
        clip(own / genre / "my song.wav")
    assert detect_layout(own) == "folder"
    with pytest.raises(EstmError, match="not look like a gtzan dataset"):
        read_dataset(own, "gtzan")


def test_empty_or_missing_folder_says_what_each_layout_expects(tmp_path):
    for root in (tmp_path, tmp_path / "absent"):
        with pytest.raises(EstmError) as raised:
            read_dataset(root)
        message = str(raised.value)
        assert "\n" not in message and str(root) in message
        assert all(layout in message for layout in LAYOUTS)
        assert "MEMD_audio" in message and "Q1" in message and "data.csv" in message and "synthemo.csv" in message


def test_a_wrong_explicit_layout_says_what_it_expects_and_what_is_there(tmp_path):
    root = make_gtzan(tmp_path / "Data")
    with pytest.raises(EstmError, match=r"not look like a deam dataset: expected MEMD_audio/.*found.*genres_original/"):
        read_dataset(root, "deam")
    with pytest.raises(EstmError, match=r"expected folders Q1/ Q2/ Q3/ Q4/"):
        read_dataset(root, "taffc")
    with pytest.raises(EstmError, match="unknown layout 'mp3'"):
        read_dataset(root, "mp3")


def test_progress_is_reported_per_probed_file_and_reads_are_deterministic(tmp_path):
    root = make_folder(tmp_path / "mine")
    calls = []
    first = read_dataset(root, on_progress=lambda done, total: calls.append((done, total)))
    assert calls == [(done, 6) for done in range(1, 7)]  # 5 songs and broken.wav
    second = read_dataset(root)
    pd.testing.assert_frame_equal(first.table, second.table)
    assert first.problems == second.problems


def test_one_finder_walks_in_a_stable_order_skips_debris_and_never_loops(tmp_path):
    from estm_core.finding import audio_files

    for name in ("z.wav", "a/x.wav", "a/c.wav", "a/b/y.wav", "a b/q.wav", "._z.wav", ".hidden/k.wav",
                 "__MACOSX/a.wav", "a/notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "a" / "loop").symlink_to(tmp_path)  # a link back up: followed once, never round again
    found = [path.relative_to(tmp_path).as_posix() for path in audio_files(tmp_path)]
    # each folder's own files by name, then its subfolders' by name: the order splits are drawn in
    assert found == ["z.wav", "a/c.wav", "a/x.wav", "a/b/y.wav", "a b/q.wav"]
    assert [path.name for path in audio_files(tmp_path / "a", recursive=False)] == ["c.wav", "x.wav"]
