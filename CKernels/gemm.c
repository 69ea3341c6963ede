/*
 * GEMM driver: the BLIS loop nest around a register-tiled micro-kernel.
 *
 *   JC over N (step NC)      the B panel for this JC/PC is packed once
 *    PC over K (step BK_KC)  one MXU pass: the micro-kernel sums it from zero
 *     IC over M (step MC)    each thread packs its own A block
 *      JR over NR, IR over MR -> micro-kernel
 *
 * Threads split M (each owns rows of C and shares the packed B panel) or N
 * (each owns columns and packs its own B), whichever balances better. K is
 * never split, so every C element is reduced by one thread in one order and
 * the bits do not depend on the thread count.
 *
 * A constant B (a layer's weight) can be packed once for every M ahead of
 * time (bk__pack_b_all, kept by a bk_weight_plan); the driver then reads its
 * panels where it would have packed them, and nothing else changes.
 */
#include "internal.h"

#include <stdlib.h>

static inline int ceil_div(int a, int b) { return (a + b - 1) / b; }
static inline int round_up(int a, int b) { return ceil_div(a, b) * b; }

static inline float from_bf16(uint16_t h) { return bk__float((uint32_t)h << 16); }

static inline float load_a(const bk_gemm_args *g, int i, int p)
{
    if (g->a16) return from_bf16(g->a16[(size_t)i * g->lda + p]);
    return g->transa ? g->a[(size_t)p * g->lda + i] : g->a[(size_t)i * g->lda + p];
}

static inline float load_b(const bk_gemm_args *g, int p, int j)
{
    if (g->b16) return from_bf16(g->b16[(size_t)p * g->ldb + j]);
    return g->transb ? g->b[(size_t)j * g->ldb + p] : g->b[(size_t)p * g->ldb + j];
}

/* ---------------------------------------------------------------- packing -- */

/*
 * Packed layouts. Both operands are cut into micro-panels up to BK_KC deep,
 * placed BK_KC apart whatever kc is: a short last pass packs into the same
 * place as a full one, so a thread that packs only its own columns never
 * writes where another thread is still reading.
 *
 * A (MR rows per micro-panel) is row-major with rows BK_KC apart, which makes
 * the whole A block row-major: micro-kernels broadcast A values straight from
 * memory, so any fixed layout serves them, and this one turns packing a
 * row-major A (the im2col matrix of a convolution) into plain copies. A
 * transposed A (the weight gradient's dy^T) would need a transpose into
 * that layout, so it packs k-major instead, MR values per k step, again by
 * plain copies, for micro-kernels that read that layout (kr->ukr_kmajor).
 *
 * B (NR columns per micro-panel) is k-major, NR values per k step, loaded as
 * vectors.
 *
 * BK_BF16 runs whole groups of BK_KG steps (the contract in CKernels.h):
 * both operands are zero from kc to bk__bf16_depth(kc), and K goes in pairs,
 * as the dot instructions take it: B holds per pair NR 32-bit words, each
 * the bf16 bits of one column's two steps, which two the path's pair order
 * says (bk__pair_steps); half the bytes of a fp32 panel, which every
 * micro-kernel call streams. On a path with a dot instruction A holds bf16
 * bits too: a row-major row as words in the same pair order, or k-major MR
 * words per pair like B (AMX reads rows only, so a transposed A is
 * gathered into rows). Emulating paths keep A in fp32 (bf16-rounded
 * values), whose values broadcast from memory with no unpacking.
 *
 * Emulating paths also mark each bf16 micro-panel that holds an operand
 * below 2^-55 (see bk__bf16_dot): a tile whose panels are both unmarked never
 * needs the contract's flush, and runs on the path's FMA kernel.
 */
/* The portable kr->pack_pairs. */
static void pack_pairs_portable(const float *r0, const float *r1, int n, uint32_t *dst)
{
    for (int i = 0; i < n; i++)
        dst[i] = bk__bf16_pair(r0 ? r0[i] : 0.0f, r1 ? r1[i] : 0.0f);
}

/* Words of n columns from rows r0 and r1 (either NULL: zeros; chain pairs
 * can put the low step past kc and not the high one), r0 in the low half. */
