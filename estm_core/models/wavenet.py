"""WaveNet on mu-law audio, with optional conditioning as in the WaveNet paper, both added inside every gated unit:
global (a label embedding) and local (cue curves, estm_core.cues.curves: one frame of `curves` values every `hop`
samples, each frame projected to every layer's filter and gate biases and held for its `hop` samples); the step that
trains and evaluates it, and its fast incremental form for generation.

The `seed` preset is the second seed project's model (pytorch-wavenet): 3 blocks x 10 layers, kernel 2, dilations
1..512, residual and dilation channels 32, skip 1 024, end 512: receptive field 3 070, 1 834 592 parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..families import register
from . import MAX_CHANNELS, MAX_CLASSES, check_whole, wavenet_kernel

PRESETS = {
    "seed": dict(blocks=3, layers=10, residual_channels=32, dilation_channels=32, skip_channels=1024, end_channels=512),
    "small": dict(blocks=2, layers=8, residual_channels=24, dilation_channels=24, skip_channels=128, end_channels=128),
    # small's widths with 128 ms of memory against 32 ms: long notes are held rather than re-attacked
    "medium": dict(blocks=2, layers=10, residual_channels=24, dilation_channels=24, skip_channels=128,
                   end_channels=128),
}


@register("wavenet")
class WaveNet(nn.Module):
    """(B, T) mu-law codes -> (B, classes, T - receptive_field + 1) logits for the next sample after each window.

    `labels` > 0 adds global conditioning: `forward(codes, label)` with (B,) label indices. `curves` > 0 adds local
    conditioning: `forward(codes, curves=...)` with (B, curves, frames) values, frame f for the codes [f * hop,
    (f + 1) * hop) of the window (frames at least ceil(T / hop)).
    """

    def __init__(self, blocks: int = 3, layers: int = 10, residual_channels: int = 32, dilation_channels: int = 32,
                 skip_channels: int = 1024, end_channels: int = 512, classes: int = 256, labels: int = 0,
                 curves: int = 0, hop: int = 256):
        check_whole("blocks", blocks, 1, 16)
        check_whole("layers", layers, 1, 16)  # dilations up to 2**15
        for name, channels in (("residual_channels", residual_channels), ("dilation_channels", dilation_channels),
                               ("skip_channels", skip_channels), ("end_channels", end_channels)):
            check_whole(name, channels, 1, MAX_CHANNELS)
        check_whole("classes", classes, 2, MAX_CLASSES)
        check_whole("labels", labels, 0, MAX_CLASSES)
        check_whole("curves", curves, 0, MAX_CHANNELS)
        check_whole("hop", hop, 1, 1 << 16)
        super().__init__()
        self.classes = classes
        self.dilations = [2**layer for _ in range(blocks) for layer in range(layers)]
        self.receptive_field = sum(self.dilations) + 1
        self.start = nn.Conv1d(classes, residual_channels, 1)
        self.filters = nn.ModuleList(nn.Conv1d(residual_channels, dilation_channels, 2, dilation=d) for d in self.dilations)
        self.gates = nn.ModuleList(nn.Conv1d(residual_channels, dilation_channels, 2, dilation=d) for d in self.dilations)
        self.residuals = nn.ModuleList(nn.Conv1d(dilation_channels, residual_channels, 1) for _ in self.dilations)
        self.skips = nn.ModuleList(nn.Conv1d(dilation_channels, skip_channels, 1) for _ in self.dilations)
        self.end = nn.Conv1d(skip_channels, end_channels, 1)
        self.output = nn.Conv1d(end_channels, classes, 1)
        # one row per label: for every layer, a bias for its filter and one for its gate
        self.condition = nn.Embedding(labels, len(self.dilations) * 2 * dilation_channels) if labels else None
        # each frame of cue curves -> for every layer, a bias for its filter and one for its gate
        self.hop = hop
        self.curve_projection = nn.Conv1d(curves, len(self.dilations) * 2 * dilation_channels, 1) if curves else None

    def _label_biases(self, label: torch.Tensor | None, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer (filter bias, gate bias), each (B, dilation_channels, 1), or zeros without conditioning."""
        channels = self.filters[0].out_channels
        if self.condition is None or label is None:
            zero = self.start.weight.new_zeros(batch, channels, 1)
            return [(zero, zero)] * len(self.dilations)
        table = self.condition(label).view(batch, len(self.dilations), 2, channels, 1)
        return [(table[:, i, 0], table[:, i, 1]) for i in range(len(self.dilations))]

    def curve_biases(self, curves: torch.Tensor) -> torch.Tensor:
        """(B, curves, frames) -> (B, layers, 2, dilation_channels, frames): each frame's filter and gate biases."""
        channels = self.filters[0].out_channels
        return self.curve_projection(curves.to(self.start.weight.dtype)).view(
            len(curves), len(self.dilations), 2, channels, curves.shape[2])

    def forward(self, codes: torch.Tensor, label: torch.Tensor | None = None,
                curves: torch.Tensor | None = None) -> torch.Tensor:
        if (curves is None) != (self.curve_projection is None):
            raise ValueError("this WaveNet takes cue curves" if curves is None else "this WaveNet takes no cue curves")
        x = self.start(F.one_hot(codes, self.classes).transpose(1, 2).to(self.start.weight.dtype))
        skip = 0
        length = codes.shape[1]
        output_length = length - self.receptive_field + 1
        local = None
        if curves is not None:  # every code's frame, held for `hop` codes
            frames = curves.to(x.dtype)
            local = frames.unsqueeze(3).expand(-1, -1, -1, self.hop).flatten(2)[:, :, :length]
            weights = self.curve_projection.weight.view(len(self.dilations), -1, curves.shape[1], 1)
            biases = self.curve_projection.bias.view(len(self.dilations), -1)
        start = 0  # the input position of x's first column
        for layer, ((filter_bias, gate_bias), dilation, filter_, gate, residual, skip_conv) in enumerate(zip(
                self._label_biases(label, codes.shape[0]), self.dilations, self.filters, self.gates, self.residuals,
                self.skips)):
            if local is not None:  # a layer's output at column j belongs to the input position start + dilation + j
                own = F.conv1d(local[:, :, start + dilation:], weights[layer], biases[layer])
                filter_bias, gate_bias = filter_bias + own[:, :own.shape[1] // 2], gate_bias + own[:, own.shape[1] // 2:]
            z = torch.tanh(filter_(x) + filter_bias) * torch.sigmoid(gate(x) + gate_bias)
            skip = skip + skip_conv(z[:, :, -output_length:])
            x = residual(z) + x[:, :, dilation:]
            start += dilation
        return self.output(torch.relu(self.end(torch.relu(skip))))


def wavenet_step(receptive_field: int):
    """The step that trains and evaluates a WaveNet (estm_core.steps): cross-entropy and accuracy of the next-sample
    predictions after the first `receptive_field` codes of each window."""

    def step(model, batch, device) -> dict:
        codes, labels, *curves = (tensor.to(device, non_blocking=True) for tensor in batch)
        logits = model(codes[:, :-1], labels if (labels >= 0).all() else None, *curves)
        targets = codes[:, receptive_field:]
        cross_entropy = F.cross_entropy(logits.float(), targets)
        return {"loss": cross_entropy, "accuracy": (logits.argmax(dim=1) == targets).float().mean()}

    return step


class FastWaveNet:
    """Incremental WaveNet ("Fast WaveNet", Paine et al. 2016): each layer keeps a ring buffer of its last `dilation`
    inputs, so a new sample costs O(layers) instead of the whole receptive field. Batched over streams.

    `step(codes)` takes the (B,) codes of the newest samples and returns the (B, classes) logits of the next ones.
    With cue curves ((B, curves, frames), frame f for the steps [f * hop, (f + 1) * hop), the last frame held past
    the end), the layers' biases change at each frame's first step: one small product every `hop` samples.
    The gated layers run, on the CPU, in a small C loop compiled on first use (`wavenet_layers.c`; torch's cost per
    operation is larger than the arithmetic of these tiny products); on CUDA, as torch operations replayed from one
    CUDA graph; elsewhere, or without a C compiler, as torch operations. The skip sum and the head, large products,
    are torch's everywhere. `engine` says which ran, and `fallback` why not the faster one.
    """

    def __init__(self, model: WaveNet, batch: int, label: torch.Tensor | None = None,
                 curves: torch.Tensor | None = None, *, compiled: bool = True):
        if (curves is None) != (model.curve_projection is None):
            raise ValueError("this WaveNet takes cue curves" if curves is None else "this WaveNet takes no cue curves")
        self.model = model
        device = model.start.weight.device
        dilations = model.dilations
        offsets = [sum(dilations[:layer]) for layer in range(len(dilations))]
        self.channels = model.filters[0].out_channels
        self.history = model.start.weight.new_zeros(sum(dilations), batch, model.start.out_channels)
        period = max(dilations)  # the dilations are powers of two: every slot pattern repeats after the largest
        self.slots = torch.tensor([[offset + time % dilation for offset, dilation in zip(offsets, dilations)]
                                   for time in range(period)], device=device)
        self.time = 0
        # the k=2 dilated convolutions split into their past and present taps, filter and gate outputs side by side,
        # the label biases folded into the bias
        label_biases = model._label_biases(label, batch)
        with torch.no_grad():
            def taps(tap: int) -> torch.Tensor:  # (L, C, 2D)
                return torch.stack([torch.cat([f.weight[:, :, tap], g.weight[:, :, tap]]).t()
                                    for f, g in zip(model.filters, model.gates)]).contiguous()

            self.past_weights, self.present_weights = taps(0), taps(1)
            self.biases = torch.stack([torch.cat([f.bias + fb[:, :, 0], g.bias + gb[:, :, 0]], dim=1).expand(batch, -1)
                                       for (fb, gb), f, g in zip(label_biases, model.filters, model.gates)])
            self.fixed_biases = self.biases.clone()  # the curves' biases are added to these
            self.curves = curves
            self.start_weight = model.start.weight[:, :, 0].t().contiguous()  # a one-hot times it = a row of it
            self.start_bias = model.start.bias.detach().clone()
            self.residual_weights = torch.stack([conv.weight[:, :, 0].t() for conv in model.residuals]).contiguous()
            self.residual_biases = torch.stack([conv.bias for conv in model.residuals]).contiguous()
            # all skip convolutions at once: the gated outputs side by side (B, layers * D) times stacked weights
            self.skip_weight = torch.cat([conv.weight[:, :, 0].t() for conv in model.skips], dim=0).contiguous()
            self.skip_bias = torch.stack([conv.bias for conv in model.skips]).sum(dim=0)
            self.end_weight = model.end.weight[:, :, 0].t().contiguous()
            self.end_bias = model.end.bias.detach().clone()
            self.output_weight = model.output.weight[:, :, 0].t().contiguous()
            self.output_bias = model.output.bias.detach().clone()
        self.gated = model.start.weight.new_zeros(batch, len(dilations) * self.channels)
        self.engine, self.fallback = "torch", None  # which ran, and why not the C loop where it could have
        self._layers = self._torch_layers
        if compiled and device.type == "cpu":
            self._kernel_tensors = [self.history, self.start_weight, self.start_bias, self.past_weights,
                                    self.present_weights, self.biases, self.residual_weights, self.residual_biases,
                                    self.gated, torch.empty_like(self.history[0])]  # the last: scratch
            sizes = [batch, len(dilations), self.history.shape[2], self.channels]
            self.fallback = wavenet_kernel.unusable(self._kernel_tensors, self.channels)
            if self.fallback is None:
                kernel, self.fallback = wavenet_kernel.layers_function(self._kernel_tensors, sizes)
                if kernel is not None:  # every tensor is updated in place, never reallocated: its address is fixed
                    self.engine, self._layers = "C kernel", kernel
        self._graph = None
        if compiled and device.type == "cuda":
            try:
                self._graph = self._capture(batch)
            except RuntimeError as error:  # a capture the driver refuses: the same step, launched op by op
                self.engine, self.fallback = "torch", f"CUDA graph capture failed: {error}"
                self.history.zero_()

    @torch.no_grad()
    def step(self, codes: torch.Tensor) -> torch.Tensor:
        if self.curves is not None and self.time % self.model.hop == 0:
            frame = min(self.time // self.model.hop, self.curves.shape[2] - 1)
            local = self.model.curve_biases(self.curves[:, :, frame:frame + 1])[..., 0]  # (B, layers, 2, D)
            # in place: the C loop and the CUDA graph read this memory
            self.biases.copy_(self.fixed_biases + local.flatten(2).transpose(0, 1))
        slots = self.slots[self.time % len(self.slots)]
        self.time += 1
        if self._graph is not None:
            self._codes.copy_(codes)
            self._step_slots.copy_(slots)
            self._graph.replay()
            return self._logits.clone()
        return self._step(codes.long().contiguous(), slots)

    def _step(self, codes: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        self._layers(codes, slots)
        hidden = torch.addmm(self.skip_bias, self.gated, self.skip_weight).relu_()
        hidden = torch.addmm(self.end_bias, hidden, self.end_weight).relu_()
        return torch.addmm(self.output_bias, hidden, self.output_weight)

    def _torch_layers(self, codes: torch.Tensor, slots: torch.Tensor) -> None:
        """What wavenet_layers.c does, in torch operations."""
        past = torch.bmm(self.history.index_select(0, slots), self.past_weights).add_(self.biases)
        x = self.start_weight[codes] + self.start_bias
        inputs = []
        for layer in range(len(self.past_weights)):
            inputs.append(x)
            filter_, gate = torch.addmm(past[layer], x, self.present_weights[layer]).chunk(2, dim=1)
            gated = self.gated[:, layer * self.channels:(layer + 1) * self.channels]
            torch.mul(filter_.tanh_(), gate.sigmoid_(), out=gated)
            x = torch.addmm(self.residual_biases[layer], gated, self.residual_weights[layer]).add_(x)
        self.history.index_copy_(0, slots, torch.stack(inputs))

    def _capture(self, batch: int):
        """One CUDA graph of a whole step: a sample then costs one launch instead of ~150 small kernels'."""
        self.engine = "CUDA graph"
        self._codes = torch.zeros(batch, dtype=torch.long, device=self.history.device)
        self._step_slots = self.slots[0].clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.no_grad():
            for _ in range(3):  # warm-up before capture, as CUDA graphs require
                self._step(self._codes, self._step_slots)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.no_grad():
            self._logits = self._step(self._codes, self._step_slots)
        self.history.zero_()  # undo the warm-up
        return graph
