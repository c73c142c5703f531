/* localengine.h: junction's in-process quantized Llama engine.
 *
 * The one public header of the localengine module. Other modules use the
 * engine only through what is declared here.
 */
#ifndef JUNCTION_LOCALENGINE_H
#define JUNCTION_LOCALENGINE_H

/* CPU features the engine's kernels can use, detected once at run time. */
typedef enum {
    ENG_CPU_AVX2 = 1 << 0,
    ENG_CPU_FMA  = 1 << 1,
    ENG_CPU_F16C = 1 << 2,
} eng_cpu_feature;

/* Bit set of eng_cpu_feature that this machine supports. Thread-safe. */
unsigned eng_cpu_features(void);

/* Name of the kernel set the engine runs on this machine, e.g. "avx2+fma+f16c"
 * or "reference" (plain C). Static storage; never freed. */
const char *eng_kernels_name(void);

#endif
