"""Nothing lost under faults (issue 14), for the data path: kills part-way through segmenting, worker processes
orphaned by a killed parent, symlink loops and macOS debris in file searches, bad audio in a split, and the one-line
errors for inputs that are empty or of the wrong kind. Kills are simulated by making a step raise."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from estm_cli.common import expand_inputs
from estm_core.datasets import segment as segmenting
from estm_core.datasets.cache import SegmentDataset
from estm_core.datasets.segment import SegmentSettings, read_manifest, read_settings, segment_split
from estm_core.errors import EstmError
from estm_core.workers import process_pool

from conftest import tone, truncate, write

SMALL = SegmentSettings(sample_rate=8000, segment_length=8000)  # 1 s segments at 8 kHz


def split_on_disk(folder: Path, count: int = 3, junk: bool = False) -> pd.DataFrame:
    """A split table of `count` 2.5 s songs (2 segments each at SMALL) (and a file that is not audio, with `junk`)."""
    rows = [{"song_id": f"s{k}", "path": str(write(folder / f"s{k}.wav", tone(2.5, 8000, 200 + 100 * k), 8000)),
             "label": "AB"[k % 2], "group": f"s{k}", "part": "train"} for k in range(count)]
    if junk:
        (folder / "junk.wav").write_text("not audio")
        rows.append({"song_id": "junk", "path": str(folder / "junk.wav"), "label": "A", "group": "junk",
                     "part": "train"})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ 5: the cache is committed by one step, last


def kill_after_the_manifest(monkeypatch):
    """Make the next segmenting run die right after its manifest.csv is written (before segments.json commits)."""
    real = segmenting.write_csv

    def write_then_die(frame, path, **kwargs):
        real(frame, path, **kwargs)
        raise KeyboardInterrupt  # stands in for kill -9: nothing after this step runs

    monkeypatch.setattr(segmenting, "write_csv", write_then_die)
    return real


def test_a_cache_killed_before_its_commit_is_refused_by_readers_and_finished_by_a_rerun(tmp_path, monkeypatch):
    split, out = split_on_disk(tmp_path), tmp_path / "cache"
    real = kill_after_the_manifest(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        segment_split(split, out, SMALL, split_file="split.csv")
    assert (out / "manifest.csv").exists() and (out / "segments.npy").exists()
    for read in (read_settings, read_manifest, lambda cache: SegmentDataset(cache, part="train")):
        with pytest.raises(EstmError, match=r"^incomplete cache .*cache.*: rerun `estm data segment split.csv -o "):
            read(out)

    monkeypatch.setattr(segmenting, "write_csv", real)
    rerun = segment_split(split, out, SMALL)  # not "done": it finishes the cache from the songs already cut
    assert rerun.songs_done_before == 3 and len(rerun.manifest) == 6
    assert json.loads((out / "segments.json").read_text())["complete"] is True
    assert read_settings(out) == SMALL and len(SegmentDataset(out, part="train")) == 6


@pytest.mark.parametrize("killed", [True, False], ids=["killed before its commit", "finished"])
def test_force_starts_over_removing_the_old_cache_files(tmp_path, monkeypatch, killed):
    split, out = split_on_disk(tmp_path), tmp_path / "cache"
    real_write = kill_after_the_manifest(monkeypatch) if killed else segmenting.write_csv
    with pytest.raises(KeyboardInterrupt) if killed else contextlib.nullcontext():
        segment_split(split, out, SMALL, write_wav=True)
    monkeypatch.setattr(segmenting, "write_csv", real_write)
    stale = write(out / "wav" / "gone-0.wav", tone(1.0, 8000), 8000)
    (out / "notes.txt").write_text("the user's own file")
    calls = []
    real_song = segmenting._process_song
    monkeypatch.setattr(segmenting, "_process_song",
                        lambda song_id, *args: calls.append(song_id) or real_song(song_id, *args))
    again = segment_split(split, out, SMALL, force=True)
    assert calls == ["s0", "s1", "s2"] and again.songs_done_before == 0 and len(again.manifest) == 6
    assert not stale.exists() and (out / "notes.txt").exists()


def test_the_train_command_names_an_incomplete_cache_in_one_line(estm, tmp_path, monkeypatch, store_home):
    out = tmp_path / "cache"
    kill_after_the_manifest(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        segment_split(split_on_disk(tmp_path), out, SMALL, split_file=tmp_path / "split.csv")
    result = estm("train", "mer", "--data", out, "--device", "cpu", "-q")
    assert result.code == 1 and len(result.err.strip().splitlines()) == 1
    assert f"incomplete cache {out}" in result.err and f"estm data segment {tmp_path / 'split.csv'}" in result.err


# -------------------------------------------------------------------- 9: a rerun keeps reporting what it skipped


def test_a_rerun_of_a_finished_cache_still_reports_the_songs_it_skipped(estm, tmp_path):
    split_file, out = tmp_path / "split.csv", tmp_path / "cache"
    split_on_disk(tmp_path, junk=True).to_csv(split_file, index=False)
    options = ("--sample-rate", "8000", "--seconds", "1")
    for run in ("first", "again"):
        result = estm("data", "segment", split_file, "-o", out, *options)
        assert result.code == 3, run
        assert f"{tmp_path / 'junk.wav'}: not an audio file" in result.err, run


# --------------------------------------------------------------------- 9: data split decodes every file in full


def dataset_with_bad_files(root: Path) -> dict[str, Path]:
    """A folder-layout dataset (labels A and B) of good songs, a truncated wav and a wav holding NaN."""
    for label in "AB":
        (root / label).mkdir(parents=True)
        for k in range(3):
            write(root / label / f"{label}{k}.wav", tone(1.0, 8000, 300 + 50 * k), 8000)
    truncated = truncate(write(root / "A" / "cut.wav", tone(4.0, 8000), 8000), 0.5)
    samples = tone(1.0, 8000)
    samples[100:110] = np.nan
    nan = write(root / "B" / "nan.wav", samples, 8000, subtype="FLOAT")
    return {"truncated": truncated, "nan": nan}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_split_leaves_out_and_lists_truncated_and_nan_files(estm, tmp_path, jobs):
    bad = dataset_with_bad_files(tmp_path / "data")
    result = estm("data", "split", tmp_path / "data", "-o", tmp_path / "split.csv", "--jobs", jobs, "-q")
    assert result.code == 3
    split = pd.read_csv(tmp_path / "split.csv")
    assert len(split) == 6 and not split["path"].isin([str(path) for path in bad.values()]).any()
    assert f"{bad['truncated']}: truncated" in result.err
    assert f"{bad['nan']}: contains 10 NaN or infinite samples" in result.err


# ----------------------------------------------------------------- 12: workers exit when their parent is killed

PARENT = """
import os, time
from estm_core.workers import process_pool

