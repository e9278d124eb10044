"""Nothing lost under faults, round two (issue 24), for the data path: a cache folder locked against a second run,
bounded options and allocations checked before a run starts, hostile caches refused on opening, an unfinished
corpus refused by split, full disks and read-only places named in one line, and no shards left after a commit."""

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from estm_core import audio
from estm_core.datasets import limits, synth
from estm_core.datasets import segment as segmenting
from estm_core.datasets.cache import SegmentDataset
from estm_core.datasets.layouts import read_dataset
from estm_core.datasets.segment import (
    CacheError, SegmentSettings, open_cache, read_manifest, read_settings, segment_split,
)
from estm_core.errors import EstmError, FileError

from conftest import tone, write

SMALL = SegmentSettings(sample_rate=8000, segment_length=8000)  # 1 s segments at 8 kHz
SMALL_OPTIONS = ("--sample-rate", "8000", "--seconds", "1")
ROOT = Path(__file__).resolve().parents[1]
NO_SPACE = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def split_file(folder: Path, count: int = 3, seconds: float = 2.5) -> Path:
    """A split CSV of `count` songs of `seconds` (2 segments each at SMALL with the default 2.5 s)."""
    rows = [{"song_id": f"s{k}", "path": str(write(folder / f"s{k}.wav", tone(seconds, 8000, 200 + 100 * k), 8000)),
             "label": "AB"[k % 2], "group": f"s{k}", "part": "train" if k else "test"} for k in range(count)]
    path = folder / "split.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def one_line(result) -> str:
    """The one error line of a failed command (asserting it is one, with no traceback)."""
    lines = result.err.strip().splitlines()
    assert result.code == 1 and len(lines) == 1 and "Traceback" not in result.err, result.err
    return lines[0]


