"""Nothing lost under faults (issue 24), for the model store and training: model files whose metadata asks for what
the code cannot use, a full disk or an unusable store during training, resuming with the run's own options, bounded
numeric options, odd names and the temporaries of killed writes."""

import contextlib
import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from estm_core import files, model_file, store
from estm_core.datasets.segment import SegmentSettings, segment_split
from estm_core.errors import EstmError, StoreError
from estm_core.features import FeatureSettings
from estm_core.models.mer import MER
from estm_core.models.resnet import GenreResNet
from estm_core.training.classifier import train_classifier
from estm_core.training.loop import TrainConfig

from conftest import tone, write

TINY_FEATURES = {"n_fft": 256, "hop_length": 64, "n_mels": 32, "standardize": True}
TINY_RESNET = {"blocks": (1, 1), "widths": (8, 16)}


def one_error_line(result, *words) -> str:
    """The command failed with exit 1 and one line saying why (notes may come before it), holding `words`."""
    assert result.code == 1, (result.code, result.err)
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "internal error" not in errors[0] and "Traceback" not in result.err, result.err
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def rewrite_metadata(source: Path, target: Path, edit) -> Path:
    """A copy of model file `source` whose metadata JSON went through `edit(info) -> info`, as a hostile hand could."""
    with safe_open(str(source), framework="pt") as file:
        metadata = file.metadata()
        tensors = {key: file.get_tensor(key) for key in file.keys()}
    metadata[model_file.METADATA_KEY] = json.dumps(edit(json.loads(metadata[model_file.METADATA_KEY])))
    save_file(tensors, str(target), metadata=metadata)
    return target


def edited(**changes):
    """An `edit` for rewrite_metadata: "audio.sample_rate": 0 sets info["audio"]["sample_rate"]."""
    def edit(info):
        for key, value in changes.items():
            *parents, last = key.split("__")
            place = info
            for parent in parents:
                place = place[parent]
            place[last] = value
        return info

    return edit


@pytest.fixture
def judge(store_home):
    """An untrained tiny genre classifier in the test's store, for 0.5 s at 8 kHz."""
    torch.manual_seed(0)
    return model_file.save_model(GenreResNet(classes=2, **TINY_RESNET), store.model_path("genre", "judge"),
                                 labels=["high", "low"],
                                 audio=model_file.AudioSettings(8000, 4000, features=TINY_FEATURES))


# ------------------------------------------------------------------- 3: a model file's metadata is distrusted


@pytest.mark.parametrize("change, cause", [
    ({"audio__segment_length": 2**29}, "audio.segment_length is 536870912, outside"),
    ({"audio__features__n_fft": 2**28}, "n_fft must be a whole number from 16 to 65536"),
    ({"audio": None}, "no audio settings"),
    ({"audio__sample_rate": 0}, "audio.sample_rate is 0, outside"),
    ({"audio__sample_rate": "fast"}, "audio.sample_rate is \"fast\", not a whole number"),
    ({"labels": []}, "a classifier needs at least two labels"),
    ({"labels": ["high", "high"]}, "labels must be distinct"),
    ({"labels": ["high", 3]}, "labels must be non-empty strings"),
    ({"audio__features__n_mels": 0}, "n_mels must be a whole number from 1 to"),
    ({"audio__features__hop_length": -5}, "hop_length must be a whole number from 1"),
    ({"audio__features__window": "hann"}, "unknown feature settings window"),
    ({"family": "nope"}, "model family 'nope' is not available"),
    ({"config": [1, 2]}, "config is [1, 2], not an object"),
    ({"config__blocks": [10**6, 1]}, "its config does not make a genre model (blocks per stage must be"),
    ({"config__widths": [8, "wide"]}, "its config does not make a genre model (widths must be"),
    ({"labels": ["a", "b", "c"]}, "its network decides 2 classes, but it has 3 labels"),
])
def test_metadata_no_task_can_use_is_refused_in_one_line_naming_the_file(judge, tmp_path, estm, change, cause):
    hostile = rewrite_metadata(judge, tmp_path / "hostile.safetensors", edited(**change))
    with pytest.raises(StoreError, match=f"^{hostile}: ") as refused:
        store.load_model(hostile)
    assert cause in str(refused.value) and "\n" not in str(refused.value)
    song = write(tmp_path / "song.wav", tone(1.0, 8000), 8000)
    one_error_line(estm("classify", song, "--model", hostile), str(hostile), cause)