static void pack_pairs(const bk_kernels *kr, const float *r0, const float *r1,
                       int n, uint32_t *dst)
{
    (kr->pack_pairs ? kr->pack_pairs : pack_pairs_portable)(r0, r1, n, dst);
}

/* pack_pairs for rows already in bf16: plain interleaving (the common case
 * in a loop of its own, which the compiler vectorises). */
static void interleave_bf16(const uint16_t *r0, const uint16_t *r1, int n, uint32_t *dst)
{
    if (r0 && r1) {
        for (int i = 0; i < n; i++) dst[i] = r0[i] | (uint32_t)r1[i] << 16;
        return;
    }
    for (int i = 0; i < n; i++)
        dst[i] = (r0 ? r0[i] : 0u) | (uint32_t)(r1 ? r1[i] : 0u) << 16;
}

/* A run of bf16 values (zero from kc to depth) as words of chain pairs. */
static void order_chain_pairs(const uint16_t *run, int depth, uint16_t *dst)
{
    for (int q = 0; q < depth / 2; q++) {
        int lo, hi;
        bk__pair_steps(1, q, &lo, &hi);
        dst[2 * q] = run[lo];
        dst[2 * q + 1] = run[hi];
    }
}

/* Rows [i0, i0+rows) x K [p0, p0+kc) of op(A), row-major panels (k-major for
 * a transposed A where the path reads it); rows up to the next multiple of
 * MR are zero. For an emulated BK_BF16, tiny[x] = 1 marks micro-panel x as
 * holding an operand that is not plain. */
static void pack_a(const bk_kernels *kr, const bk_gemm_args *g, int i0,
                   int rows, int p0, int kc, void *dst, unsigned char *tiny)
{
    int bf16 = g->prec == BK_BF16, mr = kr->mr[g->prec];
    int padded = round_up(rows, mr), depth = bf16 ? bk__bf16_depth(kc) : kc;
    if (bf16 && kr->dot_bf16) {
        uint16_t *h = dst;
        if (g->transa && kr->ukr_kmajor[BK_BF16]) {
            for (int x0 = 0; x0 < padded; x0 += mr) {
                int have = bk__min_int(mr, rows - x0);
                uint32_t *panel = (uint32_t *)(h + (size_t)x0 * BK_KC);
                for (int q = 0; q < depth / 2; q++) {
                    int lo, hi;
                    bk__pair_steps(kr->chain_pairs, q, &lo, &hi);
                    const float *col = g->a + i0 + x0;
                    pack_pairs(kr, lo < kc ? col + (size_t)(p0 + lo) * g->lda : NULL,
                               hi < kc ? col + (size_t)(p0 + hi) * g->lda : NULL, have,
                               panel + (size_t)q * mr);
                    for (int x = have; x < mr; x++) panel[(size_t)q * mr + x] = 0;
                }
            }
            return;
        }
        for (int x = rows; x < padded; x++) memset(h + (size_t)x * BK_KC, 0, 2 * (size_t)depth);
        if (g->transa) {
            /* A path without k-major kernels reads rows, gathered here. */
            kr->pack_rows_bf16(g->a + (size_t)p0 * g->lda + i0, g->lda, rows, kc, h);
            for (int x = 0; x < rows; x++)
                memset(h + (size_t)x * BK_KC + kc, 0, sizeof(uint16_t) * (depth - kc));
            return;
        }
        /* Natural pairs are the row itself; chain pairs go through a run. An
         * A given in bf16 (g->a16, never transposed) is copied. */
        uint16_t run[BK_KC];
        for (int x = 0; x < rows; x++) {
            uint16_t *d = h + (size_t)x * BK_KC, *r = kr->chain_pairs ? run : d;
            size_t at = (size_t)(i0 + x) * g->lda + p0;
            if (g->a16) memcpy(r, g->a16 + at, sizeof(uint16_t) * kc);
            else kr->bf16_from_f32(g->a + at, r, (size_t)kc);
            memset(r + kc, 0, sizeof(uint16_t) * (depth - kc));
            if (kr->chain_pairs) order_chain_pairs(run, depth, d);
        }
        return;
    }
    float *f = dst;
    if (g->transa) {
        kr->pack_kmajor(g->a + (size_t)p0 * g->lda + i0, g->lda, rows, kc, bf16, f);
        for (int x0 = 0; x0 < padded && depth > kc; x0 += mr)
            memset(f + (size_t)x0 * BK_KC + (size_t)kc * mr, 0, sizeof(float) * mr * (depth - kc));
    } else {
        for (int x = rows; x < padded; x++) memset(f + (size_t)x * BK_KC, 0, sizeof(float) * depth);
        for (int x = 0; x < rows; x++) {
            size_t at = (size_t)(i0 + x) * g->lda + p0;
            float *d = f + (size_t)x * BK_KC;
            if (g->a16)
                for (int p = 0; p < kc; p++) d[p] = from_bf16(g->a16[at + p]);
            else if (bf16) kr->round_bf16(g->a + at, d, (size_t)kc);
            else bk__copy_floats(d, g->a + at, (size_t)kc);
            memset(d + kc, 0, sizeof(float) * (depth - kc));
        }
    }
    if (!bf16) return;
    for (int x0 = 0; x0 < padded; x0 += mr) {
        const float *panel = f + (size_t)x0 * BK_KC;
        int t = 0;
        if (g->transa) t = bk__any_tiny_f32(panel, (size_t)kc * mr);
        for (int x = 0; x < mr && !g->transa; x++) t |= bk__any_tiny_f32(panel + (size_t)x * BK_KC, kc);
        tiny[x0 / mr] = (unsigned char)t;
    }
}