pool = process_pool(2)
[future.result() for future in [pool.submit(os.getpid) for _ in range(2)]]  # the workers are up
for _ in range(2):
    pool.submit(time.sleep, 120)
print(*pool._processes, flush=True)
time.sleep(120)
"""


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting for init to reap it is not)."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (FileNotFoundError, ProcessLookupError):
            return False
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_pool_workers_exit_when_their_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    workers = [int(pid) for pid in parent.stdout.readline().split()]
    try:
        assert len(workers) == 2 and all(map(running, workers))
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(map(running, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(running, workers)), "the workers outlived their killed parent"
    finally:
        for pid in filter(running, workers):
            os.kill(pid, signal.SIGKILL)
        parent.kill()
        parent.stdout.close()


class _Witness:
    """Writes its file when destroyed: at the latest by the interpreter's teardown of its module."""

    def __init__(self, path: str):
        self.path = path

    def __del__(self):
        Path(self.path).write_text("torn down")


def _keep_until_teardown(path: str) -> int:
    global _witness
    _witness = _Witness(path)
    return os.getpid()


def test_workers_leave_without_the_interpreters_teardown(tmp_path):
    """A spawned worker's teardown of librosa's, numba's and scipy's modules took half a second of every pool's
    shutdown (every cue transfer's); a worker whose work is done and sent has nothing that needs it."""
    marker = tmp_path / "marker"
    pool = process_pool(1)
    pid = pool.submit(_keep_until_teardown, str(marker)).result()
    pool.shutdown(wait=True)
    assert not running(pid) and not marker.exists()