def test_metadata_that_is_no_json_object_is_refused(judge, tmp_path):
    with safe_open(str(judge), framework="pt") as file:
        tensors = {key: file.get_tensor(key) for key in file.keys()}
    for text, cause in (("{not json", "not JSON"), ("[1, 2]", "the metadata is a JSON list"),
                        ('{"config": {}}', "no family in the metadata")):
        save_file(tensors, str(tmp_path / "odd.safetensors"), metadata={model_file.METADATA_KEY: text})
        with pytest.raises(StoreError, match=cause):
            model_file.read_info(tmp_path / "odd.safetensors")


def test_a_model_file_that_would_be_refused_is_never_written(store_home):
    path = store.model_path("genre", "unreadable")
    with pytest.raises(StoreError, match=r"not saved: its metadata is unusable: audio.segment_length is 10000000000"):
        model_file.save_model(GenreResNet(classes=2, **TINY_RESNET), path, labels=["high", "low"],
                              audio=model_file.AudioSettings(8000, 10**10, features=TINY_FEATURES))
    assert not path.exists()


def test_a_mer_model_must_take_the_log_mel_its_settings_make(store_home, tmp_path):
    """The network is tried on the meta device with the input its settings make: no memory, no surprise later."""
    features = {"n_fft": 512, "hop_length": 8, "n_mels": 128, "standardize": True}  # 128 x 513 from 4096 samples
    path = model_file.save_model(MER(width=1 / 64), store.model_path("mer", "small"), labels=["Q1", "Q2", "Q3", "Q4"],
                                 audio=model_file.AudioSettings(8000, 4096, features=features))
    assert store.load_model(path).model.config["width"] == 1 / 64
    narrow = rewrite_metadata(path, tmp_path / "narrow.safetensors", edited(audio__features__n_mels=64))
    with pytest.raises(StoreError, match=r"does not take the 64 x 513 log-mel its audio settings make"):
        store.load_model(narrow)
    relabelled = rewrite_metadata(path, tmp_path / "relabelled.safetensors", edited(labels=["a", "b", "c", "d"]))
    with pytest.raises(StoreError, match=r"a mer model's labels are \["):
        store.load_model(relabelled)


def test_model_options_no_network_can_have_are_refused_in_one_line():
    from estm_core.models.estm import ESTM1, ESTM2, HVQVAE
    from estm_core.models.wavenet import WaveNet

    for build, cause in ((lambda: HVQVAE(latent_dim=2), "latent_dim must be a whole number from 4"),
                         (lambda: HVQVAE(codebook_size=0), "codebook_size must be"),
                         (lambda: ESTM1(d=3), "d must be a whole number from 5"),
                         (lambda: ESTM2(beta_e=float("nan")), "beta_e must be a number"),
                         (lambda: WaveNet(layers=10**6), "layers must be a whole number from 1 to 16"),
                         (lambda: MER(hidden=0), "hidden must be"),
                         (lambda: FeatureSettings(n_fft=2**28), "n_fft must be")):
        with pytest.raises(EstmError, match=cause):
            build()


# ------------------------------------------------------------------------ training: a cache of 0.5 s tones


@pytest.fixture(scope="module")
def tone_cache(tmp_path_factory):
    """16 one-second songs at 8 kHz, low and high tones; 0.5 s segments (12 train, 4 validation songs)."""
    folder = tmp_path_factory.mktemp("tones")
    rows = []
    for k in range(16):
        label = "low" if k % 2 else "high"
        path = write(folder / f"s{k}.wav", tone(1.0, 8000, frequency=200 if label == "low" else 1500), 8000)
        rows.append({"song_id": f"s{k}", "path": str(path), "label": label, "group": f"s{k}",
                     "part": "train" if k < 12 else "validation"})
    segment_split(pd.DataFrame(rows), folder / "cache", SegmentSettings(8000, 4000))
    return folder / "cache"


def train_tiny(cache, name, epochs=2, **options):
    return train_classifier("genre", cache, name, TrainConfig(epochs=epochs, batch_size=8, lr=3e-3),
                            feature_settings=FeatureSettings(**TINY_FEATURES), model_options=TINY_RESNET, **options)