/* K [p0, p0+kc) x columns [j0, j0+cols) of op(B), zero-padded to whole
 * micro-panels (and for bf16 to whole groups); tiny as for pack_a, per B
 * micro-panel. The source is read in contiguous runs, converted to bf16 a
 * run at a time on the vector path. */
static void pack_b(const bk_kernels *kr, const bk_gemm_args *g, int p0,
                   int kc, int j0, int cols, void *dst, unsigned char *tiny)
{
    int w = kr->nr[g->prec], bf16 = g->prec == BK_BF16;
    float *f = dst;
    uint32_t *words = dst;
    int padded = round_up(cols, w), depth = bf16 ? bk__bf16_depth(kc) : kc;
    int pairs = depth / 2;
    if (g->transb) {
        /* B stored [n][k]: column x of op(B) is contiguous along p. Whole
         * micro-panels go to the path's transposing packer when it has one. */
        uint16_t runh[BK_KC], ordered[BK_KC];
        size_t es = bf16 ? 2 : 4;
        for (int x0 = 0; x0 < padded; x0 += w) {
            char *panel = (char *)dst + (size_t)x0 * BK_KC * es;
            const float *s0 = g->b + (size_t)(j0 + x0) * g->ldb + p0;
            if (kr->pack_columns && x0 + w <= cols) {
                kr->pack_columns(s0, g->ldb, kc, bf16 ? 1 + kr->chain_pairs : 0, panel);
                continue;
            }
            /* Each case in a loop of its own: with the tests inside, the
             * copy ran up to twice as slow, by how the linker happened to
             * align it. */
            for (int x = x0; x < x0 + w; x++) {
                const float *s = g->b + (size_t)(j0 + x) * g->ldb + p0;
                if (bf16) {
                    uint32_t *d = (uint32_t *)panel + (x - x0);
                    if (x < cols) kr->bf16_from_f32(s, runh, (size_t)kc);
                    else memset(runh, 0, sizeof(uint16_t) * kc);
                    memset(runh + kc, 0, sizeof(uint16_t) * (depth - kc));
                    if (kr->chain_pairs) order_chain_pairs(runh, depth, ordered);
                    const uint16_t *o = kr->chain_pairs ? ordered : runh;
                    for (int q = 0; q < pairs; q++)
                        d[(size_t)q * w] = o[2 * q] | (uint32_t)o[2 * q + 1] << 16;
                } else if (x >= cols) {
                    for (int p = 0; p < kc; p++) f[(size_t)x0 * BK_KC + (size_t)p * w + x - x0] = 0.0f;
                } else {
                    for (int p = 0; p < kc; p++) f[(size_t)x0 * BK_KC + (size_t)p * w + x - x0] = s[p];
                }
            }
        }
    } else if (bf16) {
        for (int q = 0; q < pairs; q++) {
            int lo, hi;
            bk__pair_steps(kr->chain_pairs, q, &lo, &hi);
            size_t at0 = (size_t)(p0 + lo) * g->ldb + j0, at1 = (size_t)(p0 + hi) * g->ldb + j0;
            for (int x = 0; x < padded; x += w) {
                uint32_t *d = words + (size_t)x * BK_KC / 2 + (size_t)q * w;
                int have = bk__min_int(w, cols - x);
                if (g->b16)
                    interleave_bf16(lo < kc ? g->b16 + at0 + x : NULL,
                                    hi < kc ? g->b16 + at1 + x : NULL, have, d);
                else
                    pack_pairs(kr, lo < kc ? g->b + at0 + x : NULL,
                               hi < kc ? g->b + at1 + x : NULL, have, d);
                for (int z = have; z < w; z++) d[z] = 0;
            }
        }
    } else {
        for (int p = 0; p < kc; p++) {
            const float *s = g->b + (size_t)(p0 + p) * g->ldb + j0;
            for (int x = 0; x < padded; x += w) {
                float *d = f + (size_t)x * BK_KC + (size_t)p * w;
                int have = bk__min_int(w, cols - x);
                bk__copy_floats(d, s + x, (size_t)have);
                for (int z = have; z < w; z++) d[z] = 0.0f;
            }
        }
    }
    if (!bf16 || kr->dot_bf16) return;
    for (int x = 0; x < padded; x += w)
        tiny[x / w] = (unsigned char)bk__any_tiny_bf16((const uint16_t *)(words + (size_t)x * BK_KC / 2),
                                                       (size_t)pairs * 2 * w);
}

