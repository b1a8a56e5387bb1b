/* bench_limits.c -- fdatasync latency, fdatasync'd sequential bandwidth and
 * loopback TCP throughput (see bench_limits.h). The disk loops write into
 * files written and synced beforehand, as evstored writes into prepared
 * segments: the figure is the data path, without file-size metadata. */
#define _GNU_SOURCE
#include "bench_limits.h"
#include "bench_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LIMITS_SAMPLES_MAX 200000u

/* Creates path with bytes of random data, synced. Returns the fd or -errno. */
static int prewritten_file(const char *path, size_t bytes)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    unlink(path); /* gone when closed, whatever happens */
    size_t chunk = LIMITS_BW_CHUNK_BYTES;
    for (size_t off = 0; off < bytes; off += chunk) {
        if (pwrite(fd, bench_payload(chunk), chunk, (off_t)off) != (ssize_t)chunk) {
            int err = -errno;
            close(fd);
            return err ? err : -EIO;
        }
    }
    if (fdatasync(fd) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static int measure_sync_latency(const char *dir, double seconds, bench_limits_t *out)
{
    char path[600];
    snprintf(path, sizeof path, "%s/limits-sync.tmp", dir);
    int fd = prewritten_file(path, LIMITS_SYNC_FILE_BYTES);
    if (fd < 0)
        return fd;
    uint64_t *lat = malloc(LIMITS_SAMPLES_MAX * sizeof *lat);
    if (!lat) {
        close(fd);
        return -ENOMEM;
    }
    size_t n = 0;
    uint64_t off = 0, start = util_mono_ns(), end = start + (uint64_t)(seconds * 1e9);
    int rc = 0;
    while (n < LIMITS_SAMPLES_MAX && util_mono_ns() < end) {
        uint64_t t0 = util_mono_ns();
        if (pwrite(fd, bench_payload(LIMITS_SYNC_WRITE_BYTES), LIMITS_SYNC_WRITE_BYTES,
                   (off_t)off) != LIMITS_SYNC_WRITE_BYTES || fdatasync(fd) != 0) {
            rc = -EIO;
            break;
        }
        lat[n++] = util_mono_ns() - t0;
        off = (off + LIMITS_SYNC_WRITE_BYTES) % LIMITS_SYNC_FILE_BYTES;
    }
    double secs = (double)(util_mono_ns() - start) / 1e9;
    out->fdatasyncs_per_s = (double)n / secs;
    out->fdatasync_p50_us = (double)sample_quantile(lat, n, 0.5) / 1e3;
    out->fdatasync_p99_us = (double)sample_quantile(lat, n, 0.99) / 1e3;
    free(lat);
    close(fd);
    return rc;
}

static int measure_synced_bandwidth(const char *dir, double seconds, bench_limits_t *out)
{
    char path[600];
    snprintf(path, sizeof path, "%s/limits-bw.tmp", dir);
    int fd = prewritten_file(path, LIMITS_BW_FILE_BYTES);
    if (fd < 0)
        return fd;
    uint64_t bytes = 0, off = 0, start = util_mono_ns(), end = start + (uint64_t)(seconds * 1e9);
    int rc = 0;
    while (util_mono_ns() < end) {
        if (pwrite(fd, bench_payload(LIMITS_BW_CHUNK_BYTES), LIMITS_BW_CHUNK_BYTES, (off_t)off) !=
                LIMITS_BW_CHUNK_BYTES || fdatasync(fd) != 0) {
            rc = -EIO;
            break;
        }
        bytes += LIMITS_BW_CHUNK_BYTES;
        off = (off + LIMITS_BW_CHUNK_BYTES) % LIMITS_BW_FILE_BYTES;
    }
    out->synced_write_mb_s = (double)bytes / ((double)(util_mono_ns() - start) / 1e9) / 1e6;
    close(fd);
    return rc;
}

typedef struct {
    int fd;
    uint64_t bytes;
} tcp_reader_t;

static void *tcp_read_all(void *arg)
{
    tcp_reader_t *r = arg;
    static char buf[LIMITS_TCP_WRITE_BYTES];
    ssize_t n;
    while ((n = read(r->fd, buf, sizeof buf)) > 0)
        r->bytes += (uint64_t)n;
    return NULL;
}

static int measure_loopback(double seconds, bench_limits_t *out)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 1) != 0 ||
        getsockname(ls, (struct sockaddr *)&sa, &len) != 0) {
        if (ls >= 0)
            close(ls);
        return -errno;
    }
    int w = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (w < 0 || connect(w, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(ls);
        if (w >= 0)
            close(w);
        return -ECONNREFUSED;
    }
    tcp_reader_t r = {.fd = accept(ls, NULL, NULL)};
    close(ls);
    pthread_t th;
    if (r.fd < 0 || pthread_create(&th, NULL, tcp_read_all, &r) != 0) {
        close(w);
        if (r.fd >= 0)
            close(r.fd);
        return -EIO;
    }
    const void *buf = bench_payload(LIMITS_TCP_WRITE_BYTES);
    uint64_t start = util_mono_ns(), end = start + (uint64_t)(seconds * 1e9);
    while (util_mono_ns() < end)
        if (write(w, buf, LIMITS_TCP_WRITE_BYTES) <= 0)
            break;
    shutdown(w, SHUT_WR);
    pthread_join(th, NULL);
    out->loopback_gb_s = (double)r.bytes / ((double)(util_mono_ns() - start) / 1e9) / 1e9;
    close(w);
    close(r.fd);
    return 0;
}

int bench_limits_measure(const char *dir, double seconds, bench_limits_t *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->dir, sizeof out->dir, "%s", dir);
    int rc = measure_sync_latency(dir, seconds, out);
    if (rc == 0)
        rc = measure_synced_bandwidth(dir, seconds, out);
    if (rc == 0)
        rc = measure_loopback(seconds, out);
    if (rc)
        fprintf(stderr, "evstore-bench: measuring the machine's limits in %s: %s\n", dir,
                strerror(-rc));
    return rc;
}
