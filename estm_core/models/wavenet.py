"""WaveNet on mu-law audio, with optional global conditioning (a label embedding added inside every gated unit, as in
the WaveNet paper), and its fast incremental form for generation.

The `seed` preset is the second seed project's model (pytorch-wavenet): 3 blocks x 10 layers, kernel 2, dilations
1..512, residual and dilation channels 32, skip 1 024, end 512: receptive field 3 070, 1 834 592 parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..store import register

PRESETS = {
    "seed": dict(blocks=3, layers=10, residual_channels=32, dilation_channels=32, skip_channels=1024, end_channels=512),
    "small": dict(blocks=2, layers=8, residual_channels=24, dilation_channels=24, skip_channels=128, end_channels=128),
}


@register("wavenet")
class WaveNet(nn.Module):
    """(B, T) mu-law codes -> (B, classes, T - receptive_field + 1) logits for the next sample after each window.

    `labels` > 0 adds global conditioning: `forward(codes, label)` with (B,) label indices.
    """

    def __init__(self, blocks: int = 3, layers: int = 10, residual_channels: int = 32, dilation_channels: int = 32,
                 skip_channels: int = 1024, end_channels: int = 512, classes: int = 256, labels: int = 0):
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

    def _label_biases(self, label: torch.Tensor | None, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer (filter bias, gate bias), each (B, dilation_channels, 1), or zeros without conditioning."""
        channels = self.filters[0].out_channels
        if self.condition is None or label is None:
            zero = torch.zeros(batch, channels, 1, device=self.start.weight.device)
            return [(zero, zero)] * len(self.dilations)
        table = self.condition(label).view(batch, len(self.dilations), 2, channels, 1)
        return [(table[:, i, 0], table[:, i, 1]) for i in range(len(self.dilations))]

    def forward(self, codes: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        x = self.start(F.one_hot(codes, self.classes).transpose(1, 2).float())
        skip = 0
        output_length = codes.shape[1] - self.receptive_field + 1
        for (filter_bias, gate_bias), dilation, filter_, gate, residual, skip_conv in zip(
                self._label_biases(label, codes.shape[0]), self.dilations, self.filters, self.gates, self.residuals,
                self.skips):
            z = torch.tanh(filter_(x) + filter_bias) * torch.sigmoid(gate(x) + gate_bias)
            skip = skip + skip_conv(z[:, :, -output_length:])
            x = residual(z) + x[:, :, dilation:]
        return self.output(torch.relu(self.end(torch.relu(skip))))


class FastWaveNet:
    """Incremental WaveNet ("Fast WaveNet", Paine et al. 2016): each layer keeps a ring buffer of its last `dilation`
    inputs, so a new sample costs O(layers) instead of the whole receptive field. Batched over streams.

    `step(codes)` takes the (B,) codes of the newest samples and returns the (B, classes) logits of the next ones.
    The ring buffers of all layers live in one tensor, so that every layer's past input is read, and its new input
    written, by a single indexing operation per sample; the past inputs' share of the dilated convolutions is then
    one batched product for all layers.
    """

    def __init__(self, model: WaveNet, batch: int, label: torch.Tensor | None = None):
        self.model = model
        device = model.start.weight.device
        residual_channels = model.start.out_channels
        dilations = model.dilations
        offsets = [sum(dilations[:layer]) for layer in range(len(dilations))]
        self.history = torch.zeros(sum(dilations), batch, residual_channels, device=device)
        period = max(dilations)  # the dilations are powers of two: every slot pattern repeats after the largest
        self.slots = torch.tensor([[offset + time % dilation for offset, dilation in zip(offsets, dilations)]
                                   for time in range(period)], device=device)
        self.time = 0
        # the k=2 dilated convolutions split into their past tap (all layers at once) and their present tap,
        # filter and gate stacked, with the label biases folded into the bias
        biases = model._label_biases(label, batch)
        with torch.no_grad():
            self.past_weights = torch.stack([torch.cat([f.weight[:, :, 0], g.weight[:, :, 0]]).t()
                                             for f, g in zip(model.filters, model.gates)])  # (L, C, 2D)
            self.present_weights = [torch.cat([f.weight[:, :, 1], g.weight[:, :, 1]]).t().contiguous()
                                    for f, g in zip(model.filters, model.gates)]  # (C, 2D) each
            self.biases = torch.stack([torch.cat([f.bias + fb[:, :, 0], g.bias + gb[:, :, 0]], dim=1)
                                       .expand(batch, -1) for (fb, gb), f, g in zip(biases, model.filters,
                                                                                    model.gates)])  # (L, B, 2D)
            self.start_weight = model.start.weight[:, :, 0].t().contiguous()  # a one-hot times it = a row of it
            self.start_bias = model.start.bias.detach()
            self.residual_weights = [conv.weight[:, :, 0].t().contiguous() for conv in model.residuals]
            self.residual_biases = [conv.bias.detach() for conv in model.residuals]
            # all skip convolutions at once: concatenated gated outputs (B, layers * D) times stacked weights
            self.skip_weight = torch.cat([conv.weight[:, :, 0].t() for conv in model.skips], dim=0).contiguous()
            self.skip_bias = torch.stack([conv.bias for conv in model.skips]).sum(dim=0)
            self.end_weight = model.end.weight[:, :, 0].t().contiguous()
            self.end_bias = model.end.bias.detach()
            self.output_weight = model.output.weight[:, :, 0].t().contiguous()
            self.output_bias = model.output.bias.detach()

    @torch.no_grad()
    def step(self, codes: torch.Tensor) -> torch.Tensor:
        slots = self.slots[self.time % len(self.slots)]
        self.time += 1
        return _fast_step(codes, slots, self.history, self.start_weight, self.start_bias, self.past_weights,
                          self.present_weights, self.biases, self.residual_weights, self.residual_biases,
                          self.skip_weight, self.skip_bias, self.end_weight, self.end_bias, self.output_weight,
                          self.output_bias)


@torch.jit.script
def _fast_step(codes: torch.Tensor, slots: torch.Tensor, history: torch.Tensor, start_weight: torch.Tensor,
               start_bias: torch.Tensor, past_weights: torch.Tensor, present_weights: list[torch.Tensor],
               biases: torch.Tensor, residual_weights: list[torch.Tensor], residual_biases: list[torch.Tensor],
               skip_weight: torch.Tensor, skip_bias: torch.Tensor, end_weight: torch.Tensor, end_bias: torch.Tensor,
               output_weight: torch.Tensor, output_bias: torch.Tensor) -> torch.Tensor:
    """One sample through every layer. TorchScript: the per-sample loop runs ~30 small matrix products, and
    Python's overhead per operation would cost more than the arithmetic."""
    past = torch.baddbmm(biases, history.index_select(0, slots), past_weights)  # (L, B, 2D), every layer at once
    x = start_weight[codes] + start_bias
    inputs: list[torch.Tensor] = []
    gated: list[torch.Tensor] = []
    for layer in range(len(present_weights)):
        inputs.append(x)
        filter_, gate = torch.addmm(past[layer], x, present_weights[layer]).chunk(2, dim=1)
        z = torch.tanh(filter_) * torch.sigmoid(gate)
        gated.append(z)
        x = torch.addmm(residual_biases[layer], z, residual_weights[layer]) + x
    history.index_copy_(0, slots, torch.stack(inputs))
    skip = torch.addmm(skip_bias, torch.cat(gated, dim=1), skip_weight)
    hidden = torch.addmm(end_bias, torch.relu(skip), end_weight)
    return torch.addmm(output_bias, torch.relu(hidden), output_weight)