/* --------------------------------------------------------- macro-kernel -- */

/* C[i0.., j0..] for a packed A block (rows) and the B micro-panels
 * [jt0, jt1) of the packed panel (cols columns in all), with their tiny
 * marks (pack_a, pack_b). */
static void macro_kernel(const bk_kernels *kr, const bk_gemm_args *g,
                         const char *ablock, const unsigned char *atiny,
                         int i0, int rows, const char *bpanel,
                         const unsigned char *btiny, int j0, int cols,
                         int jt0, int jt1, int kc, float beta)
{
    int bf16 = g->prec == BK_BF16, exact = bf16 && !kr->dot_bf16;
    size_t bes = bf16 ? 2 : 4, aes = bf16 && kr->dot_bf16 ? 2 : 4; /* element sizes */
    /* A transposed A is packed k-major where the path reads that. */
    bk_ukr ukr = g->transa && kr->ukr_kmajor[g->prec] ? kr->ukr_kmajor[g->prec] : kr->ukr[g->prec];
    int mr = kr->mr[g->prec], nr = kr->nr[g->prec];
    for (int jt = jt0; jt < jt1; jt++) {
        int jr = jt * nr, nj = bk__min_int(nr, cols - jr);
        const char *bp = bpanel + (size_t)jr * BK_KC * bes;
        for (int ir = 0; ir < rows; ir += mr) {
            int mi = bk__min_int(mr, rows - ir);
            float *c = g->c + (size_t)(i0 + ir) * g->ldc + j0 + jr;
            const char *ap = ablock + (size_t)ir * BK_KC * aes;
            if (exact && (atiny[ir / mr] | btiny[jt]))
                bk__ukr_bf16_exact(mr, nr, g->transa, kc, (const float *)ap,
                                   (const uint16_t *)bp, c, g->ldc, mi, nj, g->alpha, beta);
            else
                ukr(kc, ap, bp, c, g->ldc, mi, nj, g->alpha, beta);
        }
    }
    if (bf16 && kr->ukr_finish) kr->ukr_finish();
}

