"""`estm plot` and estm_core.plots: the PNGs are real images, the plotted data is the data, bad inputs get one line."""

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from estm_core import model_file, store
from estm_core.audio import Clip, load_clip
from estm_core.evaluate import classification_metrics
from estm_core.models.estm import HVQVAE
from estm_core.models.vq import VectorQuantizer
from estm_core.datasets.segment import file_segments
from estm_core.models.codebook_usage import LevelUsage, codebook_usage
from estm_core.plots import best_epoch, clip_log_mel, history_figure, history_panels, mel_ticks, spectrogram_figure

from conftest import tone, write

SEGMENT = {"sample_rate": 8000, "segment_length": 4096}
# level lengths of a 4096-sample segment: 3, 5 and 7 stride-2 convolutions of kernel 3 without padding
STEPS = {"bottom": 511, "middle": 127, "top": 31}


def png_size(path) -> tuple[int, int]:
    """(width, height) of a PNG, after checking it is one, decodes, and is not blank."""
    import matplotlib.image

    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    assert len(data) > 10_000, f"{path} is suspiciously small ({len(data)} bytes)"
    width, height = struct.unpack(">II", data[16:24])
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (height, width) and pixels[..., :3].std() > 0.05
    return width, height


def one_error_line(result, *words) -> None:
    assert result.code == 1, (result.code, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "internal error" not in lines[0], result.err
    for word in words:
        assert word in lines[0], lines[0]


def test_plot_help_imports_neither_torch_nor_matplotlib():
    code = (
        "import sys, runpy; sys.argv = ['estm', 'plot', '--help']\n"
        "try: runpy.run_module('estm_cli', run_name='__main__')\n"
        "except SystemExit as e: assert e.code in (0, None), e.code\n"
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules, 'plot --help imported too much'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert all(command in result.stdout for command in ("history", "spectrogram", "confusion", "codebook"))


# ------------------------------------------------------------------------------------------------------ history


def history_frame(epochs: int = 6) -> pd.DataFrame:
    epoch = np.arange(1, epochs + 1)
    return pd.DataFrame({
        "epoch": epoch, "loss": 2.0 / epoch, "accuracy": 1 - 0.5 / epoch, "vq_bottom": 0.1 * epoch,
        "vq_top": 0.2 * epoch, "perplexity_bottom": 10.0 + epoch, "val_loss": [2.5, 1.5, 1.0, 0.9, 1.1, 1.3][:epochs],
        "val_accuracy": 0.9 - 0.4 / epoch, "val_vq_bottom": 0.15 * epoch, "lr": 1e-3, "seconds": 2.5,
    })


def test_history_panels_pair_terms_with_their_validation_and_levels_together():
    frame = history_frame()
    assert history_panels(frame) == [
        ("loss", ["loss", "val_loss"]),
        ("accuracy", ["accuracy", "val_accuracy"]),
        ("vq", ["vq_bottom", "val_vq_bottom", "vq_top"]),
        ("perplexity", ["perplexity_bottom"]),
    ]  # a constant lr and the seconds are left out
    frame["lr"] = [1e-3, 1e-3, 5e-4, 5e-4, 1e-4, 1e-4]
    assert history_panels(frame)[-1] == ("lr", ["lr"])


def test_history_figure_draws_the_history_and_marks_the_best_epoch():
    frame = history_frame()
    assert best_epoch(frame) == 4  # the lowest val_loss
    assert best_epoch(frame, "val_accuracy") == 6 and best_epoch(frame, "loss") == 6
    figure = history_figure(frame, title="run", best=4)
    loss_axes, accuracy_axes = figure.axes[:2]
    train, validation = loss_axes.lines[:2]
    np.testing.assert_allclose(train.get_xdata(), frame["epoch"])
    np.testing.assert_allclose(train.get_ydata(), frame["loss"])
    np.testing.assert_allclose(validation.get_ydata(), frame["val_loss"])
    assert train.get_linestyle() == "-" and validation.get_linestyle() == "--"
    assert list(loss_axes.lines[-1].get_xdata()) == [4, 4]  # the best epoch's marker line
    np.testing.assert_allclose(accuracy_axes.lines[1].get_ydata(), frame["val_accuracy"])
    assert loss_axes.get_xlabel() == "epoch" and loss_axes.get_ylabel() == "loss"
    assert figure.get_suptitle() == "run"


@pytest.fixture
def tiny_vq(store_home):
    """An untrained hvqvae for 0.5 s segments at 8 kHz in the test's store, with a history beside it."""
    torch.manual_seed(0)
    path = model_file.save_model(HVQVAE(latent_dim=4, codebook_size=16), store.model_path("hvqvae", "tiny"),
                                 audio=SEGMENT, training={"best_epoch": 4, "monitor": "val_loss"})
    history_frame().to_csv(store.history_path(path), index=False)
    return path


def test_plot_history_of_a_stored_model_and_of_a_csv(estm, tiny_vq, tmp_path, monkeypatch):
    out = tmp_path / "curves.png"
    result = estm("plot", "history", "tiny", "-o", out)
    assert result.code == 0, result.err
    assert result.err.strip() == f"wrote {out}" and result.out == ""
    width, height = png_size(out)
    assert width > 800 and height > 300
    again = estm("plot", "history", "tiny", "-o", out)
    one_error_line(again, str(out), "already exists")
    before = out.stat().st_mtime_ns
    assert estm("plot", "history", "tiny", "-o", out, "--force").code == 0 and out.stat().st_mtime_ns != before

    monkeypatch.chdir(tmp_path)  # without -o: NAME-history.png here, from the model or from its CSV
    assert estm("plot", "history", "hvqvae/tiny").code == 0
    png_size(tmp_path / "tiny-history.png")
    csv = tmp_path / "run.csv"
    history_frame(3).to_csv(csv, index=False)
    result = estm("plot", "history", csv)
    assert result.code == 0, result.err
    png_size(tmp_path / "run-history.png")


def test_plot_history_refuses_what_is_not_a_history(estm, tiny_vq, tmp_path):
    no_loss = tmp_path / "metrics.csv"
    pd.DataFrame({"epoch": [1, 2], "accuracy": [0.5, 0.6]}).to_csv(no_loss, index=False)
    one_error_line(estm("plot", "history", no_loss, "-o", tmp_path / "a.png"), "not a training history", "'loss'")
    header_only = tmp_path / "empty.history.csv"
    header_only.write_text("epoch,loss\n")
    one_error_line(estm("plot", "history", header_only, "-o", tmp_path / "b.png"), "no epochs")
    one_error_line(estm("plot", "history", tmp_path / "absent.csv", "-o", tmp_path / "c.png"), "no such file")
    one_error_line(estm("plot", "history", "nameless", "-o", tmp_path / "d.png"), "nameless")
    store.history_path(tiny_vq).unlink()
    one_error_line(estm("plot", "history", "tiny", "-o", tmp_path / "e.png"), "no training history")
    assert not list(tmp_path.glob("*.png"))


# -------------------------------------------------------------------------------------------------- spectrogram


def test_spectrograms_side_by_side(estm, tmp_path, monkeypatch):
    first = write(tmp_path / "content.wav", tone(1.0, 22050, frequency=330), 22050)
    second = write(tmp_path / "reference.flac", tone(2.0, 44100, frequency=880, channels=2), 44100)
    both = tmp_path / "both.png"
    result = estm("plot", "spectrogram", first, second, "-o", both)
    assert result.code == 0, result.err
    assert result.err.strip() == f"wrote {both}"
    monkeypatch.chdir(tmp_path)
    assert estm("plot", "spectrogram", first).code == 0
    single = png_size(tmp_path / "content-spectrogram.png")
    double = png_size(both)
    assert double[0] > 1.6 * single[0] and double[1] == single[1]  # one column per file
    one_error_line(estm("plot", "spectrogram", first, second, "-o", both), "already exists")
    assert estm("plot", "spectrogram", first, second, "-o", both, "--force").code == 0


def test_spectrogram_refuses_bad_audio(estm, tmp_path, bad_files):
    good = write(tmp_path / "good.wav", tone(1.0, 8000), 8000)
    one_error_line(estm("plot", "spectrogram", good, bad_files["missing"], "-o", tmp_path / "x.png"),
                   "absent.wav", "no such file")
    one_error_line(estm("plot", "spectrogram", bad_files["not_audio"], "-o", tmp_path / "x.png"), "not an audio file")
    one_error_line(estm("plot", "spectrogram", good, "--seconds", "0", "-o", tmp_path / "x.png"), "--seconds")
    assert not (tmp_path / "x.png").exists()


def test_spectrogram_shows_the_start_of_a_long_file_and_says_so(tmp_path):
    long_file = write(tmp_path / "long.wav", tone(5.0, 8000, channels=2), 8000)
    clip = load_clip(long_file, seconds=1.0)
    assert len(clip.samples) == 8000 and clip.duration == pytest.approx(5.0) and clip.cut
    short = write(tmp_path / "short.wav", tone(0.1, 8000, channels=2), 8000)
    figure = spectrogram_figure([clip, load_clip(short, seconds=1.0)])
    titles = [axes.get_title() for axes in figure.axes[:4]]
    assert titles[0] == "long.wav\nfirst 1 s of 5.0 s" and titles[1] == "short.wav"
    waveform = figure.axes[1].lines[0]  # 800 samples: drawn sample by sample, the channels' mean
    expected = tone(0.1, 8000, channels=2).mean(axis=1)
    np.testing.assert_allclose(waveform.get_ydata(), expected, atol=1e-4)
    np.testing.assert_allclose(waveform.get_xdata()[:3], [0, 1 / 8000, 2 / 8000])
    spectrogram = figure.axes[3]  # the second row, after the waveforms and the colorbar column's empty cell
    assert spectrogram.get_xlabel() == "time (s)" and spectrogram.get_ylabel() == "mel frequency (Hz)"
    assert spectrogram.images[0].get_array().shape[0] == 128 and spectrogram.get_xlim() == (0, 1.0)


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_a_tone_lies_at_its_frequency_on_the_mel_axis(tmp_path, rate):
    clip = load_clip(write(tmp_path / "tone.wav", tone(1.0, rate, frequency=1000), rate))
    decibels, settings = clip_log_mel(clip)
    assert decibels.shape[0] == 128 and decibels.max() == pytest.approx(0.0)
    loudest_band = decibels.mean(axis=1).argmax()
    positions, labels = mel_ticks(rate, settings["n_mels"])
    assert positions == sorted(positions) and labels[-1] == f"{rate / 2000:.3g}k"  # the Nyquist frequency on top
    assert abs(positions[labels.index("1k")] - loudest_band) <= 1.5


# ---------------------------------------------------------------------------------------------------- confusion


def test_plot_confusion_from_an_evaluation_summary(estm, tmp_path, monkeypatch):
    truth, predicted = np.array([0, 0, 1, 1, 2, 2, 2]), np.array([0, 1, 1, 1, 2, 0, 2])
    summary = {"model": "judge", "family": "mer", "part": "test",
               **classification_metrics(truth, predicted, ["Q1", "Q2", "Q3"])}
    evaluation = tmp_path / "evaluation.json"
    evaluation.write_text(json.dumps(summary))
    monkeypatch.chdir(tmp_path)
    result = estm("plot", "confusion", evaluation)
    assert result.code == 0, result.err
    assert result.err.strip() == "wrote judge-test-confusion.png"
    png_size(tmp_path / "judge-test-confusion.png")
    one_error_line(estm("plot", "confusion", evaluation), "already exists")

    transfer_summary = tmp_path / "transfer.json"
    transfer_summary.write_text(json.dumps({"model": "m", "pea": 0.5}))
    one_error_line(estm("plot", "confusion", transfer_summary, "-o", "t.png"), "not a classifier evaluation")
    (tmp_path / "broken.json").write_text('{"confusion": [[1, 2]')
    one_error_line(estm("plot", "confusion", "broken.json", "-o", "b.png"), "not a JSON file")
    (tmp_path / "lopsided.json").write_text(json.dumps({"labels": ["a", "b"], "confusion": [[1, 2, 3]]}))
    one_error_line(estm("plot", "confusion", "lopsided.json", "-o", "l.png"), "2 x 2")
    one_error_line(estm("plot", "confusion", "absent.json"), "no such file")


# ----------------------------------------------------------------------------------------------------- codebook


def test_level_usage_is_the_quantisers_own_perplexity_and_codes_used():
    indices = torch.tensor([0, 0, 1, 1, 1, 3])
    perplexity, used = VectorQuantizer(2, codebook_size=5).usage(indices)
    usage = LevelUsage("bottom", np.bincount(indices.numpy(), minlength=5))
    assert usage.codes_used == used.item() == 3 and usage.vectors == 6
    assert usage.perplexity == pytest.approx(perplexity.item(), rel=1e-5)
    assert LevelUsage("top", np.array([4, 4, 0, 0])).perplexity == pytest.approx(2.0)


def test_codebook_usage_counts_what_a_hand_built_model_must_choose():
    model = HVQVAE(latent_dim=4, codebook_size=8).eval()
    chosen = {"bottom": 5, "middle": 2, "top": 7}
    with torch.no_grad():
        for level, encoder in model.hierarchy.encoders.items():
            for layer in encoder:
                if isinstance(layer, torch.nn.Conv1d):
                    layer.weight.zero_()
                    layer.bias.zero_()
            latent = torch.tensor([0.1, 0.2, 0.3, 0.4]) * (1 + list(chosen).index(level))
            encoder[-2].bias.copy_(latent)  # every latent vector of the level is this one (a positive LeakyReLU input)
            codebook = model.hierarchy.quantizers[level].codebook
            codebook.fill_(-3.0)
            codebook[chosen[level]] = latent
    audio = np.random.default_rng(0).standard_normal((3, 4096)).astype(np.float32)
    usage = codebook_usage(model, [audio[:2], audio[2:]], batch_size=1)
    for level, code in chosen.items():
        expected = np.zeros(8, np.int64)
        expected[code] = 3 * STEPS[level]
        np.testing.assert_array_equal(usage[level].counts, expected)
        assert usage[level].perplexity == pytest.approx(1.0) and usage[level].codes_used == 1


def test_codebook_usage_equals_the_indices_of_the_training_forward_pass():
    torch.manual_seed(3)
    model = HVQVAE(latent_dim=4, codebook_size=16).eval()
    audio = np.stack([tone(0.512, 8000, frequency=f) for f in (200, 700, 1500)])
    usage = codebook_usage(model, [audio], batch_size=2)
    with torch.no_grad():
        indices = model(torch.from_numpy(audio))["indices"]
    for level, value in indices.items():
        np.testing.assert_array_equal(usage[level].counts, np.bincount(value.flatten().numpy(), minlength=16))
        assert usage[level].vectors == 3 * STEPS[level]


def test_file_segments_are_cut_as_the_segment_cache_cuts_them(tmp_path):
    path = write(tmp_path / "song.wav", tone(1.2, 8000, amplitude=0.3), 8000)
    segments = file_segments(path, 8000, 4096)
    # 9600 samples: windows at 0, 4096 and one ending at the end, which holds 34 % new audio and is dropped (the
    # paper's zero-padded third was 66 % padding); each peak-normalised
    assert segments.shape == (2, 4096) and segments.dtype == np.float32
    np.testing.assert_allclose(np.abs(segments).max(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(segments[0], tone(4096 / 8000, 8000, amplitude=1.0), atol=2e-3)


def test_plot_codebook_of_audio_files(estm, tiny_vq, tmp_path):
    files = [write(tmp_path / f"song{i}.wav", tone(1.5, 22050, frequency=f), 22050) for i, f in enumerate((220, 990))]
    out = tmp_path / "usage.png"
    result = estm("plot", "codebook", "--model", "tiny", *files, "-o", out)
    assert result.code == 0, result.err
    assert "6 segments of 2 files" in result.err and "bottom perplexity" in result.err
    assert result.err.strip().splitlines()[-1] == f"wrote {out}"
    width, height = png_size(out)
    assert height > 600  # a row per level
    one_error_line(estm("plot", "codebook", "--model", "tiny", *files, "-o", out), "already exists")

    some_bad = estm("plot", "codebook", "--model", "tiny", files[0], tmp_path / "absent.wav",
                    "-o", tmp_path / "partial.png")
    assert some_bad.code == 3 and "absent.wav: no such file" in some_bad.err
    png_size(tmp_path / "partial.png")
    one_error_line(estm("plot", "codebook", "--model", "tiny", tmp_path / "absent.wav", "-o", tmp_path / "none.png"),
                   "no such file")
    assert not (tmp_path / "none.png").exists()


def test_plot_codebook_without_audio_shows_the_entries(estm, tiny_vq, tmp_path):
    result = estm("plot", "codebook", "--model", "tiny", "-o", tmp_path / "entries.png", "--quiet")
    assert result.code == 0, result.err
    assert result.err == ""  # --quiet leaves nothing but errors
    png_size(tmp_path / "entries.png")


def test_plot_codebook_of_a_segment_cache(estm, tiny_vq, tmp_path):
    from estm_core.datasets.segment import SegmentSettings, segment_split

    rows = []
    for k, part in enumerate(("train", "train", "test")):
        path = write(tmp_path / f"s{k}.wav", tone(1.0, 8000, frequency=300 + 200 * k), 8000)
        rows.append({"song_id": f"s{k}", "path": str(path), "label": "Q1", "group": f"s{k}", "part": part})
    segment_split(pd.DataFrame(rows), tmp_path / "cache", SegmentSettings(**SEGMENT))
    result = estm("plot", "codebook", "--model", "tiny", "--data", tmp_path / "cache", "--part", "train", "-o",
                  tmp_path / "cache.png")
    assert result.code == 0, result.err
    assert "4 segments of" in result.err  # two 1 s songs of two 0.5 s segments
    png_size(tmp_path / "cache.png")
    model_file.save_model(HVQVAE(latent_dim=4, codebook_size=16), store.model_path("hvqvae", "longer"),
                          audio=model_file.AudioSettings(8000, 2048))
    one_error_line(estm("plot", "codebook", "--model", "longer", "--data", tmp_path / "cache",
                        "-o", tmp_path / "x.png"), "takes 2048 samples at 8000 Hz")


def test_plot_codebook_refuses_a_model_without_codebooks_and_mixed_inputs(estm, tiny_vq, tmp_path):
    from test_store import make_tiny

    model_file.save_model(make_tiny(width=3), store.model_path("tiny-test", "plain"))
    song = write(tmp_path / "song.wav", tone(1.0, 8000), 8000)
    one_error_line(estm("plot", "codebook", "--model", "plain", song, "-o", tmp_path / "x.png"), "no VQ codebooks")
    one_error_line(estm("plot", "codebook", "--model", "tiny", song, "--data", tmp_path, "-o", tmp_path / "x.png"),
                   "not both")
    one_error_line(estm("plot", "codebook", "--model", "absent-model", "-o", tmp_path / "x.png"), "absent-model")
    assert not (tmp_path / "x.png").exists()


def test_clips_from_arrays_and_silence():
    clip = Clip("made in memory", np.zeros(4000, np.float64), 8000)
    assert clip.duration == 0.5 and not clip.cut and clip.samples.dtype == np.float32
    decibels, settings = clip_log_mel(clip)  # silence sits at the floor, not at the 0 dB of its own maximum
    assert (decibels == -80).all() and decibels.shape == (128, 1 + 4000 // settings["hop_length"])
    with pytest.raises(ValueError, match="mono"):
        Clip("stereo", np.zeros((100, 2)), 8000)
