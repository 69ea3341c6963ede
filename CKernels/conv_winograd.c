/*
 * Winograd convolution F(4x4, 3x3) for fp32 3x3 convolutions with stride 1
 * and padding 1 ("same") or 0 ("valid"), forward, backward data and
 * backward weight, with or without the fused nearest x2 upsample of the
 * input.
 *
 * The output is cut into 4x4 tiles; each reads a 6x6 input tile. With the
 * transforms of Lavin and Gray (points 0, +-1, +-2, infinity),
 *
 *   V = B^T d B (6x6 per input tile and channel)
 *   U = G g G^T (6x6 per filter, i.e. per (out, in) channel pair)
 *   M[xi] = V[xi] U[xi]^T for each of the 36 points xi: a GEMM over channels
 *   y = A^T M A + bias (4x4 per tile and output channel)
 *
 * so the GEMMs do 36 multiply-adds per 16 outputs and input channel where
 * the direct convolution does 144. Why F(4x4) and not F(2x2) (16 per 4, a
 * 2.25x saving instead of 4x): measured against a double-precision
 * convolution on ReLU activations with N(0, 1/(9 Cin)) weights (64 to 1536
 * input channels), this code errs by at most 9e-6 of the largest output
 * and 2-2.5e-6 RMS, within the 1e-5 budget; im2col errs by 2-4e-7. F(2x2)
 * would be about as accurate as im2col but save too little to be worth a
 * second path.
 *
 * Backward data of a stride 1 3x3 convolution with padding p is a
 * convolution of dy with padding 2 - p (1 for "same", 2 for "valid"), with
 * every filter rotated by 180 degrees and the roles of in and out channels
 * swapped; with the upsample, dx is the 2x2 block sum of that
 * (upsampled-size) gradient. Tiles start at even pixels, so every 2x2 block
 * lies inside one output tile and the sum happens in the output transform.
 * One job description serves both passes.
 *
 * Backward weight differentiates the same chain: with dM = A dy A^T (the
 * 4x4 tile of dy taken to 6x6 by the transpose of the output transform),
 *
 *   dU[xi] = sum over tiles of dM[xi]^T V[xi]   (a GEMM over tiles)
 *   dg = G^T dU G                               (6x6 to 3x3 per filter)
 *
 * so the GEMMs again do a quarter of the direct convolution's work, and the
 * input transform is the forward's. The sum over tiles is the GEMM's K: one
 * GEMM per point over all tiles, in bands of whole BK_KC passes that
 * continue with beta = 1, so banding never changes the bits.
 *
 * Layouts, for a job reading K channels and writing N: V [36][tiles][K]
 * and M [36][tiles][N], channels contiguous so every transform runs along
 * channels in vectors; U [36][N][K] forward and [36][K][N] backward (each
 * the order in which the weight holds the transform's contiguous channels),
 * which the GEMM reads as B^T or B.
 *
 * Memory stays bounded: the tiles go in bands whose V and M fit a budget
 * (tuning.h), and when U of all output channels would exceed another they
 * go in chunks of output channels, U of a chunk recomputed for every band
 * (only huge filters are chunked, and they come with small images: few
 * bands).
 *
 * Reproducibility: every transform output is computed by one thread from
 * fixed inputs in a fixed order, the same C code on every instruction-set
 * path (compiled per path only so that it vectorises), and each GEMM row
 * follows the GEMM contract, so the results do not depend on the thread
 * count or the path.
 */
#include "internal.h"

#define TILE 4                 /* output pixels per tile side */
#define ALPHA 6                /* input tile side: TILE + 3 - 1 */
#define POINTS (ALPHA * ALPHA) /* transform points, one GEMM each */
#define CB BK_WINOGRAD_CB      /* channels per transform block */

/* ------------------------------------------------------------ transforms -- */

/*
 * The 1-D transforms along one axis, n channels at a time. Every pass writes
 * whole outputs from the inputs it names, with the same operations in the
 * same order on every path (no contraction into FMAs: the flags forbid it),
 * so each lane's bits are those of the scalar loop.
 */

/* B^T d: 6 values to 6. */
static inline __attribute__((always_inline)) void
input_1d(int n, const float *restrict d0, const float *restrict d1,
         const float *restrict d2, const float *restrict d3,
         const float *restrict d4, const float *restrict d5, float *restrict r0,
         float *restrict r1, float *restrict r2, float *restrict r3,
         float *restrict r4, float *restrict r5)
{
    for (int c = 0; c < n; c++) {
        float a = d4[c] - 4.0f * d2[c], b = d3[c] - 4.0f * d1[c];
        float e = d4[c] - d2[c], f = 2.0f * (d3[c] - d1[c]);
        r0[c] = 4.0f * d0[c] + (d4[c] - 5.0f * d2[c]);
        r1[c] = a + b;
        r2[c] = a - b;
        r3[c] = e + f;
        r4[c] = e - f;
        r5[c] = 4.0f * d1[c] + (d5[c] - 5.0f * d3[c]);
    }
}

/* G g: 3 values to 6. */
static inline __attribute__((always_inline)) void
weight_1d(int n, const float *restrict g0, const float *restrict g1,
          const float *restrict g2, float *restrict u0, float *restrict u1,
          float *restrict u2, float *restrict u3, float *restrict u4,
          float *restrict u5)
{
    const float sixth = 1.0f / 6.0f;
    for (int c = 0; c < n; c++) {
        float a = g0[c] + g2[c], b = 0.25f * g0[c] + g2[c], h = 0.5f * g1[c];
        u0[c] = 0.25f * g0[c];
        u1[c] = -sixth * (a + g1[c]);
        u2[c] = -sixth * (a - g1[c]);
        u3[c] = sixth * (b + h);
        u4[c] = sixth * (b - h);
        u5[c] = g2[c];
    }
}

