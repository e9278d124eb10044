import math

import numpy as np
import pytest
import soundfile as sf

from estm_core import audio, audio_checks, audio_info, windowing
from estm_core.errors import AudioError, FileError

from conftest import tone, write


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return np.argmax(spectrum) * rate / len(samples)


# ------------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("extension", [".wav", ".flac", ".aiff", ".au"])
def test_lossless_round_trip_is_exact_to_16_bits(tmp_path, extension):
    original = tone(1.0, 22050, channels=2)
    path = audio.save(tmp_path / f"x{extension}", original, 22050)
    loaded, rate = audio.load(path)
    assert rate == 22050 and loaded.shape == original.shape
    assert np.abs(loaded - original).max() <= 1 / 32768


@pytest.mark.parametrize("extension", [".ogg", ".mp3"])
def test_lossy_round_trip_keeps_length_pitch_and_level(tmp_path, extension):
    original = tone(2.0, 44100, frequency=1000.0)
    loaded, rate = audio.load(audio.save(tmp_path / f"x{extension}", original, 44100))
    assert rate == 44100
    assert abs(len(loaded) - len(original)) <= 2048  # codec padding at most
    assert dominant_frequency(loaded, rate) == pytest.approx(1000.0, abs=1.0)
    rms = lambda x: float(np.sqrt(np.mean(np.square(x))))  # noqa: E731
    assert rms(loaded) == pytest.approx(rms(original), rel=0.05)


def test_save_refuses_to_overwrite_without_force_and_leaves_no_temporary(tmp_path):
    path = audio.save(tmp_path / "x.wav", tone(0.1, 8000), 8000)
    before = path.read_bytes()
    with pytest.raises(FileError, match="already exists"):
        audio.save(path, tone(0.2, 8000), 8000)
    assert path.read_bytes() == before
    audio.save(path, tone(0.2, 8000), 8000, force=True)
    assert sf.info(path).frames == 1600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.wav"]


def test_an_unwritable_folder_is_named_with_its_cause(tmp_path, monkeypatch, estm):
    import errno
    import tempfile

    def read_only(*args, **kwargs):  # as on a read-only mount (root ignores a folder's permission bits)
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / ".out.abc.tmp.wav"))

    source = audio.save(tmp_path / "in.wav", tone(2.0, 8000), 8000)
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(FileError, match=r"out.wav: cannot write: read-only file system$"):
        audio.save(tmp_path / "out.wav", tone(0.1, 8000), 8000)
    result = estm("transfer", source, source, "-o", tmp_path / "out.wav", "--cues", "loudness")
    assert result.code == 1 and "out.wav: cannot write: read-only file system" in result.err
    assert ".tmp" not in result.err and "internal error" not in result.err


def test_save_clipping_policies(tmp_path):
    loud = np.array([0.0, 0.5, 2.0, -4.0] * 100, dtype=np.float32)
    rescaled, _ = audio.load(audio.save(tmp_path / "r.wav", loud, 8000, clip="rescale"))
    clamped, _ = audio.load(audio.save(tmp_path / "c.wav", loud, 8000, clip="clamp"))
    np.testing.assert_allclose(rescaled[:4], [0.0, 0.125, 0.5, -1.0], atol=1 / 32768)
    np.testing.assert_allclose(clamped[:4], [0.0, 0.5, 1.0, -1.0], atol=1 / 32768)


def test_save_rejects_what_a_format_cannot_hold(tmp_path):
    with pytest.raises(AudioError, match="mp3 holds 1 or 2 channels"):
        audio.save(tmp_path / "x.mp3", tone(0.1, 96000, channels=8), 96000)
    with pytest.raises(AudioError, match="cannot write '.xyz'"):
        audio.save(tmp_path / "x.xyz", tone(0.1, 8000), 8000)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------- loading


def test_load_reads_only_the_requested_window(tmp_path):
    ramp = (np.arange(8000) / 8000).astype(np.float32)
    path = write(tmp_path / "ramp.flac", ramp, 8000, subtype="PCM_24")
    window, rate = audio.load(path, offset=0.25, duration=0.5)
    assert rate == 8000 and len(window) == 4000
    np.testing.assert_allclose(window, ramp[2000:6000], atol=1e-6)


def test_load_mixes_to_mono_and_resamples(tmp_path):
    path = write(tmp_path / "stereo.wav", tone(1.0, 44100, frequency=440.0, channels=2), 44100, subtype="FLOAT")
    mono, rate = audio.load(path, mono=True, sample_rate=16000)
    assert rate == 16000 and mono.ndim == 1 and len(mono) == 16000
    assert mono.dtype == np.float32
    # channel 0 at 0.5, channel 1 at 0.25: the mix is a 440 Hz sine of amplitude 0.375
    assert np.abs(mono).max() == pytest.approx(0.375, abs=0.005)
    assert dominant_frequency(mono, rate) == pytest.approx(440.0, abs=1.0)