/* Rows [i0, i0 + rows) and columns [j0, j1) of C through the epilogue (see
 * bk_gemm_args), once they hold their final sums. */
static void epilogue(const bk_gemm_args *g, int i0, int rows, int j0, int j1)
{
    if (!g->bias && !g->relu) return;
    for (int i = i0; i < i0 + rows; i++) {
        float *restrict c = g->c + (size_t)i * g->ldc;
        if (g->bias)
            for (int j = j0; j < j1; j++) c[j] += g->bias[j];
        if (g->relu)
            for (int j = j0; j < j1; j++) c[j] = c[j] > 0.0f ? c[j] : 0.0f;
    }
}

/* ------------------------------------------------------------------ team -- */

/* How one GEMM is cut: its cache blocks along N and M and its K passes
 * (the GEMM blocking; a weight plan is something else, see plan.c). */
typedef struct {
    int nc_eff, mc;
    int passes;          /* BK_KC passes along K */
    int group;           /* passes packed together */
    size_t pass_bytes;   /* one pass of the B panel: its micro-panels, then
                            their tiny marks from flags_at (pack_b) */
    size_t flags_at;
    size_t b_bytes;      /* the packed group in the workspace (0: prepacked) */
    size_t a_bytes;      /* one thread's A block, then its tiny marks */
} blocking;

/* The B-side blocking depends only on N, K, the precision and the path, so
 * panels packed ahead of time for one GEMM serve every M. */
static void b_blocking(const bk_kernels *kr, bk_precision prec, int n, int k,
                       blocking *p)
{
    size_t es = prec == BK_BF16 ? 2 : 4;
    p->nc_eff = bk__min_int(kr->tuning->nc, round_up(n, kr->nr[prec]));
    p->flags_at = (size_t)BK_KC * p->nc_eff * es;
    p->pass_bytes = (p->flags_at + (size_t)p->nc_eff / kr->nr[prec] + 63) & ~(size_t)63;
    p->passes = ceil_div(k, BK_KC);
}

static blocking make_blocking(const bk_kernels *kr, const bk_gemm_args *g)
{
    blocking p;
    b_blocking(kr, g->prec, g->n, g->k, &p);
    int mr = kr->mr[g->prec];
    p.mc = bk__min_int(bk__max_int(kr->tuning->mc / mr, 1) * mr, round_up(g->m, mr));
    size_t fit = kr->tuning->b_group_bytes / p.pass_bytes;
    p.group = fit < 1 ? 1 : fit > (size_t)p.passes ? p.passes : (int)fit;
    p.b_bytes = g->packed_b ? 0 : p.pass_bytes * (size_t)p.group;
    p.a_bytes = ((size_t)BK_KC * p.mc * sizeof(float) + (size_t)p.mc / mr + 63) & ~(size_t)63;
    return p;
}

/* Bytes of workspace gemm_team needs for a team of `threads`. */
static size_t workspace_size(const bk_kernels *kr, const bk_gemm_args *g,
                             int threads)
{
    blocking p = make_blocking(kr, g);
    return p.b_bytes + p.a_bytes * (size_t)threads;
}

/* ----------------------------------------------------------- prepacked B -- */

/*
 * A prepacked B holds every pass of every JC panel, each exactly as the
 * driver packs it into its workspace: panels in N order, the passes of a
 * panel in K order, pass_bytes apart. The driver then reads the passes in
 * place of packing them, so the micro-kernels see the same bytes.
 */
size_t bk__packed_b_size(const bk_kernels *kr, bk_precision prec, int n, int k)
{
    blocking p;
    b_blocking(kr, prec, n, k, &p);
    return (size_t)ceil_div(n, p.nc_eff) * p.passes * p.pass_bytes;
}

