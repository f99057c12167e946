/* SPDX-License-Identifier: MIT */
#include "floor.h"

#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

double floor_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

FloorClock floor_clock(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (FloorClock){
        .wall_s = floor_now_s(),
        .cpu_us = (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 +
                  (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec),
    };
}

long floor_rss_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *fp = fopen("/proc/self/status", "re");
    while (fp && fgets(line, sizeof(line), fp))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (fp)
        fclose(fp);
    return kib;
}

void floor_report(FloorClock start, unsigned long done, unsigned long failed, long rss_kib)
{
    FloorClock end = floor_clock();
    printf("FLOOR %.1f %.2f %lu %ld\n", (double)done / (end.wall_s - start.wall_s),
           done ? (end.cpu_us - start.cpu_us) / (double)done : 0.0, failed, rss_kib);
}
