"""HVQ-VAE, ESTM-1, ESTM-2: the paper's shapes and sizes, learning, transfer of whole files, grids, evaluation."""

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
import torch

from estm_core import audio, model_file, store
from estm_core.datasets.pairs import make_pairs
from estm_core.datasets.segment import SegmentSettings, read_manifest, segment_split
from estm_core.evaluate import evaluate_transfer, log_spectral_distance
from estm_core.models.estm import ESTM1, ESTM2, HVQVAE
from estm_core.models.vq import VectorQuantizer
from estm_core.models.mer import MER
from estm_core.datasets.style_labels import read_style_labels
from estm_core.training.estm import train_vqvae, training_variance
from estm_core.training.loop import TrainConfig
from estm_core.transfer import crossfade_window, decode_segments, load_transfer_model, transfer_audio

from conftest import tone, write

TINY = {"codebook_size": 32}


@pytest.mark.parametrize("family, options, parameters", [
    (ESTM1, {"d": 20}, 65_571), (ESTM1, {"d": 24}, 86_505), (ESTM2, {"d": 20}, 83_139), (ESTM2, {"d": 24}, 105_225),
])
def test_parameter_counts_match_the_paper(family, options, parameters):
    assert sum(p.numel() for p in family(**options).parameters()) == parameters


def test_level_lengths_are_the_papers():
    model = ESTM2(d=20)
    latents = model.hierarchy.encode(torch.zeros(1, 222264))
    assert {level: value.shape[-1] for level, value in latents.items()} == {
        "bottom": 27782, "middle": 6944, "top": 1735}
    upsampled = [model.hierarchy.upsamplers[level](torch.zeros(1, 20, value.shape[-1]))
                 for level, value in latents.items()]
    assert [part.shape[-2:] for part in upsampled] == [(10, 27782)] * 3
    joined = torch.zeros(1, 30, 27782)
    assert model.hierarchy.decoder(joined).shape == (1, 1, 222264)


def test_vector_quantiser_picks_the_nearest_code_and_passes_gradients_straight_through():
    vq = VectorQuantizer(2, codebook_size=3, beta=0.5)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]]))
    latents = torch.tensor([[[0.9, -0.8, 0.1], [1.2, 0.4, 0.0]]], requires_grad=True)  # (1, 2, 3)
    quantized, indices, loss = vq(latents)
    assert indices.tolist() == [[1, 2, 0]]
    torch.testing.assert_close(quantized.detach(), torch.tensor([[[1.0, -1.0, 0.0], [1.0, 0.5, 0.0]]]))
    squared = (torch.tensor([[1.0, -1.0, 0.0], [1.0, 0.5, 0.0]]) - latents.detach()) ** 2
    torch.testing.assert_close(loss, 1.5 * squared.mean())  # beta * commitment + codebook term, equal in value
    quantized.sum().backward()
    torch.testing.assert_close(latents.grad, torch.ones_like(latents))
    perplexity, used = vq.usage(indices)
    assert used.item() == 3 and perplexity.item() == pytest.approx(3.0)


def test_gradients_reach_the_encoder_through_the_quantiser():
    model = ESTM2(d=8, **TINY)
    result = model(torch.randn(2, 4096), torch.tensor([0, 3]))
    (result["output"].square().mean() + result["style_loss"]).backward()
    first_conv = model.hierarchy.encoders["bottom"][0]
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0


