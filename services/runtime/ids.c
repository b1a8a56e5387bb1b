/* ids.c -- deterministic event ids, stream keys, order ids, clocks. */
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "oms.h"
#include "util.h"

void oms_event_id(uint8_t id[EVS_ID_BYTES], const char *order_id, const char *step)
{
    char text[2 * OMS_NAME_BYTES_MAX + 2];
    int n = snprintf(text, sizeof text, "%s/%s", order_id, step);
    size_t len = n < 0 ? 0 : (size_t)n >= sizeof text ? sizeof text - 1 : (size_t)n;
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(text, len));
    memcpy(id, c.digest, EVS_ID_BYTES);
}

const char *oms_stream_key(const char *stream)
{
    const char *dash = strchr(stream, '-');
    return dash ? dash + 1 : "";
}

void oms_order_id_random(char out[33])
{
    uint8_t id[EVS_ID_BYTES];
    if (evs_id_random(id) != 0) {
        /* No entropy source: fall back on the clock, still unique per call
         * within a process in practice. */
        int64_t t = oms_mono_ns() ^ oms_now_ns();
        memset(id, 0, sizeof id);
        memcpy(id, &t, sizeof t);
    }
    util_hex(id, EVS_ID_BYTES, out);
}

int64_t oms_now_ns(void)
{
    return (int64_t)util_real_ns();
}

int64_t oms_mono_ns(void)
{
    return (int64_t)util_mono_ns();
}
