/* bench_util.h -- what every benchmark program here shares: a fast random
 * generator, a pool of incompressible payload bytes, event ids, and a
 * log-linear latency histogram; and, through util.h, the monotonic clock
 * (util_mono_ns) every figure is timed with. */
#ifndef EVSTORE_BENCH_UTIL_H
#define EVSTORE_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* xorshift64*: fast, and its output does not compress. Not thread-safe. */
uint64_t bench_rand(void);

/* Fills a pool of pool_bytes (+ event_bytes_max) random bytes and seeds the
 * generator and the id nonce. 0 or -ENOMEM. */
int bench_payload_init(size_t pool_bytes, uint64_t event_bytes_max);
void bench_payload_free(void);

/* The next slice of bytes of the pool (wrapping); bytes <= event_bytes_max.
 * Thread-safe. */
const void *bench_payload(uint64_t bytes);

/* A fresh 16-byte id: a per-run nonce and a counter. Thread-safe. */
void bench_id_fresh(uint8_t id[16]);

/* ---- log-linear histogram ----
 * Values below 16 have a bucket each; above, each power of two is split into
 * 16 linear sub-buckets, so a reported value is within 1/32 of the truth. */
#define HIST_SUB_BITS 4u
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64u - HIST_SUB_BITS + 1u) * HIST_SUB)

typedef struct {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t max;
} hist_t;

void hist_add(hist_t *h, uint64_t v);
/* Adds every value of from into into. */
void hist_merge(hist_t *into, const hist_t *from);
/* The value at quantile q (0..1), never above the largest value recorded. */
uint64_t hist_quantile(const hist_t *h, double q);

/* Sorts v in place; returns the value at quantile q (nearest rank). */
uint64_t sample_quantile(uint64_t *v, size_t n, double q);

#endif
