/*
 * Kernel settings: the process default, each thread's override, and the
 * one accessor, bk__ctx, through which every entry point reads them.
 *
 * The default's fields are separate atomics: a thread that changes it while
 * kernels run elsewhere makes each call see every field either before or
 * after the change. The override is thread-local, which is why an entry
 * point resolves the settings once, in the calling thread, and hands them
 * down: OpenMP's workers do not see it.
 */
#include "internal.h"

#include <pthread.h>

static int _Atomic default_isa;
static int _Atomic default_threads;
static int _Atomic default_algorithm = BK_CONV_AUTO;
static int _Atomic default_batch_scale = 1;
static int _Atomic default_choice_batch;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static _Thread_local bk_settings override;
static _Thread_local int overridden;

/* BK_ISA from the environment when set and supported, else the best path,
 * except that AVX512_BF16 is passed over for AVX-512 when its dot
 * instruction is the slower way to bf16 products here (a few hundred
 * microseconds of probing; both paths give the same bits). */
static void choose_default_isa(void)
{
    bk_isa best = bk_isa_best();
    int wanted = bk_isa_parse(getenv("BK_ISA"));
    if (wanted >= 0 && wanted <= (int)best) {
        default_isa = wanted;
        return;
    }
    if (best == BK_ISA_AVX512_BF16 && !bk__dot_bf16_pays()) best = BK_ISA_AVX512;
    default_isa = (int)best;
}

static int valid(const bk_settings *s)
{
    return s && (int)s->isa >= BK_ISA_SCALAR && s->isa <= bk_isa_best() &&
           (s->conv_algorithm == BK_CONV_AUTO ||
            s->conv_algorithm == BK_CONV_IM2COL ||
            s->conv_algorithm == BK_CONV_WINOGRAD) &&
           s->conv_batch_scale >= 1 && s->conv_choice_batch >= 0;
}

bk_settings bk_settings_default(void)
{
    pthread_once(&default_once, choose_default_isa);
    bk_settings s = {(bk_isa)default_isa, default_threads,
                     (bk_conv_algorithm)default_algorithm, default_batch_scale,
                     default_choice_batch};
    return s;
}

int bk_settings_set_default(const bk_settings *s)
{
    if (!valid(s)) return -1;
    pthread_once(&default_once, choose_default_isa);
    default_isa = s->isa;
    default_threads = s->threads > 0 ? s->threads : 0;
    default_algorithm = s->conv_algorithm;
    default_batch_scale = s->conv_batch_scale;
    default_choice_batch = s->conv_choice_batch;
    return 0;
}

int bk_settings_get_override(bk_settings *out)
{
    if (overridden && out) *out = override;
    return overridden;
}

int bk_settings_set_override(const bk_settings *s)
{
    if (!s) {
        overridden = 0;
        return 0;
    }
    if (!valid(s)) return -1;
    override = *s;
    if (override.threads < 1) override.threads = 0;
    overridden = 1;
    return 0;
}

/* Without OpenMP a parallel region runs its body once, on the calling
 * thread: a team of more would leave the other members' work undone. */
int bk__clamp_threads(int requested)
{
#ifdef _OPENMP
    return requested > 0 ? requested : omp_get_max_threads();
#else
    (void)requested;
    return 1;
#endif
}

bk_settings bk_settings_current(void)
{
    bk_settings s = overridden ? override : bk_settings_default();
    s.threads = bk__clamp_threads(s.threads);
    return s;
}

bk_ctx bk__ctx(void)
{
    bk_settings s = bk_settings_current();
    bk_ctx cx = {bk__kernels_for(s.isa), s.threads, s.conv_algorithm,
                 s.conv_batch_scale, s.conv_choice_batch};
    return cx;
}

int bk__team_size(const bk_ctx *cx, double work, double per_thread)
{
    int nt = cx->threads;
    if (per_thread > 0 && work < per_thread * nt) {
        int fit = (int)(work / per_thread);
        nt = fit < 1 ? 1 : fit;
    }
    return nt;
}

int bk_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
