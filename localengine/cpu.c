/* cpu.c: which optimized kernels this machine can run.
 *
 * Kernels are compiled for several instruction sets in one binary and chosen
 * at run time, so one build runs on any x86-64 (reference path) and uses
 * AVX2+FMA where present. Detection uses the compiler's CPUID builtins.
 */
#include "localengine.h"

unsigned eng_cpu_features(void)
{
    unsigned f = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) f |= ENG_CPU_AVX2;
    if (__builtin_cpu_supports("fma")) f |= ENG_CPU_FMA;
    if (__builtin_cpu_supports("f16c")) f |= ENG_CPU_F16C;
#endif
    return f;
}

const char *eng_kernels_name(void)
{
    unsigned f = eng_cpu_features();
    if ((f & (ENG_CPU_AVX2 | ENG_CPU_FMA | ENG_CPU_F16C)) ==
        (ENG_CPU_AVX2 | ENG_CPU_FMA | ENG_CPU_F16C))
        return "avx2+fma+f16c";
    return "reference";
}
