/*
 * Optimizer kernels: the Adam update and the exponential moving average of
 * weights. Elementwise, so threads split the index range and results do not
 * depend on their number.
 */
#include "internal.h"

#include <math.h>

void bk_adam_update(size_t n, float lr, float beta1, float beta2, float eps,
                    long step, float *param, const float *grad, float *m,
                    float *v)
{
    /* PyTorch's formulation: p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps). */
    double bc1 = 1.0 - pow(beta1, (double)step);
    double bc2 = 1.0 - pow(beta2, (double)step);
    float step_size = (float)(lr / bc1);
    float root_bc2 = (float)sqrt(bc2);
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n, cx.kr->tuning->optim_per_thread);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long i = 0; i < (long)n; i++) {
        float g = grad[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        float denom = sqrtf(v[i]) / root_bc2 + eps;
        param[i] -= step_size * (m[i] / denom);
    }
}

void bk_ema_update(size_t n, float decay, const float *source, float *target)
{
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n, cx.kr->tuning->optim_per_thread);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long i = 0; i < (long)n; i++)
        target[i] = decay * target[i] + (1.0f - decay) * source[i];
}

int bk_all_finite(size_t n, const float *x)
{
    int ok = 1;
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n, cx.kr->tuning->optim_per_thread);
#pragma omp parallel for num_threads(nt) schedule(static) reduction(&& : ok)
    for (long i = 0; i < (long)n; i++) ok = ok && isfinite(x[i]);
    return ok;
}
