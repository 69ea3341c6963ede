/*
 * Fused SAGAN attention, flash style: the n x m score matrix never exists
 * beyond one QT x KT tile per thread.
 *
 * Forward, per (batch item, tile of QT queries), walking the keys in tiles
 * of KT = BK_KC (so each P V tile product is exactly one MXU pass), with a
 * running row maximum mx, running sum l and unnormalised output O:
 *   S  = Q K^T                                   (GEMM)
 *   mx' = max(mx, rowmax S),  c = exp(mx - mx')
 *   P  = exp(S - mx'),  l = c l + rowsum P,  O = c O + P V   (GEMM, beta 1)
 * then out = O / l and lse = mx + log l.
 *
 * Backward recomputes P = exp(S - lse) tile by tile:
 *   D = rowsum(dout * out),  dP = dout g^T,  dS = P (dP - D)
 *   dtheta = dS phi,  dphi = dS^T theta,  dg = P^T dout
 * A dtheta row depends on one query only, but dphi and dg sum over every
 * query. Each batch item's query tiles are split into a fixed number of
 * groups (a function of n, never of the thread count); a group accumulates
 * its own dphi/dg partial (group 0 straight into the outputs) and the
 * partials are then added in group order.
 *
 * Every task (forward: batch x query tile; backward: batch x group, then
 * batch x key row for the sum) is computed by one thread in one fixed order,
 * so the bits do not depend on the number of threads.
 *
 * All products go through bk__gemm_serial, so BK_BF16 rounds exactly the
 * operands the GEMM contract rounds (theta, phi, g, P, dS, dout); the key
 * and value tiles are packed once per call, not once per query tile (see
 * "packed operands"). The softmax
 * stays fp32 and uses a polynomial exp written as plain loops, compiled once
 * per instruction-set path so the compiler can vectorise it for each.
 */
#include "internal.h"

#include <stdlib.h>

#define QT BK_ATTN_QUERY_TILE /* queries per tile */
#define KT BK_KC              /* keys per tile: one MXU pass of the P V product */
#define LANES BK_ATTN_LANES   /* partial max / sum accumulators per row */
#define GROUPS BK_ATTN_GROUPS /* query groups per batch item in backward */

#define BK_INLINE static inline __attribute__((always_inline))

/* --------------------------------------------------------------- fast exp -- */

/*
 * exp(x) for x <= 88 (the softmax only passes x <= 0, up to rounding).
 * Cephes expf: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two so n ln2
 * is exact), a degree-5 polynomial for exp(r), and 2^n built in the exponent
 * field; peak relative error ~1.7e-7. Arguments below -87 (-inf included)
 * give 0, where the true value is below 1.7e-38. Branch-free, so the loops
 * that call it vectorise.
 */
BK_INLINE float fast_exp(float x)
{
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    float xc = x < -87.0f ? -87.0f : x;
    xc = xc > 88.0f ? 88.0f : xc;
    /* Adding the shifter rounds x log2(e) to the integer n, which then sits
     * in the low mantissa bits of kf. */
    float kf = xc * 1.44269504088896341f + shifter;
    float n = kf - shifter;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    /* n is in [-126, 127], so 2^n is a normal number. */
    uint32_t n_bits = bk__bits(kf) - bk__bits(shifter);
    float scale = bk__float((n_bits + 127u) << 23);
    return x < -87.0f ? 0.0f : y * scale;
}

/* ------------------------------------------------------ softmax on a tile -- */

/*
 * One key tile of the online softmax: s holds S (qt rows, stride KT, kt
 * valid columns) and is overwritten by P = exp(S - mx'); mx and l are
 * updated; O (qt x dv) is rescaled by exp(mx - mx') unless it is still
 * unwritten (first key tile). The partial max and sum run in LANES fixed
 * lanes (the columns up to a multiple of LANES padded with -inf, whose exp
 * is 0) so they vectorise and sum in the same order on every path.
 */
