/* cpu.c: which optimized kernels this machine can run.
 *
 * Kernels are compiled for several instruction sets in one binary and chosen
 * at run time, so one build runs on any x86-64 (reference path) and uses
 * AVX2+FMA where present. Detection uses the compiler's CPUID builtins.
 */
#include "localengine.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

unsigned eng_cpu_features(void)
{
    unsigned f = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) f |= ENG_CPU_AVX2;
    if (__builtin_cpu_supports("fma")) f |= ENG_CPU_FMA;
    unsigned a, b, c, d; /* clang 14 knows no "f16c" for __builtin_cpu_supports */
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C)) f |= ENG_CPU_F16C;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vnni"))
        f |= ENG_CPU_AVX512_VNNI;
#endif
    /* An operator (or a test) may cap the kernels, e.g. to compare them. */
    const char *cap = getenv("JUNCTION_KERNELS");
    if (cap && !strcmp(cap, "avx2")) f &= ~(unsigned)ENG_CPU_AVX512_VNNI;
    if (cap && !strcmp(cap, "reference")) f = 0;
    return f;
}

const char *eng_kernels_name(void)
{
    unsigned f = eng_cpu_features();
    const unsigned avx2 = ENG_CPU_AVX2 | ENG_CPU_FMA | ENG_CPU_F16C;
    if ((f & avx2) != avx2) return "reference";
    return (f & ENG_CPU_AVX512_VNNI) ? "avx512vnni+avx2+fma+f16c" : "avx2+fma+f16c";
}
