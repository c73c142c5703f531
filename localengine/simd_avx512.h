/* simd_avx512.h: what the AVX-512 kernel files share: the target
 * attribute (compiled into every build, chosen at run time) and the AVX2
 * helpers they also use. */
#ifndef JUNCTION_SIMD_AVX512_H
#define JUNCTION_SIMD_AVX512_H

#include "simd_avx2.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma")))

#endif