void bk__pack_b_all(const bk_ctx *cx, const bk_gemm_args *g, void *dst)
{
    const bk_kernels *kr = cx->kr;
    blocking p;
    b_blocking(kr, g->prec, g->n, g->k, &p);
    int units = ceil_div(g->n, p.nc_eff) * p.passes;
#pragma omp parallel for schedule(static) \
    num_threads(bk__team_size(cx, (double)g->n * g->k, kr->tuning->pack_per_thread))
    for (int u = 0; u < units; u++) {
        int j0 = u / p.passes * p.nc_eff, p0 = u % p.passes * BK_KC;
        char *pass = (char *)dst + (size_t)u * p.pass_bytes;
        pack_b(kr, g, p0, bk__min_int(BK_KC, g->k - p0), j0,
               bk__min_int(p.nc_eff, g->n - j0), pass, (unsigned char *)pass + p.flags_at);
    }
}

/*
 * How a team shares one JC panel: 1 = split M, 0 = split N. The estimate is
 * a thread's work per k step, in FMA lanes: its micro-tiles, plus packing
 * (a copied element costs about as much as a 16-lane FMA instruction). Split
 * M packs only the thread's own A rows but shares B and so meets barriers;
 * split N packs its own B columns without barriers but the whole A. Ties, and
 * near ties (the barriers), go to N. A prepacked B costs neither split any
 * copying.
 */
static int split_m(int mr, int nr, int m_tiles, int n_tiles, int nt,
                   int prepacked)
{
    double tile = (double)mr * nr, copy = 16.0;
    double rows = (double)m_tiles * mr;
    double cols = prepacked ? 0.0 : (double)n_tiles * nr;
    double cost_m = ceil_div(m_tiles, nt) * (double)n_tiles * tile + (rows + cols) / nt * copy;
    double cost_n = ceil_div(n_tiles, nt) * (double)m_tiles * tile + (rows + cols / nt) * copy;
    return cost_m * 1.02 < cost_n;
}

static void team_barrier(int nt)
{
    if (nt > 1) {
#pragma omp barrier
    }
}

/*
 * Runs the GEMM as thread `tid` of a team of `nt` that all call it with the
 * same arguments and workspace (nt = 1: a single thread, no barriers, safe
 * inside a parallel region).
 *
 * The PC loop runs in groups of passes: the B panels of a whole group are
 * packed first, then each A block runs through all of them while its C block
 * stays in the core's L2. Every C element still sees the passes in K order.
 * With a prepacked B nothing is packed or written to shared memory, so the
 * team needs no barriers at all.
 */