def test_a_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = HVQVAE(latent_dim=16, **TINY)
    batch = torch.from_numpy(np.stack([tone(0.5, 8192, frequency=f) for f in (300, 500)]))
    variance = batch.var().item()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses, reconstructions = [], []
    for _ in range(250):
        result = model(batch)
        reconstruction = ((batch - result["output"]) ** 2).mean() / variance
        loss = reconstruction + sum(result["vq_losses"].values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        reconstructions.append(reconstruction.item())
    assert np.mean(losses[-5:]) < 0.5 * losses[0]
    assert np.mean(reconstructions[-5:]) < 0.5 * reconstructions[0]


def test_estm2_deployment_follows_the_emotion_audio_and_the_content():
    torch.manual_seed(0)
    model = ESTM2(d=8, **TINY).eval()
    content, other_content = torch.randn(1, 4096), torch.randn(1, 4096)
    calm, tense = torch.from_numpy(tone(0.5, 8192, 200))[None], torch.sign(torch.randn(1, 4096))
    base = model.transfer(content, calm)
    assert base.shape == (1, 4096)
    assert not torch.allclose(base, model.transfer(content, tense))
    assert not torch.allclose(base, model.transfer(other_content, calm))
    one_hot = torch.tensor([[0.0, 0.0, 1.0, 0.0]])  # a quadrant instead of audio
    assert model.transfer(content, one_hot).shape == (1, 4096)


@pytest.mark.parametrize("family", ["estm1", "estm2"])
def test_decoding_is_float32_under_any_autocast(family):
    """Codes and outputs as the original's float32 graph gives them, even inside a bf16 autocast (on CUDA, training
    and classifying run under one): bf16 would change some codes and the output by several percent."""
    torch.manual_seed(0)
    model = (ESTM2 if family == "estm2" else ESTM1)(d=8, codebook_size=32).eval()
    info = model_file.ModelInfo(family=family, config={}, audio=model_file.AudioSettings(8000, 4096))
    transfer = model_file.LoadedModel("tiny", model, info)
    content = torch.from_numpy(tone(4096 / 8000, 8000, frequency=330)[None].astype(np.float32))
    emotion = torch.from_numpy(tone(4096 / 8000, 8000, frequency=550)[None].astype(np.float32)) if family == "estm2" \
        else torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    exact = decode_segments(transfer, content, emotion)
    with torch.no_grad():
        plain = model.transfer(content, emotion) if family == "estm2" else model(content, emotion)["output"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            halved = model.transfer(content, emotion) if family == "estm2" else model(content, emotion)["output"]
            inside = decode_segments(transfer, content, emotion)
    assert exact.dtype == torch.float32 and torch.equal(exact, plain) and torch.equal(inside, exact)
    assert not torch.equal(halved.float(), exact)  # bf16 would have changed it


def test_overlap_add_windows_cover_and_sum_to_one():
    length, overlap = 100, 20
    window = crossfade_window(length, overlap)
    # where two windows overlap by exactly `overlap`, their ramps sum to one
    np.testing.assert_allclose(window[-overlap:] + window[:overlap], 1.0)


# ----------------------------------------------------------------------------------------- training and using


@pytest.fixture(scope="module")
def quadrant_cache(tmp_path_factory):
    """12 two-second songs at 8 kHz, three per quadrant with quadrant-specific pitch and pulse; 0.5 s segments."""
    folder = tmp_path_factory.mktemp("quadrants")
    rng = np.random.default_rng(1)
    rows = []
    for k in range(16):
        quadrant = f"Q{k % 4 + 1}"
        pitch = {"Q1": 880, "Q2": 660, "Q3": 220, "Q4": 440}[quadrant] * (1 + 0.05 * rng.random())
        pulse = 1 + 0.5 * np.sign(np.sin(2 * np.pi * (8 if quadrant in ("Q1", "Q2") else 2) * np.arange(16000) / 8000))
        samples = tone(2.0, 8000, frequency=pitch) * pulse.astype(np.float32) + 0.01 * rng.standard_normal(16000)
        path = write(folder / f"{quadrant}-{k}.wav", samples.astype(np.float32), 8000)
        part = "test" if k >= 12 else "validation" if k >= 10 else "train"
        rows.append({"song_id": f"{quadrant}-{k}", "path": str(path), "label": quadrant, "group": f"{quadrant}-{k}",
                     "part": part})
    segment_split(pd.DataFrame(rows), folder / "cache", SegmentSettings(sample_rate=8000, segment_length=4096))
    return folder / "cache"


def tiny_config(**changes):
    return TrainConfig(**{"epochs": 3, "batch_size": 8, "lr": 3e-3, "monitor": "loss", "patience": None,
                          **changes})


def test_training_variance_is_that_of_the_training_audio(quadrant_cache):
    from estm_core.datasets.segment import open_cache, to_float

    manifest = read_manifest(quadrant_cache)
    rows = manifest[manifest["part"] == "train"]["index"].to_numpy()
    expected = to_float(open_cache(quadrant_cache)[rows]).astype(np.float64).var()
    assert training_variance(quadrant_cache) == pytest.approx(expected, rel=1e-6)


def test_style_labels_from_truth_ours_and_the_original_format(quadrant_cache, tmp_path):
    truth, teacher = read_style_labels("truth", quadrant_cache)
    assert truth["Q3-2-0"] == "Q3" and teacher is None
    original = tmp_path / "deam_predictions.csv"
    original.write_text("mer_Q1,mer_Q2,mer_Q3,mer_Q4,song_id\n0.1,0.2,0.6,0.1,data\\DEAM_standard_10s\\10-0.wav\n")
    labels, teacher = read_style_labels(original, quadrant_cache)
    assert labels == {"10-0": "Q3"} and teacher is None


def test_estm2_trains_records_its_variance_and_transfers_a_25_second_file(quadrant_cache, store_home, tmp_path):
    result = train_vqvae("estm2", quadrant_cache, "tiny-estm2", tiny_config(), style_labels="truth",
                            model_options={"d": 8, **TINY})
    history = result.history
    for column in ("reconstruction", "vq_bottom", "style_loss", "perplexity_bottom", "codes_used_top",
                   "val_reconstruction"):
        assert column in history.columns
    info = store.load_model("tiny-estm2").info
    assert info.training.train_variance == pytest.approx(training_variance(quadrant_cache))
    assert info.training.style_labels == "truth" and info.audio.segment_length == 4096

    transfer = load_transfer_model()  # the newest estm2
    content = tone(25.0, 8000, frequency=330)
    emotion = tone(3.0, 8000, frequency=880)  # shorter than the content: cycled
    output = transfer_audio(transfer, content, emotion, overlap_seconds=0.1)
    assert output.shape == content.shape and np.isfinite(output).all()
    to_quadrant = transfer_audio(transfer, content, "Q3", overlap_seconds=0.1)
    assert to_quadrant.shape == content.shape and not np.allclose(to_quadrant, output)


def test_hvqvae_takes_its_latent_channels_as_d_and_a_resume_names_d(quadrant_cache, store_home, estm):
    start = ["train", "hvqvae", "--data", quadrant_cache, "--name", "H", "--codebook-size", "8", "--batch-size", "8",
             "-q"]
    assert estm(*start, "--d", "4", "--epochs", "1").code == 0
    assert model_file.read_info(store.model_path("hvqvae", "H")).config["latent_dim"] == 4
    refused = estm(*start, "--resume", "--d", "8")
    assert refused.code == 1 and "--d 8 (the run's: 4)" in refused.err, refused.err


def test_estm1_takes_a_quadrant_and_the_transfer_command_writes_the_contents_duration(
        quadrant_cache, store_home, tmp_path, estm):
    train_vqvae("estm1", quadrant_cache, "tiny-estm1", tiny_config(), style_labels="truth",
                   model_options={"d": 8, **TINY})
    content = write(tmp_path / "content.flac", tone(3.3, 44100, frequency=300, channels=2), 44100)
    result = estm("transfer", content, "--emotion", "Q2", "-o", tmp_path / "out.wav", "--model", "tiny-estm1",
                  "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["quadrant"] == "Q2" and summary["duration"] == pytest.approx(3.3, abs=1e-3)
    samples, rate = audio.load(tmp_path / "out.wav")
    assert rate == 8000 and len(samples) == round(3.3 * 8000)
    again = estm("transfer", content, "--emotion", "Q2", "-o", tmp_path / "out.wav", "--model", "tiny-estm1")
    assert again.code == 1 and "already exists" in again.err
    for wrong in (["--emotion", "Q5", "-o", tmp_path / "x.wav"], ["--emotion", "Q1"]):
        result = estm("transfer", content, *wrong, "--model", "tiny-estm1")
        assert result.code == 1 and len(result.err.strip().splitlines()) == 1 and "internal" not in result.err


def untrained_mer(name: str) -> None:
    """A mer model for 0.5 s segments at 8 kHz (128 x 513 log-mel), untrained: enough to test the mechanics."""
    features = {"n_fft": 512, "hop_length": 8, "n_mels": 128, "standardize": True}
    model_file.save_model(MER(), store.model_path("mer", name), labels=["Q1", "Q2", "Q3", "Q4"],
                          audio=model_file.AudioSettings(8000, 4096, features=features))


def test_evaluate_transfer_refuses_the_teacher_and_reports_the_metrics(quadrant_cache, store_home, tmp_path):
    untrained_mer("judge")
    predictions = tmp_path / "labels.csv"
    from estm_core.classify import label_segments

    label_segments("judge", quadrant_cache).to_csv(predictions, index=False)
    train_vqvae("estm2", quadrant_cache, "taught", tiny_config(epochs=1), style_labels=predictions,
                   model_options={"d": 8, **TINY})
    pairs = make_pairs(read_manifest(quadrant_cache), part="test", content_dev=2, seed=0)
    with pytest.raises(Exception, match="made taught's training labels"):
        evaluate_transfer("taught", pairs, quadrant_cache, "judge")
    untrained_mer("other-judge")
    summary, table = evaluate_transfer("taught", pairs, quadrant_cache, "other-judge")
    assert summary["pairs"] == len(pairs) == len(table)
    assert summary["mse_c"] > 0 and 0 <= summary["pea"] <= 1 and 0 <= summary["aea"] <= 1
    assert summary["cd_x1e5"] >= 0 and summary["style_labeller"] == "judge"


def test_log_spectral_distance():
    signal = tone(1.0, 8000, frequency=440)
    assert log_spectral_distance(signal, signal) == 0.0
    assert log_spectral_distance(signal, tone(1.0, 8000, frequency=880)) > 10


# ------------------------------------------------------------------------------------------------------- grids


def test_grid_trains_every_point_summarises_and_a_rerun_trains_nothing(quadrant_cache, store_home, tmp_path, estm):
    grid = tmp_path / "grid.csv"
    grid.write_text("name,d,beta,beta_e,codebook_size\ng_a,8,0.25,0.25,32\ng_b,8,1.0,0.75,32\n")
    arguments = ["train", "estm2", "--data", quadrant_cache, "--style-labels", "truth", "--grid-file", grid,
                 "--epochs", "1", "--batch-size", "8", "--patience", "0", "--summary", tmp_path / "summary.csv"]
    first = estm(*arguments)
    assert first.code == 0, first.err
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary["name"].tolist() == ["g_a", "g_b"] and set(summary["status"]) <= {"ok", "collapsed"}
    assert model_file.read_info(store.model_path("estm2", "g_b")).config["codebook_size"] == 32  # the grid's
    assert (summary["codes_used_bottom"] <= 32).all()
    assert {"reconstruction", "style_loss", "epochs"} <= set(summary.columns)
    modified = [store.model_path("estm2", name).stat().st_mtime_ns for name in ("g_a", "g_b")]
    second = estm(*arguments)
    assert second.code == 0 and "2 already trained, 0 to train" in second.err
    assert [store.model_path("estm2", name).stat().st_mtime_ns for name in ("g_a", "g_b")] == modified


def test_a_grid_run_trains_the_unfinished_points_and_resumes_the_interrupted_ones(store_home):
    from estm_core.training import grid as grids

    points = pd.DataFrame({"name": ["done", "cut", "new"], "d": [8, 8, 8]})
    model_file.save_model(ESTM2(d=8, codebook_size=32), store.model_path("estm2", "p-done"),
                          training={"status": "finished", "best": {"reconstruction": 0.1}})
    model_file.save_model(ESTM2(d=8, codebook_size=32), store.model_path("estm2", "p-cut"),
                          training={"status": "running"})
    store.resume_path(store.model_path("estm2", "p-cut")).write_bytes(b"")  # a run stopped midway left its checkpoint
    assert grids.pending("estm2", points, "p-") == [1, 2]
    assert grids.resumes("estm2", "p-cut") and not grids.resumes("estm2", "p-new")
    assert grids.pending("estm2", points, "p-", force=True) == [0, 1, 2]  # --force starts every point over
    assert not grids.resumes("estm2", "p-cut", force=True)


def test_the_papers_grids_and_the_slurm_script(tmp_path, estm, store_home):
    from estm_core.training.grid import point, read_grid

    estm2 = read_grid("estm2")
    assert len(estm2) == 36 and len(read_grid("estm1")) == 12 and len(read_grid("hvqvae")) == 12
    assert point(estm2, 0) == ("estm2_0.25_20_0.25", {"beta_e": 0.25, "d": 20, "beta": 0.25})
    assert point(estm2, 35)[0] == "estm2_1.25_24_1.5"
    script = tmp_path / "grid.sbatch"
    result = estm("train", "estm2", "--data", tmp_path, "--style-labels", "truth", "--grid", "--slurm", script)
    assert result.code == 0, result.err
    text = script.read_text()
    assert "#SBATCH --array=0-35" in text and '--grid-point "$SLURM_ARRAY_TASK_ID"' in text
    assert "--slurm" not in text and " --grid " not in text
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
