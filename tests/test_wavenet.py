"""WaveNet: the seed's size, the fast path equal to the full forward pass, conditioned generation, the commands."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch

from estm_core import model_file, store
from estm_core.generate import generate
from estm_core.models import wavenet_kernel
from estm_core.models.wavenet import PRESETS, FastWaveNet, WaveNet
from estm_core.training.loop import TrainConfig
from estm_core.training.wavenet import train_wavenet

from conftest import tone, write

TONES = {"low": 500.0, "high": 2000.0}
TINY = dict(blocks=1, layers=7, residual_channels=16, dilation_channels=16, skip_channels=32, end_channels=32)


def dominant_frequency(samples: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft((samples - samples.mean()) * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def test_the_seed_preset_is_the_seeds_model():
    model = WaveNet(**PRESETS["seed"])
    assert model.receptive_field == 3070
    assert sum(p.numel() for p in model.parameters()) == 1_834_592


def test_the_cpu_presets_remember_32_and_128_ms():
    assert [WaveNet(**PRESETS[name]).receptive_field for name in ("small", "medium")] == [511, 2047]


@pytest.mark.parametrize("labels, curves, batch, compiled", [
    (0, 0, 1, True), (0, 0, 3, True), (4, 0, 2, True), (4, 0, 2, False), (0, 3, 2, True), (4, 3, 2, True),
    (4, 3, 2, False)])
def test_the_fast_path_equals_the_full_forward_pass(labels, curves, batch, compiled):
    torch.manual_seed(0)
    model = WaveNet(blocks=3, layers=4, residual_channels=8, dilation_channels=8, skip_channels=16, end_channels=16,
                    labels=labels, curves=curves, hop=7).eval()
    for parameter in model.parameters():  # larger than the default, so that every path matters
        torch.nn.init.normal_(parameter, std=0.3)
    length = 120
    codes = torch.randint(0, 256, (batch, length))
    label = torch.arange(batch) % labels if labels else None
    local = torch.randn(batch, curves, -(-length // 7)) if curves else None  # a new frame every 7 codes
    with torch.no_grad():
        full = model(codes, label, local)  # predictions after each full receptive field
    fast = FastWaveNet(model, batch, label, local, compiled=compiled)
    assert fast.engine == ("C kernel" if compiled and wavenet_kernel.status()[0] else "torch")
    stepped = torch.stack([fast.step(codes[:, t]) for t in range(length)], dim=2)
    # with teacher forcing, the step at t predicts what the full pass predicts after the window ending at t
    assert (stepped[:, :, model.receptive_field - 1:] - full).abs().max().item() <= 1e-4


def test_a_float64_model_runs_in_torch_and_says_why():
    torch.manual_seed(0)
    model = WaveNet(blocks=1, layers=3, residual_channels=4, dilation_channels=4, skip_channels=8, end_channels=8)
    codes = torch.randint(0, 256, (2, 30))
    with torch.no_grad():
        full = model.eval()(codes)
    fast = FastWaveNet(model.double(), 2)  # the C loop reads raw float32 memory: it must never be handed these
    assert fast.engine == "torch" and fast.fallback == "the model is torch.float64 (the C loop takes float32)"
    stepped = torch.stack([fast.step(codes[:, t]) for t in range(30)], dim=2)
    assert (stepped[:, :, model.receptive_field - 1:] - full).abs().max().item() <= 1e-5


def test_without_a_compiler_the_kernel_says_so(monkeypatch, store_home):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    wavenet_kernel._load.cache_clear()
    try:
        available, why = wavenet_kernel.status()
        assert not available and "/nonexistent/cc" in why
        model = WaveNet(blocks=1, layers=2, residual_channels=4, dilation_channels=4, skip_channels=8,
                        end_channels=8).eval()
        fast = FastWaveNet(model, 1)
        assert fast.engine == "torch" and fast.fallback == why
    finally:
        wavenet_kernel._load.cache_clear()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_cuda_graph_step_equals_the_cpu_step():
    torch.manual_seed(0)
    codes = torch.randint(0, 256, (4, 60))
    label = torch.tensor([0, 1, 2, 0])
    model = WaveNet(blocks=2, layers=4, residual_channels=8, dilation_channels=8, skip_channels=16, end_channels=16,
                    labels=3, curves=2, hop=5).eval()
    local = torch.randn(4, 2, 12)
    on_cpu = FastWaveNet(model, 4, label, local)
    on_gpu = FastWaveNet(model.cuda(), 4, label.cuda(), local.cuda())
    assert on_gpu.engine == "CUDA graph"
    for t in range(codes.shape[1]):
        expected = on_cpu.step(codes[:, t])
        assert (on_gpu.step(codes[:, t].cuda()).cpu() - expected).abs().max().item() <= 1e-4


@pytest.fixture(scope="module")
def tone_wavenet(tmp_path_factory):
    """A tiny WaveNet trained on two folders of tones, conditioned on the folder names; the store it lives in."""
    root = tmp_path_factory.mktemp("wavenet")
    for label, frequency in TONES.items():
        (root / "tones" / label).mkdir(parents=True)
        for k in range(3):
            write(root / "tones" / label / f"{k}.wav", tone(1.0, 16000, frequency=frequency * (1 + 0.01 * k)), 16000)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ESTM_HOME", str(root / "home"))
        result, problems = train_wavenet(root / "tones", "tones", TrainConfig(epochs=12, batch_size=16, lr=1e-2),
                                         model_options=TINY, output_length=64, windows_per_epoch=128)
    assert not problems and result.history["loss"].iloc[-1] < 0.6 * result.history["loss"].iloc[0]
    return root


@pytest.fixture
def trained(tone_wavenet, monkeypatch):
    monkeypatch.setenv("ESTM_HOME", str(tone_wavenet / "home"))
    return tone_wavenet


def test_each_label_generates_its_own_tone(trained):
    wavenet = store.load_model("tones")
    assert wavenet.info.labels == ["high", "low"]
    assert wavenet.info.training.holdout == "time"  # 3 files a label: too few to hold one out, so the end of each
    audio = generate(wavenet, ["low", "high", "low", "high"], seconds=0.5, temperature=0.5, seed=0)
    assert audio.shape == (4, 8000) and np.isfinite(audio).all()
    for label, stream in zip(["low", "high", "low", "high"], audio):
        assert dominant_frequency(stream) == pytest.approx(TONES[label], rel=0.05), label


def test_generation_is_reproducible_per_seed(trained):
    wavenet = store.load_model("tones")
    first = generate(wavenet, ["low"], seconds=0.1, seed=3)
    assert np.array_equal(first, generate(wavenet, ["low"], seconds=0.1, seed=3))
    assert not np.array_equal(first, generate(wavenet, ["low"], seconds=0.1, seed=4))


def test_the_generate_command(trained, tmp_path, estm, bad_files):
    result = estm("generate", "--label", "high", "-n", "2", "--seconds", "0.2", "-o", tmp_path / "out", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert [Path(path).name for path in summary["files"]] == ["high-0.wav", "high-1.wav"]
    assert summary["samples_per_second"] > 0
    primed = estm("generate", "--label", "low", "--seconds", "0.1", "--prime", tmp_path / "out" / "high-0.wav",
                  "-o", tmp_path / "primed.flac")
    assert primed.code == 0 and (tmp_path / "primed.flac").exists()
    bad = estm("generate", "--label", "low", "--prime", bad_files["not_audio"], "-o", tmp_path / "x.wav")
    assert bad.code == 1 and len(bad.err.strip().splitlines()) == 1 and "not an audio file" in bad.err
    unknown = estm("generate", "--label", "jazz", "-o", tmp_path / "y.wav")
    assert unknown.code == 1 and "knows high, low" in unknown.err


def test_evaluate_wavenet_reports_held_out_scores_and_the_judged_labels(trained, estm, tmp_path):
    from estm_core.models.resnet import GemsResNet

    # a judge that knows the two labels (untrained: this checks the mechanics, not the verdict)
    features = {"n_fft": 256, "hop_length": 64, "n_mels": 32, "standardize": True}
    model_file.save_model(GemsResNet(classes=2, blocks=(1,), widths=(4,)), store.model_path("gems", "tone-judge"),
                          labels=["high", "low"], audio=model_file.AudioSettings(16000, 4000, features=features))
    result = estm("evaluate", "wavenet", "--model", "tones", "--judge", "tone-judge", "--count", "2",
                  "--seconds", "1", "-o", tmp_path / "report", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    likelihood = summary["likelihood"][0]
    assert 0 < likelihood["held_out_nll"] < 6 and 0 <= likelihood["held_out_accuracy"] <= 1
    judged = summary["generation"]
    assert judged["labels"] == ["high", "low"] and judged["chance"] == 0.5 and judged["judge"] == "tone-judge"
    clips = pd.read_csv(tmp_path / "report" / "clips.csv")
    generated = clips[clips["system"] == "tones"]
    assert list(generated["asked"]) == ["high", "high", "low", "low"] and set(generated["asked_by"]) == {"label"}
    # the ceiling: the cue judge hears the training tones' pitch (register and pitch classes) as their labels
    assert judged["systems"]["training audio"]["overall"]["cue_judge"]["accuracy"]["share"] == 1.0
    assert 0 <= judged["systems"]["tones"]["overall"]["cue_judge"]["accuracy"]["share"] <= 1
    assert judged["systems"]["tones"]["overall"]["judge"]["accuracy"]["items"] == 4
    again = estm("evaluate", "wavenet", "--model", "tones", "--judge", "tone-judge", "-o", tmp_path / "report")
    assert again.code == 1 and "exists" in again.err  # nothing overwritten without --force


def test_sampling_draws_from_the_tempered_softmax():
    from estm_core.generate import Sampler

    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0]]).expand(20000, -1)
    for temperature in (1.0, 0.5):
        sample = Sampler(temperature, torch.Generator().manual_seed(0))
        sample.ELEMENTS = 3 * logits.numel()  # three steps' noise at a time: the refill is exercised too
        counts = torch.bincount(torch.cat([sample(logits) for _ in range(4)]), minlength=4).float() / 4 / len(logits)
        expected = torch.softmax(logits[0] / temperature, dim=0)
        torch.testing.assert_close(counts, expected, atol=0.015, rtol=0)


def test_the_demo_tables_level_and_brightness():
    from estm_core.evaluate import rms_and_centroid

    level, centroid = rms_and_centroid(tone(1.0, 16000, frequency=1000.0, amplitude=0.5), 16000)
    assert level == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05) and centroid == pytest.approx(1000, abs=5)


@pytest.fixture(scope="module")
def curve_wavenet(tmp_path_factory):
    """A tiny WaveNet trained on unlabelled tones of two pitches, conditioned on their cue curves only."""
    root = tmp_path_factory.mktemp("curves")
    (root / "tones").mkdir()
    for name, frequency in TONES.items():
        for k in range(3):
            write(root / "tones" / f"{name}-{k}.wav", tone(1.0, 16000, frequency=frequency * (1 + 0.01 * k)), 16000)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ESTM_HOME", str(root / "home"))
        result, problems = train_wavenet(root / "tones", "curves", TrainConfig(epochs=12, batch_size=16, lr=1e-2),
                                         model_options=TINY, output_length=64, windows_per_epoch=128, curves=True)
    assert not problems and result.history["loss"].iloc[-1] < 0.6 * result.history["loss"].iloc[0]
    return root


def test_generation_follows_the_curves_of_a_reference(curve_wavenet, monkeypatch, estm, tmp_path):
    monkeypatch.setenv("ESTM_HOME", str(curve_wavenet / "home"))
    info = store.load_model("curves").info
    assert info.labels == [] and info.config["curves"] == 16
    assert info.training.middle["register_midi"] == pytest.approx(np.mean([71.2, 95.2]), abs=12.5)  # one of each
    for name, frequency in TONES.items():
        out = tmp_path / f"{name}.wav"
        result = estm("generate", "--like", curve_wavenet / "tones" / f"{name}-0.wav", "--seconds", "0.5",
                      "--temperature", "0.5", "-o", out, "--json")
        assert result.code == 0, result.err
        generated, _ = soundfile.read(out)
        assert dominant_frequency(generated) == pytest.approx(frequency, rel=0.05), name
    quadrant = estm("generate", "--emotion", "Q3", "--seconds", "0.3", "-n", "2", "-o", tmp_path / "q3", "--json")
    assert quadrant.code == 0, quadrant.err
    assert json.loads(quadrant.out)["files"] == [str(tmp_path / "q3" / f"Q3-{k}.wav") for k in range(2)]
    asked = estm("generate", "--label", "Q3", "-o", tmp_path / "x.wav")
    assert asked.code == 1 and "ask with --emotion or --like" in asked.err


def test_like_needs_a_model_on_curves(trained, estm, tmp_path):
    result = estm("generate", "--like", trained / "tones" / "low" / "0.wav", "-o", tmp_path / "x.wav")
    assert result.code == 1 and "estm train wavenet --curves" in result.err


def test_a_resumed_run_keeps_its_cooldown_unless_given_another(tone_wavenet, store_home, estm):
    start = ["train", "wavenet", "--data", tone_wavenet / "tones", "--name", "cool", "--unconditioned", "--windows",
             "8", "--batch-size", "4", "--output-length", "16", "-q"]  # 2 steps an epoch
    refused = estm(*start, "--cooldown", "2")
    assert refused.code == 1 and refused.err.strip() == "error: a cooldown counts back from max_steps: give both"
    assert estm(*start, "--max-steps", "2", "--cooldown", "2", "--lr", "0.01").code == 0
    assert estm(*start, "--resume", "--max-steps", "4").code == 0  # its own cooldown: the last step at half
    assert estm(*start, "--resume", "--max-steps", "6", "--cooldown", "0").code == 0  # constant
    history = pd.read_csv(store.history_path(store.model_path("wavenet", "cool")))
    assert history["lr"].tolist() == pytest.approx([0.005, 0.005, 0.01])