def estm_process(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "estm_cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, **kwargs)


# ---------------------------------------------------------------- 1: one cache folder, one segmenting run at a time

HOLDER = """
import sys, time
from pathlib import Path
from estm_core.datasets import segment

started, go = Path(sys.argv[1]), Path(sys.argv[2])
real = segment._process_song


def waiting(*args):  # the run holds its folder until the test says go
    started.touch()
    while not go.exists():
        time.sleep(0.05)
    return real(*args)


segment._process_song = waiting
sys.argv = ["estm", *sys.argv[3:]]
from estm_cli.app import main
main()
"""


def test_a_second_run_into_a_cache_folder_being_segmented_is_refused_and_the_first_loses_nothing(tmp_path):
    split, cache = split_file(tmp_path, count=4), tmp_path / "cache"
    started, go = tmp_path / "started", tmp_path / "go"
    first = subprocess.Popen([sys.executable, "-c", HOLDER, started, go, "data", "segment", split, "-o", cache,
                              *SMALL_OPTIONS, "-q"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), first.stderr.read() if first.poll() is not None else "the first run never started"
        second = estm_process("data", "segment", split, "-o", cache, *SMALL_OPTIONS, "--force", "-q")
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 1 and len(lines) == 1 and "Traceback" not in second.stderr, second.stderr
        assert f"{cache}: another `estm data segment` is writing this cache folder" in lines[0]
        go.touch()
        assert first.wait(timeout=60) == 0, first.stderr.read()
    finally:
        go.touch()
        first.kill()
        first.wait()
        first.stderr.close()
    recorded = json.loads((cache / "segments.json").read_text())
    assert recorded["complete"] is True and recorded["songs"] == 4 and recorded["segments"] == 8
    assert len(read_manifest(cache)) == 8 and not list(cache.glob(".*lock"))  # the lock goes with its run


def test_the_lock_is_released_when_a_run_fails(tmp_path, monkeypatch):
    split = pd.read_csv(split_file(tmp_path), dtype={"song_id": str})
    monkeypatch.setattr(segmenting, "_assemble", fail_with(EstmError("boom")))
    with pytest.raises(EstmError, match="boom"):
        segment_split(split, tmp_path / "cache", SMALL)
    monkeypatch.undo()
    assert len(segment_split(split, tmp_path / "cache", SMALL).manifest) == 6


# --------------------------------------------------------------- 2: numeric options bounded, nan and inf refused

BAD_OPTIONS = [
    ("segment", "--sample-rate", "100000000"), ("segment", "--sample-rate", "0"), ("segment", "--seconds", "100000"),
    ("segment", "--seconds", "nan"), ("segment", "--seconds", "inf"), ("segment", "--seconds", "0"),
    ("segment", "--hop", "nan"), ("segment", "--hop", "-1"), ("segment", "--max-zeros", "nan"),
    ("segment", "--max-zeros", "1.5"), ("segment", "--jobs", "0"), ("segment", "--jobs", "100000"),
    ("split", "--test", "nan"), ("split", "--val", "-0.1"), ("split", "--seed", "-1"), ("split", "--jobs", "0"),
    ("synth", "--count", "0"), ("synth", "--count", "100000000"), ("synth", "--seconds", "nan"),
    ("synth", "--seconds", "inf"), ("synth", "--sample-rate", "100000000"), ("synth", "--channels", "3"),
    ("synth", "--jobs", "0"), ("synth", "--seed", "-1"),
    ("pairs", "--count", "0"), ("pairs", "--count", "1000000000000"), ("pairs", "--content-dev", "-1"),
    ("pairs", "--seed", "-1"), ("label", "--batch-size", "0"), ("label", "--batch-size", "-1"),
]


@pytest.mark.parametrize("command, option, value", BAD_OPTIONS, ids=[" ".join(case) for case in BAD_OPTIONS])
def test_every_numeric_option_of_the_data_commands_is_bounded(estm, tmp_path, command, option, value):
    target = {"segment": (tmp_path / "split.csv", "-o", tmp_path / "out"), "split": (tmp_path, "-o", tmp_path / "s.csv"),
              "synth": ("-o", tmp_path / "out"), "pairs": ("--data", tmp_path, "-o", tmp_path / "p.csv"),
              "label": ("--data", tmp_path, "-o", tmp_path / "l.csv")}[command]
    result = estm("data", command, *target, option, value)
    assert result.code == 1 and "Traceback" not in result.err and "internal error" not in result.err
    assert f"Invalid value for '{option}'" in result.err and ("must be" in result.err), result.err
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # refused before anything was made


def test_a_segmenting_run_checks_its_settings_even_from_the_library(tmp_path):
    split = pd.read_csv(split_file(tmp_path), dtype={"song_id": str})
    for settings in (SegmentSettings(8000, 10**12), SegmentSettings(100_000_000, 8000),
                     SegmentSettings(8000, 8000, max_zero_fraction=float("nan")), SegmentSettings(8000, 8000, hop=0)):
        with pytest.raises(EstmError, match="cannot segment with these settings"):
            segment_split(split, tmp_path / "cache", settings)
    assert not (tmp_path / "cache").exists()


def test_a_song_whose_cutting_needs_more_memory_than_a_job_has_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    split = pd.read_csv(split_file(tmp_path), dtype={"song_id": str})
    long_song = write(tmp_path / "long.wav", tone(40.0, 8000), 8000)
    split.loc[len(split)] = ["long", str(long_song), "A", "long", "train"]
    # 40 s cut every 1/8000 s into 1 s windows would be 320 000 windows; the three short songs fit in 2 MB
    monkeypatch.setattr(segmenting, "available_memory", lambda: 2_000_000)
    decoded = []
    real_load = audio.load
    monkeypatch.setattr(audio, "load", lambda path, **kwargs: decoded.append(Path(path).name) or real_load(path, **kwargs))
    result = segment_split(split, tmp_path / "cache", SegmentSettings(8000, 8000, hop=4000))
    assert "long.wav" not in decoded and set(result.manifest["song_id"]) == {"s0", "s1", "s2"}
    [(path, cause)] = result.problems
    assert path == str(long_song) and cause.startswith("too long to cut at these settings: about ")
    assert cause.endswith("MB available per job")


def test_a_run_that_would_not_fit_the_disk_is_refused_before_it_starts(estm, tmp_path, monkeypatch):
    split = split_file(tmp_path)
    monkeypatch.setattr(limits, "_free", lambda place: 500)
    line = one_line(estm("data", "segment", split, "-o", tmp_path / "cache", *SMALL_OPTIONS))
    assert line == (f"error: {tmp_path / 'cache'}: the segments need about 288 kB and the disk has 500 bytes "
                    "free: no space left on device")  # 3 songs of 3 windows, as shards and in the cache
    assert not list((tmp_path / "cache").glob("songs/*"))
    line = one_line(estm("data", "synth", "--source", "tones", "-n", "2", "--seconds", "1", "-o", tmp_path / "corpus"))
    assert line == (f"error: {tmp_path / 'corpus'}: 8 renderings need about 353 kB and the disk has 500 bytes free: "
                    "no space left on device")
    assert not (tmp_path / "corpus").exists()


def test_a_rendering_larger_than_the_memory_is_refused_before_it_starts(estm, tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "available_memory", lambda: 100_000_000)
    line = one_line(estm("data", "synth", "--source", "tones", "-n", "1", "--seconds", "600", "-o", tmp_path / "c"))
    assert "a rendering of 600 s at 22050 Hz needs about" in line and "of memory, more than is available" in line
    assert not (tmp_path / "c").exists()


# ------------------------------------------------------------------------- 3: a cache is checked when it is opened


@pytest.fixture
def cache(tmp_path) -> Path:
    """A finished cache of 3 songs, 6 segments of 1 s at 8 kHz."""
    split = pd.read_csv(split_file(tmp_path), dtype={"song_id": str})
    segment_split(split, tmp_path / "cache", SMALL, split_file="split.csv")
    return tmp_path / "cache"


def _settings(cache: Path, **changes) -> None:
    recorded = json.loads((cache / "segments.json").read_text())
    recorded["settings"].update(changes)
    (cache / "segments.json").write_text(json.dumps(recorded))


def _manifest(cache: Path, change) -> None:
    manifest = pd.read_csv(cache / "manifest.csv")
    change(manifest)
    manifest.to_csv(cache / "manifest.csv", index=False)


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


HOSTILE = {
    "segment_length 10**12": (lambda c: _settings(c, segment_length=10**12), "segments.json",
                              "segment_length 1000000000000 is not a whole number of samples from 1 to 600 s"),
    "segment_length unlike the array's": (lambda c: _settings(c, segment_length=4000), "segments.npy",
                                          "holds int16 (6, 8000), not int16 segments of 4000 samples"),
    "sample_rate 0": (lambda c: _settings(c, sample_rate=0), "segments.json", "sample_rate 0 is not a whole number"),
    "hop as text": (lambda c: _settings(c, hop="x"), "segments.json", "hop 'x' is not a whole number"),
    "max_zero_fraction nan": (lambda c: (c / "segments.json").write_text(
        (c / "segments.json").read_text().replace('"max_zero_fraction": 0.5', '"max_zero_fraction": NaN')),
        "segments.json", "max_zero_fraction nan is not a fraction"),
    "no settings": (lambda c: (c / "segments.json").write_text('{"complete": true}'), "segments.json",
                    "the settings must be exactly"),
    "segments.json not JSON": (lambda c: (c / "segments.json").write_text("complete: yes"), "segments.json",
                               "unreadable (expecting value"),
    "segments.json a list": (lambda c: (c / "segments.json").write_text("[1, 2]"), "segments.json",
                             "not a segment cache's settings (not a JSON object)"),
    "truncated segments.npy": (lambda c: _truncate(c / "segments.npy", 1000), "segments.npy",
                               "truncated: 1000 bytes of 96128"),
    "segments.npy not an array": (lambda c: (c / "segments.npy").write_text("hello"), "segments.npy",
                                  "not a readable segment array"),
    "float segments": (lambda c: np.save(c / "segments.npy", np.zeros((6, 8000), np.float32)), "segments.npy",
                       "holds float32 (6, 8000), not int16 segments"),
    "index out of range": (lambda c: _manifest(c, lambda m: m.__setitem__("index", m["index"] + 100)),
                           "manifest.csv", "an index that is not a row of its 6-row segments.npy"),
    "negative index": (lambda c: _manifest(c, lambda m: m.loc.__setitem__((0, "index"), -1)), "manifest.csv",
                       "an index that is not a row"),
    "fractional index": (lambda c: _manifest(c, lambda m: m.__setitem__("index", m["index"] + 0.5)), "manifest.csv",
                         "an index that is not a row"),
    "no index column": (lambda c: _manifest(c, lambda m: m.pop("index")), "manifest.csv", "no index column"),
    "manifest not text": (lambda c: (c / "manifest.csv").write_bytes(b"\xff\xfe\x00bad"), "manifest.csv",
                          "unreadable"),
}


@pytest.mark.parametrize("damage", HOSTILE, ids=list(HOSTILE))
def test_a_hostile_cache_is_refused_on_opening_with_the_file_and_the_cause(cache, damage):
    spoil, file, cause = HOSTILE[damage]
    spoil(cache)
    readers = [read_manifest, lambda c: SegmentDataset(c, part="train")]  # each reader checks what it reads
    readers += {"segments.json": [read_settings, open_cache], "segments.npy": [open_cache]}.get(file, [])
    for read in readers:
        with pytest.raises(CacheError) as refused:
            read(cache)
        message = str(refused.value)
        assert message.startswith(f"{cache / file}: ") and cause in message, message
        assert "\n" not in message and "remake it with `estm data segment " in message
        assert message.endswith(f".csv -o {cache} --force`")


def test_the_data_commands_name_a_hostile_cache_in_one_line(estm, cache, tmp_path):
    _settings(cache, segment_length=10**12)
    line = one_line(estm("data", "pairs", "--data", cache, "-o", tmp_path / "pairs.csv", "--part", "train"))
    assert line.startswith(f"error: {cache / 'segments.json'}: segment_length 1000000000000 is not")
    assert not (tmp_path / "pairs.csv").exists()
    line = one_line(estm("data", "segment", tmp_path / "split.csv", "-o", cache, *SMALL_OPTIONS))
    assert "holds segments of another split or other settings" in line  # a rerun does not take it as its own


def test_a_hostile_cache_is_redone_with_force(estm, cache, tmp_path):
    (cache / "segments.json").write_text("not json")
    assert "unreadable" in one_line(estm("data", "segment", tmp_path / "split.csv", "-o", cache, *SMALL_OPTIONS))
    assert estm("data", "segment", tmp_path / "split.csv", "-o", cache, *SMALL_OPTIONS, "--force", "-q").code == 0
    assert len(read_manifest(cache)) == 6


# ------------------------------------------------------------------ 6: an unfinished corpus is not split as whole


def interrupt_synth_after(monkeypatch, renderings: int) -> None:
    """Make the next corpus run stop (as a Ctrl-C would) when it starts its rendering number `renderings` + 1."""
    real, done = synth.render, []

    def render_then_stop(*args, **kwargs):
        if len(done) == renderings:
            raise KeyboardInterrupt
        done.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(synth, "render", render_then_stop)


def test_an_interrupted_corpus_is_refused_by_split_and_finished_by_a_rerun(estm, tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    interrupt_synth_after(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        synth.generate(corpus, contents=3, seconds=0.5, seed=2)
    monkeypatch.undo()
    assert len(list(corpus.glob("Q*/*.wav"))) == 5
    result = estm("data", "split", corpus, "-o", tmp_path / "split.csv", "-q")
    assert one_line(result) == (f"error: {corpus}: an unfinished corpus (`estm data synth` stopped before the end); "
                                f"finish it with `estm data synth --source tones -n 3 --seconds 0.5 --seed 2 "
                                f"--sample-rate 22050 -o {corpus}`")
    assert not (tmp_path / "split.csv").exists()
    for layout in ("taffc", "folder", "auto"):  # whatever the layout asked for
        with pytest.raises(EstmError, match="unfinished corpus"):
            read_dataset(corpus, layout)

    assert estm("data", "synth", "--source", "tones", "-n", "3", "--seconds", "0.5", "--seed", "2",
                "-o", corpus, "-q").code == 0
    assert estm("data", "split", corpus, "-o", tmp_path / "split.csv", "--test", "0.34", "-q").code == 0
    split = pd.read_csv(tmp_path / "split.csv")
    assert len(split) == 12 and (split.groupby("group")["part"].nunique() == 1).all()
    assert not (corpus / synth.UNFINISHED_NAME).exists()


def test_a_forced_remake_interrupted_is_unfinished_though_the_old_table_remains(tmp_path, monkeypatch):
    synth.generate(tmp_path, contents=2, seconds=0.5, seed=0)
    interrupt_synth_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        synth.generate(tmp_path, contents=2, seconds=0.5, seed=1, force=True)
    assert (tmp_path / "synthemo.csv").exists() and synth.unfinished(tmp_path)
    with pytest.raises(EstmError, match="--seed 1"):
        read_dataset(tmp_path)


def test_a_corpus_interrupted_before_the_mark_existed_is_refused_too(tmp_path):
    synth.generate(tmp_path, contents=1, seconds=0.5)
    (tmp_path / "synthemo.csv").unlink()  # the table came last before the mark: without it, the run stopped
    with pytest.raises(EstmError, match="unfinished corpus"):
        read_dataset(tmp_path)


def test_a_folder_of_ones_own_still_splits(estm, tmp_path):
    for quadrant in ("Q1", "Q2"):
        (tmp_path / "mine" / quadrant).mkdir(parents=True)
        for k in range(3):
            write(tmp_path / "mine" / quadrant / f"{quadrant}-{k}.wav", tone(0.5, 8000, 300 + 40 * k), 8000)
    assert estm("data", "split", tmp_path / "mine", "-o", tmp_path / "split.csv", "-q").code == 0
    assert len(pd.read_csv(tmp_path / "split.csv")) == 6


# --------------------------------------------------------------------- 7: a full disk or a read-only place, named


def fail_with(error: Exception):
    def failing(*args, **kwargs):
        raise error

    return failing


def test_a_full_disk_while_cutting_is_one_line_and_leaves_an_unfinished_cache(estm, tmp_path, monkeypatch):
    split, cache = split_file(tmp_path), tmp_path / "cache"
    monkeypatch.setattr(np, "savez", fail_with(NO_SPACE))
    line = one_line(estm("data", "segment", split, "-o", cache, *SMALL_OPTIONS, "-q"))
    assert line.startswith(f"error: {cache / 'songs'}/") and line.endswith(": cannot write: no space left on device")
    assert json.loads((cache / "segments.json").read_text())["complete"] is False
    assert [path.name for path in cache.rglob("*") if path.is_file()] == ["segments.json"]  # no temporaries left
    with pytest.raises(EstmError, match="incomplete cache"):
        read_manifest(cache)
    monkeypatch.undo()
    assert estm("data", "segment", split, "-o", cache, *SMALL_OPTIONS, "-q").code == 0
    assert len(read_manifest(cache)) == 6


def test_a_full_disk_while_assembling_leaves_no_array_looking_whole(tmp_path, monkeypatch):
    split = pd.read_csv(split_file(tmp_path), dtype={"song_id": str})
    monkeypatch.setattr(np.lib.format, "write_array_header_1_0", fail_with(NO_SPACE))
    with pytest.raises(FileError, match="segments.npy: cannot write: no space left on device$"):
        segment_split(split, tmp_path / "cache", SMALL)
    assert not (tmp_path / "cache" / "segments.npy").exists() and not list((tmp_path / "cache").glob(".*tmp*"))
    assert json.loads((tmp_path / "cache" / "segments.json").read_text())["complete"] is False


def test_a_full_disk_while_rendering_is_one_line_and_leaves_an_unfinished_corpus(estm, tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    monkeypatch.setattr(soundfile.SoundFile, "write", fail_with(NO_SPACE))
    line = one_line(estm("data", "synth", "--source", "tones", "-n", "1", "--seconds", "0.5", "-o", corpus))
    assert line == f"error: {corpus / 'Q1/synthemo-c000-Q1.wav'}: cannot write: no space left on device"
    assert synth.unfinished(corpus) and not list(corpus.rglob("*.wav")) and not list(corpus.rglob("*.tmp*"))
    with pytest.raises(EstmError, match="unfinished corpus"):
        read_dataset(corpus)


def test_a_read_only_output_folder_is_one_line(estm, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the tmpfs test covers read-only places as root")
    split, place = split_file(tmp_path), tmp_path / "ro"
    place.mkdir()
    place.chmod(0o555)
    try:
        line = one_line(estm("data", "segment", split, "-o", place / "c", *SMALL_OPTIONS))
        assert line == f"error: {place / 'c'}: cannot write: permission denied"
        line = one_line(estm("data", "synth", "--source", "tones", "-n", "1", "-o", place / "s"))
        assert line == f"error: {place / 's'}: cannot write: permission denied"
    finally:
        place.chmod(0o755)


MOUNTED = """
set -e
mount -t tmpfs -o size=64k none "$1"
mkdir "$1/ro" && mount -t tmpfs -o ro none "$1/ro"
shift
"$@"
"""


def in_small_mounts(folder: Path, *command) -> subprocess.CompletedProcess:
    """Run `command` where `folder` is a fresh 64 kB tmpfs holding a read-only tmpfs `ro` (its own mount namespace)."""
    folder.mkdir()
    return subprocess.run(["unshare", "-m", "sh", "-c", MOUNTED, "sh", folder, *map(str, command)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_a_small_disk_and_a_read_only_mount_are_one_line_each(tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("no unshare to mount a small tmpfs with")
    probe = in_small_mounts(tmp_path / "probe", "true")
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.strip()}")
    split, estm = split_file(tmp_path), (sys.executable, "-m", "estm_cli")
    cases = {
        "c": (("data", "segment", split, *SMALL_OPTIONS), "the segments need about ", "no space left on device"),
        "s": (("data", "synth", "--source", "tones", "-n", "1"), "4 renderings need about ", "no space left on device"),
        "ro/c": (("data", "segment", split, *SMALL_OPTIONS), "", "cannot write: read-only file system"),
        "ro/s": (("data", "synth", "--source", "tones", "-n", "1"), "", "cannot write: read-only file system"),
    }
    for k, (output, (command, start, end)) in enumerate(cases.items()):
        mounts = tmp_path / f"mounts{k}"
        result = in_small_mounts(mounts, *estm, *command, "-o", mounts / output, "-q")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: {mounts / output}: {start}") and lines[0].endswith(end), lines[0]


# ------------------------------------------------------------------------ 9: no shards left after a cache's commit


def test_shards_left_by_a_kill_right_after_the_commit_are_removed_by_a_rerun(estm, tmp_path, monkeypatch):
    split, cache = split_file(tmp_path), tmp_path / "cache"
    real = segmenting._write_settings

    def commit_then_die(out_dir, recorded):
        real(out_dir, recorded)
        if recorded["complete"]:
            raise KeyboardInterrupt  # stands in for kill -9 between the commit and the clean-up

    monkeypatch.setattr(segmenting, "_write_settings", commit_then_die)
    assert estm("data", "segment", split, "-o", cache, *SMALL_OPTIONS, "-q").code == 130
    assert len(list((cache / "songs").iterdir())) == 3 and len(read_manifest(cache)) == 6  # committed, whole
    monkeypatch.undo()
    assert estm("data", "segment", split, "-o", cache, *SMALL_OPTIONS, "-q").code == 0
    assert not (cache / "songs").exists() and len(read_manifest(cache)) == 6


def test_a_mu_law_cache_is_checked_when_opened_and_rebuilt_when_its_record_is_unreadable(tmp_path):
    from estm_core.datasets.mulaw import build_cache, built_cache

    table = pd.DataFrame([{"song_id": f"s{k}", "label": "", "part": "train",
                           "path": str(write(tmp_path / f"s{k}.wav", tone(0.5, 16000, 300 + 50 * k), 16000))}
                          for k in range(2)])
    folder = tmp_path / "codes"
    assert build_cache(table, folder).index["length"].tolist() == [8000, 8000]
    (folder / "cache.json").write_text("{not json")
    assert len(build_cache(table, folder).index) == 2  # the store's own cache: built again, not an internal error
    index = pd.read_csv(folder / "index.csv")
    for spoil in (lambda i: i.__setitem__("length", i["length"] * 10), lambda i: i.loc.__setitem__((0, "start"), -5),
                  lambda i: i.pop("start")):
        spoilt = index.copy()
        spoil(spoilt)
        spoilt.to_csv(folder / "index.csv", index=False)
        for read in (lambda: built_cache(folder), lambda: build_cache(table, folder)):
            with pytest.raises(FileError, match=r"index.csv: does not describe the 16000 codes of codes.u8"):
                read()