static void gemm_team(const bk_kernels *kr, const bk_gemm_args *g, void *ws,
                      int tid, int nt)
{
    blocking pl = make_blocking(kr, g);
    int mr = kr->mr[g->prec], nr = kr->nr[g->prec];
    const char *prepacked = g->packed_b;
    char *bgroup = ws;
    char *ablock = (char *)ws + pl.b_bytes + pl.a_bytes * (size_t)tid;
    unsigned char *atiny = (unsigned char *)ablock + (size_t)BK_KC * pl.mc * sizeof(float);
    int m_tiles = ceil_div(g->m, mr);
    size_t es = g->prec == BK_BF16 ? 2 : 4;

    for (int j0 = 0; j0 < g->n; j0 += pl.nc_eff) {
        int cols = bk__min_int(pl.nc_eff, g->n - j0);
        int n_tiles = ceil_div(cols, nr);
        int by_m = split_m(mr, nr, m_tiles, n_tiles, nt, prepacked != NULL);
        int barriers = by_m && !prepacked;
        /* This thread's rows [r0, r1) and B micro-panels [t0, t1). */
        int r0 = 0, r1 = g->m, t0 = 0, t1 = n_tiles;
        if (by_m) {
            r0 = bk__min_int(g->m, (int)((long)m_tiles * tid / nt) * mr);
            r1 = bk__min_int(g->m, (int)((long)m_tiles * (tid + 1) / nt) * mr);
        } else {
            t0 = (int)((long)n_tiles * tid / nt);
            t1 = (int)((long)n_tiles * (tid + 1) / nt);
        }
        /* Split M: the team packs the shared panels together; split N: each
         * thread packs only the micro-panels it uses, so needs no barrier. */
        int p_lo = by_m ? (int)((long)n_tiles * tid / nt) : t0;
        int p_hi = by_m ? (int)((long)n_tiles * (tid + 1) / nt) : t1;
        int c0 = p_lo * nr, c1 = bk__min_int(cols, p_hi * nr);

        for (int g0 = 0; g0 < g->k; g0 += pl.group * BK_KC) {
            int passes = bk__min_int(pl.group, ceil_div(g->k - g0, BK_KC));
            const char *bpasses = bgroup;
            if (prepacked)
                bpasses = prepacked + ((size_t)(j0 / pl.nc_eff) * pl.passes + g0 / BK_KC) *
                                          pl.pass_bytes;
            for (int q = 0; q < passes && c1 > c0 && !prepacked; q++) {
                int p0 = g0 + q * BK_KC, kc = bk__min_int(BK_KC, g->k - p0);
                char *pass = bgroup + pl.pass_bytes * q;
                pack_b(kr, g, p0, kc, j0 + c0, c1 - c0, pass + (size_t)c0 * BK_KC * es,
                       (unsigned char *)pass + pl.flags_at + c0 / nr);
            }
            if (barriers) team_barrier(nt);
            int last = g0 + passes * BK_KC >= g->k;
            for (int i0 = r0; i0 < r1; i0 += pl.mc) {
                int rows = bk__min_int(pl.mc, r1 - i0);
                for (int q = 0; q < passes; q++) {
                    int p0 = g0 + q * BK_KC, kc = bk__min_int(BK_KC, g->k - p0);
                    const char *pass = bpasses + pl.pass_bytes * q;
                    pack_a(kr, g, i0, rows, p0, kc, ablock, atiny);
                    macro_kernel(kr, g, ablock, atiny, i0, rows, pass,
                                 (const unsigned char *)pass + pl.flags_at, j0, cols, t0,
                                 t1, kc, p0 == 0 ? g->beta : 1.0f);
                }
                if (last)
                    epilogue(g, i0, rows, j0 + t0 * nr, j0 + bk__min_int(cols, t1 * nr));
            }
            if (barriers) team_barrier(nt);
        }
        /* Split N needs no barrier inside a panel, but the next panel may
         * share its micro-panels out differently: a thread must not pack
         * over panels another thread is still reading. */
        if (!by_m && !prepacked && j0 + pl.nc_eff < g->n) team_barrier(nt);
    }
}

/* ------------------------------------------------------------- entry points -- */

/* The contract computed one element at a time (bk_gemm_reference). */
static void reference(const bk_gemm_args *g)
{
    bk_precision prec = g->prec;
    int m = g->m, n = g->n, k = g->k, ldc = g->ldc;
    float alpha = g->alpha, beta = g->beta, *c = g->c;
    int skip = k <= 0 || alpha == 0.0f;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float *cij = c + (size_t)i * ldc + j;
            float t = beta == 0.0f ? 0.0f : beta * *cij;
            for (int p0 = 0; !skip && p0 < k; p0 += BK_KC) {
                int end = bk__min_int(k, p0 + BK_KC);
                float acc = 0.0f;
                for (int p = p0; p < end && prec != BK_BF16; p++)
                    acc = fmaf(load_a(g, i, p), load_b(g, p, j), acc);
                for (int g0 = p0; g0 < end && prec == BK_BF16; g0 += BK_KG) {
                    float e = 0.0f, o = 0.0f;
                    for (int p = g0; p < g0 + BK_KG; p += 2) {
                        float x0 = 0.0f, y0 = 0.0f, x1 = 0.0f, y1 = 0.0f;
                        if (p < end) {
                            x0 = bk__bf16_round(load_a(g, i, p));
                            y0 = bk__bf16_round(load_b(g, p, j));
                        }
                        if (p + 1 < end) {
                            x1 = bk__bf16_round(load_a(g, i, p + 1));
                            y1 = bk__bf16_round(load_b(g, p + 1, j));
                        }
                        e = bk__bf16_dot(x0, y0, e);
                        o = bk__bf16_dot(x1, y1, o);
                    }
                    acc = bk__bf16_add(acc, bk__bf16_add(e, o));
                }
                t = fmaf(alpha, acc, t);
            }
            *cij = t;
        }
}

