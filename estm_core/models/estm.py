"""The ESTM paper's hierarchical VQ-VAE on raw waveforms, and its two emotion-style-transfer variants.

Shared hierarchy (spec/ESTM.md, images/estmencoding.png, estmdecoding.png):
- three encoder branches from the waveform, of 3, 5 and 7 Conv1d(kernel 3, stride 2, no padding) + LeakyReLU(0.01):
  222 264 samples -> bottom 27 782, middle 6 944, top 1 735 steps;
- one vector quantiser per level (K = 1 024);
- upsamplers of ConvTranspose1d(kernel 3) + LeakyReLU bringing every level to 27 782 steps and `inter` channels,
  concatenated, then a decoder of three stride-2 transposed convolutions back to 222 264 samples, whose output is
  a LeakyReLU, as in the original.

Families: `hvqvae` (content only), `estm1` (a one-hot emotion appended to each level after quantisation) and
`estm2` (the last 4 latent channels of each level are a softmax emotion; a style loss teaches them the label, and at
deployment they come from the emotion audio).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..families import register
from . import MAX_CHANNELS, check_real, check_whole, keras_init
from .vq import VectorQuantizer

LEVELS = ("bottom", "middle", "top")
ENCODER_DEPTH = {"bottom": 3, "middle": 5, "top": 7}
EMOTIONS = 4  # Russell's quadrants
SLOPE = 0.01  # every LeakyReLU
MAX_CODES = 1 << 16  # codebook entries per level (the paper's: 1 024)
MAX_WEIGHT = 100.0  # beta and beta_e: the paper's grids go to 1.5


def _transposed(channels_in: int, channels_out: int, stride: int, output_padding: int) -> list[nn.Module]:
    padding = 1 if stride == 1 else 0  # stride 1 is Keras 'same'; the stride-2 layers have no padding
    return [nn.ConvTranspose1d(channels_in, channels_out, 3, stride, padding, output_padding), nn.LeakyReLU(SLOPE)]


class Hierarchy(nn.Module):
    """Encoders, quantisers, upsamplers and decoder shared by the three families.

    `latent` channels are encoded and quantised per level; the upsamplers take `upsampler_in` channels (the
    quantised latents plus whatever emotion a family joins to them).
    """

    def __init__(self, latent: int, upsampler_in: int, inter: int, c1: int, codebook_size: int, beta: float):
        super().__init__()
        self.encoders = nn.ModuleDict({
            level: nn.Sequential(*[
                module for layer in range(depth)
                for module in (nn.Conv1d(1 if layer == 0 else latent, latent, 3, 2), nn.LeakyReLU(SLOPE))
            ])
            for level, depth in ENCODER_DEPTH.items()
        })
        self.quantizers = nn.ModuleDict({level: VectorQuantizer(latent, codebook_size, beta) for level in LEVELS})
        self.upsamplers = nn.ModuleDict({
            "bottom": nn.Sequential(*_transposed(upsampler_in, inter, 1, 0)),
            "middle": nn.Sequential(*_transposed(upsampler_in, c1, 2, 1), *_transposed(c1, inter, 2, 1)),
            "top": nn.Sequential(*_transposed(upsampler_in, c1, 2, 0), *_transposed(c1, c1, 2, 1),
                                 *_transposed(c1, c1, 2, 1), *_transposed(c1, inter, 2, 1)),
        })
        joined = 3 * inter
        self.decoder = nn.Sequential(*_transposed(joined, joined // 2, 2, 0), *_transposed(joined // 2, joined // 4, 2, 0),
                                     *_transposed(joined // 4, 1, 2, 1))
        keras_init(self)

    def encode(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, T) -> {level: (B, latent, T_level)}."""
        x = audio[:, None]
        return {level: encoder(x) for level, encoder in self.encoders.items()}

    def quantize(self, latents: dict[str, torch.Tensor]):
        """-> ({level: quantised}, {level: indices}, {level: VQ loss})."""
        quantized, indices, losses = {}, {}, {}
        for level, value in latents.items():
            quantized[level], indices[level], losses[level] = self.quantizers[level](value)
        return quantized, indices, losses

    def decode(self, inputs: dict[str, torch.Tensor], length: int) -> torch.Tensor:
        """{level: (B, upsampler_in, T_level)} -> (B, length). At the paper's 222 264 samples every level lands on
        exactly 27 782 steps and the output on exactly `length`; other lengths are cropped or padded to match."""
        upsampled = [self.upsamplers[level](inputs[level]) for level in LEVELS]
        steps = min(part.shape[-1] for part in upsampled)
        output = self.decoder(torch.cat([part[..., :steps] for part in upsampled], dim=1))[:, 0]
        return output[:, :length] if output.shape[-1] >= length else F.pad(output, (0, length - output.shape[-1]))

    def usage(self, indices: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Codebook perplexity and codes used per level, for the history."""
        terms = {}
        for level, value in indices.items():
            terms[f"perplexity_{level}"], terms[f"codes_used_{level}"] = self.quantizers[level].usage(value)
        return terms


def _check_sizes(name: str, channels: int, least: int, codebook_size: int, beta: float) -> None:
    """Refuse, in one line, sizes no hierarchy can have (a command line's, or a model file's config)."""
    check_whole(name, channels, least, MAX_CHANNELS)
    check_whole("codebook_size", codebook_size, 1, MAX_CODES)
    check_real("beta", beta, 0, MAX_WEIGHT)


def _tiled(emotion: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, 4) one-hot or probabilities -> (B, 4, steps)."""
    return emotion.float()[:, :, None].expand(-1, -1, steps)


@register("hvqvae")
class HVQVAE(nn.Module):
    """Content-only hierarchical VQ-VAE: C = latent_dim, inter = latent_dim / 2, C1 = latent_dim."""

    def __init__(self, latent_dim: int = 20, codebook_size: int = 1024, beta: float = 0.25):
        _check_sizes("latent_dim", latent_dim, 4, codebook_size, beta)  # 4: the decoder's last layer needs inter / 2
        super().__init__()
        self.hierarchy = Hierarchy(latent_dim, latent_dim, latent_dim // 2, latent_dim, codebook_size, beta)

    def forward(self, audio: torch.Tensor, emotion: torch.Tensor | None = None) -> dict:
        quantized, indices, losses = self.hierarchy.quantize(self.hierarchy.encode(audio))
        return {"output": self.hierarchy.decode(quantized, audio.shape[-1]), "vq_losses": losses, "indices": indices}


@register("estm1")
class ESTM1(nn.Module):
    """ESTM-1: the encoder and quantisers work in d - 4 channels; a 4-dim emotion one-hot is tiled over time and
    appended to each level's quantised latents. inter = d / 2, C1 = d - 4."""

    def __init__(self, d: int = 24, codebook_size: int = 1024, beta: float = 1.5):
        _check_sizes("d", d, EMOTIONS + 1, codebook_size, beta)  # a content channel beside the emotion's
        super().__init__()
        self.hierarchy = Hierarchy(d - EMOTIONS, d, d // 2, d - EMOTIONS, codebook_size, beta)

    def forward(self, audio: torch.Tensor, emotion: torch.Tensor) -> dict:
        """`emotion`: (B,) quadrant indices or (B, 4) one-hot/probabilities. Training and deployment are the same
        path: at deployment the emotion is another segment's label."""
        if emotion.dim() == 1:
            emotion = F.one_hot(emotion, EMOTIONS)
        quantized, indices, losses = self.hierarchy.quantize(self.hierarchy.encode(audio))
        joined = {level: torch.cat([value, _tiled(emotion, value.shape[-1]).to(value.dtype)], dim=1)
                  for level, value in quantized.items()}
        return {"output": self.hierarchy.decode(joined, audio.shape[-1]), "vq_losses": losses, "indices": indices}


@register("estm2")
class ESTM2(nn.Module):
    """ESTM-2: the encoder and quantisers work in d channels; per level the first d - 4 are content and a softmax over
    the last 4 is the emotion. Training reconstructs a segment from its own latents, with a style loss (the
    cross-entropy of that softmax against the segment's label, mean over levels) weighted by beta_e; at deployment
    the emotion channels come from the emotion audio, through the same encoder and quantisers."""

    def __init__(self, d: int = 24, codebook_size: int = 1024, beta: float = 0.25, beta_e: float = 0.25):
        _check_sizes("d", d, EMOTIONS + 1, codebook_size, beta)
        check_real("beta_e", beta_e, 0, MAX_WEIGHT)
        super().__init__()
        self.beta_e = beta_e
        self.hierarchy = Hierarchy(d, d, d // 2, d - EMOTIONS, codebook_size, beta)

    def _split(self, quantized: dict[str, torch.Tensor]):
        content = {level: value[:, :-EMOTIONS] for level, value in quantized.items()}
        emotion_logits = {level: value[:, -EMOTIONS:] for level, value in quantized.items()}
        return content, emotion_logits

    def forward(self, audio: torch.Tensor, emotion: torch.Tensor | None = None) -> dict:
        """Training path: reconstruct `audio` from its own content and emotion. `emotion` (B,) labels, if given,
        adds the style loss."""
        quantized, indices, losses = self.hierarchy.quantize(self.hierarchy.encode(audio))
        content, emotion_logits = self._split(quantized)
        joined = {level: torch.cat([content[level], emotion_logits[level].softmax(dim=1)], dim=1) for level in LEVELS}
        result = {"output": self.hierarchy.decode(joined, audio.shape[-1]), "vq_losses": losses, "indices": indices}
        if emotion is not None:
            result["style_loss"] = torch.stack([
                F.cross_entropy(logits.float(), emotion[:, None].expand(-1, logits.shape[-1]))
                for logits in emotion_logits.values()
            ]).mean()
            result["style_accuracy"] = torch.stack([
                (logits.argmax(dim=1) == emotion[:, None]).float().mean() for logits in emotion_logits.values()
            ]).mean()
        return result

    @torch.no_grad()
    def transfer(self, content_audio: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        """Deployment path: (B, T) content with the emotion of `emotion`, either (B, T) audio (encoded and quantised
        like the content) or (B, 4) probabilities given directly. -> (B, T)."""
        quantized, _, _ = self.hierarchy.quantize(self.hierarchy.encode(content_audio))
        content, _ = self._split(quantized)
        if emotion.dim() == 2 and emotion.shape[1] == EMOTIONS:
            emotions = {level: _tiled(emotion, value.shape[-1]) for level, value in content.items()}
        else:
            emotion_quantized, _, _ = self.hierarchy.quantize(self.hierarchy.encode(emotion))
            emotions = {level: logits.softmax(dim=1) for level, logits in self._split(emotion_quantized)[1].items()}
        joined = {level: torch.cat([content[level], emotions[level].to(content[level].dtype)], dim=1) for level in LEVELS}
        return self.hierarchy.decode(joined, content_audio.shape[-1])
