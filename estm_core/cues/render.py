"""Edits of the cues that carry emotion, on audio (../shared/spec/EMOTION_CUES.md): tempo and register, level,
dynamics, brightness, articulation and mode. Each function takes and returns (frames, channels) float32 at
`sample_rate` and changes its own cue only, as far as the signal allows; the identity settings return the input.

Tempo and register go through Signalsmith Stretch (python-stretch, MIT), a time-stretcher and pitch-shifter of far
higher quality than a plain phase vocoder. The mode edit is the CMERS parallel-mode rule carried over to audio: the
notes on degrees 3, 6 and 7 of the key move a semitone, each with its partials, in the short-time spectrum; a partial
of another note that falls on those pitch classes (the root's 5th partial on the major third) stays (ModeChange).

Streaming: each edit is a stage (`process(block)` returns what is ready, `flush()` the rest) that carries its state
across blocks: the filters' and followers' memories, the limiter's and the level window's look-ahead, the mode edit's
short-time spectrum and phases. The result does not depend on the block size, so a file of any length goes through
in blocks; the functions below run one stage over a whole array. python-stretch 0.3 has no streaming call (its
`process` starts afresh every time), so the stretch runs on fixed STRETCH_SEGMENT_S pieces of the input, each with
STRETCH_CONTEXT_S of context either side, slid into phase with the previous one and crossfaded (Stretch); the pieces
are where the work goes to other cores. `edit` chains the stages for a cue transfer, in two passes.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections import deque
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Iterable, Iterator

import numpy as np

from ..workers import process_pool

LEVEL_WINDOW_S = 0.4  # the level follower of the dynamics edit: BS.1770's momentary window, slow enough to leave the
#   notes' attacks alone (at 50 ms a 4x expansion doubled the onsets the meter hears)
TRANSIENT_FAST_S, TRANSIENT_SLOW_S = 0.005, 0.08  # attack and sustain followers of the articulation edit
TILT_PIVOTS_HZ = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)  # shelves an octave apart make a tilt
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
STRETCH_SEGMENT_S = 30.0  # input stretched per call of Signalsmith Stretch (python-stretch cannot stream)
STRETCH_CONTEXT_S = 0.5  # input either side of a piece, so the stretcher has settled where the piece is used
STRETCH_CROSSFADE_S = 0.03  # the join of two pieces: about one of the stretcher's own hops
STRETCH_ALIGN_S = 0.008  # how far a piece may slide to match the previous one (half a period of a 60 Hz tone)
LEVEL_FLOOR = 1e-3  # the dynamics and articulation edits leave the gain alone below -60 dB of the level
SPOOL_BLOCK = 1 << 18  # frames read back from the spool at a time
RUN_CHUNK = 1 << 16  # frames a stage is given at a time


def _as_2d(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    return samples[:, None] if samples.ndim == 1 else samples


def _power(block: np.ndarray) -> np.ndarray:
    """(frames,) float64: the mean square over the channels (einsum: a reduction over a short axis is slow)."""
    return (np.einsum("ij,ij->i", block, block) / block.shape[1]).astype(np.float64)


def _peak(block: np.ndarray) -> np.ndarray:
    """(frames,): the largest |sample| over the channels."""
    peak = np.abs(block[:, 0])
    for channel in range(1, block.shape[1]):
        np.maximum(peak, np.abs(block[:, channel]), out=peak)
    return peak


def _rms(samples: np.ndarray) -> float:
    """RMS over all samples and channels."""
    return math.sqrt(float(np.mean(_power(samples)))) if samples.size else 0.0


def _whole(stage, samples: np.ndarray) -> np.ndarray:
    """One stage over a whole array."""
    return np.concatenate([stage.process(samples), stage.flush()])


def run(stages: list, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Blocks of (frames, channels) float32 through a chain of stages, in order, at most RUN_CHUNK frames at a time
    (so that no stage makes float64 copies of a whole long block); at the end each stage's tail goes through the
    stages after it."""
    for block in blocks:
        yield from _through(stages, block)
    for index, stage in enumerate(stages):
        yield from _through(stages[index + 1:], stage.flush())


def _through(stages: list, block: np.ndarray) -> Iterator[np.ndarray]:
    if not stages:
        if len(block):
            yield block
        return
    for start in range(0, len(block), RUN_CHUNK):
        yield from _through(stages[1:], stages[0].process(block[start:start + RUN_CHUNK]))


