/* The x86-64 instruction-set extensions the SIMD kernels use, as this CPU and OS support them.
 * Not part of the C API (no tslm_ prefix: the library's version script keeps it local). */
#ifndef TSLM_CPU_FEATURES_H
#define TSLM_CPU_FEATURES_H

#define CPUFEAT_AVX2 1u
#define CPUFEAT_FMA  2u
#define CPUFEAT_F16C 4u
#define CPUFEAT_AVX512F 8u
#define CPUFEAT_AVX512VNNI 16u

/* CPUFEAT_* bits of the features present and enabled by the OS (AVX state saved); 0 on other
 * architectures. */
unsigned cpufeat_x86_detect(void);

/* Prefetches the cache line at p for reading into all cache levels (prefetcht0 on x86; a hint,
 * never faults). Inline: Swift callers compile it into their loops (the x86 intrinsic is a
 * macro Swift cannot import). */
static inline void cpufeat_prefetch(const void *p) {
    __builtin_prefetch(p, 0, 3);
}

/* The same into L2 and outer levels only (prefetcht1 on x86). */
static inline void cpufeat_prefetch_l2(const void *p) {
    __builtin_prefetch(p, 0, 2);
}

#if defined(__x86_64__)
#include <immintrin.h>
/* 8 floats at x → 8 binary16 at out, rounded to nearest even (F16C's vcvtps2ph, whose immediate
 * operand makes the intrinsic a macro Swift cannot import). Only call where the CPU has F16C. */
__attribute__((target("avx,f16c")))
static inline void cpufeat_f32_to_f16x8(const float *x, unsigned short *out) {
    _mm_storeu_si128((__m128i *)out, _mm256_cvtps_ph(_mm256_loadu_ps(x), 0));
}
#endif

#endif
