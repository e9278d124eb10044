"""The training loop (on a tiny ResNet and two clearly different classes of tones), the MER model, classify and
evaluate."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from estm_core import model_file, store
from estm_core.classify import classify_file, load_classifiers
from estm_core.datasets.segment import SegmentSettings, segment_split
from estm_core.errors import EstmError, StoreError
from estm_core.evaluate import classification_metrics, evaluate_classifier, write_classifier_report
from estm_core.models.mer import MER
from estm_core.training import classifier as recipe
from estm_core.features import FeatureSettings
from estm_core.training.classifier import train_classifier
from estm_core.training.loop import TrainConfig

from conftest import tone, write

TINY_FEATURES = FeatureSettings(n_fft=256, hop_length=64, n_mels=32)
TINY_RESNET = {"blocks": (1, 1), "widths": (8, 16)}


@pytest.fixture(scope="module")
def tone_cache(tmp_path_factory):
    """24 one-second songs at 8 kHz: 'low' (~200 Hz) and 'high' (~1.5 kHz) tones with noise; 0.5 s segments."""
    folder = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    rows = []
    for k in range(24):
        label = "low" if k % 2 else "high"
        frequency = (200 if label == "low" else 1500) * (1 + 0.1 * rng.random())
        samples = tone(1.0, 8000, frequency=frequency) + 0.05 * rng.standard_normal(8000).astype(np.float32)
        path = write(folder / f"s{k}.wav", samples, 8000)
        part = "train" if k < 16 else "validation" if k < 20 else "test"
        rows.append({"song_id": f"s{k}", "path": str(path), "label": label, "group": f"s{k}", "part": part})
    segment_split(pd.DataFrame(rows), folder / "cache", SegmentSettings(8000, 4000))
    return folder / "cache"


@pytest.fixture(scope="module")
def tone_store(tone_cache, tmp_path_factory):
    """A store holding one trained tiny genre model, "tones", shared by the classify and evaluate tests."""
    home = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ESTM_HOME", str(home))
        train_tiny(tone_cache, "tones")
    return home


@pytest.fixture
def trained(tone_store, monkeypatch):
    monkeypatch.setenv("ESTM_HOME", str(tone_store))
    return tone_store


def train_tiny(cache, name, epochs=4, **options):
    config = TrainConfig(epochs=epochs, batch_size=8, lr=3e-3, **options)
    return train_classifier("genre", cache, name, config, feature_settings=TINY_FEATURES, model_options=TINY_RESNET)


def test_mer_is_the_papers_network():
    model = MER()
    assert sum(p.numel() for p in model.parameters()) == 1_793_220
    assert model(torch.randn(2, 1, 128, 435)).shape == (2, 4)


@pytest.mark.parametrize("width", [0.0, -1.0, float("nan"), 1 / 128])
def test_a_mer_width_that_leaves_a_layer_no_channel_is_refused_in_one_line(width):
    with pytest.raises(EstmError, match="^width must leave every convolution a channel"):
        MER(width=width)
    assert MER(width=1 / 64)(torch.randn(1, 1, 128, 435)).shape == (1, 4)  # one channel in the first layers


def test_training_lowers_the_loss_and_saves_a_model_that_reloads_identically(tone_cache, store_home):
    result = train_tiny(tone_cache, "tones")
    history = result.history
    assert history["epoch"].tolist() == [1, 2, 3, 4] and result.status == "finished"
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    assert history["val_accuracy"].iloc[-1] >= 0.9
    assert pd.read_csv(store.history_path(result.path))["epoch"].tolist() == [1, 2, 3, 4]
    loaded = store.load_model("tones")
    model, info = loaded.model, loaded.info
    assert info.labels == ["high", "low"] and info.audio.features["hop_length"] == 64
    assert info.training.status == "finished" and info.training.best_epoch == result.best_epoch
    again = store.load_model("tones").model
    batch = torch.randn(3, 1, 32, 63)
    assert torch.equal(model(batch), again(batch))


def test_resume_after_a_kill_continues_without_gap_or_duplicate(tone_cache, store_home):
    def killed_after_epoch_2(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    config = TrainConfig(epochs=5, batch_size=8, lr=3e-3)
    with pytest.raises(KeyboardInterrupt):
        train_classifier("genre", tone_cache, "killed", config, feature_settings=TINY_FEATURES,
                         model_options=TINY_RESNET, on_epoch=killed_after_epoch_2)
    # the kill came after epoch 2 was logged but before its checkpoint: resuming redoes epoch 2, once
    with pytest.raises(EstmError, match="already exists; --resume continues it"):
        train_classifier("genre", tone_cache, "killed", config, feature_settings=TINY_FEATURES,
                         model_options=TINY_RESNET)
    result = train_classifier("genre", tone_cache, "killed", config, feature_settings=TINY_FEATURES,
                              model_options=TINY_RESNET, resume=True)
    assert result.history["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert pd.read_csv(store.history_path(result.path))["epoch"].tolist() == [1, 2, 3, 4, 5]
    finished = train_classifier("genre", tone_cache, "killed", config, feature_settings=TINY_FEATURES,
                                model_options=TINY_RESNET, resume=True)
    assert finished.status == "already-finished"


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_weights(tone_cache, store_home, monkeypatch):
    real_step = recipe.classifier_step
    calls = {"count": 0}

    def poisoned(sample_rate, settings):
        step = real_step(sample_rate, settings)

        def run(model, batch, device):
            terms = step(model, batch, device)
            calls["count"] += model.training
            if model.training and calls["count"] > 8:  # from the first step of epoch 3 (4 steps per epoch)
                terms["loss"] = terms["loss"] * float("nan")
            return terms

        return run

    monkeypatch.setattr(recipe, "classifier_step", poisoned)
    result = train_tiny(tone_cache, "poisoned", epochs=6)
    assert result.status == "nan" and "epoch 3" in result.message
    assert result.history["epoch"].tolist() == [1, 2]
    poisoned = store.load_model("poisoned")
    assert all(torch.isfinite(p).all() for p in poisoned.model.parameters())
    assert poisoned.info.training.status == "nan" and poisoned.info.training.epochs_run == 2


def test_weights_that_diverge_under_a_finite_loss_are_never_saved(tone_cache, store_home, monkeypatch):
    real_step = recipe.classifier_step

    def poisoned(sample_rate, settings):
        step = real_step(sample_rate, settings)
        calls = {"count": 0}

        def run(model, batch, device):
            calls["count"] += model.training
            if model.training and calls["count"] == 6:  # in epoch 2 a running variance (training does not use it,
                # so the loss stays finite) blows up
                next(buffer for name, buffer in model.named_buffers() if "running_var" in name)[0] = float("inf")
            return step(model, batch, device)

        return run

    monkeypatch.setattr(recipe, "classifier_step", poisoned)
    result = train_tiny(tone_cache, "diverged", epochs=4)
    assert result.status == "nan" and "became NaN or infinite in epoch 2" in result.message
    info = store.load_model("diverged").info  # epoch 1's weights, which load
    assert info.training.epochs_run == 1 and info.training.status == "nan"


@pytest.mark.parametrize("option, value", [("lr", float("inf")), ("lr", 0.0), ("epochs", 0), ("batch_size", 0),
                                           ("max_steps", 0), ("cooldown", -1)])
def test_settings_no_run_can_use_are_refused_in_one_line(option, value):
    with pytest.raises(EstmError, match=f"^{option} must be"):
        TrainConfig(**{option: value})


def test_the_cli_refuses_a_bad_learning_rate_in_one_line(tone_cache, store_home, estm):
    result = estm("train", "genre", "--data", tone_cache, "--lr", "inf")
    assert result.code == 1 and "Traceback" not in result.err
    assert [line for line in result.err.splitlines() if line.startswith("error")] == [
        "error: lr must be a finite number above 0 (got inf)"]


def test_a_second_run_of_a_name_in_training_is_refused(tone_cache, store_home):
    path = store.model_path("genre", "taken")
    with store.model_lock(path):  # another run holds it (a second lock object is a second holder)
        with pytest.raises(StoreError, match="genre/taken is being trained"):
            train_tiny(tone_cache, "taken", epochs=1)
    assert not path.exists()


def test_a_kill_before_the_final_rewrite_is_recovered_by_resume(tone_cache, store_home, monkeypatch):
    real_save = model_file.save_model

    def killed_at_the_final_rewrite(model, path, **options):
        if options["training"].status == "finished":
            raise KeyboardInterrupt
        return real_save(model, path, **options)

    monkeypatch.setattr(model_file, "save_model", killed_at_the_final_rewrite)
    with pytest.raises(KeyboardInterrupt):
        train_tiny(tone_cache, "cut", epochs=2)
    assert model_file.read_info(store.model_path("genre", "cut")).training.status == "running"
    monkeypatch.setattr(model_file, "save_model", real_save)
    result = train_classifier("genre", tone_cache, "cut", TrainConfig(epochs=2, batch_size=8, lr=3e-3),
                              feature_settings=TINY_FEATURES, model_options=TINY_RESNET, resume=True)
    assert result.status == "already-finished"
    assert model_file.read_info(store.model_path("genre", "cut")).training.status == "finished"
    assert store.newest("genre") == store.model_path("genre", "cut")


def test_the_seed_decides_the_initial_weights(tone_cache, store_home):
    weights = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        train_tiny(tone_cache, name, epochs=1, max_steps=1, seed=seed)
        weights[name] = store.load_model(name).model.state_dict()
    first = next(iter(weights["a"]))
    assert torch.equal(weights["a"][first], weights["b"][first])
    assert not torch.equal(weights["a"][first], weights["c"][first])


def test_resume_keeps_the_runs_own_settings(tone_cache, store_home):
    def stop_in_epoch_2(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_classifier("genre", tone_cache, "settled", TrainConfig(epochs=3, batch_size=8, lr=3e-3),
                         feature_settings=TINY_FEATURES, model_options=TINY_RESNET, on_epoch=stop_in_epoch_2)
    # resumed with another (default) epoch count: the run still ends at its own 3 epochs
    result = train_classifier("genre", tone_cache, "settled", TrainConfig(epochs=30), feature_settings=TINY_FEATURES,
                              model_options=TINY_RESNET, resume=True)
    assert result.history["epoch"].tolist() == [1, 2, 3] and result.status == "finished"
    assert model_file.read_info(result.path).training.config["batch_size"] == 8


def test_early_stopping_waits_for_its_first_epoch(tone_cache, store_home):
    result = train_tiny(tone_cache, "patient", epochs=8, monitor="val_accuracy", mode="max", patience=1,
                        start_epoch=4)
    assert result.status == "early-stopped" and len(result.history) >= 4


def test_max_steps_stops_mid_epoch(tone_cache, store_home):
    result = train_tiny(tone_cache, "brief", epochs=5, max_steps=6)  # 4 steps per epoch
    assert result.status == "max-steps" and len(result.history) == 2


def test_a_run_stopped_at_its_steps_resumes_to_a_new_total(tone_cache, store_home):
    train_tiny(tone_cache, "brief", epochs=5, max_steps=6)  # 4 steps per epoch: stopped in epoch 2

    def resume(**totals):
        return train_classifier("genre", tone_cache, "brief", TrainConfig(epochs=5), feature_settings=TINY_FEATURES,
                                model_options=TINY_RESNET, resume=True, resume_totals=totals)

    assert resume().status == "already-finished"  # no new total: the run had ended
    assert resume(epochs=9).status == "already-finished"  # more epochs, but its steps are spent
    with pytest.raises(EstmError, match="already trained 6 steps"):
        resume(max_steps=5)
    result = resume(max_steps=14)
    assert result.status == "max-steps" and result.history["epoch"].tolist() == [1, 2, 3, 4]
    assert model_file.read_info(result.path).training.steps == 14
    assert resume(max_steps=100).status == "finished"  # then it stops at its own 5 epochs


def test_a_cooldown_takes_the_learning_rate_down_over_the_last_steps_and_a_resume_may_add_one(tone_cache,
                                                                                              store_home):
    result = train_tiny(tone_cache, "cooled", epochs=5, max_steps=8, cooldown=6)  # 4 steps per epoch
    # an epoch's row has its last step's rate: step s (from 0) takes lr * min(1, (8 - s) / 6)
    assert result.history["lr"].tolist() == pytest.approx([3e-3 * 5 / 6, 3e-3 / 6])
    train_tiny(tone_cache, "later", epochs=1)  # no total of steps: a resume gives one, and a cooldown from it
    config = TrainConfig(epochs=5, batch_size=8, lr=3e-3, max_steps=12, cooldown=4)
    resumed = train_classifier("genre", tone_cache, "later", config, feature_settings=TINY_FEATURES,
                               model_options=TINY_RESNET, resume=True, resume_totals={"max_steps": 12, "epochs": 5})
    assert resumed.history["lr"].tolist() == pytest.approx([3e-3, 3e-3, 3e-3 / 4])
    assert model_file.read_info(resumed.path).training.config["cooldown"] == 4
    with pytest.raises(EstmError, match="^a cooldown counts back from max_steps: give both"):
        TrainConfig(cooldown=10)


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun with gloo, tested on Linux")
def test_two_process_ddp_on_cpu_trains_and_writes_one_checkpoint(tone_cache, store_home, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_training import train_tiny\n"
        f"result = train_tiny({str(tone_cache)!r}, 'ddp', epochs=2)\n"
        "import os\n"
        f"with open(os.path.join({str(tmp_path)!r}, 'rank' + os.environ['RANK']), 'w') as out:\n"
        "    out.write(f'{result.status} {len(result.history)}')\n"
    )
    environment = {**os.environ, "ESTM_HOME": str(store_home), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          "29571", str(script)], capture_output=True, text=True, env=environment, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    # each rank writes its own file: lines printed by two processes may interleave
    assert [(tmp_path / f"rank{rank}").read_text() for rank in (0, 1)] == ["finished 2", "finished 2"]
    files = sorted(path.name for path in (store_home / "models" / "genre").iterdir())
    assert files == ["ddp.history.csv", "ddp.resume", "ddp.safetensors"]
    info = store.load_model(store_home / "models" / "genre" / "ddp.safetensors").info
    assert info.training.world_size == 2


# --------------------------------------------------------------------------------------------------- classify


@pytest.mark.parametrize("extension, rate, channels", [
    (".wav", 8000, 1), (".mp3", 44100, 2), (".ogg", 22050, 1), (".flac", 96000, 2), (".wav", 48000, 6),
])
def test_classify_any_format_rate_and_channel_count(trained, tmp_path, extension, rate, channels):
    classifiers = load_classifiers(["genre"])
    high = write(tmp_path / f"high{extension}", tone(2.3, rate, frequency=1500, channels=channels), rate)
    result = classify_file(high, classifiers, keep_segments=True)
    decision = result.decisions["genre"]
    assert decision["label"] == "high" and decision["segments"] == 5  # 0.5 s segments, the last end-aligned
    assert result.duration == pytest.approx(2.3, abs=0.06)
    assert sum(decision["probabilities"].values()) == pytest.approx(1.0)
    assert len(result.segments) == 5 and result.segments[-1]["end"] == pytest.approx(2.3, abs=0.06)


def test_classify_command_batch_with_a_bad_file_exits_3(trained, tmp_path, estm, bad_files):
    low = write(tmp_path / "low.flac", tone(1.2, 16000, frequency=200), 16000)
    result = estm("classify", low, bad_files["truncated"], "--json")
    assert result.code == 3 and "cut.mp3: truncated" in result.err
    records = [json.loads(line) for line in result.out.splitlines()]
    good = next(record for record in records if "error" not in record)
    assert good["genre"] == "low" and good["models"]["genre"]["model"] == "tones"
    assert good["genre_low"] + good["genre_high"] == pytest.approx(1.0)
    assert estm("classify", low, "--hop", "0").code == 1  # one line, not a hang
    table = estm("classify", low, "--task", "genre")
    assert table.code == 0 and "low" in table.out
    missing = estm("classify", low, "--task", "gems")
    assert missing.code == 1 and "estm train gems" in missing.err
    recognised = estm("classify", low, "--task", "mer", "--json")  # no mer model: the cue recogniser, and it says so
    assert recognised.code == 0 and "cue recogniser (no mer model in the store)" in recognised.err
    record = json.loads(recognised.out)
    assert record["models"]["mer"]["model"] == "cue recogniser" and record["mer"] in ("Q1", "Q2", "Q3", "Q4")
    assert sum(record[f"mer_Q{number}"] for number in range(1, 5)) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------------- evaluate


def test_classification_metrics_by_hand():
    truth = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    metrics = classification_metrics(truth, predicted, ["a", "b", "c"])
    assert metrics["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["per_class"]["a"] == {"precision": 1.0, "recall": pytest.approx(2 / 3),
                                         "f1": pytest.approx(0.8), "support": 3}
    assert metrics["per_class"]["b"]["precision"] == 0.5 and metrics["per_class"]["c"]["recall"] == 1.0
    assert metrics["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_evaluate_writes_the_report(trained, tone_cache, tmp_path):
    summary, predictions = evaluate_classifier("tones", tone_cache, part="test")
    assert summary["count"] == 8 and summary["songs"]["count"] == 4 and summary["accuracy"] >= 0.75
    written = write_classifier_report(summary, predictions, tmp_path / "report")
    assert [path.name for path in written] == ["evaluation.json", "confusion.csv", "confusion.png", "predictions.csv"]
    assert json.loads(written[0].read_text())["accuracy"] == summary["accuracy"]
    assert written[2].read_bytes()[:4] == b"\x89PNG"