/* A^T m: 6 values to 4. */
static inline __attribute__((always_inline)) void
output_1d(int n, const float *restrict m0, const float *restrict m1,
          const float *restrict m2, const float *restrict m3,
          const float *restrict m4, const float *restrict m5,
          float *restrict y0, float *restrict y1, float *restrict y2,
          float *restrict y3)
{
    for (int c = 0; c < n; c++) {
        float s12 = m1[c] + m2[c], d12 = m1[c] - m2[c];
        float s34 = m3[c] + m4[c], d34 = m3[c] - m4[c];
        y0[c] = (m0[c] + s12) + s34;
        y1[c] = d12 + 2.0f * d34;
        y2[c] = s12 + 4.0f * s34;
        y3[c] = (d12 + 8.0f * d34) + m5[c];
    }
}

/* A dy: 4 values to 6 (the transpose of output_1d's A^T). */
static inline __attribute__((always_inline)) void
grad_1d(int n, const float *restrict y0, const float *restrict y1,
        const float *restrict y2, const float *restrict y3, float *restrict m0,
        float *restrict m1, float *restrict m2, float *restrict m3,
        float *restrict m4, float *restrict m5)
{
    for (int c = 0; c < n; c++) {
        float s02 = y0[c] + y2[c], s13 = y1[c] + y3[c];
        float q02 = y0[c] + 4.0f * y2[c], q13 = 2.0f * y1[c] + 8.0f * y3[c];
        m0[c] = y0[c];
        m1[c] = s02 + s13;
        m2[c] = s02 - s13;
        m3[c] = q02 + q13;
        m4[c] = q02 - q13;
        m5[c] = y3[c];
    }
}

/* G^T u: 6 values to 3 (the transpose of weight_1d's G). */
static inline __attribute__((always_inline)) void
filter_1d(int n, const float *restrict u0, const float *restrict u1,
          const float *restrict u2, const float *restrict u3,
          const float *restrict u4, const float *restrict u5,
          float *restrict g0, float *restrict g1, float *restrict g2)
{
    const float sixth = 1.0f / 6.0f, twelfth = 1.0f / 12.0f;
    const float twentyfourth = 1.0f / 24.0f;
    for (int c = 0; c < n; c++) {
        float s12 = u1[c] + u2[c], d21 = u2[c] - u1[c];
        float s34 = u3[c] + u4[c], d34 = u3[c] - u4[c];
        g0[c] = (0.25f * u0[c] - sixth * s12) + twentyfourth * s34;
        g1[c] = sixth * d21 + twelfth * d34;
        g2[c] = sixth * (s34 - s12) + u5[c];
    }
}

/* One input tile: d[i * 6 + j] points at n channels of tap (i, j) (a zero
 * row in the padding); writes V at v + xi * ps. */
static inline __attribute__((always_inline)) void
input_tile_impl(const float *const d[POINTS], int n, float *v, size_t ps)
{
    float t[POINTS][CB];
    for (int j = 0; j < ALPHA; j++)
        input_1d(n, d[j], d[6 + j], d[12 + j], d[18 + j], d[24 + j], d[30 + j],
                 t[j], t[6 + j], t[12 + j], t[18 + j], t[24 + j], t[30 + j]);
    for (int i = 0; i < ALPHA; i++) {
        float *o = v + (size_t)i * ALPHA * ps;
        input_1d(n, t[6 * i], t[6 * i + 1], t[6 * i + 2], t[6 * i + 3],
                 t[6 * i + 4], t[6 * i + 5], o, o + ps, o + 2 * ps, o + 3 * ps,
                 o + 4 * ps, o + 5 * ps);
    }
}

/* One filter: g[i * 3 + j] points at n channels of tap (i, j); writes U at
 * u + xi * ps. */
static inline __attribute__((always_inline)) void
weight_tile_impl(const float *const g[9], int n, float *u, size_t ps)
{
    float t[ALPHA * 3][CB];
    for (int j = 0; j < 3; j++)
        weight_1d(n, g[j], g[3 + j], g[6 + j], t[j], t[3 + j], t[6 + j],
                  t[9 + j], t[12 + j], t[15 + j]);
    for (int i = 0; i < ALPHA; i++) {
        float *o = u + (size_t)i * ALPHA * ps;
        weight_1d(n, t[3 * i], t[3 * i + 1], t[3 * i + 2], o, o + ps,
                  o + 2 * ps, o + 3 * ps, o + 4 * ps, o + 5 * ps);
    }
}

/* One dy tile: d[i * 4 + j] points at n channels of output pixel (i, j)
 * (a zero row outside the image); writes dM at m + xi * ps. */
static inline __attribute__((always_inline)) void
grad_tile_impl(const float *const d[TILE * TILE], int n, float *m, size_t ps)
{
    float t[ALPHA * TILE][CB];
    for (int j = 0; j < TILE; j++)
        grad_1d(n, d[j], d[4 + j], d[8 + j], d[12 + j], t[j], t[4 + j],
                t[8 + j], t[12 + j], t[16 + j], t[20 + j]);
    for (int i = 0; i < ALPHA; i++) {
        float *o = m + (size_t)i * ALPHA * ps;
        grad_1d(n, t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3], o,
                o + ps, o + 2 * ps, o + 3 * ps, o + 4 * ps, o + 5 * ps);
    }
}

