/*
 * fp32 <-> bf16 conversion (TPU rules: round to nearest even, NaN quieted,
 * Inf kept, subnormals flushed to zero).
 */
#include "internal.h"

uint16_t bk_bf16_from_f32(float x) { return bk__bf16(x); }

float bk_f32_from_bf16(uint16_t h) { return bk__float((uint32_t)h << 16); }

void bk_bf16_from_f32_array(const float *x, uint16_t *y, size_t n)
{
    bk__ctx().kr->bf16_from_f32(x, y, n);
}

void bk_round_bf16_array(const float *x, float *y, size_t n)
{
    bk__ctx().kr->round_bf16(x, y, n);
}
