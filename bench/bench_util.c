/* bench_util.c -- shared benchmark helpers (see bench_util.h). */
#include "bench_util.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

uint64_t bench_rand(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static uint8_t *pool;
static size_t pool_bytes;
static _Atomic size_t pool_next;
static uint64_t id_nonce;
static _Atomic uint64_t id_counter;

int bench_payload_init(size_t bytes, uint64_t event_bytes_max)
{
    rng_state ^= util_mono_ns() ^ ((uint64_t)getpid() << 32);
    if (rng_state == 0)
        rng_state = 1;
    id_nonce = bench_rand();
    pool_bytes = bytes + event_bytes_max;
    pool = malloc(pool_bytes);
    if (!pool)
        return -ENOMEM;
    for (size_t i = 0; i < pool_bytes; i += 8) {
        uint64_t r = bench_rand();
        memcpy(pool + i, &r, pool_bytes - i < 8 ? pool_bytes - i : 8);
    }
    pool_next = 0;
    return 0;
}

void bench_payload_free(void)
{
    free(pool);
    pool = NULL;
}

const void *bench_payload(uint64_t bytes)
{
    size_t span = pool_bytes - bytes; /* bytes <= event_bytes_max < pool_bytes */
    size_t at = atomic_fetch_add_explicit(&pool_next, bytes, memory_order_relaxed) % span;
    return pool + at;
}

void bench_id_fresh(uint8_t id[16])
{
    uint64_t counter = atomic_fetch_add_explicit(&id_counter, 1, memory_order_relaxed);
    memcpy(id, &id_nonce, 8);
    memcpy(id + 8, &counter, 8);
}

static uint32_t hist_bucket(uint64_t v)
{
    if (v < HIST_SUB)
        return (uint32_t)v;
    uint32_t e = 63u - (uint32_t)__builtin_clzll(v);
    uint32_t sub = (uint32_t)(v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1u);
    return (e - HIST_SUB_BITS + 1u) * HIST_SUB + sub;
}

/* The middle of a bucket's range. */
static uint64_t hist_bucket_value(uint32_t b)
{
    if (b < HIST_SUB)
        return b;
    uint32_t e = b / HIST_SUB + HIST_SUB_BITS - 1u;
    uint64_t sub = b % HIST_SUB;
    uint64_t width = 1ull << (e - HIST_SUB_BITS);
    return ((HIST_SUB + sub) << (e - HIST_SUB_BITS)) + width / 2;
}

void hist_add(hist_t *h, uint64_t v)
{
    h->counts[hist_bucket(v)]++;
    h->total++;
    if (v > h->max)
        h->max = v;
}

void hist_merge(hist_t *into, const hist_t *from)
{
    for (uint32_t b = 0; b < HIST_BUCKETS; b++)
        into->counts[b] += from->counts[b];
    into->total += from->total;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t hist_quantile(const hist_t *h, double q)
{
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->total);
    if (rank >= h->total)
        rank = h->total - 1;
    uint64_t seen = 0;
    for (uint32_t b = 0; b < HIST_BUCKETS; b++) {
        seen += h->counts[b];
        if (seen > rank) {
            uint64_t v = hist_bucket_value(b);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

uint64_t sample_quantile(uint64_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_u64);
    size_t i = (size_t)(q * (double)n);
    return v[i < n ? i : n - 1];
}
