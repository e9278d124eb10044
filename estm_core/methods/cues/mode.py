"""Mode: the CMERS parallel-mode rule carried over to audio. The notes on degrees 3, 6 and 7 of the key move a
semitone, each with its partials, in the short-time spectrum; a partial of another note that falls on those pitch
classes (the root's 5th partial on the major third) stays (ModeChange).
"""

from __future__ import annotations

import math

import numpy as np

from ... import dsp
from ...keys import MODE_DEGREES
from .stages import FrameQueue, as_2d, run_whole

MODE_WINDOW_S = 4096 / 22050  # frames of the mode edit's short-time spectrum, 186 ms (mode_fft: 4096 at 22.05 kHz,
#   8192 at 44.1 kHz): partials 12 Hz apart (a root's 5th partial and its major third's 4th, on a D) resolved
MODE_LOWEST_HZ, MODE_HIGHEST_HZ = 60.0, 5000.0  # the partials the mode edit may move
MODE_OWNER_HZ = 25.0  # the lowest partial that may own others as their fundamental (a bass note's)
MODE_HARMONICS = 16  # a partial may be a lower one's 2nd to 16th harmonic
MODE_HARMONIC_CENTS = 8.0  # ... when within this of it: an equal-tempered third (or sixth, or seventh) lies 12-14 cents
#   from a lower note's 5th (or 15th) harmonic, so that the third of a chord is told from its root's partial
MODE_FLOOR_DB = -60.0  # partials this far below a frame's strongest are no partials (they go with their neighbours)
MODE_CHUNK = 128  # short-time frames of the mode edit computed at once: whole chunks only, so that the arithmetic
#   (and so the result) is the same whatever the blocks; bounds the memory to a few MB


def mode_fft(sample_rate: int) -> int:
    """The mode edit's frame: the power of two nearest to MODE_WINDOW_S at `sample_rate`."""
    return 1 << max(round(math.log2(MODE_WINDOW_S * sample_rate)), 8)


def change_mode(samples: np.ndarray, sample_rate: int, tonic: int, mode: str, target: str) -> np.ndarray:
    """The parallel-mode rule on audio: in each short-time spectrum, the notes on degrees 3, 6 and 7 of the key
    (`tonic` a pitch class, `mode` the key's) move a semitone down (major to minor) or up (minor to major), each with
    its partials; everything else stays, the partials of other notes on those pitch classes too (ModeChange)."""
    samples = as_2d(samples)
    if mode == target:
        return samples.copy()
    return run_whole(ModeChange(sample_rate, samples.shape[1], tonic, mode, target), samples)


