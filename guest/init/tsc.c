/* Host-side helper (init --tsc-khz): the host's TSC rate in kHz. Under QEMU's TCG the guest's TSC
   is the host's, and a microvm guest must be told its rate (tsc_early_khz=) because calibrating it
   against the PIT fails on a busy host, leaving the guest without a timer (docs/guest.md). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "init.h"

#if defined(__x86_64__)
static unsigned long long rdtsc(void)
{
    unsigned lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((unsigned long long)hi << 32) | lo;
}

static int by_value(const void *a, const void *b)
{
    unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
    return (x > y) - (x < y);
}

int tsc_khz_main(void)
{
    /* Three 50 ms windows against CLOCK_MONOTONIC_RAW; the median shrugs off one preempted window. */
    unsigned long long khz[3];
    for (int i = 0; i < 3; i++) {
        struct timespec a, b, pause = {0, 50 * 1000 * 1000};
        clock_gettime(CLOCK_MONOTONIC_RAW, &a);
        unsigned long long t0 = rdtsc();
        nanosleep(&pause, NULL);
        clock_gettime(CLOCK_MONOTONIC_RAW, &b);
        unsigned long long t1 = rdtsc();
        long long ns = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
        khz[i] = ns > 0 ? (t1 - t0) * 1000000ULL / (unsigned long long)ns : 0;
    }
    qsort(khz, 3, sizeof *khz, by_value);
    printf("%llu\n", khz[1]);
    return khz[1] ? 0 : 1;
}
#else
int tsc_khz_main(void)
{
    fprintf(stderr, "init: --tsc-khz is only for x86-64 hosts\n");
    return 1;
}
#endif