BK_INLINE void fwd_softmax_impl(float *s, int qt, int kt, float *mx, float *l,
                                float *o, int dv, int rescale)
{
    int kt_pad = (kt + LANES - 1) / LANES * LANES;
    for (int i = 0; i < qt; i++) {
        float *row = s + (size_t)i * KT;
        for (int j = kt; j < kt_pad; j++) row[j] = -INFINITY;

        float lane[LANES];
        for (int t = 0; t < LANES; t++) lane[t] = -INFINITY;
        for (int j = 0; j < kt_pad; j += LANES)
            for (int t = 0; t < LANES; t++)
                lane[t] = row[j + t] > lane[t] ? row[j + t] : lane[t];
        float mx_new = mx[i];
        for (int t = 0; t < LANES; t++)
            mx_new = lane[t] > mx_new ? lane[t] : mx_new;
        /* A row of -inf scores so far: exp(-inf - 0) = 0 rather than NaN. */
        float ref = mx_new == -INFINITY ? 0.0f : mx_new;

        for (int t = 0; t < LANES; t++) lane[t] = 0.0f;
        for (int j = 0; j < kt_pad; j += LANES)
            for (int t = 0; t < LANES; t++) {
                float p = fast_exp(row[j + t] - ref);
                row[j + t] = p;
                lane[t] += p;
            }
        float sum = 0.0f;
        for (int t = 0; t < LANES; t++) sum += lane[t];

        float c = fast_exp(mx[i] - ref);
        l[i] = c * l[i] + sum;
        mx[i] = mx_new;
        if (rescale) {
            float *orow = o + (size_t)i * dv;
            for (int j = 0; j < dv; j++) orow[j] *= c;
        }
    }
}

/* Backward on one tile: s holds S and becomes P = exp(S - lse); dp holds dP
 * and becomes dS = P (dP - D). Both have stride KT and kt valid columns. */
BK_INLINE void bwd_softmax_impl(float *s, float *dp, int qt, int kt,
                                const float *lse, const float *d)
{
    for (int i = 0; i < qt; i++) {
        float *srow = s + (size_t)i * KT, *dprow = dp + (size_t)i * KT;
        float li = lse[i], di = d[i];
        for (int j = 0; j < kt; j++) {
            float p = fast_exp(srow[j] - li);
            srow[j] = p;
            dprow[j] = p * (dprow[j] - di);
        }
    }
}

typedef void (*fwd_softmax_fn)(float *s, int qt, int kt, float *mx, float *l,
                               float *o, int dv, int rescale);
typedef void (*bwd_softmax_fn)(float *s, float *dp, int qt, int kt,
                               const float *lse, const float *d);

static void fwd_softmax_generic(float *s, int qt, int kt, float *mx, float *l,
                                float *o, int dv, int rescale)
{
    fwd_softmax_impl(s, qt, kt, mx, l, o, dv, rescale);
}

static void bwd_softmax_generic(float *s, float *dp, int qt, int kt,
                                const float *lse, const float *d)
{
    bwd_softmax_impl(s, dp, qt, kt, lse, d);
}

#ifdef BK_X86
BK_TARGET_AVX2
static void fwd_softmax_avx2(float *s, int qt, int kt, float *mx, float *l,
                             float *o, int dv, int rescale)
{
    fwd_softmax_impl(s, qt, kt, mx, l, o, dv, rescale);
}

BK_TARGET_AVX2
static void bwd_softmax_avx2(float *s, float *dp, int qt, int kt,
                             const float *lse, const float *d)
{
    bwd_softmax_impl(s, dp, qt, kt, lse, d);
}

BK_TARGET_AVX512
static void fwd_softmax_avx512(float *s, int qt, int kt, float *mx, float *l,
                               float *o, int dv, int rescale)
{
    fwd_softmax_impl(s, qt, kt, mx, l, o, dv, rescale);
}

BK_TARGET_AVX512
static void bwd_softmax_avx512(float *s, float *dp, int qt, int kt,
                               const float *lse, const float *d)
{
    bwd_softmax_impl(s, dp, qt, kt, lse, d);
}
#endif

static fwd_softmax_fn fwd_softmax_for(bk_isa isa)
{
#ifdef BK_X86
    switch (isa) {
    case BK_ISA_AMX_BF16:
    case BK_ISA_AVX512_BF16:
    case BK_ISA_AVX512: return fwd_softmax_avx512;
    case BK_ISA_AVX2: return fwd_softmax_avx2;
    default: break;
    }
#endif
    return fwd_softmax_generic;
}

static bwd_softmax_fn bwd_softmax_for(bk_isa isa)
{
#ifdef BK_X86
    switch (isa) {
    case BK_ISA_AMX_BF16:
    case BK_ISA_AVX512_BF16:
    case BK_ISA_AVX512: return bwd_softmax_avx512;
    case BK_ISA_AVX2: return bwd_softmax_avx2;
    default: break;
    }
#endif
    return bwd_softmax_generic;
}

