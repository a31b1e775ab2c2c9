#include "cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* XCR0: which register states the OS saves (bit 1 SSE, bit 2 AVX). */
static unsigned long long xcr0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

unsigned cpufeat_x86_detect(void) {
    unsigned a, b, c, d, r = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    /* AVX-class instructions need the CPU's AVX and the OS's YMM state (OSXSAVE + XCR0). */
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX) || (xcr0() & 6) != 6) return 0;
    if (c & bit_FMA) r |= CPUFEAT_FMA;
    if (c & bit_F16C) r |= CPUFEAT_F16C;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return r;
    if (b & bit_AVX2) r |= CPUFEAT_AVX2;
    /* AVX-512 also needs the OS to save the opmask and ZMM states (XCR0 bits 5-7). */
    if ((b & bit_AVX512F) && (xcr0() & 0xE6) == 0xE6) {
        r |= CPUFEAT_AVX512F;
        /* 8- and 16-bit integer dot products (vpdpbusd, vpdpwssd) on zmm registers. */
        if (c & bit_AVX512VNNI) r |= CPUFEAT_AVX512VNNI;
    }
    return r;
}
#else
unsigned cpufeat_x86_detect(void) { return 0; }
#endif