/* One filter's gradient from dU at u + xi * ps, n channels: the 3x3 taps go
 * to g[i * 3 + j], added to what they hold when accumulate. */
static inline __attribute__((always_inline)) void
filter_grad_tile_impl(const float *u, size_t ps, int n, float *const g[9],
                      int accumulate)
{
    float t[3 * ALPHA][CB], r[9][CB];
    for (int j = 0; j < ALPHA; j++)
        filter_1d(n, u + (size_t)j * ps, u + (size_t)(6 + j) * ps,
                  u + (size_t)(12 + j) * ps, u + (size_t)(18 + j) * ps,
                  u + (size_t)(24 + j) * ps, u + (size_t)(30 + j) * ps, t[j],
                  t[6 + j], t[12 + j]);
    for (int i = 0; i < 3; i++)
        filter_1d(n, t[6 * i], t[6 * i + 1], t[6 * i + 2], t[6 * i + 3],
                  t[6 * i + 4], t[6 * i + 5], r[3 * i], r[3 * i + 1],
                  r[3 * i + 2]);
    for (int q = 0; q < 9; q++) {
        float *restrict out = g[q];
        if (accumulate)
            for (int c = 0; c < n; c++) out[c] += r[q][c];
        else
            for (int c = 0; c < n; c++) out[c] = r[q][c];
    }
}

/*
 * One output tile from M at m + xi * ps, n channels: the 4x4 result plus
 * bias (may be NULL), through max(v, 0) when relu, goes to dst[i * 4 + j]
 * (NULL outside the image); with pool, each 2x2 block's sum goes to
 * dst[i * 2 + j] instead. accumulate adds to what dst holds.
 */
static inline __attribute__((always_inline)) void
output_tile_impl(const float *m, size_t ps, int n, const float *bias, int relu,
                 float *const dst[TILE * TILE], int pool, int accumulate)
{
    float t[TILE * ALPHA][CB], y[TILE * TILE][CB];
    for (int j = 0; j < ALPHA; j++)
        output_1d(n, m + (size_t)j * ps, m + (size_t)(6 + j) * ps,
                  m + (size_t)(12 + j) * ps, m + (size_t)(18 + j) * ps,
                  m + (size_t)(24 + j) * ps, m + (size_t)(30 + j) * ps, t[j],
                  t[6 + j], t[12 + j], t[18 + j]);
    int whole = !pool && !accumulate;
    for (int q = 0; whole && q < TILE * TILE; q++) whole = dst[q] != NULL;
    if (whole) {
        /* An inner tile written over: straight into place, no copies. */
        for (int i = 0; i < TILE; i++)
            output_1d(n, t[6 * i], t[6 * i + 1], t[6 * i + 2], t[6 * i + 3],
                      t[6 * i + 4], t[6 * i + 5], dst[4 * i], dst[4 * i + 1],
                      dst[4 * i + 2], dst[4 * i + 3]);
        for (int q = 0; (bias || relu) && q < TILE * TILE; q++) {
            float *restrict out = dst[q];
            if (bias)
                for (int c = 0; c < n; c++) out[c] += bias[c];
            if (relu)
                for (int c = 0; c < n; c++) out[c] = out[c] > 0.0f ? out[c] : 0.0f;
        }
        return;
    }
    for (int i = 0; i < TILE; i++)
        output_1d(n, t[6 * i], t[6 * i + 1], t[6 * i + 2], t[6 * i + 3],
                  t[6 * i + 4], t[6 * i + 5], y[4 * i], y[4 * i + 1],
                  y[4 * i + 2], y[4 * i + 3]);
    int outs = pool ? 4 : TILE * TILE;
    for (int q = 0; q < outs; q++) {
        float *restrict out = dst[q];
        if (!out) continue;
        float r[CB];
        if (pool) {
            const float *a = y[(q >> 1) * 8 + (q & 1) * 2], *b = a + CB;
            const float *e = a + TILE * CB, *f = e + CB;
            for (int c = 0; c < n; c++) r[c] = (a[c] + b[c]) + (e[c] + f[c]);
        } else {
            for (int c = 0; c < n; c++) r[c] = y[q][c];
        }
        if (bias)
            for (int c = 0; c < n; c++) r[c] += bias[c];
        if (relu)
            for (int c = 0; c < n; c++) r[c] = r[c] > 0.0f ? r[c] : 0.0f;
        if (accumulate)
            for (int c = 0; c < n; c++) out[c] += r[c];
        else
            for (int c = 0; c < n; c++) out[c] = r[c];
    }
}

typedef struct {
    void (*input)(const float *const d[POINTS], int n, float *v, size_t ps);
    void (*weight)(const float *const g[9], int n, float *u, size_t ps);
    void (*output)(const float *m, size_t ps, int n, const float *bias, int relu,
                   float *const dst[TILE * TILE], int pool, int accumulate);
    void (*grad)(const float *const d[TILE * TILE], int n, float *m, size_t ps);
    void (*filter_grad)(const float *u, size_t ps, int n, float *const g[9],
                        int accumulate);
} transforms;

/* The same code compiled for each path, so that it vectorises as widely as
 * the path allows. */