# ------------------------------------------------ 6: file searches neither loop nor repeat, and skip macOS debris


def test_a_symlink_to_the_folder_itself_lists_each_file_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loop").mkdir()
    write(tmp_path / "loop" / "song.wav", tone(0.1, 8000), 8000)
    (tmp_path / "loop" / "self").symlink_to(".")
    assert expand_inputs(["loop/**/*.wav"], recursive=False) == ([Path("loop/song.wav")], [])
    assert expand_inputs(["loop"], recursive=True) == ([Path("loop/song.wav")], [])


def test_folders_linked_to_each_other_end_and_list_each_file_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in "ab":
        (tmp_path / name).mkdir()
        write(tmp_path / name / f"{name}.wav", tone(0.1, 8000), 8000)
    (tmp_path / "a" / "to_b").symlink_to("../b")
    (tmp_path / "b" / "to_a").symlink_to("../a")
    found, _ = expand_inputs(["a/**/*.wav"], recursive=False)
    assert found == [Path("a/a.wav"), Path("a/to_b/b.wav")]
    assert expand_inputs(["**/*.wav"], recursive=False)[0] == [Path("a/a.wav"), Path("b/b.wav")]
    assert expand_inputs(["a", "b"], recursive=True)[0] == [Path("a/a.wav"), Path("a/to_b/b.wav")]


def test_the_same_file_under_two_names_is_listed_once_as_first_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "song.wav", tone(0.1, 8000), 8000)
    (tmp_path / "alias.wav").symlink_to("song.wav")
    assert expand_inputs(["alias.wav", "song.wav", "./song.wav"], recursive=False)[0] == [Path("alias.wav")]


def test_macos_debris_is_skipped_in_folders_and_globs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "album" / "__MACOSX").mkdir(parents=True)
    write(tmp_path / "album" / "song.wav", tone(0.1, 8000), 8000)
    (tmp_path / "album" / "._song.wav").write_bytes(b"\x00\x05\x16\x07 resource fork")
    (tmp_path / "album" / "__MACOSX" / "song.wav").write_bytes(b"\x00\x05\x16\x07 resource fork")
    for items, recursive in ((["album"], True), (["album/**/*.wav"], False), (["album/*"], False)):
        assert expand_inputs(items, recursive)[0] == [Path("album/song.wav")], items


# -------------------------------------------------------------------------- 14: one line for the wrong input


def test_an_empty_list_on_stdin_is_one_line(estm):
    for command in (("inspect", "-"), ("analyze", "-", "--json")):
        result = estm(*command, stdin="\n")
        assert result.code == 1 and result.err.strip().splitlines() == [
            "error: no file names on stdin (`-` reads one path per line)"], command


def test_segmenting_an_audio_file_says_it_is_not_a_split(estm, tmp_path):
    song = write(tmp_path / "a.wav", tone(0.5, 8000), 8000)
    result = estm("data", "segment", song, "-o", tmp_path / "cache")
    assert result.code == 1 and len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert "a.wav: is an audio file, not a split file" in result.err and "estm data split" in result.err


def test_quiet_training_prints_no_finished_line(capsys, tmp_path):
    from estm_cli.train import run_training

    result = SimpleNamespace(message="", path=tmp_path / "m.safetensors", status="finished", best_epoch=1,
                             best_value=0.5, history=[{}])
    run_training(lambda on_step, on_epoch: result, quiet=True, json_=False, epochs=1)
    assert capsys.readouterr().err == ""
    run_training(lambda on_step, on_epoch: result, quiet=False, json_=False, epochs=1)
    assert "finished: best epoch 1" in capsys.readouterr().err