/* ---------------------------------------------------------------- shared -- */

typedef struct {
    const bk_ctx *cx;
    bk_precision prec;
    int batch, n, m, dk, dv;
    const float *theta, *phi, *g;
} attn_problem;

/* c = op(a) op(b) + beta c on the calling thread; packed_b (or NULL) is b
 * already packed (see below), a16 (or NULL) a in bf16 bits (BK_BF16). */
static void tile_gemm(const attn_problem *pr, int transa, int transb, int m,
                      int n, int k, const float *a, const uint16_t *a16, int lda,
                      const float *b, const void *packed_b, int ldb, float beta,
                      float *c, int ldc)
{
    bk_gemm_args args = {pr->prec, transa, transb, m, n, k, 1.0f, beta,
                         a, b, lda, ldb, c, ldc, .packed_b = packed_b, .a16 = a16};
    bk__gemm_serial(pr->cx, &args);
}

static int query_tiles(int n) { return (n + QT - 1) / QT; }
static int key_tiles(int m) { return (m + KT - 1) / KT; }

/* ------------------------------------------------------- packed operands -- */

/*
 * Every query tile multiplies by the same key and value tiles, and in the
 * backward each query tile's queries and output gradient meet every key
 * tile. Packed as the GEMM's B once (key tiles once per call, before the
 * query tiles run; a query tile's operands once per query tile) and, in
 * bf16, the A operands converted once, they are no longer packed and
 * converted again for every product. The products read the same bytes
 * either way, so the bits do not change.
 */
typedef enum { KEYS_T, VALUES, VALUES_T, KEYS, KEY_OPERANDS } key_operand;

/* The B operand op of key tile k0 of batch item b. */
static bk_gemm_args key_operand_args(const attn_problem *pr, key_operand op, int b, int k0)
{
    int kt = bk__min_int(KT, pr->m - k0), dk = pr->dk, dv = pr->dv;
    const float *kk = pr->phi + ((size_t)b * pr->m + k0) * dk;
    const float *vv = pr->g + ((size_t)b * pr->m + k0) * dv;
    bk_gemm_args g = {.prec = pr->prec};
    switch (op) {
    case KEYS_T: g.transb = 1, g.n = kt, g.k = dk, g.b = kk, g.ldb = dk; break;
    case VALUES: g.n = dv, g.k = kt, g.b = vv, g.ldb = dv; break;
    case VALUES_T: g.transb = 1, g.n = kt, g.k = dv, g.b = vv, g.ldb = dv; break;
    default: g.n = dk, g.k = kt, g.b = kk, g.ldb = dk; break;
    }
    return g;
}

/* Bytes of n x k packed as B, whole cache lines. */
static size_t packed_bytes(const attn_problem *pr, int n, int k)
{
    return (bk__packed_b_size(pr->cx->kr, pr->prec, n, k) + 63) & ~(size_t)63;
}

typedef struct {
    char *mem;                  /* NULL: each product packs its own B */
    size_t at[KEY_OPERANDS];    /* an operand's place in a key tile's panels */
    size_t tile_bytes;          /* one key tile's panels */
    int tiles;                  /* key tiles per batch item */
} key_panels;

/* Packs operands ops[0..count) of every key tile; on no memory, kp->mem
 * stays NULL and the products pack as they go (the same bits). */
static void key_panels_make(const attn_problem *pr, const key_operand *ops, int count,
                            key_panels *kp)
{
    *kp = (key_panels){.tiles = key_tiles(pr->m)};
    for (int i = 0; i < count; i++) {
        bk_gemm_args g = key_operand_args(pr, ops[i], 0, 0);
        kp->at[ops[i]] = kp->tile_bytes;
        kp->tile_bytes += packed_bytes(pr, g.n, g.k);
    }
    long units = (long)pr->batch * kp->tiles;
    kp->mem = aligned_alloc(64, (size_t)units * kp->tile_bytes);
    if (!kp->mem) return;
    double elements = (double)pr->batch * pr->m * count * (pr->dk + pr->dv);
    int nt = bk__team_size(pr->cx, elements, pr->cx->kr->tuning->pack_per_thread);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (long u = 0; u < units; u++) {
        int b = (int)(u / kp->tiles), k0 = (int)(u % kp->tiles) * KT;
        for (int i = 0; i < count; i++) {
            bk_gemm_args g = key_operand_args(pr, ops[i], b, k0);
            bk__pack_b_all(pr->cx, &g, kp->mem + (size_t)u * kp->tile_bytes + kp->at[ops[i]]);
        }
    }
}

