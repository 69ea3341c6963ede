/*
 * Tuning: every constant that sets how the kernels block and split their
 * work, in one place, as BLIS keeps its block sizes in config/<arch>.
 *
 * Two kinds. The per-path table (bk_tuning, one for each instruction-set
 * path, filled in tuning.c) holds what moves only speed: cache budgets,
 * block sizes, and the work below which a thread team costs more than it
 * saves. No value in it changes a bit of any result. The fixed constants
 * after it are compile-time and the same on every path, because they size
 * arrays or because they fix the order of a sum or the choice of an
 * algorithm, and so the bits: a value per path would make results depend
 * on the path.
 */
#ifndef BK_TUNING_H
#define BK_TUNING_H

#include <stddef.h>

typedef struct {
    /* GEMM (gemm.c) */
    int mc, nc;                  /* cache blocks along M and N (multiples of the
                                    path's mr, nr) */
    size_t b_group_bytes;        /* packed B passes of one group */
    double gemm_fmas_per_thread; /* least FMAs per team member */
    double pack_per_thread;      /* least elements packed ahead per member */

    /* im2col convolution (conv.c) */
    size_t col_bytes;            /* one band of the column matrix */
    int min_band_passes;         /* least rows of a band, in BK_KC passes */
    double copy_per_thread;      /* least floats gathered (im2col) per member */
    double add_per_thread;       /* least floats summed (col2im, dbias) per member */
    int min_slice;               /* least channels of a col2im or dbias slice */

    /* Winograd convolution (conv_winograd.c) */
    size_t winograd_band_bytes;  /* V and M of one band of tiles */
    size_t winograd_u_bytes;     /* U of all output channels before chunking */
    int winograd_min_tiles;      /* least tiles of a band or of a GEMM slice */
    int winograd_min_chunk;      /* least output channels of a chunk or slice */
    size_t winograd_weight_band_bytes; /* V and dM of one weight-gradient band */
    double transform_per_thread; /* least transform outputs per member */

    /* the rest */
    double attention_fmas_per_thread; /* attention.c */
    double norm_per_thread;      /* norm.c: elements */
    double elements_per_thread;  /* elementwise.c */
    double optim_per_thread;     /* optim.c */
    double pool_per_thread;      /* pool.c */
    double resize_per_thread;    /* resize.c: multiply-adds */
    double vector_per_thread;    /* vector.c */
} bk_tuning;

extern const bk_tuning bk__tuning_generic;
extern const bk_tuning bk__tuning_avx2;
extern const bk_tuning bk__tuning_avx512;

/* ------------------------------------------------ fixed on every path -- */

/* Channels per Winograd transform block: the 6x6 block's stack arrays take
 * 9 KiB of L1. */
#define BK_WINOGRAD_CB 64

/*
 * BK_CONV_AUTO takes Winograd for a convolution of at least
 * BK_WINOGRAD_MIN_IN_C input channels and BK_WINOGRAD_MIN_TILES 4x4 output
 * tiles (BK_WINOGRAD_PLANNED_MIN_TILES with a plan's transformed filters).
 * Measured with bgkernels bench --conv-algorithm (AVX2, Zen 4):
 *
 * from about 24 tiles on, 1.5x at 32 and 2-6x from 64 at 64 to 1536
 * channels; at 16 tiles the per-call weight transform and the GEMMs' tiny M
 * make it break even or lose. Few input channels (3 -> 96 at 128x128) leave
 * the transformed GEMMs almost no depth while the im2col GEMM still has
 * 9 Cin (forward) and a cheap col2im (backward data), so those stay on
 * im2col; few output channels are fine (96 -> 3 is 3-4x faster).
 *
 * With a plan the filters come transformed and packed, and Winograd wins
 * from 4 tiles on (512 channels: 2.6-2.9x at 4 and 16 tiles, 3.5x at 32,
 * batch 1 and 8, 2 threads); at 1 to 3 tiles im2col's single pass over
 * the weight stays ahead (1.1-2x), as it does at 16 channels and 4 tiles.
 *
 * The weight gradient has no plan and follows the same rule: 1.5x at 32
 * tiles (1536 channels), 1.8-3.6x from 64 tiles on (64 to 1536 channels),
 * even at 16 tiles and 3-10x slower at 1 to 4, where its fixed cost, the
 * 6x6 to 3x3 transform of every filter, outweighs the GEMMs.
 *
 * Without padding the same rule holds: Inception-v3's valid 3x3 layers at
 * batch 50 (149x149, 32 -> 32 and 73x73, 80 -> 192 channels) ran 2.5-3.7x
 * faster forward than im2col (AVX2, 2 threads, two sessions of interleaved
 * runs), its padded ones 1.5-3.2x (8x8 to 147x147, 32 to 448 channels).
 */
#define BK_WINOGRAD_MIN_IN_C 16
#define BK_WINOGRAD_MIN_TILES 24
#define BK_WINOGRAD_PLANNED_MIN_TILES 4

/* Attention: queries per tile (<= BK_KC, so each dphi and dg tile product
 * is one MXU pass), independent partial max / sum accumulators per softmax
 * row, and query groups per batch item in backward, whose partial dphi and
 * dg are added in group order. */
#define BK_ATTN_QUERY_TILE 128
#define BK_ATTN_LANES 16
#define BK_ATTN_GROUPS 4

/* Floats per partial sum of a dot product, added in a fixed order. */
#define BK_DOT_CHUNK 4096

#endif /* BK_TUNING_H */