@contextlib.contextmanager
def disk_full_at(save: str, count: int = 1):
    """Make the `count`-th save of the resume checkpoint (`save` "checkpoint") or of the model file ("model") fail as
    a full disk does."""
    from estm_core.training import loop

    owner, name = (loop, "save_resume_state") if save == "checkpoint" else (model_file, "save_model")
    real, seen = getattr(owner, name), {"count": 0}

    def failing(*args, **kwargs):
        seen["count"] += 1
        if seen["count"] == count:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(owner, name, failing)
        yield


@contextlib.contextmanager
def tmpfs(folder: Path, options: str):
    """A tmpfs mounted at `folder` (Linux, as root), or a skip saying why not."""
    folder.mkdir()
    mounted = sys.platform == "linux" and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("cannot mount a tmpfs here (needs Linux and root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


# --------------------------------------------------------------- 7: a full disk, an unusable store in training


def test_a_full_disk_before_the_first_checkpoint_leaves_no_model(tone_cache, store_home):
    train_tiny(tone_cache, "full")  # an earlier run of the name: --force starts over, and none of it may remain
    path = store.model_path("genre", "full")
    with disk_full_at("checkpoint"), pytest.raises(EstmError) as stopped:
        train_tiny(tone_cache, "full", force=True)
    assert str(stopped.value) == (f"{store.resume_path(path)}: cannot write: no space left on device; "
                                  "training stopped; no model kept")
    assert not any(os.path.lexists(candidate) for candidate in (
        path, store.history_path(path), store.resume_path(path)))
    assert store.newest("genre") is None  # a task finds no half-made model to pick
    assert not [leftover.name for leftover in path.parent.iterdir()]  # temporaries and lock gone too


def test_a_full_disk_later_keeps_what_resume_continues(tone_cache, store_home):
    with disk_full_at("checkpoint", count=2), pytest.raises(
            EstmError, match=r"later.resume: cannot write: no space left on device; --resume continues after epoch 1"):
        train_tiny(tone_cache, "later", epochs=3)
    result = train_tiny(tone_cache, "later", epochs=3, resume=True)
    assert result.status == "finished" and result.history["epoch"].tolist() == [1, 2, 3]


def test_a_full_disk_is_one_line_on_the_command_line(tone_cache, store_home, estm):
    with disk_full_at("model"):
        result = estm("train", "genre", "--data", tone_cache, "--name", "cli", "--epochs", "1", "--batch-size", "8")
    one_error_line(result, "cli.safetensors: cannot write: no space left on device", "no model kept")
    assert not store.model_path("genre", "cli").exists()


def test_a_store_that_is_a_file_is_one_line(tone_cache, tmp_path, monkeypatch, estm):
    home = tmp_path / "home"
    home.write_text("not a folder")
    monkeypatch.setenv("ESTM_HOME", str(home))
    for arguments in (["train", "genre", "--data", tone_cache, "--epochs", "1"], ["models", "list"],
                      ["models", "show", "x"]):
        one_error_line(estm(*arguments), f"{home}: the model store's place is a file, not a folder")


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0,
                    reason="root writes into read-only folders: chmod cannot make one here (the tmpfs test can)")
def test_a_read_only_store_is_one_line(tone_cache, store_home, estm):
    store_home.mkdir()
    store_home.chmod(0o500)
    try:
        one_error_line(estm("train", "genre", "--data", tone_cache, "--epochs", "1"), "permission denied")
    finally:
        store_home.chmod(0o700)


def test_a_read_only_mount_is_one_line(tone_cache, tmp_path, monkeypatch, estm):
    with tmpfs(tmp_path / "ro", "ro,size=64k") as home:
        monkeypatch.setenv("ESTM_HOME", str(home))
        one_error_line(estm("train", "genre", "--data", tone_cache, "--epochs", "1"),
                       f"{home}/models/genre: cannot make the model store's folder: read-only file system")


def test_a_really_full_disk_stops_the_run_in_one_line(tone_cache, tmp_path, monkeypatch):
    # the model file (about 24 kB) fits, its resume checkpoint (about 3 times larger) does not
    with tmpfs(tmp_path / "small", "size=64k") as home:
        monkeypatch.setenv("ESTM_HOME", str(home))
        with pytest.raises(EstmError, match=r"cannot write: no space left on device; training stopped; no model kept"):
            train_tiny(tone_cache, "D", epochs=1)
        assert not list((home / "models" / "genre").iterdir())


# ------------------------------------------------------------------ 8: --resume takes the run's own options


