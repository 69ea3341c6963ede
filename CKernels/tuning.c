/*
 * The tuning table of each instruction-set path (see tuning.h). Only the
 * GEMM's cache blocks differ between paths so far; the paths share every
 * other value, set on AVX2 (Zen 4, 2 cores), until they are measured
 * themselves.
 */
#include "internal.h"

#define SHARED                                                                \
    /* Packed B panels of a group are re-read by every A block: they stay     \
     * in the last-level cache. */                                            \
    .b_group_bytes = (size_t)4 << 20,                                         \
    /* Below a 96^3 product per thread a team costs more than it saves. */    \
    .gemm_fmas_per_thread = 96.0 * 96.0 * 96.0,                               \
    /* Below these many elements per thread one thread packs a weight. */     \
    .pack_per_thread = 65536.0,                                               \
    /* Band GEMMs stay efficient; the buffer fits a per-thread workspace. */  \
    .col_bytes = (size_t)16 << 20,                                            \
    /* However wide K is, a band's GEMM keeps an M of 256. */                 \
    .min_band_passes = 2,                                                     \
    /* Passes over memory (gathers, sums, transforms): below 32768 floats     \
     * per thread a team costs more than it saves. */                         \
    .copy_per_thread = 32768.0,                                               \
    .add_per_thread = 32768.0,                                                \
    .transform_per_thread = 32768.0,                                          \
    /* A thread's run of one pixel's channels is at least a cache line. */    \
    .min_slice = 16,                                                          \
    /* Bands of 3 MiB, whose V and M stay in the caches between the           \
     * transforms and the GEMMs, made the tiny preset's training iteration    \
     * ~10% faster than 16 MiB ones, cifar32's ~5% (interleaved runs,         \
     * minimum times). */                                                     \
    .winograd_band_bytes = (size_t)3 << 20,                                   \
    /* Only huge filters (which come with small images: few bands) are        \
     * chunked, their U recomputed for every band. */                         \
    .winograd_u_bytes = (size_t)32 << 20,                                     \
    /* Each of a band's 36 GEMMs keeps a useful M. */                         \
    .winograd_min_tiles = 48,                                                 \
    /* A chunk is a few micro-panels wide. */                                 \
    .winograd_min_chunk = 64,                                                 \
    /* Each point's GEMM makes a few BK_KC passes on its dU per band; 12 MiB  \
     * made the tiny iteration ~5% faster than 48 MiB. */                     \
    .winograd_weight_band_bytes = (size_t)12 << 20,                           \
    /* About half a query-by-key tile of products. */                         \
    .attention_fmas_per_thread = 64.0 * 128.0 * 128.0,                        \
    /* Elementwise passes: below these many elements per thread a team        \
     * costs more than it saves. */                                           \
    .norm_per_thread = 32768.0,                                               \
    .elements_per_thread = 32768.0,                                           \
    .optim_per_thread = 65536.0,                                              \
    .pool_per_thread = 65536.0,                                               \
    .resize_per_thread = 65536.0,                                             \
    .vector_per_thread = 65536.0

/* An A block of 128 KiB (fp32, one BK_KC pass) for L2, a B panel of 1 MiB. */
const bk_tuning bk__tuning_generic = {.mc = 256, .nc = 2048, SHARED};

/* BLIS's Haswell MC, an A block of 84 KiB for L2; BLIS's SKX NC, a B panel
 * of 1.5 MiB (fp32) for L3. */
const bk_tuning bk__tuning_avx2 = {.mc = 168, .nc = 3072, SHARED};

/* The MC of BLIS's SKX double-precision GEMM, an A block of 120 KiB for L2;
 * the B panel as AVX2's. */
const bk_tuning bk__tuning_avx512 = {.mc = 240, .nc = 3072, SHARED};