static void scale_c(const bk_gemm_args *g)
{
    for (int i = 0; i < g->m; i++) {
        float *c = g->c + (size_t)i * g->ldc;
        for (int j = 0; j < g->n; j++)
            c[j] = g->beta == 0.0f ? 0.0f : g->beta * c[j];
    }
}

static void gemm_args_run(const bk_ctx *cx, const bk_gemm_args *g, int allow_team)
{
    if (g->m <= 0 || g->n <= 0) return;
    if (g->k <= 0 || g->alpha == 0.0f) {
        scale_c(g);
        epilogue(g, 0, g->m, 0, g->n);
        return;
    }
    const bk_kernels *kr = cx->kr;
    int nt = 1;
    if (allow_team) {
        nt = bk__team_size(cx, (double)g->m * g->n * g->k, kr->tuning->gemm_fmas_per_thread);
        int tiles = ceil_div(g->m, kr->mr[g->prec]);
        int ntiles = ceil_div(g->n, kr->nr[g->prec]);
        int most = tiles > ntiles ? tiles : ntiles;
        if (nt > most) nt = most;
    }
    void *ws = bk__workspace(BK_WS_GEMM, workspace_size(kr, g, nt));
    if (!ws) {
        /* The reference reads B itself: a prepacked one always comes with
         * the matrix it was packed from. */
        reference(g);
        epilogue(g, 0, g->m, 0, g->n);
        return;
    }
    if (nt == 1) {
        gemm_team(kr, g, ws, 0, 1);
        return;
    }
#pragma omp parallel num_threads(nt)
    gemm_team(kr, g, ws, bk__thread_num(), bk__team_count());
}

void bk__gemm(const bk_ctx *cx, const bk_gemm_args *g) { gemm_args_run(cx, g, 1); }

void bk__gemm_serial(const bk_ctx *cx, const bk_gemm_args *g) { gemm_args_run(cx, g, 0); }

void bk_gemm(bk_precision prec, int transa, int transb, int m, int n, int k,
             float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc)
{
    bk_gemm_args g = {prec, transa, transb, m, n, k, alpha, beta,
                      a, b, lda, ldb, c, ldc};
    bk_ctx cx = bk__ctx();
    bk__gemm(&cx, &g);
}

/* Packs W for the plan's path on first use; NULL (the caller packs per
 * call) when the plan does not describe this GEMM or memory is short. */
static const void *planned_b(const bk_ctx *cx, bk_weight_plan *p,
                             const bk_gemm_args *g)
{
    if (!p || p->prec != g->prec || p->n != g->n || p->k != g->k ||
        p->kr != cx->kr)
        return NULL;
    void *packed = atomic_load(&p->gemm_b);
    if (packed) return packed;
    size_t bytes = bk__packed_b_size(p->kr, p->prec, p->n, p->k);
    packed = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!packed) return NULL;
    bk__pack_b_all(cx, g, packed);
    return bk__plan_publish(p, &p->gemm_b, packed, bytes);
}

void bk__gemm_planned(const bk_ctx *cx, const bk_gemm_args *g,
                      bk_weight_plan *plan)
{
    bk_gemm_args run = *g;
    if (g->m > 0 && g->k > 0 && g->alpha != 0.0f) run.packed_b = planned_b(cx, plan, g);
    bk__gemm(cx, &run);
}

void bk_gemm_planned(bk_precision prec, bk_weight_plan *plan, int m, int n,
                     int k, float alpha, const float *a, int lda,
                     const float *w, int ldw, float beta, float *c, int ldc)
{
    bk_gemm_args g = {prec, 0, 1, m, n, k, alpha, beta,
                      a, w, lda, ldw, c, ldc, NULL};
    bk_ctx cx = bk__ctx();
    bk__gemm_planned(&cx, &g, plan);
}

void bk_gemm_reference(bk_precision prec, int transa, int transb, int m,
                       int n, int k, float alpha, const float *a, int lda,
                       const float *b, int ldb, float beta, float *c, int ldc)
{
    bk_gemm_args g = {prec, transa, transb, m, n, k, alpha, beta,
                      a, b, lda, ldb, c, ldc};
    reference(&g);
}