class ModeChange:
    """The mode edit as a stage: short-time spectra of mode_fft frames every mode_fft / 4, MODE_CHUNK frames at a
    time, all channels at once. The signal is padded with mode_fft zeros in front (and mode_fft + hop behind), so
    that every output sample has its full four overlapping frames.

    In each frame (the channels' magnitudes summed, so that every channel moves alike):
    - partials: where the bins' instantaneous frequencies (phase vocoder, from the frame before) point, each bin
      owned by the partial nearer to it. Two partials 2 bins apart beat, and in some frames show as one magnitude
      peak, but each still draws the bins nearest to it (reassignment); a peak picker lost the root's 5th
      partial to the third's 4th there and moved it (-30 dB of spurious partials instead of -52 on the triad check);
    - notes: a partial within MODE_HARMONIC_CENTS of k times a lower partial (k = 2..MODE_HARMONICS) that is at least
      sqrt(k) times as strong is that one's harmonic; each partial belongs to the lowest such, else to itself. The
      partials of notes on degrees 3, 6 and 7 move (a third's 5th partial, off those pitch classes, too); those of
      other notes stay (a root's 5th partial, on the major third's pitch class, too). A note a twelfth above another
      (3:1) and weaker than 1/sqrt(3) of it cannot be told from that one's 3rd harmonic: it goes with it;
    - moving: each moved partial's bins shift together by the whole number of bins nearest to its move (a semitone
      of its frequency), their phases turned alike by the phase that the moved frequency gains over the partial's
      frames (Laroche and Dolson's phase-locked pitch shifting, 1999): the partial keeps its shape in the frame, so
      that an attack stays an attack (a plucked third keeps 88 % of its first 20 ms and no pre-echo above -40 dB;
      moved bin by bin, 22 % and -16 dB)."""

    def __init__(self, sample_rate: int, channels: int, tonic: int, mode: str, target: str):
        self.size = mode_fft(sample_rate)
        self.hop = self.size // 4
        self.channels, self.sample_rate = channels, sample_rate
        self.window = dsp.hann(self.size).astype(np.float32)
        bin_hz = sample_rate / self.size
        # the bins looked at: from the lowest owner to just above the highest moved partial
        self.low = max(round(MODE_OWNER_HZ / bin_hz), 1)
        self.high = min(math.ceil(MODE_HIGHEST_HZ / bin_hz) + 3, self.size // 2)
        self.movable = (math.ceil(MODE_LOWEST_HZ / bin_hz), math.floor(MODE_HIGHEST_HZ / bin_hz))
        self.moved_classes = np.zeros(12, bool)
        self.moved_classes[(tonic + np.array(MODE_DEGREES[mode])) % 12] = True
        self.factor = 2.0 ** ((-1 if mode == "major" else 1) / 12.0)
        # 1 / the overlap-add of window**2 at the hop: the same in every hop of the output
        self.norm = (1.0 / np.maximum(np.sum(self.window.reshape(-1, self.hop).astype(np.float64) ** 2, axis=0),
                                      1e-8)).astype(np.float32)
        width = self.high - self.low
        self.last = np.zeros((channels, width), np.complex64)  # the frame before, over the bins looked at
        self.turn = np.zeros(width)  # the phase each bin's content was turned by in the frame before (0: it stayed)
        self.queue = FrameQueue(channels)
        self.queue.append(np.zeros((self.size, channels), np.float32))
        self.position = 0  # where the next frame starts, in the padded signal
        self.overlap = np.zeros((channels, self.size // self.hop - 1, self.hop), np.float32)  # sums from `position` on
        self.frames = 0  # input frames
        self.given = 0  # padded position up to which the output has been given out

    def process(self, block: np.ndarray) -> np.ndarray:
        self.frames += len(block)
        self.queue.append(block)
        count = (self.queue.end - self.position - self.size) // self.hop + 1
        return self._frames(count // MODE_CHUNK * MODE_CHUNK)

    def flush(self) -> np.ndarray:
        if not self.frames:
            return np.zeros((0, self.channels), np.float32)
        self.queue.append(np.zeros((self.size + self.hop, self.channels), np.float32))
        return self._frames(-(-(self.queue.end - self.position - self.size) // self.hop))

    def _frames(self, count: int) -> np.ndarray:
        done = [self._chunk(min(MODE_CHUNK, count - first)) for first in range(0, max(count, 0), MODE_CHUNK)]
        done = np.concatenate(done) if done else np.zeros((0, self.channels), np.float32)
        # the output is the padded signal's [size, size + frames)
        start, self.given = self.given, self.given + len(done)
        return done[max(self.size - start, 0): max(self.size + self.frames - start, 0)]

    def _chunk(self, count: int) -> np.ndarray:
        import scipy.fft

        size, hop = self.size, self.hop
        # channels first, so that every frame is contiguous for the transforms
        span = np.ascontiguousarray(self.queue.read(self.position, self.position + (count - 1) * hop + size).T)
        frames = np.lib.stride_tricks.sliding_window_view(span, size, axis=1)[:, ::hop]  # (channels, count, size)
        spectrum = scipy.fft.rfft(frames * self.window, axis=-1)
        self._move(spectrum)
        frames = scipy.fft.irfft(spectrum, n=size, axis=-1)
        frames *= self.window
        # overlap-add: quarter q of frame j lands on hop j + q
        summed = np.zeros((self.channels, count + size // hop - 1, hop), np.float32)
        summed[:, : size // hop - 1] = self.overlap
        quarters = frames.reshape(self.channels, count, size // hop, hop)
        for quarter in range(size // hop):
            summed[:, quarter: quarter + count] += quarters[:, :, quarter]
        self.overlap = summed[:, count:]
        self.position += count * hop
        self.queue.drop(self.position)
        done = summed[:, :count] * self.norm  # (channels, count, hop)
        return done.reshape(self.channels, count * hop).T

    def _partials(self, band: np.ndarray) -> tuple[np.ndarray, ...]:
        """(channels, frames, bins) spectra over the bins looked at -> the frames' partials, in order of frame and
        frequency: (frame, bin in the band, frequency in bins, magnitude), each (partials,)."""
        previous = np.concatenate([self.last[:, None], band[:, :-1]], axis=1)
        self.last = band[:, -1].copy()
        centre = 2 * np.pi * np.arange(self.low, self.high) / self.size  # radians a sample
        deviation = np.angle(np.einsum("cfb,cfb->fb", band, previous.conj())) - centre * self.hop
        deviation -= 2 * np.pi * np.round(deviation / (2 * np.pi))
        frequency = (centre + deviation / self.hop) * (self.size / (2 * np.pi))  # in bins, the channels together
        magnitude = np.abs(band).sum(axis=0)
        pull = frequency - np.arange(self.low, self.high)  # where each bin's frequency points, from the bin
        frame, left = np.nonzero((pull[:, :-1] >= 0) & (pull[:, 1:] < 0))  # a partial between left and left + 1
        peak = left + (magnitude[frame, left + 1] > magnitude[frame, left])
        loud = magnitude[frame, peak] > magnitude.max(axis=1)[frame] * 10.0 ** (MODE_FLOOR_DB / 20)
        frame, peak = frame[loud], peak[loud]
        return frame, peak, np.maximum(frequency[frame, peak], 1e-3), magnitude[frame, peak]

    def _owners(self, frame: np.ndarray, frequency: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
        """Each partial's note: the lowest partial of its frame whose harmonic it is (MODE_HARMONIC_CENTS), else
        itself. (partials,) indices."""
        key = frame * 1e6 + 1200 * np.log2(frequency)  # cents, frames far apart
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        owner = np.arange(len(key))
        alone = np.ones(len(key), bool)
        for harmonic in range(MODE_HARMONICS, 1, -1) if len(key) > 1 else ():  # the lowest owner first
            wanted = key - 1200 * math.log2(harmonic)
            at = np.clip(np.searchsorted(ordered, wanted), 1, len(key) - 1)
            below, above = wanted - ordered[at - 1], ordered[at] - wanted
            candidates = np.flatnonzero((np.minimum(below, above) <= MODE_HARMONIC_CENTS) & alone)
            nearest = order[np.where(below[candidates] <= above[candidates], at[candidates] - 1, at[candidates])]
            fits = magnitude[candidates] * math.sqrt(harmonic) <= magnitude[nearest]
            owner[candidates[fits]] = nearest[fits]
            alone[candidates[fits]] = False
        return owner

    def _move(self, spectrum: np.ndarray) -> None:
        """Move the partials of the notes on the moved degrees in (channels, frames, bins) `spectrum`, in place."""
        band = spectrum[..., self.low:self.high]
        count, width = band.shape[1:]
        frame, peak, frequency, magnitude = self._partials(band)
        if not len(peak):
            self.turn = np.zeros(width)
            return
        hz = frequency * (self.sample_rate / self.size)
        owner = self._owners(frame, hz, magnitude)
        pitch_class = np.round(69 + 12 * np.log2(hz[owner] / 440.0)).astype(int) % 12
        moved = self.moved_classes[pitch_class] & (peak + self.low >= self.movable[0]) & \
            (peak + self.low <= self.movable[1])
        # each partial's bins: up to half way to its neighbours in the frame
        flat = frame * width + peak
        same = frame[1:] == frame[:-1]
        starts = np.concatenate([frame[:1] * width, np.where(same, (flat[:-1] + flat[1:] + 1) // 2, frame[1:] * width)])
        ends = np.concatenate([np.where(same, starts[1:], frame[:-1] * width + width), frame[-1:] * width + width])
        chosen = np.flatnonzero(moved)
        lengths = ends[chosen] - starts[chosen]
        which = np.repeat(chosen, lengths)  # the partial of each moved bin, in order of frame
        source = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths) + np.repeat(
            starts[chosen], lengths)  # flat (frame, bin in the band)
        source_frame, source_bin = np.divmod(source, width)
        # the phase each moved partial's content turns by: what the moved frequency gains over the unmoved, summed
        # over the frames the partial has been moved in (the turn of its bin in the frame before)
        gain = (self.factor - 1.0) * 2 * np.pi * frequency * self.hop / self.size
        turned = np.zeros(len(peak))
        partial_edges = np.searchsorted(frame, np.arange(count + 1))
        bin_edges = np.searchsorted(source_frame, np.arange(count + 1))
        turn = self.turn
        for index in range(count):
            first, last = partial_edges[index], partial_edges[index + 1]
            turned[first:last] = np.mod(turn[peak[first:last]] + gain[first:last], 2 * np.pi)
            turn = np.zeros(width)
            inside = slice(bin_edges[index], bin_edges[index + 1])
            turn[source_bin[inside]] = turned[which[inside]]
        self.turn = turn
        shift = np.round((self.factor - 1.0) * frequency).astype(int)
        values = band[:, source_frame, source_bin] * np.exp(1j * turned[which]).astype(np.complex64)
        band[:, source_frame, source_bin] = 0
        destination = source_bin + self.low + shift[which]
        inside = (destination >= 0) & (destination < spectrum.shape[-1])
        for channel in range(self.channels):
            np.add.at(spectrum[channel], (source_frame[inside], destination[inside]), values[channel, inside])
