/*
 * AMX-BF16 micro-kernel: a 32 x 32 tile of C in four 16 x 16 accumulator
 * tiles (tmm0-tmm3), A's two 16-row halves in tmm4-tmm5 and B's two
 * 16-column halves in tmm6-tmm7. One tdpbf16ps per accumulator tile and
 * group of BK_KG steps is exactly the contract's group (CKernels.h): two
 * fp32 chains from zero over the even and odd members of 16 natural pairs,
 * their sum added to the tile. The packed panels are tiles already: A rows
 * BK_KC bf16 values apart, B 32 words a pair.
 *
 * Each pass ends with the tile stored and added to C on the vector units
 * (the contract's passes forbid keeping it in the tiles), which takes about
 * as long as the pass's products. So the addition waits for the next call:
 * issued after that call's products, it runs while the tile unit works,
 * and bk__amx_finish does the last one.
 *
 * Linux hands the tile registers to a process only on request
 * (bk__amx_permitted); each thread loads the tile shapes once.
 */
#include "internal.h"

#ifdef BK_X86
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MR 32
#define NR 32

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

static _Thread_local int configured;

/* The tile whose addition to C waits (see above). A call adds it before it
 * stores its own tile in its place. */
typedef struct {
    float tile[MR * NR] __attribute__((aligned(64)));
    int waiting;
    float *c;
    long ldc;
    int m, n;
    float alpha, beta;
} pending_tile;

static _Thread_local pending_tile pending;

void bk__amx_finish(void)
{
    pending_tile *p = &pending;
    if (!p->waiting) return;
    bk__merge_tile32(p->tile, p->c, p->ldc, p->m, p->n, p->alpha, p->beta);
    p->waiting = 0;
}

/* Every tile 16 rows of 64 bytes: 16 x 16 floats, or 16 x 32 bf16. */
BK_TARGET_AMX
static void configure(void)
{
    tile_config cfg = {.palette = 1};
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
    configured = 1;
}

int bk__amx_permitted(void)
{
    static int _Atomic state; /* 0 not asked, 1 granted, -1 refused */
    if (!state) {
        /* ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA. */
        state = syscall(SYS_arch_prctl, 0x1023, 18) == 0 ? 1 : -1;
    }
    return state == 1;
}

BK_TARGET_AMX
void bk__ukr_amx_bf16(int k, const void *a, const void *b, float *c, long ldc,
                      int m, int n, float alpha, float beta)
{
    if (!configured) configure();
    const char *ap = a, *bp = b;
    const long arow = BK_KC * 2, brow = NR * 4;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    if (m > 16) {
        for (int g = 0; g < bk__bf16_depth(k); g += BK_KG) {
            _tile_loadd(4, ap + 2 * g, arow);
            _tile_loadd(5, ap + 16 * arow + 2 * g, arow);
            _tile_loadd(6, bp + g / 2 * brow, brow);
            _tile_loadd(7, bp + g / 2 * brow + 64, brow);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
    } else {
        /* Rows 16-31 are padding: their half of the tile is skipped. */
        for (int g = 0; g < bk__bf16_depth(k); g += BK_KG) {
            _tile_loadd(4, ap + 2 * g, arow);
            _tile_loadd(6, bp + g / 2 * brow, brow);
            _tile_loadd(7, bp + g / 2 * brow + 64, brow);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
        }
    }
    pending_tile *p = &pending;
    bk__amx_finish();
    float *tile = p->tile;
    _tile_stored(0, tile, NR * 4);
    _tile_stored(1, tile + 16, NR * 4);
    _tile_stored(2, tile + 16 * NR, NR * 4);
    _tile_stored(3, tile + 16 * NR + 16, NR * 4);
    p->waiting = 1;
    p->c = c;
    p->ldc = ldc;
    p->m = m;
    p->n = n;
    p->alpha = alpha;
    p->beta = beta;
}

/* Four tdpbf16ps an iteration on tiles that stay in registers. */
BK_TARGET_AMX
void bk__amx_probe(long iterations, float *sink)
{
    if (!configured) configure();
    uint16_t x[16 * 32] __attribute__((aligned(64)));
    for (int i = 0; i < 16 * 32; i++) x[i] = 0x3500; /* 2^-21: the sums stay finite */
    _tile_loadd(4, x, 64);
    _tile_loadd(5, x, 64);
    _tile_loadd(6, x, 64);
    _tile_loadd(7, x, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (long it = 0; it < iterations; it++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    float t[16 * 16] __attribute__((aligned(64)));
    _tile_stored(0, t, 64);
    sink[0] = t[0];
    _tile_stored(3, t, 64);
    sink[1] = t[0];
}
#endif