@pytest.fixture(scope="module")
def mer_cache(tmp_path_factory):
    """Four 10.1 s songs at 22 050 Hz, one per quadrant: a segment each, the mer model's 128 x 435 log-mel."""
    folder = tmp_path_factory.mktemp("mer")
    rows = [{"song_id": f"s{k}", "path": str(write(folder / f"s{k}.wav", tone(10.1, 22050, 200 + 300 * k), 22050)),
             "label": f"Q{k + 1}", "group": f"s{k}", "part": "train"} for k in range(4)]
    segment_split(pd.DataFrame(rows), folder / "cache", SegmentSettings())
    return folder / "cache"


def test_resume_takes_the_runs_options_and_refuses_others(mer_cache, store_home, estm):
    start = ["train", "mer", "--data", mer_cache, "--name", "N", "-q"]
    assert estm(*start, "--width", "0.0625", "--epochs", "1", "--batch-size", "2").code == 0
    again = estm(*start, "--resume")  # was: a size-mismatch internal error (the default width)
    assert again.code == 0 and "already finished (finished)" in again.err and "--epochs above 1" in again.err
    one_error_line(estm(*start, "--resume", "--width", "0.5", "--batch-size", "4"),
                   "--width 0.5 (the run's: 0.0625)", "--batch-size 4 (the run's: 2)")
    longer = estm(*start, "--resume", "--epochs", "2", "--batch-size", "2", "--json")  # --epochs: a new total
    assert longer.code == 0 and json.loads(longer.out)["epochs"] == 2, longer.err
    info = model_file.read_info(store.model_path("mer", "N"))
    assert info.config["width"] == 0.0625 and info.training.epochs_run == 2 and info.training.config["epochs"] == 2
    one_error_line(estm(*start, "--resume", "--epochs", "1"), "already trained 2 epochs")
    one_error_line(estm(*start, "--resume", "--max-steps", "1"), "already trained 4 steps")  # a new total too
    one_error_line(estm(*start, "--resume", "--data", mer_cache.parent), "--data", "the run's")


def test_the_library_refuses_to_resume_with_another_model(tone_cache, store_home):
    train_tiny(tone_cache, "wide", epochs=1)
    with pytest.raises(EstmError, match=r"^wide was started with other options than these: widths \[4, 16\] "
                                        r"\(the run's: \[8, 16\]\)"):
        train_classifier("genre", tone_cache, "wide", TrainConfig(epochs=2, batch_size=8),
                         feature_settings=FeatureSettings(**TINY_FEATURES),
                         model_options={"blocks": (1, 1), "widths": (4, 16)}, resume=True)


# ------------------------------------------------------- segments the network cannot take: one line before training


def segment_cache(folder: Path, seconds: float, segment_length: int) -> Path:
    """Two songs of `seconds` at 22 050 Hz cut into segments of `segment_length` samples."""
    folder.mkdir()
    rows = [{"song_id": f"s{k}", "path": str(write(folder / f"s{k}.wav", tone(seconds, 22050, 300 + 200 * k), 22050)),
             "label": f"Q{k + 1}", "group": f"s{k}", "part": "train"} for k in range(2)]
    segment_split(pd.DataFrame(rows), folder / "cache", SegmentSettings(segment_length=segment_length))
    return folder / "cache"


@pytest.mark.parametrize("family, seconds, segment_length, needs", [
    ("mer", 2.0, 22050, "it needs at least 10 s (220672 samples at 22050 Hz)"),  # was: Output size is too small
    ("mer", 31.0, 661500, "it needs from 10 s (220672 samples at 22050 Hz) to 20 s (441855 samples at 22050 Hz)"),
    ("genre", 1.0, 220, "it needs at least 0.0464 s (1024 samples at 22050 Hz)"),  # n_fft: was refused after training
    ("hvqvae", 1.0, 220, "it needs at least 0.0116 s (255 samples at 22050 Hz)"),
])
def test_segments_the_network_cannot_take_are_refused_before_training(tmp_path, store_home, estm, family, seconds,
                                                                       segment_length, needs):
    cache = segment_cache(tmp_path / "songs", seconds, segment_length)
    line = one_error_line(estm("train", family, "--data", cache), needs, "segment again with other --seconds")
    assert f"a {family} model cannot take its segments of {segment_length / 22050:.3g} s" in line
    assert not store_home.exists() or not list(store_home.rglob("*.safetensors"))


# ----------------------------------------------------------------------- 2: every numeric option is bounded


