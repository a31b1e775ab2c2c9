/* The resident set size of this process in KiB (from /proc/self/statm), -1 when unknown: shared
 * by the soak and stress tests. */
#ifndef TSLM_TEST_RSS_H
#define TSLM_TEST_RSS_H
#include <stdio.h>
#include <unistd.h>

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}
#endif