/* Operand op of key tile k0 of batch item b, packed, or NULL. */
static const void *key_panel(const key_panels *kp, key_operand op, int b, int k0)
{
    if (!kp->mem) return NULL;
    return kp->mem + ((size_t)b * kp->tiles + k0 / KT) * kp->tile_bytes + kp->at[op];
}

/* rows x cols floats (row stride cols) as bf16 bits into dst, for a BK_BF16
 * A operand; NULL for BK_FP32. */
static const uint16_t *bf16_rows(const attn_problem *pr, const float *src, int rows,
                                 int cols, uint16_t *dst)
{
    if (pr->prec != BK_BF16) return NULL;
    pr->cx->kr->bf16_from_f32(src, dst, (size_t)rows * cols);
    return dst;
}

/* --------------------------------------------------------------- forward -- */

static size_t forward_workspace_bytes(int dk, int dv)
{
    return sizeof(float) * ((size_t)QT * KT + (size_t)QT * dv + 2 * QT) +
           sizeof(uint16_t) * (size_t)QT * dk;
}

static void forward_tile(const attn_problem *pr, const key_panels *kp,
                         fwd_softmax_fn softmax, float *ws, int b, int q0,
                         float *out, float *lse)
{
    int n = pr->n, m = pr->m, dk = pr->dk, dv = pr->dv;
    int qt = bk__min_int(QT, n - q0);
    float *dst = out + ((size_t)b * n + q0) * dv;
    float *lse_dst = lse + (size_t)b * n + q0;
    /* Out of memory: make the failure visible instead of returning junk. */
    if (!ws) {
        bk__fill_nan(dst, (size_t)qt * dv);
        bk__fill_nan(lse_dst, (size_t)qt);
        return;
    }
    float *s = ws, *o = s + (size_t)QT * KT;
    float *mx = o + (size_t)QT * dv, *l = mx + QT;
    const float *q = pr->theta + ((size_t)b * n + q0) * dk;
    const uint16_t *q16 = bf16_rows(pr, q, qt, dk, (uint16_t *)(l + QT));
    const float *keys = pr->phi + (size_t)b * m * dk;
    const float *vals = pr->g + (size_t)b * m * dv;

    for (int i = 0; i < qt; i++) {
        mx[i] = -INFINITY;
        l[i] = 0.0f;
    }
    for (int k0 = 0; k0 < m; k0 += KT) {
        int kt = bk__min_int(KT, m - k0);
        tile_gemm(pr, 0, 1, qt, kt, dk, q, q16, dk, keys + (size_t)k0 * dk,
                  key_panel(kp, KEYS_T, b, k0), dk, 0.0f, s, KT);
        softmax(s, qt, kt, mx, l, o, dv, k0 > 0);
        tile_gemm(pr, 0, 0, qt, dv, kt, s, NULL, KT, vals + (size_t)k0 * dv,
                  key_panel(kp, VALUES, b, k0), dv, k0 > 0 ? 1.0f : 0.0f, o, dv);
    }
    for (int i = 0; i < qt; i++) {
        for (int j = 0; j < dv; j++)
            dst[(size_t)i * dv + j] = o[(size_t)i * dv + j] / l[i];
        lse_dst[i] = mx[i] + logf(l[i]);
    }
}

void bk_attention_forward(bk_precision prec, int batch, int n, int m, int dk,
                          int dv, const float *theta, const float *phi,
                          const float *g, float *out, float *lse)
{
    if (batch <= 0 || n <= 0 || m <= 0 || dk <= 0 || dv <= 0) return;
    bk_ctx cx = bk__ctx();
    attn_problem pr = {&cx, prec, batch, n, m, dk, dv, theta, phi, g};
    fwd_softmax_fn softmax = fwd_softmax_for(cx.kr->isa);
    long tiles = query_tiles(n);
    long tasks = (long)batch * tiles;
    double fmas = (double)batch * n * m * ((double)dk + dv);
    int nt = bk__team_size(&cx, fmas, cx.kr->tuning->attention_fmas_per_thread);
    if (nt > tasks) nt = (int)tasks;
    key_panels kp;
    key_panels_make(&pr, (const key_operand[]){KEYS_T, VALUES}, 2, &kp);

#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float *ws = bk__workspace(BK_WS_ATTENTION, forward_workspace_bytes(dk, dv));
#pragma omp for schedule(static, 1)
        for (long task = 0; task < tasks; task++)
            forward_tile(&pr, &kp, softmax, ws, (int)(task / tiles),
                         (int)(task % tiles) * QT, out, lse);
    }
    free(kp.mem);
}