#define TRANSFORMS(name, TARGET)                                              \
    TARGET static void input_##name(const float *const d[POINTS], int n,      \
                                    float *v, size_t ps)                      \
    {                                                                         \
        input_tile_impl(d, n, v, ps);                                         \
    }                                                                         \
    TARGET static void weight_##name(const float *const g[9], int n,          \
                                     float *u, size_t ps)                     \
    {                                                                         \
        weight_tile_impl(g, n, u, ps);                                        \
    }                                                                         \
    TARGET static void output_##name(const float *m, size_t ps, int n,        \
                                     const float *bias, int relu,             \
                                     float *const dst[TILE * TILE], int pool, \
                                     int accumulate)                          \
    {                                                                         \
        output_tile_impl(m, ps, n, bias, relu, dst, pool, accumulate);        \
    }                                                                         \
    TARGET static void grad_##name(const float *const d[TILE * TILE], int n,  \
                                   float *m, size_t ps)                       \
    {                                                                         \
        grad_tile_impl(d, n, m, ps);                                          \
    }                                                                         \
    TARGET static void filter_grad_##name(const float *u, size_t ps, int n,   \
                                          float *const g[9], int accumulate)  \
    {                                                                         \
        filter_grad_tile_impl(u, ps, n, g, accumulate);                       \
    }                                                                         \
    static const transforms transforms_##name = {                             \
        input_##name, weight_##name, output_##name, grad_##name,              \
        filter_grad_##name};

TRANSFORMS(generic, )
#ifdef BK_X86
TRANSFORMS(avx2, BK_TARGET_AVX2)
TRANSFORMS(avx512, BK_TARGET_AVX512)
#endif

static const transforms *transforms_for(bk_isa isa)
{
#ifdef BK_X86
    switch (isa) {
    case BK_ISA_AMX_BF16:
    case BK_ISA_AVX512_BF16:
    case BK_ISA_AVX512: return &transforms_avx512;
    case BK_ISA_AVX2: return &transforms_avx2;
    default: break;
    }
#endif
    return &transforms_generic;
}

/* ------------------------------------------------------------------- jobs -- */

/*
 * One Winograd convolution: src [batch][src_h][src_w][k] (pixels lds floats
 * apart), read as the h x w image that is its nearest x2 enlargement when
 * up (else src itself), zero-padded by pad on every side, convolved into
 * dst [batch][oh][ow][n] (pixels ldd floats apart; oh = h + 2 pad - 2),
 * which the tiles cover; the forward weight w [out_c][3][3][in_c] supplies
 * the filters, as stored (forward: n = out_c, k = in_c) or rotated and
 * transposed (backward data: n = in_c, k = out_c). Backward weight reads
 * src as the forward does and dy [batch][oh][ow][n], n = out_c.
 */
typedef struct {
    const float *src;
    int batch, src_h, src_w, k, up, lds;
    int h, w, pad;
    int oh, ow, n;
    const float *wt;
    int backward;
    const float *bias;
    int relu;
    float *dst;
    int ldd, pool, accumulate;
    const float *dy; /* backward weight: the output gradient, n channels */
    int th, tw, tiles;
    bk_weight_plan *plan; /* forward only: may hold U, packed */
    const bk_ctx *cx;     /* the call's settings */
    const bk_tuning *tu;  /* and its path's tuning */
} job;

static const float zeros[CB];

/* The 6x6 taps of tile t, channels from c0: pointers into src, or zeros. */
static void tile_taps(const job *jb, int t, int c0, const float *d[POINTS])
{
    int per_image = jb->th * jb->tw, b = t / per_image, r = t % per_image;
    int y0 = r / jb->tw * TILE - jb->pad, x0 = r % jb->tw * TILE - jb->pad;
    const float *img = jb->src + (size_t)b * jb->src_h * jb->src_w * jb->lds + c0;
    for (int i = 0; i < ALPHA; i++)
        for (int j = 0; j < ALPHA; j++) {
            int y = y0 + i, x = x0 + j;
            d[i * ALPHA + j] =
                y < 0 || y >= jb->h || x < 0 || x >= jb->w
                    ? zeros
                    : img + ((size_t)(y >> jb->up) * jb->src_w + (x >> jb->up)) * jb->lds;
        }
}

/* Which pixels of a [batch][oh][ow] image (halved by pool, side 2) tile t
 * covers: side x side indices, -1 outside the image. */
static void tile_pixels(const job *jb, int t, ptrdiff_t px[TILE * TILE])
{
    int per_image = jb->th * jb->tw, b = t / per_image, r = t % per_image;
    int side = jb->pool ? TILE / 2 : TILE;
    int oh = jb->oh >> jb->pool, ow = jb->ow >> jb->pool;
    int y0 = r / jb->tw * side, x0 = r % jb->tw * side;
    for (int i = 0; i < side; i++)
        for (int j = 0; j < side; j++) {
            int y = y0 + i, x = x0 + j;
            px[i * side + j] = y < oh && x < ow ? ((ptrdiff_t)b * oh + y) * ow + x : -1;
        }
}

/* Where the outputs of tile t go, channels from c0 (see output_tile_impl). */
static void tile_outputs(const job *jb, int t, int c0, float *dst[TILE * TILE])
{
    ptrdiff_t px[TILE * TILE];
    tile_pixels(jb, t, px);
    for (int q = 0; q < TILE * TILE; q++)
        dst[q] = px[q] < 0 ? NULL : jb->dst + px[q] * jb->ldd + c0;
}

