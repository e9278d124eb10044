/* One generation step through every gated layer of a WaveNet, for a batch of streams: the part of the fast path
 * that is many tiny products, where a framework's cost per operation would outweigh the arithmetic. The large
 * products after it (skip sum, head) stay in torch, whose BLAS does them well.
 *
 * Layouts (all float32, row-major, contiguous), with L layers, B streams, C residual and D dilation channels:
 *   history (H, B, C)        ring buffers of every layer's past inputs; slots[l] is layer l's slot for this step
 *   start (classes, C)       start convolution's weight (a one-hot input selects a row), start_bias (C)
 *   past, present (L, C, 2D) the kernel-2 dilated convolutions' two taps, filter then gate outputs
 *   biases (L, B, 2D)        filter and gate biases, label conditioning folded in
 *   residual (L, D, C)       residual 1x1 convolutions, residual_bias (L, C)
 *   gated (B, L * D)         out: every layer's gated output, the skip convolutions' input
 *   inputs (B, C)            scratch: each stream's input to the current layer
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_CHANNELS 1024

void wavenet_layers(int batch, int layers, int C, int D, const int64_t *codes, const int64_t *slots, float *history,
                    const float *start, const float *start_bias, const float *past, const float *present,
                    const float *biases, const float *residual, const float *residual_bias, float *gated,
                    float *inputs /* (B, C) scratch */) {
    float a[2 * MAX_CHANNELS];
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < C; i++) inputs[b * C + i] = start[codes[b] * C + i] + start_bias[i];
    /* layer by layer, so that a layer's weights stay in the L1 cache while every stream passes through it */
    for (int l = 0; l < layers; l++) {
        const float *wp = past + (int64_t)l * C * 2 * D, *wc = present + (int64_t)l * C * 2 * D;
        const float *wr = residual + (int64_t)l * D * C;
        for (int b = 0; b < batch; b++) {
            float *x = inputs + (int64_t)b * C, *slot = history + (slots[l] * batch + b) * C;
            memcpy(a, biases + ((int64_t)l * batch + b) * 2 * D, sizeof(float) * 2 * D);
            for (int i = 0; i < C; i++) {
                const float p = slot[i], c = x[i];
                for (int j = 0; j < 2 * D; j++) a[j] += p * wp[i * 2 * D + j] + c * wc[i * 2 * D + j];
            }
            memcpy(slot, x, sizeof(float) * C);  /* this input is the past tap `dilation` steps from now */
            float *z = gated + (int64_t)b * layers * D + (int64_t)l * D;
            for (int j = 0; j < D; j++) {
                /* tanh(f) * sigmoid(g), through exp (vectorised by the compiler); clamped so exp stays finite */
                const float f = fminf(fmaxf(a[j], -15.f), 15.f), g = fminf(fmaxf(a[D + j], -30.f), 30.f);
                z[j] = (1.f - 2.f / (expf(2.f * f) + 1.f)) / (1.f + expf(-g));
            }
            for (int i = 0; i < C; i++) x[i] += residual_bias[l * C + i];
            for (int j = 0; j < D; j++)
                for (int i = 0; i < C; i++) x[i] += z[j] * wr[j * C + i];
        }
    }
}