/* -------------------------------------------------------------- backward -- */

typedef struct {
    const float *out, *lse, *dout;
    float *dtheta;
} attn_grads;

/* A query tile's products in the backward: the two score-sized tiles and
 * D, then its queries and output gradient as bf16 A operands and as packed
 * B operands. */
typedef struct {
    size_t q16, dout16, q_packed, dout_packed, bytes;
} backward_layout;

static backward_layout backward_workspace(const attn_problem *pr)
{
    backward_layout w;
    w.q16 = sizeof(float) * (2 * (size_t)QT * KT + QT);
    w.dout16 = w.q16 + sizeof(uint16_t) * (size_t)QT * pr->dk;
    w.q_packed = (w.dout16 + sizeof(uint16_t) * (size_t)QT * pr->dv + 63) & ~(size_t)63;
    w.dout_packed = w.q_packed + packed_bytes(pr, pr->dk, QT);
    w.bytes = w.dout_packed + packed_bytes(pr, pr->dv, QT);
    return w;
}

/* Group grp of batch item b: dtheta for its query tiles, and its sums of
 * dphi (m x dk) and dg (m x dv) over those queries. */
static void backward_group(const attn_problem *pr, const attn_grads *gr,
                           const key_panels *kp, bwd_softmax_fn softmax,
                           char *ws, int b, int grp, int groups, float *dphi,
                           float *dg)
{
    int n = pr->n, m = pr->m, dk = pr->dk, dv = pr->dv;
    int tiles = query_tiles(n);
    int t0 = (int)((long)tiles * grp / groups);
    int t1 = (int)((long)tiles * (grp + 1) / groups);
    if (!ws) {
        int q0 = t0 * QT, q1 = bk__min_int(n, t1 * QT);
        bk__fill_nan(gr->dtheta + ((size_t)b * n + q0) * dk, (size_t)(q1 - q0) * dk);
        bk__fill_nan(dphi, (size_t)m * dk);
        bk__fill_nan(dg, (size_t)m * dv);
        return;
    }
    backward_layout w = backward_workspace(pr);
    float *s = (float *)ws, *dp = s + (size_t)QT * KT, *d = dp + (size_t)QT * KT;
    const float *keys = pr->phi + (size_t)b * m * dk;
    const float *vals = pr->g + (size_t)b * m * dv;

    for (int t = t0; t < t1; t++) {
        int q0 = t * QT, qt = bk__min_int(QT, n - q0);
        size_t row0 = (size_t)b * n + q0;
        const float *q = pr->theta + row0 * dk;
        const float *o = gr->out + row0 * dv, *dout = gr->dout + row0 * dv;
        float *dq = gr->dtheta + row0 * dk;
        const uint16_t *q16 = bf16_rows(pr, q, qt, dk, (uint16_t *)(ws + w.q16));
        const uint16_t *dout16 = bf16_rows(pr, dout, qt, dv, (uint16_t *)(ws + w.dout16));
        bk_gemm_args qb = {.prec = pr->prec, .n = dk, .k = qt, .b = q, .ldb = dk};
        bk_gemm_args doutb = {.prec = pr->prec, .n = dv, .k = qt, .b = dout, .ldb = dv};
        bk__pack_b_all(pr->cx, &qb, ws + w.q_packed);
        bk__pack_b_all(pr->cx, &doutb, ws + w.dout_packed);
        for (int i = 0; i < qt; i++) {
            float acc = 0.0f;
            for (int j = 0; j < dv; j++)
                acc += dout[(size_t)i * dv + j] * o[(size_t)i * dv + j];
            d[i] = acc;
        }
        /* The group's first query tile starts its partial sums. */
        float beta_keys = t > t0 ? 1.0f : 0.0f;
        for (int k0 = 0; k0 < m; k0 += KT) {
            int kt = bk__min_int(KT, m - k0);
            const float *kk = keys + (size_t)k0 * dk;
            const float *vv = vals + (size_t)k0 * dv;
            tile_gemm(pr, 0, 1, qt, kt, dk, q, q16, dk, kk, key_panel(kp, KEYS_T, b, k0),
                      dk, 0.0f, s, KT);
            tile_gemm(pr, 0, 1, qt, kt, dv, dout, dout16, dv, vv,
                      key_panel(kp, VALUES_T, b, k0), dv, 0.0f, dp, KT);
            softmax(s, dp, qt, kt, gr->lse + row0, d);
            tile_gemm(pr, 0, 0, qt, dk, kt, dp, NULL, KT, kk, key_panel(kp, KEYS, b, k0),
                      dk, k0 > 0 ? 1.0f : 0.0f, dq, dk);
            tile_gemm(pr, 1, 0, kt, dk, qt, dp, NULL, KT, q, ws + w.q_packed, dk,
                      beta_keys, dphi + (size_t)k0 * dk, dk);
            tile_gemm(pr, 1, 0, kt, dv, qt, s, NULL, KT, dout, ws + w.dout_packed, dv,
                      beta_keys, dg + (size_t)k0 * dv, dv);
        }
    }
}