class _Queue:
    """Frames appended block by block and read back by their position in the stream, without copying every block
    into one growing array."""

    def __init__(self, channels: int):
        self.channels = channels
        self.pieces: deque[tuple[int, np.ndarray]] = deque()  # (position of the first frame, frames)
        self.start = self.end = 0

    def append(self, block: np.ndarray) -> None:
        if len(block):
            self.pieces.append((self.end, block))
            self.end += len(block)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop), which must still be held."""
        assert self.start <= start <= stop <= self.end, (self.start, start, stop, self.end)
        parts = [piece[max(start - first, 0): stop - first] for first, piece in self.pieces
                 if first < stop and first + len(piece) > start]
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.zeros((0, self.channels), np.float32)

    def drop(self, before: int) -> None:
        """Forget the frames before `before`."""
        while self.pieces and self.pieces[0][0] + len(self.pieces[0][1]) <= before:
            self.pieces.popleft()
        if self.pieces and self.pieces[0][0] < before:
            first, piece = self.pieces.popleft()
            self.pieces.appendleft((before, piece[before - first:]))
        self.start = max(self.start, min(before, self.end))


# ---------------------------------------------------------------------------------------------- tempo, register


def stretch(samples: np.ndarray, sample_rate: int, tempo_ratio: float = 1.0, semitones: float = 0.0) -> np.ndarray:
    """Play `tempo_ratio` times as fast (2 = twice as fast, half as long) and `semitones` higher, through Signalsmith
    Stretch. Returns (round(frames / tempo_ratio), channels), aligned with the input (the stretcher's latency
    removed)."""
    samples = _as_2d(samples)
    if tempo_ratio == 1.0 and semitones == 0.0:
        return samples.copy()
    return _whole(Stretch(sample_rate, samples.shape[1], tempo_ratio, semitones), samples)


def _stretch_piece(samples: np.ndarray, sample_rate: int, tempo_ratio: float, semitones: float,
                   frames: int) -> np.ndarray:
    """The first `frames` frames of `samples` stretched in one call of Signalsmith Stretch, aligned with the input.
    Runs in the worker processes too."""
    import python_stretch

    stretcher = python_stretch.Signalsmith.Stretch()
    stretcher.preset(samples.shape[1], float(sample_rate))
    stretcher.timeFactor = float(tempo_ratio)
    stretcher.setTransposeSemitones(float(semitones))
    # python-stretch's process removes the stretcher's latency itself (it reads inputLatency ahead and drops the first
    # outputLatency frames of output): output frame i is input frame i * tempo_ratio already, round(input frames /
    # tempo_ratio) of them. (Removing the latency once more put the output 120 ms early, at any rate.) Silence after
    # the end gives the frames asked for beyond the input's end (a join's slide).
    padding = math.ceil(max(frames - len(samples) / tempo_ratio, 0.0) * tempo_ratio) + 1
    padded = np.concatenate([samples, np.zeros((padding, samples.shape[1]), np.float32)])
    output = stretcher.process(np.ascontiguousarray(padded.T)).T[:frames]
    # rounding can leave the very end a frame or two short of what the piece must give
    return np.concatenate([output, np.zeros((frames - len(output), samples.shape[1]), np.float32)], dtype=np.float32)


class Stretch:
    """The stretch as a stage. The input is cut at multiples of STRETCH_SEGMENT_S into pieces (the last one longer
    than STRETCH_CONTEXT_S), each stretched with STRETCH_CONTEXT_S of context either side: where the cuts fall depends
    on the input only, never on the blocks. Two pieces' renderings of the same passage agree in their partials but
    not in their phases, so at each join the next piece is first slid by up to STRETCH_ALIGN_S to where it best
    matches the previous one (as WSOLA does; the output's timing moves by no more than that), then crossfaded over
    STRETCH_CROSSFADE_S. With a `pool` the pieces are stretched there, up to `ahead` at a time, while the caller goes
    on."""

    def __init__(self, sample_rate: int, channels: int, tempo_ratio: float = 1.0, semitones: float = 0.0, *,
                 segment_seconds: float = STRETCH_SEGMENT_S, pool: Executor | None = None, ahead: int = 2):
        if not (0.25 <= tempo_ratio <= 4.0):
            raise ValueError(f"tempo ratio {tempo_ratio} is outside 0.25-4")
        self.rate, self.ratio, self.semitones = sample_rate, float(tempo_ratio), float(semitones)
        self.context = round(STRETCH_CONTEXT_S * sample_rate)
        self.segment = max(round(segment_seconds * sample_rate), 2 * self.context + 1)
        # the crossfade (2 * half) and the slide (lag), in output frames, must lie within the stretched context
        room = int(self.context / self.ratio) - 2
        self.lag = min(round(STRETCH_ALIGN_S * sample_rate), room // 3)
        self.half = max(1, min(round(STRETCH_CROSSFADE_S * sample_rate / 2), room // 3))
        angle = (np.arange(2 * self.half) + 0.5) / (2 * self.half) * (np.pi / 2)
        self.fade_in = (np.sin(angle) ** 2).astype(np.float32)[:, None]  # the slid pieces are in phase: gains sum to 1
        self.fade_out = 1 - self.fade_in
        self.pool, self.ahead = pool, max(1, ahead)
        self.queue = _Queue(channels)
        self.channels = channels
        self.index = 0  # the next piece to cut
        self.pending: deque = deque()  # (index, input start, last, Future or output) in order
        self.tail: np.ndarray | None = None  # the previous piece's output under the next crossfade
        self.total = 0  # output frames in all, once the input has ended

    def _output_position(self, index: int) -> int:
        return round(index * self.segment / self.ratio)

    def process(self, block: np.ndarray) -> np.ndarray:
        self.queue.append(block)
        # a piece is cut once the input runs on past its end and context: so the last piece is never that short
        while self.queue.end > (self.index + 1) * self.segment + self.context:
            self._cut(last=False)
        return self._collect(wait=False)

    def flush(self) -> np.ndarray:
        if self.queue.end > 0:
            self._cut(last=True)
        return self._collect(wait=True)

    def _cut(self, last: bool) -> None:
        start = max(0, self.index * self.segment - self.context)
        stop = self.queue.end if last else (self.index + 1) * self.segment + self.context
        if last:
            self.total = round(self.queue.end / self.ratio)
            end = self.total
        else:
            end = self._output_position(self.index + 1) + self.half
        piece = self.queue.read(start, stop)
        arguments = (piece, self.rate, self.ratio, self.semitones, end + self.lag - round(start / self.ratio))
        job = self.pool.submit(_stretch_piece, *arguments) if self.pool else _stretch_piece(*arguments)
        self.pending.append((self.index, start, last, job))
        self.queue.drop((self.index + 1) * self.segment - self.context)
        self.index += 1

    def _collect(self, wait: bool) -> np.ndarray:
        ready = []
        while self.pending:
            job = self.pending[0][3]
            if isinstance(job, Future) and not (wait or job.done() or len(self.pending) > self.ahead):
                break
            index, start, last, job = self.pending.popleft()
            ready.append(self._join(index, start, last, job.result() if isinstance(job, Future) else job))
        return np.concatenate(ready) if ready else np.zeros((0, self.channels), np.float32)

    def _join(self, index: int, start: int, last: bool, output: np.ndarray) -> np.ndarray:
        """This piece's share of the output: the crossfade with the previous one, then its own frames up to the
        next crossfade (or the end)."""
        half, offset = self.half, round(start / self.ratio)  # output[0] belongs at `offset`
        begin = self._output_position(index)
        end = self.total if last else self._output_position(index + 1)
        parts = []
        if index == 0:
            first = 0  # where output[0] belongs
        else:
            first = begin - half
            output = output[first - self.lag - offset:]
            output = output[self._slide(output):]
            parts.append(self.tail * self.fade_out + output[: 2 * half] * self.fade_in)
        own = begin + half if index > 0 else 0
        parts.append(output[own - first: (end if last else end - half) - first])
        if not last:
            self.tail = output[end - half - first: end + half - first]
        return np.concatenate(parts)

    def _slide(self, output: np.ndarray) -> int:
        """The start within output[: 2 * lag + 1] where the piece matches the previous one's tail best (the largest
        cross-correlation of their channel sums); output[lag] is where it nominally starts."""
        tail = self.tail.sum(axis=1, dtype=np.float64)
        candidates = output[: 2 * self.lag + 2 * self.half].sum(axis=1, dtype=np.float64)
        return int(np.argmax(np.correlate(candidates, tail, mode="valid")))


# ------------------------------------------------------------------------------------------- level, dynamics


def gain(samples: np.ndarray, decibels: float) -> np.ndarray:
    return _as_2d(samples) * np.float32(10.0 ** (decibels / 20.0))


class Gain:
    """The gain as a stage."""

    def __init__(self, channels: int, decibels: float):
        self.channels, self.factor = channels, np.float32(10.0 ** (decibels / 20.0))

    def process(self, block: np.ndarray) -> np.ndarray:
        return block * self.factor

    def flush(self) -> np.ndarray:
        return np.zeros((0, self.channels), np.float32)


def dynamics(samples: np.ndarray, sample_rate: int, ratio: float) -> np.ndarray:
    """Compress (`ratio` > 1) or expand (< 1) the level's swings about the signal's own RMS level: a passage
    `d` dB above (below) it ends up `d / ratio` dB above (below). 1 is the identity. The overall level stays."""
    samples = _as_2d(samples)
    reference = _rms(samples)
    if ratio == 1.0 or reference == 0:
        return samples.copy()
    return _whole(Dynamics(sample_rate, samples.shape[1], ratio, reference), samples)


class Dynamics:
    """The dynamics edit as a stage: the gain follows the RMS over all channels in a centred window of
    LEVEL_WINDOW_S (shortened at the ends), relative to `reference`; below LEVEL_FLOOR of the reference it stays."""

    def __init__(self, sample_rate: int, channels: int, ratio: float, reference: float):
        self.window = max(1, round(LEVEL_WINDOW_S * sample_rate))
        self.before = self.window // 2  # the window reaches this far back, and window - before - 1 ahead
        self.exponent = 1.0 / ratio - 1.0
        self.reference, self.floor = reference, reference * LEVEL_FLOOR
        self.samples = _Queue(channels)  # not yet edited, from self.done on
        self.power = np.zeros(0)  # mean square over the channels, from max(self.done - self.before, 0) on
        self.done = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        self.samples.append(block)
        self.power = np.concatenate([self.power, _power(block)])
        return self._edit(self.samples.end - (self.window - self.before) + 1, self.samples.end)

    def flush(self) -> np.ndarray:
        return self._edit(self.samples.end, self.samples.end)

    def _edit(self, stop: int, known: int) -> np.ndarray:
        """Frames [done, stop), with the power known up to `known`."""
        if stop <= self.done:
            return np.zeros((0, self.samples.channels), np.float32)
        first = max(self.done - self.before, 0)  # the position of self.power[0]
        cumulative = np.concatenate([[0.0], np.cumsum(self.power)])
        positions = np.arange(self.done, stop)
        starts = np.maximum(positions - self.before, 0)
        ends = np.minimum(positions - self.before + self.window, known)
        mean_square = np.maximum((cumulative[ends - first] - cumulative[starts - first]) / (ends - starts), 0.0)
        level = np.maximum(np.sqrt(mean_square.astype(np.float32)), np.float32(self.floor))
        relative = level / np.float32(self.reference)
        edited = self.samples.read(self.done, stop) * (relative ** np.float32(self.exponent))[:, None]
        self.samples.drop(stop)
        self.power = self.power[max(stop - self.before, 0) - first:]
        self.done = stop
        return edited


LIMITER_LOOKAHEAD_S = 0.005  # the limiter's gain reaches its floor this long before a peak, and recovers as fast


def limit(samples: np.ndarray, sample_rate: int, ceiling: float) -> np.ndarray:
    """Keep every sample within +-`ceiling` by turning the gain down around the peaks only (a look-ahead peak
    limiter), rather than the whole signal: the level of everything else stays where the other edits put it."""
    samples = _as_2d(samples)
    return _whole(Limiter(sample_rate, samples.shape[1], ceiling), samples)


class Limiter:
    """The limiter as a stage. A sample's gain depends on the peaks within `reach` frames either side, so each block
    is computed with that much of its neighbours (and 'nearest' edges only at the very start and end)."""

    def __init__(self, sample_rate: int, channels: int, ceiling: float):
        self.window = 2 * max(1, round(LIMITER_LOOKAHEAD_S * sample_rate)) + 1
        self.reach = (self.window - 1) + self.window // 2  # the minimum's half-width plus the mean's
        self.ceiling = ceiling
        self.history = np.zeros((0, channels), np.float32)  # up to `reach` frames already given out
        self.pending = _Queue(channels)

    def process(self, block: np.ndarray) -> np.ndarray:
        self.pending.append(block)
        return self._limit(self.pending.end - self.reach)

    def flush(self) -> np.ndarray:
        return self._limit(self.pending.end)

    def _limit(self, stop: int) -> np.ndarray:
        start = self.pending.start
        if stop <= start:
            return np.zeros((0, self.history.shape[1]), np.float32)
        span = np.concatenate([self.history, self.pending.read(start, self.pending.end)])
        own = slice(len(self.history), len(self.history) + stop - start)
        peak = _peak(span)
        if peak.max() > self.ceiling:
            # float32 rounding of sample x gain can land an ulp above the ceiling: the clip takes no more than that
            limited = np.clip(span[own] * self._gain(peak)[own, None], -self.ceiling, self.ceiling)
        else:
            limited = span[own]
        self.history = span[max(own.stop - self.reach, 0): own.stop]
        self.pending.drop(stop)
        return limited.astype(np.float32, copy=False)

    def _gain(self, peak: np.ndarray) -> np.ndarray:
        from scipy.ndimage import maximum_filter1d, uniform_filter1d

        needed = np.minimum(1.0, self.ceiling / np.maximum(peak, 1e-12))
        # the lowest gain any sample nearby needs, then smoothed over the same window: it moves gradually and, being the
        # mean of minima over a window that holds each peak, never lets a peak through
        floor = -maximum_filter1d(-needed, size=2 * self.window - 1, mode="nearest")
        smooth = uniform_filter1d(floor, size=self.window, mode="nearest")
        return np.minimum(smooth, needed)


# ------------------------------------------------------------------------------------------------- brightness


def _high_shelf(sample_rate: int, pivot_hz: float, decibels: float) -> np.ndarray:
    """One RBJ-cookbook high-shelf biquad (slope 1) as a second-order section [b0 b1 b2 1 a1 a2]."""
    amplitude = 10.0 ** (decibels / 40.0)
    omega = 2 * math.pi * min(pivot_hz, 0.45 * sample_rate) / sample_rate
    cos, alpha = math.cos(omega), math.sin(omega) / 2 * math.sqrt(2.0)
    root = 2 * math.sqrt(amplitude) * alpha
    b = np.array([amplitude * ((amplitude + 1) + (amplitude - 1) * cos + root),
                  -2 * amplitude * ((amplitude - 1) + (amplitude + 1) * cos),
                  amplitude * ((amplitude + 1) + (amplitude - 1) * cos - root)])
    a = np.array([(amplitude + 1) - (amplitude - 1) * cos + root,
                  2 * ((amplitude - 1) - (amplitude + 1) * cos),
                  (amplitude + 1) - (amplitude - 1) * cos - root])
    return np.concatenate([b / a[0], a / a[0]])


def tilt(samples: np.ndarray, sample_rate: int, db_per_octave: float) -> np.ndarray:
    """Tilt the spectrum by `db_per_octave` about 1 kHz (positive: brighter), between the outer shelves
    (125 Hz-8 kHz): a shelf an octave apart each adds `db_per_octave` above its pivot."""
    samples = _as_2d(samples)
    if db_per_octave == 0.0:
        return samples.copy()
    return _whole(Tilt(sample_rate, samples.shape[1], db_per_octave), samples)


class Tilt:
    """The tilt as a stage: the shelves' filter state carries over from block to block."""

    def __init__(self, sample_rate: int, channels: int, db_per_octave: float):
        pivots = [pivot for pivot in TILT_PIVOTS_HZ if pivot < 0.45 * sample_rate]
        self.sample_rate = sample_rate
        self.sections = np.stack([_high_shelf(sample_rate, pivot, db_per_octave) for pivot in pivots])
        self.scale = 1.0 / abs(self._response(np.array([1000.0]))[0])  # 1 kHz keeps its level
        self.state = np.zeros((len(self.sections), 2, channels))

    def _response(self, hz: np.ndarray) -> np.ndarray:
        """The shelves' complex response at frequencies `hz` (scipy's sosfreqz takes 3 ms a call: 1.5 s for the
        settings transfer.plan weighs)."""
        delay = np.exp(-2j * np.pi * np.asarray(hz, dtype=np.float64) / self.sample_rate)[:, None] ** np.arange(3)
        return np.prod((delay @ self.sections[:, :3].T) / (delay @ self.sections[:, 3:].T), axis=1)

    def power_gain(self, hz: np.ndarray) -> np.ndarray:
        """The power response at frequencies `hz`."""
        return np.abs(self._response(hz) * self.scale) ** 2

    def process(self, block: np.ndarray) -> np.ndarray:
        from scipy.signal import sosfilt

        # float64: the low shelves' poles sit close to the unit circle
        filtered, self.state = sosfilt(self.sections, block.astype(np.float64), axis=0, zi=self.state)
        return (filtered * self.scale).astype(np.float32)

    def flush(self) -> np.ndarray:
        return np.zeros((0, self.state.shape[2]), np.float32)