@pytest.mark.parametrize("rate, target", [(44100, 22050), (8000, 22050), (96000, 16000), (22050, 44100)])
def test_resample_keeps_frequency_and_gives_the_rounded_length(rate, target):
    samples = tone(1.3, rate, frequency=700.0)
    out = audio.resample(samples, rate, target)
    assert len(out) == round(len(samples) * target / rate)
    assert dominant_frequency(out, target) == pytest.approx(700.0, abs=target / len(out))


def test_to_mono_is_the_channel_mean():
    stereo = np.random.default_rng(0).standard_normal((1000, 2)).astype(np.float32)
    eight = np.random.default_rng(1).standard_normal((1000, 8)).astype(np.float32)
    np.testing.assert_allclose(audio.to_mono(stereo), stereo.mean(axis=1), atol=1e-6)
    np.testing.assert_allclose(audio.to_mono(eight), eight.mean(axis=1), atol=1e-6)
    np.testing.assert_array_equal(audio.to_mono(stereo[:, :1]), stereo[:, 0])


@pytest.mark.parametrize("kind", ["missing", "empty", "not_audio", "truncated", "truncated_wav", "corrupt",
                                  "nonfinite"])
def test_each_bad_input_raises_audio_error_with_its_cause(bad_files, kind):
    with pytest.raises(AudioError) as raised:
        audio.load(bad_files[kind])
    expected_kind = "truncated" if kind == "truncated_wav" else kind
    assert raised.value.kind == expected_kind
    assert str(raised.value).startswith(str(bad_files[kind]))
    messages = {"missing": "no such file", "empty": "empty file", "not_audio": "not an audio file",
                "truncated": "truncated: decoded", "truncated_wav": "truncated: decoded",
                "corrupt": "corrupt or truncated", "nonfinite": "NaN"}
    assert messages[kind] in raised.value.cause


def test_too_short_only_when_the_caller_asks(tmp_path):
    path = write(tmp_path / "blip.wav", tone(0.001, 44100), 44100)
    samples, _ = audio.load(path)
    assert len(samples) == 44
    with pytest.raises(AudioError, match="too short: 0.001 s, needs at least 10.08 s") as raised:
        audio.load(path, min_duration=10.08)
    assert raised.value.kind == "too_short"


def test_a_wav_whose_streaming_header_has_no_length_is_not_truncated(tmp_path):
    path = write(tmp_path / "x.wav", tone(0.5, 8000), 8000)
    data = bytearray(path.read_bytes())
    data[40:44] = (0xFFFFFFFF).to_bytes(4, "little")  # the data chunk size a streaming writer leaves
    path.write_bytes(bytes(data))
    samples, _ = audio.load(path)
    assert len(samples) == 4000


# ---------------------------------------------------------------------------------------------------- inspect


def test_inspect_measures_a_known_signal(tmp_path):
    samples = np.concatenate([tone(1.0, 16000, amplitude=0.5), np.zeros(16000, np.float32)])
    found = audio_info.inspect(write(tmp_path / "half.wav", samples, 16000, subtype="FLOAT"), block_frames=1000)
    assert found.format == "WAV" and found.channels == 1 and found.sample_rate == 16000
    assert found.frames == 32000 and found.duration == 2.0 and found.complete
    assert found.peak == pytest.approx(0.5, abs=1e-4)
    # RMS of a sine is a / sqrt(2); over twice the length with silence, power halves
    assert found.rms_dbfs == pytest.approx(20 * math.log10(0.5 / math.sqrt(2) / math.sqrt(2)), abs=0.01)
    assert found.zero_fraction == pytest.approx(0.5, abs=1e-3)


def test_inspect_reports_a_partly_decodable_file(bad_files):
    found = audio_info.inspect(bad_files["truncated"])
    assert not found.complete and found.problem.startswith("truncated")
    assert 1.5 < found.duration < 2.5 and found.header_frames == 4 * 22050
    assert found.peak < 1.0  # no garbage past the real end
    with pytest.raises(AudioError):
        audio_info.inspect(bad_files["empty"])


# -------------------------------------------------------------------------------------------------- transforms