/* The dy rows of tile t (weight gradient), channels from c0, or zeros. */
static void tile_grads(const job *jb, int t, int c0, const float *d[TILE * TILE])
{
    ptrdiff_t px[TILE * TILE];
    tile_pixels(jb, t, px);
    for (int q = 0; q < TILE * TILE; q++)
        d[q] = px[q] < 0 ? zeros : jb->dy + px[q] * jb->n + c0;
}

/* U for GEMM output channels [n0, n0 + cols): forward U[xi][n - n0][k]
 * filters of out channels n, backward U[xi][k][n - n0] filters of out
 * channel k and in channels n, rotated. */
static void transform_weights(const transforms *tf, const job *jb, int n0,
                              int cols, float *u)
{
    int out_c = jb->backward ? jb->k : jb->n, in_c = jb->backward ? jb->n : jb->k;
    int rows = jb->backward ? out_c : cols;     /* filters' out channels */
    int c_lo = jb->backward ? n0 : 0;           /* their in channels */
    int c_hi = jb->backward ? n0 + cols : in_c;
    size_t ps = (size_t)cols * jb->k;
    size_t row_stride = jb->backward ? (size_t)cols : (size_t)in_c;
#pragma omp parallel for schedule(static) num_threads(bk__team_size(jb->cx, \
        (double)rows * (c_hi - c_lo) * POINTS, jb->tu->transform_per_thread))
    for (int r = 0; r < rows; r++) {
        int o = jb->backward ? r : n0 + r;
        const float *f = jb->wt + (size_t)o * 9 * in_c;
        for (int c0 = c_lo; c0 < c_hi; c0 += CB) {
            const float *g[9];
            for (int tap = 0; tap < 9; tap++)
                g[tap] = f + (size_t)(jb->backward ? 8 - tap : tap) * in_c + c0;
            tf->weight(g, bk__min_int(CB, c_hi - c0),
                       u + (size_t)r * row_stride + (c0 - c_lo), ps);
        }
    }
}

/* V of tiles [t0, t0 + tiles). */
static void transform_inputs(const transforms *tf, const job *jb, int t0,
                             int tiles, float *v)
{
    size_t ps = (size_t)tiles * jb->k;
#pragma omp parallel for schedule(static) num_threads(bk__team_size(jb->cx, \
        (double)tiles * jb->k * POINTS, jb->tu->transform_per_thread))
    for (int t = 0; t < tiles; t++)
        for (int c0 = 0; c0 < jb->k; c0 += CB) {
            const float *d[POINTS];
            tile_taps(jb, t0 + t, c0, d);
            tf->input(d, bk__min_int(CB, jb->k - c0), v + (size_t)t * jb->k + c0, ps);
        }
}

/* The 36 GEMMs of a band: point xi's operands lie a_point, b_point and
 * c_point floats after base's (B prepacked at packed_b + xi packed_point
 * when given). Tasks are a point and a slice of its rows (a_row floats
 * apart in A, ldc in C), each a serial GEMM, so no result depends on the
 * team; slices keep at least min_rows rows. */
static void multiply_points(const bk_ctx *cx, bk_gemm_args base, size_t a_point,
                            size_t a_row, size_t b_point, size_t c_point,
                            const char *packed_b, size_t packed_point, int min_rows)
{
    double fmas = (double)POINTS * base.m * base.n * base.k;
    int nt = bk__team_size(cx, fmas, cx->kr->tuning->gemm_fmas_per_thread);
    int slices = bk__min_int((nt + POINTS - 1) / POINTS, bk__max_int(1, base.m / min_rows));
    int tasks = POINTS * slices;
#pragma omp parallel for schedule(static) num_threads(bk__min_int(nt, tasks))
    for (int task = 0; task < tasks; task++) {
        int xi = task / slices, sl = task % slices;
        int r0 = (int)((int64_t)base.m * sl / slices);
        int r1 = (int)((int64_t)base.m * (sl + 1) / slices);
        bk_gemm_args g = base;
        g.m = r1 - r0;
        g.a += xi * a_point + r0 * a_row;
        g.c += xi * c_point + (size_t)r0 * g.ldc;
        if (packed_b) g.packed_b = packed_b + xi * packed_point;
        else g.b += xi * b_point;
        bk__gemm_serial(cx, &g);
    }
}

/* M[xi] = V[xi] U[xi]^T (forward) or V[xi] U[xi] (backward) for the band,
 * U[xi] from u, or prepacked at packed_u + xi point_bytes. */
static void multiply(const job *jb, int tiles, int cols, const float *v,
                     const float *u, const char *packed_u, size_t point_bytes,
                     float *m)
{
    bk_gemm_args base = {
        .prec = BK_FP32, .transa = 0, .transb = !jb->backward,
        .m = tiles, .n = cols, .k = jb->k, .alpha = 1.0f, .beta = 0.0f,
        .a = v, .lda = jb->k,
        .b = u, .ldb = jb->backward ? cols : jb->k,
        .c = m, .ldc = cols,
    };
    multiply_points(jb->cx, base, (size_t)tiles * jb->k, (size_t)jb->k,
                    (size_t)cols * jb->k, (size_t)tiles * cols, packed_u, point_bytes,
                    jb->tu->winograd_min_tiles);
}

