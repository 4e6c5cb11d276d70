/* dispatch.c — picks the kernel table once (CPUID or LOCUS_ISA) and owns the thread-count setting. */
#include "kernels.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const locus_kernels *g_active;
static const char *g_isa_names[LOCUS_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon"};

static int cpu_has(locus_isa isa) {
    switch (isa) {
    case LOCUS_ISA_SCALAR: return 1;
#if defined(__x86_64__)
    case LOCUS_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case LOCUS_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
#if defined(__aarch64__)
    case LOCUS_ISA_NEON: return 1;
#endif
    default: return 0;
    }
}

const locus_kernels *locus_kernels_for(locus_isa isa) {
    if (!cpu_has(isa)) return NULL;
    switch (isa) {
    case LOCUS_ISA_SCALAR: return &locus_kernels_scalar;
#if defined(__x86_64__)
    case LOCUS_ISA_AVX2: return &locus_kernels_avx2;
    case LOCUS_ISA_AVX512: return &locus_kernels_avx512;
#endif
#if defined(__aarch64__)
    case LOCUS_ISA_NEON: return &locus_kernels_neon;
#endif
    default: return NULL;
    }
}

locus_status locus_kernels_force(locus_isa isa) {
    const locus_kernels *k = (unsigned)isa < LOCUS_ISA_COUNT ? locus_kernels_for(isa) : NULL;
    if (!k) return locus_fail(LOCUS_E_UNSUPPORTED, "ISA '%s' is not supported on this CPU/build", (unsigned)isa < LOCUS_ISA_COUNT ? g_isa_names[isa] : "?");
    __atomic_store_n(&g_active, k, __ATOMIC_RELEASE);
    return LOCUS_OK;
}

/* With LOCUS_VERBOSE set (and not "0"), one line on stderr naming the table init chose and why; silent by
 * default (the CLI's error output is one line, and tests check that). */
static void log_choice(const char *why) {
    static int logged;
    const char *v = getenv("LOCUS_VERBOSE");
    if (!v || !*v || !strcmp(v, "0") || __atomic_exchange_n(&logged, 1, __ATOMIC_ACQ_REL)) return;
    fprintf(stderr, "locus: kernel table %s (%s)\n", g_active->name, why);
}

locus_status locus_kernels_init(void) {
    if (__atomic_load_n(&g_active, __ATOMIC_ACQUIRE)) return LOCUS_OK;
    const char *env = getenv("LOCUS_ISA");
    if (env && *env) {
        for (int i = 0; i < LOCUS_ISA_COUNT; i++)
            if (strcmp(env, g_isa_names[i]) == 0) {
                locus_status st = locus_kernels_force((locus_isa)i);
                if (st) return locus_fail(st, "LOCUS_ISA=%s: this CPU/build does not support it", env);
                log_choice("forced by LOCUS_ISA");
                return LOCUS_OK;
            }
        return locus_fail(LOCUS_E_ARG, "LOCUS_ISA=%s: unknown ISA (use scalar, avx2, avx512 or neon)", env);
    }
    static const locus_isa pref[] = {LOCUS_ISA_AVX512, LOCUS_ISA_AVX2, LOCUS_ISA_NEON, LOCUS_ISA_SCALAR};
    for (size_t i = 0; i < sizeof pref / sizeof pref[0]; i++)
        if (locus_kernels_for(pref[i])) {
            locus_status st = locus_kernels_force(pref[i]);
            if (!st) log_choice("the best this CPU supports");
            return st;
        }
    return LOCUS_OK; /* unreachable: scalar always exists */
}

const locus_kernels *locus_k(void) {
    const locus_kernels *k = __atomic_load_n(&g_active, __ATOMIC_ACQUIRE);
    if (k) return k;
    if (locus_kernels_init() != LOCUS_OK) {
        fprintf(stderr, "locus: %s\n", locus_errmsg());
        exit(2);
    }
    return g_active;
}

const char *locus_isa_name(void) { return locus_k()->name; }

static int g_threads;

void locus_set_threads(int n) {
    g_threads = n > 0 ? n : 1;
    omp_set_num_threads(g_threads);
}

int locus_threads(void) {
    if (!g_threads) {
        const char *e = getenv("LOCUS_THREADS");
        int n = e ? atoi(e) : 0;
        locus_set_threads(n > 0 ? n : omp_get_max_threads());
    }
    return g_threads;
}

/* 1 if some CPU shares its core with another (SMT siblings), 0 if not, -1 if unknown. */
static int cpus_share_cores(void) {
    FILE *f = fopen("/sys/devices/system/cpu/smt/active", "r");
    if (f) {
        int c = fgetc(f);
        fclose(f);
        if (c == '0' || c == '1') return c - '0';
    }
    f = fopen("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list", "r");
    if (!f) return -1;
    char line[64] = {0};
    int shared = fgets(line, sizeof line, f) && strpbrk(line, ",-") != NULL;
    fclose(f);
    return shared;
}

void locus_choose_wait_policy(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    /* Spinning waiters steal issue slots from an SMT sibling doing the work (2x slower measured on such a
     * machine): there, waiters sleep at once.  On separate cores a short spin saves the futex wake-up of most
     * parallel regions (training a small UNet: 0.56 -> 0.90 steps/s spinning instead of sleeping), but an
     * unbounded spin is a disaster on a busy machine (a 20-step 128x32 generate beside a training run: 2.3 s
     * sleeping, 1.2 s spinning 1,000 rounds, 8.2 s with 10,000, 19.6 s spinning forever).  So: 1,000 rounds. */
    if (cpus_share_cores() == 0)
        setenv("GOMP_SPINCOUNT", "1000", 1);
    else
        setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the default policy */
}