def test_the_window_rule_ends_the_last_window_at_the_end():
    signal = np.arange(1, 11, dtype=np.float32)  # 10 samples
    windows, starts = windowing.segment(signal, 4)
    np.testing.assert_array_equal(windows, [[1, 2, 3, 4], [5, 6, 7, 8], [7, 8, 9, 10]])
    assert starts == [0, 4, 6] == windowing.window_starts(10, 4, 4)
    assert windowing.segment(signal, 4, hop=3)[1] == [0, 3, 6]  # the hops reach the end: no extra window
    assert windowing.window_starts(11, 4, 3) == [0, 3, 6, 7]
    windows, starts = windowing.segment(signal[:2], 4)  # shorter than a window: one, padded
    np.testing.assert_array_equal(windows, [[1, 2, 0, 0]])
    assert starts == [0] and windowing.segment(signal[:0], 4)[0].shape == (0, 4)
    # streamed, the windows are the whole array's, whatever the blocks
    for blocks in ([signal], np.split(signal, [3, 4, 9]), np.split(signal, 10)):
        streamed = list(windowing.windows(iter(blocks), 4, 4))
        assert [start for start, _ in streamed] == [0, 4, 6]
        np.testing.assert_array_equal(np.stack([window for _, window in streamed]), windowing.segment(signal, 4)[0])
    assert [start for start, _ in windowing.windows(iter(np.split(signal, 5)), 4, 2)] == [0, 2, 4, 6]
    short = list(windowing.windows(iter([signal[:3]]), 4, 4))
    assert len(short) == 1 and short[0][1].tolist() == [1, 2, 3, 0]
    assert [start for start, _ in windowing.windows(iter([signal[:8]]), 4, 4)] == [0, 4]


def test_peak_normalise_and_zero_fraction():
    samples = np.array([0.0, -0.25, 0.1, 0.0], dtype=np.float32)
    np.testing.assert_allclose(windowing.peak_normalise(samples), [0.0, -1.0, 0.4, 0.0])
    assert windowing.zero_fraction(samples) == 0.5
    silence = np.zeros(8, np.float32)
    np.testing.assert_array_equal(windowing.peak_normalise(silence), silence)
    assert windowing.zero_fraction(silence) == 1.0


def test_probe_reads_the_header_and_rejects_non_audio(tmp_path, bad_files):
    header = audio.probe(write(tmp_path / "x.flac", tone(1.5, 16000, channels=2), 16000))
    assert (header.format, header.sample_rate, header.channels, header.frames) == ("FLAC", 16000, 2, 24000)
    assert header.duration == 1.5
    for kind in ("missing", "empty", "not_audio", "corrupt"):
        with pytest.raises(AudioError):
            audio.probe(bad_files[kind])


def test_stream_equals_load_and_keeps_the_checks(tmp_path, bad_files):
    path = write(tmp_path / "x.flac", tone(3.0, 44100, channels=2), 44100)
    whole, _ = audio.load(path, sample_rate=22050, mono=True)
    streamed = np.concatenate(list(audio.Stream(path, sample_rate=22050, block_frames=10000)))
    np.testing.assert_allclose(streamed, whole, atol=1e-6)
    for kind in ("truncated", "truncated_wav", "not_audio", "nonfinite"):
        with pytest.raises(AudioError):
            list(audio.Stream(bad_files[kind], block_frames=4096))


def test_stream_reads_every_channel_in_blocks_of_any_size_in_one_pass_without_seeking(tmp_path, monkeypatch):
    path = write(tmp_path / "x.flac", tone(3.0, 16000, channels=2), 16000)
    whole, _ = audio.load(path)
    real_seek = sf.SoundFile.seek

    def seek(handle, frames, whence=sf.SEEK_SET):  # soundfile's own read() seeks to where it stands: let that be
        here = real_seek(handle, 0, sf.SEEK_CUR)
        assert (whence, frames) in ((sf.SEEK_CUR, 0), (sf.SEEK_SET, here)), "a stream never moves its position"
        return real_seek(handle, frames, whence)

    monkeypatch.setattr(sf.SoundFile, "seek", seek)
    for block_frames in (1, 999, 16000, 10**6):
        with audio.Stream(path, block_frames=block_frames, mono=False) as stream:
            assert (stream.sample_rate, stream.channels, stream.header.frames) == (16000, 2, 48000)
            blocks = list(stream)
        assert all(len(block) == block_frames for block in blocks[:-1]) and 0 < len(blocks[-1]) <= block_frames
        np.testing.assert_array_equal(np.concatenate(blocks), whole)
    seconds = audio.Stream(path, block_seconds=1.25, mono=False)
    assert [len(block) for block in seconds] == [20000, 20000, 8000]
    with pytest.raises(ValueError, match="read once"):
        list(seconds)
    level = audio_checks.Level()
    resampled = list(audio.Stream(path, sample_rate=8000, mono=False, level=level, block_frames=5000))
    assert np.concatenate(resampled).shape == (24000, 2) and (level.frames, level.sample_rate) == (48000, 16000)

def test_a_macos_resource_fork_beside_an_mp3_does_not_break_it(tmp_path):
    path = audio.save(tmp_path / "song.mp3", tone(1.0, 22050), 22050)
    (tmp_path / "._song.mp3").write_bytes(b"\x00\x05\x16\x07" + bytes(60))  # what unzipping a macOS archive leaves
    samples, rate = audio.load(path)
    assert rate == 22050 and abs(len(samples) - 22050) < 1200
