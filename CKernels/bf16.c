/*
 * fp32 <-> bf16 conversion (TPU rules: round to nearest even, NaN quieted,
 * Inf kept, subnormals flushed to zero).
 */
#include "internal.h"

uint16_t bk_bf16_from_f32(float x) { return bk__bf16(x); }

float bk_f32_from_bf16(uint16_t h) { return bk__float((uint32_t)h << 16); }

/* Each thread converts one contiguous chunk: elementwise, so the bits do not
 * depend on the split. */
void bk_bf16_from_f32_array(const float *x, uint16_t *y, size_t n)
{
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n, cx.kr->tuning->elements_per_thread);
#pragma omp parallel num_threads(nt)
    {
        int t = bk__thread_num(), team = bk__team_count();
        size_t lo = n * (size_t)t / (size_t)team, hi = n * (size_t)(t + 1) / (size_t)team;
        if (hi > lo) cx.kr->bf16_from_f32(x + lo, y + lo, hi - lo);
    }
}

void bk_round_bf16_array(const float *x, float *y, size_t n)
{
    bk__ctx().kr->round_bf16(x, y, n);
}
