/*
 * Elementwise kernels: ReLU, tanh, sums and scaled sums, each forward with
 * its backward where it has one. Plain loops the compiler vectorises; OpenMP
 * splits the index range statically.
 */
#include "internal.h"

#include <math.h>

#define PARALLEL_FOR(n)                                                       \
    bk_ctx cx = bk__ctx();                                                    \
    int nt = bk__team_size(&cx, (double)(n),                                  \
                           cx.kr->tuning->elements_per_thread);               \
    _Pragma("omp parallel for num_threads(nt) schedule(static)")              \
    for (long i = 0; i < (long)(n); i++)

void bk_relu_forward(size_t n, const float *restrict x, float *restrict y)
{
    PARALLEL_FOR(n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* dy is loaded whatever x holds, so the choice is a vector select. */
void bk_relu_backward(size_t n, const float *restrict x, const float *restrict dy,
                      float *restrict dx)
{
    PARALLEL_FOR(n) {
        float g = dy[i];
        dx[i] = x[i] > 0.0f ? g : 0.0f;
    }
}

void bk_tanh_forward(size_t n, const float *restrict x, float *restrict y)
{
    PARALLEL_FOR(n) y[i] = tanhf(x[i]);
}

void bk_tanh_backward(size_t n, const float *restrict y, const float *restrict dy,
                      float *restrict dx)
{
    PARALLEL_FOR(n) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

void bk_add(size_t n, const float *a, const float *b, float *y)
{
    PARALLEL_FOR(n) y[i] = a[i] + b[i];
}

void bk_axpy(size_t n, float alpha, const float *restrict x, float *restrict y)
{
    PARALLEL_FOR(n) y[i] += alpha * x[i];
}
