"""Whole files in bounded memory: classify and the learned transfer read their inputs in blocks (and the transfer
writes its output in blocks), with exactly the results of the whole arrays. benchmarks/memory.py measures the memory."""

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from estm_core import audio, model_file, windowing
from estm_core.errors import AudioError
from estm_core.classify import classify_file, segment_probabilities
from estm_core.models.estm import ESTM2
from estm_core.models.resnet import ResNet
from estm_core.features import FeatureSettings
from estm_core.transfer import _save_blocks, transfer_audio, transfer_blocks, transfer_file

from conftest import tone, write

RATE = 8000
BLOCK = 777  # frames per block: no file length or segment length here is a multiple of it


def tiny_classifier() -> model_file.LoadedModel:
    """A randomly initialised (seeded) tiny ResNet taking 0.5 s segments at 8 kHz."""
    torch.manual_seed(0)
    info = model_file.ModelInfo(family="genre", config={}, labels=["high", "low", "middle"],
                                audio=model_file.AudioSettings(RATE, 4000, features=asdict(
                               FeatureSettings(n_fft=256, hop_length=64, n_mels=32))))
    return model_file.LoadedModel("tiny", ResNet(classes=3, blocks=(1, 1), widths=(8, 16)).eval(), info)


def tiny_transfer() -> model_file.LoadedModel:
    """A randomly initialised (seeded) tiny ESTM-2 taking 4096-sample segments at 8 kHz."""
    torch.manual_seed(0)
    info = model_file.ModelInfo(family="estm2", config={}, audio=model_file.AudioSettings(RATE, 4096))
    return model_file.LoadedModel("tiny", ESTM2(d=8, codebook_size=32).eval(), info)


def noisy_tone(seconds: float, frequency: float, seed: int, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    samples = tone(seconds, RATE, frequency=frequency, channels=channels)
    return (samples + 0.05 * rng.standard_normal(samples.shape)).astype(np.float32)


@pytest.mark.parametrize("seconds, hop_seconds", [(2.3, None), (2.3, 0.3), (0.3, None)])
def test_classify_in_small_blocks_gives_the_whole_arrays_results(tmp_path, seconds, hop_seconds):
    classifier = tiny_classifier()
    path = write(tmp_path / "song.wav", noisy_tone(seconds, 700, seed=1, channels=2), RATE, subtype="FLOAT")
    result = classify_file(path, [classifier], hop_seconds=hop_seconds, batch_size=3, keep_segments=True,
                           block_frames=BLOCK)

    samples, _ = audio.load(path, mono=True)  # the whole array, cut by the window rule, in the same batches
    length = classifier.segment_length
    hop = round(hop_seconds * RATE) if hop_seconds else length
    starts = windowing.window_starts(len(samples), length, hop)
    padded = np.pad(samples, (0, max(0, length - len(samples))))
    probabilities = torch.cat([
        segment_probabilities(classifier, np.stack([padded[start:start + length] for start in starts[i:i + 3]]))
        for i in range(0, len(starts), 3)])

    assert [segment["start"] for segment in result.segments] == [start / RATE for start in starts]
    assert [segment["end"] for segment in result.segments] == [min(s + length, len(samples)) / RATE for s in starts]
    assert [list(segment["probabilities"].values()) for segment in result.segments] == probabilities.tolist()
    mean = probabilities.sum(dim=0) / len(starts)
    decision = result.decisions["genre"]
    assert list(decision["probabilities"].values()) == mean.tolist() and decision["segments"] == len(starts)
    assert result.duration == len(samples) / RATE


@pytest.mark.parametrize("emotion", ["file", "Q3"])
def test_transfer_in_small_blocks_gives_the_whole_arrays_output(tmp_path, emotion):
    transfer = tiny_transfer()
    content_path = write(tmp_path / "content.wav", noisy_tone(3.1, 330, seed=2), RATE, subtype="FLOAT")
    emotion_path = write(tmp_path / "emotion.wav", noisy_tone(0.9, 880, seed=3), RATE, subtype="FLOAT")
    content, _ = audio.load(content_path, mono=True)
    whole_emotion = audio.load(emotion_path, mono=True)[0] if emotion == "file" else emotion
    options = {"overlap_seconds": 0.1, "batch_size": 3}
    whole = transfer_audio(transfer, content, whole_emotion, **options)

    streamed_emotion = emotion_path if emotion == "file" else emotion  # cycled, read in blocks too
    blocks = list(transfer_blocks(transfer, audio.Stream(content_path, block_frames=BLOCK), streamed_emotion,
                                  block_frames=BLOCK, **options))
    assert len(blocks) > 1 and np.array_equal(np.concatenate(blocks), whole)

    quadrant = None if emotion == "file" else emotion
    summary = transfer_file(transfer, content_path, tmp_path / "blocks.wav", block_frames=BLOCK, quadrant=quadrant,
                            reference=emotion_path if emotion == "file" else None, **options)
    audio.save(tmp_path / "whole.wav", whole, RATE)
    assert (tmp_path / "blocks.wav").read_bytes() == (tmp_path / "whole.wav").read_bytes()
    assert summary["duration"] == len(content) / RATE


def test_transfer_output_begins_before_the_content_has_all_been_read():
    transfer = tiny_transfer()
    content = noisy_tone(6.0, 330, seed=4)
    read = []

    def content_blocks():
        for start in range(0, len(content), BLOCK):
            read.append(start)
            yield content[start:start + BLOCK]

    first = next(transfer_blocks(transfer, content_blocks(), "Q1", overlap_seconds=0.1, batch_size=2))
    assert len(first) > 0 and read[-1] + BLOCK < len(content)


def test_saving_blocks_rescales_and_refuses_as_audio_save_does(tmp_path):
    loud = noisy_tone(2.0, 440, seed=5) * 5  # beyond [-1, 1]: divided by the peak of the whole signal
    for name in ("loud.wav", "loud.flac"):
        blocks = (loud[start:start + BLOCK] for start in range(0, len(loud), BLOCK))
        format_ = audio.WRITE_FORMATS[Path(name).suffix]
        assert _save_blocks(tmp_path / f"blocks-{name}", blocks, RATE, format_, force=False) == len(loud)
        audio.save(tmp_path / f"whole-{name}", loud, RATE)
        assert sf.read(tmp_path / f"blocks-{name}")[0].tolist() == sf.read(tmp_path / f"whole-{name}")[0].tolist()
    broken = loud.copy()
    broken[3000] = np.nan
    with pytest.raises(AudioError, match="NaN") as caught:
        _save_blocks(tmp_path / "nan.wav", [broken[:BLOCK], broken[BLOCK:]], RATE, ("WAV", "PCM_16"), force=False)
    assert "nan.wav" in str(caught.value) and not (tmp_path / "nan.wav").exists()


def test_transfer_refuses_an_output_format_before_any_work(tmp_path):
    with pytest.raises(AudioError, match=r"out\.txt: cannot write '\.txt' files"):
        transfer_file(tiny_transfer(), tmp_path / "not-read.wav", tmp_path / "out.txt", quadrant="Q1")