@pytest.mark.parametrize("arguments, option", [
    (["mer", "--epochs", "0"], "--epochs"), (["mer", "--batch-size", "-1"], "--batch-size"),
    (["mer", "--width", "nan"], "--width"), (["mer", "--seed", "-1"], "--seed"),
    (["mer", "--patience", "-1"], "--patience"), (["mer", "--workers", "-1"], "--workers"),
    (["mer", "--max-steps", "0"], "--max-steps"), (["hvqvae", "--grid", "--jobs", "0"], "--jobs"),
    (["hvqvae", "--d", "3"], "--d"), (["hvqvae", "--codebook-size", "0"], "--codebook-size"),
    (["hvqvae", "--beta", "nan"], "--beta"), (["hvqvae", "--start-epoch", "0"], "--start-epoch"),
    (["estm2", "--style-labels", "truth", "--beta-e", "inf"], "--beta-e"), (["estm1", "--d", "3"], "--d"),
    (["wavenet", "--output-length", "0"], "--output-length"), (["wavenet", "--windows", "0"], "--windows"),
    (["recogniser", "--jobs", "0"], "--jobs"),
])
def test_numeric_options_out_of_range_are_refused_before_anything_runs(tmp_path, store_home, estm, arguments,
                                                                        option):
    result = estm("train", *arguments, "--data", tmp_path)
    assert result.code == 1 and "Traceback" not in result.err and "internal error" not in result.err
    assert f"Invalid value for '{option}'" in result.err, result.err
    assert not store_home.exists()


def test_the_former_latent_dim_option_is_refused_naming_the_new_one(tmp_path, store_home, estm):
    result = estm("train", "hvqvae", "--data", tmp_path, "--latent-dim", "20")
    assert result.code != 0 and "Invalid value for '--latent-dim': --latent-dim is now --d" in result.err
    assert not store_home.exists()


# ---------------------------------------------------------------------------- 9: names and stale temporaries


def test_a_model_named_like_a_file_is_shown_and_removed_by_its_name(judge, tmp_path, monkeypatch, estm):
    named = model_file.save_model(store.load_model(judge).model, store.model_path("genre", "x.safetensors"),
                                  labels=["high", "low"],
                                  audio=model_file.AudioSettings(8000, 4000, features=TINY_FEATURES))
    monkeypatch.chdir(tmp_path)  # no file x.safetensors here: the name is the store's
    shown = estm("models", "show", "x.safetensors", "--json")
    assert shown.code == 0 and json.loads(shown.out)["path"] == str(named)
    assert estm("models", "remove", "x.safetensors").code == 0 and not named.exists()
    one_error_line(estm("models", "show", "x.safetensors"), "x.safetensors: no such model file")


@pytest.mark.parametrize("name, cause", [("a" * 300, "300 bytes long, at most 150"),
                                         ("\udcff\udcfe", "it is not UTF-8 text")])
def test_a_name_too_long_or_not_utf8_is_one_line(tone_cache, store_home, estm, name, cause):
    for arguments in (["models", "show", name], ["models", "remove", name],
                      ["train", "genre", "--data", tone_cache, "--name", name, "--epochs", "1"]):
        one_error_line(estm(*arguments), "is not a valid model name", cause)
    assert not store.model_path("genre", "ok").parent.exists()


def test_stale_temporaries_in_the_store_go_by_age_or_dead_writer(judge):
    folder = judge.parent
    host, pid = files.OWNER.rsplit("-", 1)
    finished = subprocess.Popen([sys.executable, "-c", ""])
    finished.wait()  # a pid whose process is gone
    dead = folder / f".gone.{host}-{finished.pid}.a1b2c3d4.tmp.safetensors"
    old = folder / ".old.history.elsewhere-7.e5f6g7h8.tmp.csv"  # another host's: only its age tells
    fresh = folder / ".fresh.elsewhere-7.i9j0k1l2.tmp.resume"
    alive = folder / f".mine.{host}-{pid}.m3n4o5p6.tmp.safetensors"
    for path in (dead, old, fresh, alive):
        path.write_bytes(b"half")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    assert sorted(files.remove_stale_temporaries(folder)) == sorted([dead, old])
    assert fresh.exists() and alive.exists() and judge.exists()
    os.utime(fresh, (two_days_ago, two_days_ago))
    store.remove(str(judge))  # removing a model (and training one) cleans its folder
    assert not fresh.exists() and alive.exists()
