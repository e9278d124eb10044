"""Tempo and register: Signalsmith Stretch (python-stretch, MIT), a time-stretcher and pitch-shifter of far higher
quality than a plain phase vocoder.

python-stretch 0.3 has no streaming call (its `process` starts afresh every time), so the stretch runs on fixed
STRETCH_SEGMENT_S pieces of the input, each with STRETCH_CONTEXT_S of context either side, slid into phase with the
previous one and crossfaded (Stretch); the pieces are where the work goes to other cores.
"""

from __future__ import annotations

import math
from collections import deque
from concurrent.futures import Executor, Future

import numpy as np

from .stages import FrameQueue, as_2d, run_whole

STRETCH_SEGMENT_S = 30.0  # input stretched per call of Signalsmith Stretch (python-stretch cannot stream)
STRETCH_CONTEXT_S = 0.5  # input either side of a piece, so the stretcher has settled where the piece is used
STRETCH_CROSSFADE_S = 0.03  # the join of two pieces: about one of the stretcher's own hops
STRETCH_ALIGN_S = 0.008  # how far a piece may slide to match the previous one (half a period of a 60 Hz tone)


def stretch(samples: np.ndarray, sample_rate: int, tempo_ratio: float = 1.0, semitones: float = 0.0) -> np.ndarray:
    """Play `tempo_ratio` times as fast (2 = twice as fast, half as long) and `semitones` higher, through Signalsmith
    Stretch. Returns (round(frames / tempo_ratio), channels), aligned with the input (the stretcher's latency
    removed)."""
    samples = as_2d(samples)
    if tempo_ratio == 1.0 and semitones == 0.0:
        return samples.copy()
    return run_whole(Stretch(sample_rate, samples.shape[1], tempo_ratio, semitones), samples)


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
        self.queue = FrameQueue(channels)
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