# ----------------------------------------------------------------------------------------------- articulation


def articulation(samples: np.ndarray, sample_rate: int, amount: float) -> np.ndarray:
    """Shape the notes' envelopes, as a transient designer does: `amount` > 0 lifts the attacks and lets the
    sustain fall (more staccato, sharper), < 0 softens the attacks and lifts the sustain (more legato). 0 is the
    identity. The gain follows (fast envelope / slow envelope) ** amount, clipped to +-12 dB."""
    samples = _as_2d(samples)
    if amount == 0.0:
        return samples.copy()
    return _whole(Articulation(sample_rate, samples.shape[1], amount, _rms(samples)), samples)


class Articulation:
    """The articulation edit as a stage: two one-pole followers of the RMS over the channels (the fast one instant
    on the way up), their states carried over; below LEVEL_FLOOR of `reference` the followers read the floor."""

    def __init__(self, sample_rate: int, channels: int, amount: float, reference: float):
        self.amount, self.channels = amount, channels
        self.floor = max(reference * LEVEL_FLOOR, 1e-9)
        self.coefficients = [math.exp(-1.0 / max(seconds * sample_rate, 1.0))
                             for seconds in (TRANSIENT_FAST_S, TRANSIENT_SLOW_S)]
        self.states = [np.zeros(1), np.zeros(1)]

    def process(self, block: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter

        level = np.sqrt(_power(block))
        followers = []
        for index, coefficient in enumerate(self.coefficients):
            smooth, self.states[index] = lfilter([1 - coefficient], [1, -coefficient], level, zi=self.states[index])
            followers.append(smooth)
        fast, slow = np.maximum(followers[0], level), followers[1]
        ratio = (np.maximum(fast, self.floor) / np.maximum(slow, self.floor)).astype(np.float32)
        return block * np.clip(ratio ** np.float32(self.amount), 0.25, 4.0)[:, None]

    def flush(self) -> np.ndarray:
        return np.zeros((0, self.channels), np.float32)


# ----------------------------------------------------------------------------------------------------- mode


MODE_DEGREES = {"major": (4, 9, 11), "minor": (3, 8, 10)}  # semitones above the tonic of degrees 3, 6, 7


def mode_fft(sample_rate: int) -> int:
    """The mode edit's frame: the power of two nearest to MODE_WINDOW_S at `sample_rate`."""
    return 1 << max(round(math.log2(MODE_WINDOW_S * sample_rate)), 8)


def change_mode(samples: np.ndarray, sample_rate: int, tonic: int, mode: str, target: str) -> np.ndarray:
    """The parallel-mode rule on audio: in each short-time spectrum, the notes on degrees 3, 6 and 7 of the key
    (`tonic` a pitch class, `mode` the key's) move a semitone down (major to minor) or up (minor to major), each with
    its partials; everything else stays, the partials of other notes on those pitch classes too (ModeChange)."""
    samples = _as_2d(samples)
    if mode == target:
        return samples.copy()
    return _whole(ModeChange(sample_rate, samples.shape[1], tonic, mode, target), samples)


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
        self.window = np.hanning(self.size + 1)[: self.size].astype(np.float32)
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
        self.queue = _Queue(channels)
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


# ------------------------------------------------------------------------------------------------ transfer


def level_reference(loudness_lufs: float, channels: int) -> float:
    """The RMS level (per channel) of a signal of `loudness_lufs` integrated loudness, K-weighting aside: "the
    level" below which the dynamics and articulation edits of a transfer leave the gain alone. From the content's
    loudness, known before any edit, so that each edit needs one pass; -70 LUFS (BS.1770's gate) when unknown."""
    lufs = loudness_lufs if math.isfinite(loudness_lufs) else -70.0
    return math.sqrt(10.0 ** ((lufs + 0.691) / 10.0) / channels)


def stages(sample_rate: int, channels: int, moves, reference: float, *, pool: Executor | None = None, ahead: int = 2,
           segment_seconds: float = STRETCH_SEGMENT_S) -> list:
    """The edits of `moves` (transfer.Moves) in their order: the mode first (in the content's key), then tempo and
    register in one stretch, then articulation, brightness and dynamics. `reference`: the content's level."""
    chain = []
    if moves.mode is not None and moves.key is not None and moves.mode != moves.key[1]:
        chain.append(ModeChange(sample_rate, channels, *moves.key, moves.mode))
    if moves.tempo_ratio != 1.0 or moves.semitones != 0.0:
        chain.append(Stretch(sample_rate, channels, moves.tempo_ratio, moves.semitones, pool=pool, ahead=ahead,
                             segment_seconds=segment_seconds))
    if moves.articulation != 0.0:
        chain.append(Articulation(sample_rate, channels, moves.articulation, reference))
    if moves.tilt_db_per_octave != 0.0:
        chain.append(Tilt(sample_rate, channels, moves.tilt_db_per_octave))
    if moves.dynamics_ratio != 1.0:
        chain.append(Dynamics(sample_rate, channels, moves.dynamics_ratio, reference))
    return chain


def edit(blocks: Iterable[np.ndarray], sample_rate: int, channels: int, moves, *, content_loudness: float,
         ceiling: float, pool: Executor | None = None, ahead: int = 2, spool_folder=None,
         segment_seconds: float = STRETCH_SEGMENT_S) -> Iterator[np.ndarray]:
    """A cue transfer over blocks of the content, (frames, channels) float32, in two passes. The first makes the
    edits of `stages` and measures the loudness (BS.1770) of the result while keeping it in a spool: a float32 file
    in `spool_folder`, or memory when None. The second sets the level last, so that the output is
    `content_loudness` + moves.gain_db whatever the other edits did, and keeps it within +-`ceiling` with the
    look-ahead limiter. Yields the output in blocks."""
    from .analysis import _Loudness

    meter = _Loudness(sample_rate, channels)
    reference = level_reference(content_loudness, channels)
    with float32_spool(spool_folder, channels) as spool:
        for block in run(stages(sample_rate, channels, moves, reference, pool=pool, ahead=ahead,
                                segment_seconds=segment_seconds), blocks):
            meter.push(block)
            spool.write(block)
        after = meter.finish()[0]
        level = moves.gain_db + (content_loudness - after if math.isfinite(content_loudness) and math.isfinite(after)
                                 else 0.0)
        yield from run([Gain(channels, level), Limiter(sample_rate, channels, ceiling)], spool.read())


class _MemorySpool:
    def __init__(self):
        self.blocks: deque[np.ndarray] = deque()

    def write(self, block: np.ndarray) -> None:
        self.blocks.append(block)

    def read(self) -> Iterator[np.ndarray]:
        while self.blocks:
            yield self.blocks.popleft()


class _FileSpool:
    """Raw float32 frames in an unnamed temporary file (gone when closed, whatever happens)."""

    def __init__(self, folder, channels: int):
        self.file = tempfile.TemporaryFile(dir=folder)
        self.channels = channels

    def write(self, block: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(block, dtype=np.float32).data)

    def read(self) -> Iterator[np.ndarray]:
        self.file.seek(0)
        while data := self.file.read(SPOOL_BLOCK * self.channels * 4):
            yield np.frombuffer(data, np.float32).reshape(-1, self.channels)


@contextmanager
def float32_spool(folder, channels: int):
    """Float32 frames written once and read back in order: a temporary file in `folder` (gone when closed, so a
    kill leaves nothing), or memory where `folder` is None."""
    if folder is None:
        yield _MemorySpool()
        return
    spool = _FileSpool(folder, channels)
    try:
        yield spool
    finally:
        spool.file.close()


# ------------------------------------------------------------------------------------------------ other cores


def default_jobs() -> int:
    """Worker processes a transfer uses by default: one per core, at most 4 (beyond that the edits this process makes
    in order bound the speed). On a machine other work keeps busy, 1 (no workers) is faster: their start-up, one
    more import of the analysis's libraries, only adds to the work there."""
    return min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


@contextmanager
def workers(jobs: int) -> Iterator[Executor | None]:
    """A pool of `jobs` worker processes, or None for jobs <= 1 (everything in this process)."""
    if jobs <= 1:
        yield None
        return
    pool = process_pool(jobs)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