/* Output channels [n0, n0 + cols) of tiles [t0, t0 + tiles) from M. */
static void transform_outputs(const transforms *tf, const job *jb, int t0,
                              int tiles, int n0, int cols, const float *m)
{
    size_t ps = (size_t)tiles * cols;
#pragma omp parallel for schedule(static) num_threads(bk__team_size(jb->cx, \
        (double)tiles * cols * POINTS, jb->tu->transform_per_thread))
    for (int t = 0; t < tiles; t++)
        for (int c0 = 0; c0 < cols; c0 += CB) {
            float *dst[TILE * TILE];
            tile_outputs(jb, t0 + t, n0 + c0, dst);
            tf->output(m + (size_t)t * cols + c0, ps, bk__min_int(CB, cols - c0),
                       jb->bias ? jb->bias + n0 + c0 : NULL, jb->relu, dst, jb->pool,
                       jb->accumulate);
        }
}

/* Output channels per chunk: all of them, unless their transformed filters
 * (or filter gradients) exceed the U budget. */
static int channel_chunk(const job *jb)
{
    size_t per_col = (size_t)POINTS * jb->k * sizeof(float);
    size_t budget = jb->tu->winograd_u_bytes;
    if ((size_t)jb->n * per_col <= budget) return jb->n;
    int fit = (int)(budget / per_col) / 32 * 32;
    return bk__min_int(jb->n, bk__max_int(jb->tu->winograd_min_chunk, fit));
}

/* Bytes of one point's U of all output channels packed as the GEMM's B,
 * rounded to a cache line. */
static size_t packed_point_bytes(const job *jb)
{
    return (bk__packed_b_size(jb->cx->kr, BK_FP32, jb->n, jb->k) + 63) & ~(size_t)63;
}

/* U of all output channels, transformed into u and packed point by point
 * (each [n][k] as the GEMM's B, point_bytes apart) into packed. */
static void transform_and_pack(const transforms *tf, const job *jb, float *u,
                               char *packed, size_t point_bytes)
{
    transform_weights(tf, jb, 0, jb->n, u);
    int nt = bk__team_size(jb->cx, (double)POINTS * jb->n * jb->k, jb->tu->transform_per_thread);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int xi = 0; xi < POINTS; xi++) {
        bk_gemm_args g = {
            .prec = BK_FP32, .transb = !jb->backward, .n = jb->n, .k = jb->k,
            .b = u + (size_t)xi * jb->n * jb->k, .ldb = jb->backward ? jb->n : jb->k,
        };
        bk__pack_b_all(jb->cx, &g, packed + (size_t)xi * point_bytes);
    }
}

/* The plan's packed U, built on first use; NULL when there is no usable
 * plan or memory is short. */
static const char *planned_u(const transforms *tf, const job *jb, size_t point_bytes)
{
    bk_weight_plan *p = jb->plan;
    if (!p || p->prec != BK_FP32 || p->kr != jb->cx->kr) return NULL;
    void *packed = atomic_load(&p->winograd_u);
    if (packed) return packed;
    size_t bytes = point_bytes * POINTS;
    float *u = malloc((size_t)POINTS * jb->n * jb->k * sizeof(float));
    packed = u ? aligned_alloc(64, bytes) : NULL;
    if (!packed) {
        free(u);
        return NULL;
    }
    transform_and_pack(tf, jb, u, packed, point_bytes);
    free(u);
    return bk__plan_publish(p, &p->winograd_u, packed, bytes);
}

/*
 * Runs the job; -1 (nothing written) when memory is short. U comes packed
 * from the plan; without one it is transformed once per call and, when the
 * tiles take several bands, packed once too, so that the bands share it
 * (with one band, each GEMM packing its own U[xi] keeps it in cache; packing
 * all 36 first measured 15-35% slower at 8x8). Only filters too large for
 * the U budget go in chunks of output channels, transformed per band.
 */
static int run(const job *jb)
{
    const transforms *tf = transforms_for(jb->cx->kr->isa);
    size_t point_bytes = packed_point_bytes(jb);
    const char *packed_u = planned_u(tf, jb, point_bytes);
    size_t per_col = (size_t)POINTS * jb->k * sizeof(float);
    int chunk = packed_u ? jb->n : channel_chunk(jb);
    size_t per_tile = (size_t)POINTS * (jb->k + chunk) * sizeof(float);
    int band = bk__min_int(jb->tiles, bk__max_int(jb->tu->winograd_min_tiles,
                                                  (int)(jb->tu->winograd_band_bytes / per_tile)));
    float *u = packed_u ? NULL : bk__workspace(BK_WS_WINOGRAD, (size_t)chunk * per_col);
    if (!packed_u && u && chunk == jb->n && band < jb->tiles) {
        char *packed = bk__workspace(BK_WS_WINOGRAD_PACKED, point_bytes * POINTS);
        if (!packed) return -1;
        transform_and_pack(tf, jb, u, packed, point_bytes);
        packed_u = packed;
    }
    float *vm = u || packed_u ? bk__workspace(BK_WS_CONV, (size_t)band * per_tile) : NULL;
    if (!vm) return -1;
    float *v = vm, *m = vm + (size_t)POINTS * band * jb->k;
    for (int t0 = 0; t0 < jb->tiles; t0 += band) {
        int tiles = bk__min_int(band, jb->tiles - t0);
        transform_inputs(tf, jb, t0, tiles, v);
        for (int n0 = 0; n0 < jb->n; n0 += chunk) {
            int cols = bk__min_int(chunk, jb->n - n0);
            /* Unpacked U means one band, or chunks that take turns in u. */
            if (!packed_u) transform_weights(tf, jb, n0, cols, u);
            multiply(jb, tiles, cols, v, u, packed_u, point_bytes, m);
            transform_outputs(tf, jb, t0, tiles, n0, cols, m);
        }
    }
    return 0;
}

