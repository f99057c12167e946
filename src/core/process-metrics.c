/* SPDX-License-Identifier: MIT */
#include "process-metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int process_statm_parse(const char *statm, uint64_t page_size, uint64_t *ret_virtual,
                        uint64_t *ret_resident)
{
    unsigned long long size, resident;
    char *end;
    errno = 0;
    size = strtoull(statm, &end, 10);
    if (errno || end == statm || *end != ' ')
        return -EINVAL;
    const char *p = end + 1;
    resident = strtoull(p, &end, 10);
    if (errno || end == p || (*end != ' ' && *end != '\n' && *end != '\0'))
        return -EINVAL;
    *ret_virtual = size * page_size;
    *ret_resident = resident * page_size;
    return 0;
}

static int read_statm(ProcessStats *s)
{
    char buf[256];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t k = read(fd, buf, sizeof(buf) - 1);
    int r = k < 0 ? -errno : 0;
    close(fd);
    if (r < 0)
        return r;
    buf[k] = '\0';
    long page = sysconf(_SC_PAGESIZE);
    return process_statm_parse(buf, page > 0 ? (uint64_t)page : 4096, &s->virtual_bytes,
                               &s->resident_bytes);
}

static int count_fds(uint64_t *ret)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -errno;
    uint64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    *ret = n > 0 ? n - 1 : 0; /* not the one the listing itself had open */
    return 0;
}

void process_stats_read(ProcessStats *s)
{
    *s = (ProcessStats){0};
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        s->cpu_seconds = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    s->have_memory = read_statm(s) == 0;
    s->have_open_fds = count_fds(&s->open_fds) == 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        s->have_max_fds = true;
        s->max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    }
}

const char *process_metrics_format(const ProcessStats *s, char *buf, size_t size)
{
    size_t len = 0;
    int n = snprintf(buf, size,
                     "# HELP process_cpu_seconds_total Total user and system CPU time spent in "
                     "seconds.\n"
                     "# TYPE process_cpu_seconds_total counter\n"
                     "process_cpu_seconds_total %.6f\n",
                     s->cpu_seconds);
    if (n < 0 || (size_t)n >= size)
        goto too_small;
    len = (size_t)n;
    if (s->have_memory) {
        n = snprintf(buf + len, size - len,
                     "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                     "# TYPE process_resident_memory_bytes gauge\n"
                     "process_resident_memory_bytes %" PRIu64 "\n"
                     "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                     "# TYPE process_virtual_memory_bytes gauge\n"
                     "process_virtual_memory_bytes %" PRIu64 "\n",
                     s->resident_bytes, s->virtual_bytes);
        if (n < 0 || (size_t)n >= size - len)
            goto too_small;
        len += (size_t)n;
    }
    if (s->have_open_fds) {
        n = snprintf(buf + len, size - len,
                     "# HELP process_open_fds Number of open file descriptors.\n"
                     "# TYPE process_open_fds gauge\n"
                     "process_open_fds %" PRIu64 "\n",
                     s->open_fds);
        if (n < 0 || (size_t)n >= size - len)
            goto too_small;
        len += (size_t)n;
    }
    if (s->have_max_fds) {
        char value[24];
        if (s->max_fds == UINT64_MAX)
            snprintf(value, sizeof(value), "+Inf");
        else
            snprintf(value, sizeof(value), "%" PRIu64, s->max_fds);
        n = snprintf(buf + len, size - len,
                     "# HELP process_max_fds Maximum number of open file descriptors.\n"
                     "# TYPE process_max_fds gauge\n"
                     "process_max_fds %s\n",
                     value);
        if (n < 0 || (size_t)n >= size - len)
            goto too_small;
    }
    return buf;

too_small:
    if (size > 0)
        buf[0] = '\0';
    return size > 0 ? buf : "";
}

const char *process_metrics_text(char *buf, size_t size)
{
    ProcessStats s;
    process_stats_read(&s);
    return process_metrics_format(&s, buf, size);
}
