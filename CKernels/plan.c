/*
 * Weight plans: the constant-weight operands of GEMMs and convolutions kept
 * in the form the kernels consume, so that evaluation stops repacking and
 * retransforming the same weights on every call (see CKernels.h).
 */
#include "internal.h"

static bk_weight_plan *plan_new(bk_precision prec, int n, int k, int kh, int kw)
{
    if ((prec != BK_FP32 && prec != BK_BF16) || n < 1 || k < 1) return NULL;
    bk_weight_plan *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->prec = prec;
    p->n = n;
    p->k = k;
    p->kernel_h = kh;
    p->kernel_w = kw;
    p->kr = bk__ctx().kr;
    return p;
}

bk_weight_plan *bk_gemm_plan_create(bk_precision prec, int n, int k)
{
    return plan_new(prec, n, k, 1, 1);
}

bk_weight_plan *bk_conv_plan_create(bk_precision prec, int out_c, int kernel_h,
                                    int kernel_w, int in_c)
{
    if (kernel_h < 1 || kernel_w < 1 || in_c < 1) return NULL;
    int64_t k = (int64_t)kernel_h * kernel_w * in_c;
    if (k > INT32_MAX) return NULL;
    return plan_new(prec, out_c, (int)k, kernel_h, kernel_w);
}

void bk_weight_plan_destroy(bk_weight_plan *p)
{
    if (!p) return;
    free(atomic_load(&p->gemm_b));
    free(atomic_load(&p->winograd_u));
    free(p);
}

size_t bk_weight_plan_bytes(const bk_weight_plan *p)
{
    return p ? atomic_load(&((bk_weight_plan *)p)->bytes) : 0;
}

void *bk__plan_publish(bk_weight_plan *p, void *_Atomic *slot, void *fresh,
                       size_t bytes)
{
    void *expected = NULL;
    if (atomic_compare_exchange_strong(slot, &expected, fresh)) {
        atomic_fetch_add(&p->bytes, bytes);
        return fresh;
    }
    free(fresh);
    return expected;
}