/* ---------------------------------------------------------- weight grad -- */

/* dM of tiles [t0, t0 + tiles), dy channels [n0, n0 + cols). */
static void transform_grads(const transforms *tf, const job *jb, int t0,
                            int tiles, int n0, int cols, float *m)
{
    size_t ps = (size_t)tiles * cols;
#pragma omp parallel for schedule(static) num_threads(bk__team_size(jb->cx, \
        (double)tiles * cols * POINTS, jb->tu->transform_per_thread))
    for (int t = 0; t < tiles; t++)
        for (int c0 = 0; c0 < cols; c0 += CB) {
            const float *d[TILE * TILE];
            tile_grads(jb, t0 + t, n0 + c0, d);
            tf->grad(d, bk__min_int(CB, cols - c0), m + (size_t)t * cols + c0, ps);
        }
}

/* dU[xi] = beta dU[xi] + dM[xi]^T V[xi] over the band's tiles: slices of
 * dU's rows, so every sum over tiles stays in one GEMM. */
static void multiply_weight_grad(const job *jb, int tiles, int cols,
                                 const float *m, const float *v, float beta,
                                 float *du)
{
    bk_gemm_args base = {
        .prec = BK_FP32, .transa = 1, .transb = 0,
        .m = cols, .n = jb->k, .k = tiles, .alpha = 1.0f, .beta = beta,
        .a = m, .lda = cols,
        .b = v, .ldb = jb->k,
        .c = du, .ldc = jb->k,
    };
    multiply_points(jb->cx, base, (size_t)tiles * cols, 1, (size_t)tiles * jb->k,
                    (size_t)cols * jb->k, NULL, 0, jb->tu->winograd_min_chunk);
}

/* Filters of output channels [n0, n0 + cols) of dw [n][3][3][k] (+)=
 * G^T dU G. */
static void transform_filter_grads(const transforms *tf, const job *jb,
                                   int n0, int cols, const float *du, float *dw)
{
    size_t ps = (size_t)cols * jb->k;
#pragma omp parallel for schedule(static) num_threads(bk__team_size(jb->cx, \
        (double)cols * jb->k * POINTS, jb->tu->transform_per_thread))
    for (int r = 0; r < cols; r++) {
        float *f = dw + (size_t)(n0 + r) * 9 * jb->k;
        for (int c0 = 0; c0 < jb->k; c0 += CB) {
            float *g[9];
            for (int tap = 0; tap < 9; tap++) g[tap] = f + (size_t)tap * jb->k + c0;
            tf->filter_grad(du + (size_t)r * jb->k + c0, ps,
                            bk__min_int(CB, jb->k - c0), g, jb->accumulate);
        }
    }
}

/* Point (1, 1) of A dy A^T is the sum of the tile's 16 pixels (row 1 of A
 * is all ones), so the bias gradient, the sum of dy over pixels, is the sum
 * of that point over tiles: a sixteenth of the reading that summing dy
 * takes. */
#define SUM_POINT (1 * ALPHA + 1)

/* acc[c] += point SUM_POINT of dM over the band's tiles, for its cols
 * channels. Threads own blocks of channels and add tiles in order, so no
 * sum depends on the team. */
static void sum_tiles(const job *jb, int tiles, int cols, const float *m, double *acc)
{
    const float *point = m + (size_t)SUM_POINT * tiles * cols;
    int blocks = (cols + CB - 1) / CB;
    int nt = bk__min_int(blocks, bk__team_size(jb->cx, (double)tiles * cols,
                                               jb->tu->transform_per_thread));
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int b = 0; b < blocks; b++) {
        int c0 = b * CB, c1 = bk__min_int(cols, c0 + CB);
        for (int t = 0; t < tiles; t++) {
            const float *row = point + (size_t)t * cols;
            for (int c = c0; c < c1; c++) acc[c] += row[c];
        }
    }
}

/* Runs a weight-gradient job into dw and dbias (may be NULL); -1 (nothing
 * written) when memory is short. dU of all output channels, or of chunks of
 * them when that exceeds the U budget (V is then transformed again for every
 * chunk). */
static int run_weight_grad(const job *jb, float *dw, float *dbias)
{
    const transforms *tf = transforms_for(jb->cx->kr->isa);
    size_t per_col = (size_t)POINTS * jb->k * sizeof(float);
    int chunk = channel_chunk(jb);
    size_t per_tile = (size_t)POINTS * (jb->k + chunk) * sizeof(float);
    int band = (int)(jb->tu->winograd_weight_band_bytes / per_tile) / BK_KC * BK_KC;
    band = bk__min_int(jb->tiles, bk__max_int(BK_KC, band));

    float *du = bk__workspace(BK_WS_WINOGRAD, (size_t)chunk * per_col);
    float *vm = du ? bk__workspace(BK_WS_CONV, (size_t)band * per_tile) : NULL;
    double *acc = vm && dbias ? bk__workspace(BK_WS_NORM, sizeof(double) * (size_t)chunk) : NULL;
    if (!vm || (dbias && !acc)) return -1;
    float *v = vm, *m = vm + (size_t)POINTS * band * jb->k;
    for (int n0 = 0; n0 < jb->n; n0 += chunk) {
        int cols = bk__min_int(chunk, jb->n - n0);
        if (acc) memset(acc, 0, sizeof(double) * (size_t)cols);
        for (int t0 = 0; t0 < jb->tiles; t0 += band) {
            int tiles = bk__min_int(band, jb->tiles - t0);
            transform_inputs(tf, jb, t0, tiles, v);
            transform_grads(tf, jb, t0, tiles, n0, cols, m);
            if (acc) sum_tiles(jb, tiles, cols, m, acc);
            multiply_weight_grad(jb, tiles, cols, m, v, t0 ? 1.0f : 0.0f, du);
        }
        transform_filter_grads(tf, jb, n0, cols, du, dw);
        for (int c = 0; acc && c < cols; c++)
            dbias[n0 + c] = jb->accumulate ? dbias[n0 + c] + (float)acc[c] : (float)acc[c];
    }
    return 0;
}