void bk_attention_backward(bk_precision prec, int batch, int n, int m, int dk,
                           int dv, const float *theta, const float *phi,
                           const float *g, const float *out, const float *lse,
                           const float *dout, float *dtheta, float *dphi,
                           float *dg)
{
    if (batch <= 0 || n <= 0 || m <= 0 || dk <= 0 || dv <= 0) return;
    bk_ctx cx = bk__ctx();
    attn_problem pr = {&cx, prec, batch, n, m, dk, dv, theta, phi, g};
    attn_grads gr = {out, lse, dout, dtheta};
    bwd_softmax_fn softmax = bwd_softmax_for(cx.kr->isa);

    /* Groups beyond the first need private dphi/dg partials; without the
     * memory, one group per batch item still gives the right answer. */
    int groups = bk__min_int(GROUPS, query_tiles(n));
    size_t part_stride = (size_t)m * ((size_t)dk + dv);
    float *parts = NULL;
    if (groups > 1) {
        parts = malloc(sizeof(float) * (size_t)batch * (groups - 1) * part_stride);
        if (!parts) groups = 1;
    }

    long tasks = (long)batch * groups;
    double fmas = (double)batch * n * m * (2.0 * dk + 3.0 * dv);
    int nt = bk__team_size(&cx, fmas, cx.kr->tuning->attention_fmas_per_thread);
    if (nt > tasks) nt = (int)tasks;
    long key_rows = (long)batch * m;

    key_panels kp;
    key_panels_make(&pr, (const key_operand[]){KEYS_T, VALUES_T, KEYS}, 3, &kp);

#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        char *ws = bk__workspace(BK_WS_ATTENTION, backward_workspace(&pr).bytes);
#pragma omp for schedule(static, 1)
        for (long task = 0; task < tasks; task++) {
            int b = (int)(task / groups), grp = (int)(task % groups);
            float *dphi_b = dphi + (size_t)b * m * dk;
            float *dg_b = dg + (size_t)b * m * dv;
            if (grp > 0) {
                dphi_b = parts + ((size_t)b * (groups - 1) + grp - 1) * part_stride;
                dg_b = dphi_b + (size_t)m * dk;
            }
            backward_group(&pr, &gr, &kp, softmax, ws, b, grp, groups, dphi_b, dg_b);
        }
        if (groups > 1) {
#pragma omp for schedule(static)
            for (long r = 0; r < key_rows; r++) {
                long b = r / m, j = r % m;
                float *pd = dphi + (size_t)r * dk, *pg = dg + (size_t)r * dv;
                for (int grp = 1; grp < groups; grp++) {
                    const float *part =
                        parts + ((size_t)b * (groups - 1) + grp - 1) * part_stride;
                    const float *sd = part + (size_t)j * dk;
                    const float *sg = part + (size_t)m * dk + (size_t)j * dv;
                    for (int c = 0; c < dk; c++) pd[c] += sd[c];
                    for (int c = 0; c < dv; c++) pg[c] += sg[c];
                }
            }
        }
    }
    free(parts);
    free(kp.mem);
}