/* ----------------------------------------------------------------- choice -- */

/* Whether Winograd is the faster choice (the measurements are in tuning.h). */
static int winograd_faster(int in_c, int64_t tiles, int planned)
{
    return in_c >= BK_WINOGRAD_MIN_IN_C &&
           tiles >= (planned ? BK_WINOGRAD_PLANNED_MIN_TILES : BK_WINOGRAD_MIN_TILES);
}

/* Whether Winograd may run this convolution at all (see bk_conv_algorithm). */
static int supported(const bk_ctx *cx, bk_precision prec, const bk_conv_shape *s)
{
    return cx->conv_algorithm != BK_CONV_IM2COL && prec == BK_FP32 && s->kernel_h == 3 &&
           s->kernel_w == 3 && s->stride == 1 && s->pad_h == s->pad_w &&
           (s->pad_h == 0 || s->pad_h == 1);
}

/* The job's tile grid over its oh x ow outputs; 0, or -1 when the tile count
 * overflows an int or (under BK_CONV_AUTO) im2col is the faster choice. */
static int tile_grid(job *jb, int in_c)
{
    jb->oh = jb->h + 2 * jb->pad - 2;
    jb->ow = jb->w + 2 * jb->pad - 2;
    jb->th = (jb->oh + TILE - 1) / TILE;
    jb->tw = (jb->ow + TILE - 1) / TILE;
    if ((int64_t)jb->th * jb->tw * jb->batch > INT32_MAX) return -1;
    jb->tiles = jb->th * jb->tw * jb->batch;
    int64_t counted = jb->cx->conv_choice_batch > 0
                          ? (int64_t)jb->th * jb->tw * jb->cx->conv_choice_batch
                          : (int64_t)jb->tiles * jb->cx->conv_batch_scale;
    if (jb->cx->conv_algorithm == BK_CONV_AUTO && !winograd_faster(in_c, counted, jb->plan != NULL))
        return -1;
    return 0;
}

int bk__conv_winograd_forward(const bk_ctx *cx, bk_precision prec,
                              bk_weight_plan *plan, const bk_conv_shape *s,
                              const float *x, int ldx, const float *w,
                              const float *bias, int relu, float *y, int ldy)
{
    if (!supported(cx, prec, s)) return -1;
    job jb = {
        .src = x, .batch = s->batch, .src_h = s->in_h, .src_w = s->in_w,
        .k = s->in_c, .up = s->upsample, .lds = ldx,
        .h = s->in_h << s->upsample, .w = s->in_w << s->upsample, .pad = s->pad_h,
        .n = s->out_c, .wt = w, .bias = bias, .relu = relu, .dst = y, .ldd = ldy,
        .plan = plan && plan->prec == prec ? plan : NULL,
        .cx = cx, .tu = cx->kr->tuning,
    };
    return tile_grid(&jb, s->in_c) ? -1 : run(&jb);
}

int bk__conv_winograd_backward_data(const bk_ctx *cx, bk_precision prec,
                                    const bk_conv_shape *s, const float *dy,
                                    const float *w, float *dx, int accumulate)
{
    if (!supported(cx, prec, s)) return -1;
    /* dy, padded by 2 - pad, is as large as the forward's output. */
    int dy_h = (s->in_h << s->upsample) + 2 * s->pad_h - 2;
    int dy_w = (s->in_w << s->upsample) + 2 * s->pad_h - 2;
    job jb = {
        .src = dy, .batch = s->batch, .src_h = dy_h, .src_w = dy_w,
        .k = s->out_c, .lds = s->out_c,
        .h = dy_h, .w = dy_w, .pad = 2 - s->pad_h,
        .n = s->in_c, .wt = w, .backward = 1, .dst = dx, .ldd = s->in_c,
        .pool = s->upsample, .accumulate = accumulate,
        .cx = cx, .tu = cx->kr->tuning,
    };
    return tile_grid(&jb, s->in_c) ? -1 : run(&jb);
}

int bk__conv_winograd_weight(const bk_ctx *cx, bk_precision prec,
                             const bk_conv_shape *s, const float *x,
                             const float *dy, float *dw, float *dbias,
                             int accumulate)
{
    if (!supported(cx, prec, s)) return -1;
    job jb = {
        .src = x, .batch = s->batch, .src_h = s->in_h, .src_w = s->in_w,
        .k = s->in_c, .up = s->upsample, .lds = s->in_c,
        .h = s->in_h << s->upsample, .w = s->in_w << s->upsample, .pad = s->pad_h,
        .n = s->out_c, .dy = dy, .accumulate = accumulate,
        .cx = cx, .tu = cx->kr->tuning,
    };
    return tile_grid(&jb, s->in_c) ? -1 : run_weight_grad(&jb, dw, dbias);
}
