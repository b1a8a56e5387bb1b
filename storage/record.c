/* record.c -- checksums, headers and event records of the on-disk format. */
#include "log_int.h"

#include <string.h>
#include <xxhash.h>

uint64_t checksum64(const void *p, size_t n, uint64_t seed)
{
    return XXH3_64bits_withSeed(p, n, seed);
}

void segment_header_seal(segment_header_t *h)
{
    h->header_checksum = checksum64(h, offsetof(segment_header_t, header_checksum), 0);
}

int segment_header_check(const segment_header_t *h)
{
    if (memcmp(h->magic, SEGMENT_MAGIC, 8) != 0)
        return LOG_EFORMAT;
    if (h->header_checksum != checksum64(h, offsetof(segment_header_t, header_checksum), 0))
        return LOG_ECORRUPT;
    if (h->format_version != FORMAT_VERSION || h->header_bytes != SEGMENT_HEADER_BYTES)
        return LOG_EFORMAT;
    if (h->segment_bytes < LOG_SEGMENT_BYTES_MIN || h->segment_bytes > LOG_SEGMENT_BYTES_MAX)
        return LOG_EFORMAT;
    return 0;
}

void batch_header_seal(batch_header_t *h)
{
    h->header_checksum = checksum64(h, offsetof(batch_header_t, header_checksum), 0);
}

bool batch_header_valid(const batch_header_t *h)
{
    return h->magic == BATCH_MAGIC && h->event_count > 0 &&
           h->header_checksum == checksum64(h, offsetof(batch_header_t, header_checksum), 0);
}

uint64_t batch_stored_size(const batch_header_t *h)
{
    return align8(sizeof(batch_header_t) + (uint64_t)h->stored_bytes);
}

/* LZ4 expands a block at most about 255 times. */
#define LZ4_RATIO_MAX 255u

bool batch_raw_size_valid(const batch_header_t *h)
{
    if (!(h->flags & BATCH_FLAG_LZ4))
        return h->raw_bytes == h->stored_bytes;
    return h->raw_bytes <= LOG_SEGMENT_BYTES_MAX &&
           h->raw_bytes <= (uint64_t)h->stored_bytes * LZ4_RATIO_MAX + 64;
}

size_t record_size(size_t stream_len, size_t type_len, size_t meta_len, size_t data_len)
{
    return (size_t)align8(sizeof(record_header_t) + stream_len + type_len + meta_len + data_len);
}

void record_encode(uint8_t *dst, uint64_t position, const char *stream, size_t stream_len,
                   int64_t version, const log_event_in_t *ev, int64_t timestamp_ns)
{
    size_t unpadded = sizeof(record_header_t) + stream_len + ev->type_len + ev->metadata_len +
                      ev->data_len;
    record_header_t h = {
        .record_bytes = (uint32_t)unpadded,
        .stream_len = (uint16_t)stream_len,
        .type_len = (uint16_t)ev->type_len,
        .metadata_len = (uint32_t)ev->metadata_len,
        .data_len = (uint32_t)ev->data_len,
        .version = version,
        .timestamp_ns = timestamp_ns,
    };
    memcpy(h.id, ev->id, 16);
    uint8_t *p = dst + sizeof h;
    memcpy(p, stream, stream_len);
    p += stream_len;
    memcpy(p, ev->type, ev->type_len);
    p += ev->type_len;
    if (ev->metadata_len)
        memcpy(p, ev->metadata, ev->metadata_len);
    p += ev->metadata_len;
    if (ev->data_len)
        memcpy(p, ev->data, ev->data_len);
    p += ev->data_len;
    memset(p, 0, align8(unpadded) - unpadded);
    memcpy(dst, &h, sizeof h);
    h.checksum = checksum64(dst + 8, unpadded - 8, position);
    memcpy(dst, &h.checksum, 8);
}

int record_decode(const uint8_t *body, size_t body_len, size_t offset, uint64_t position,
                  log_event_t *ev, size_t *record_len)
{
    record_header_t h;
    if (offset > body_len || body_len - offset < sizeof h)
        return LOG_ECORRUPT;
    memcpy(&h, body + offset, sizeof h);
    uint64_t need = (uint64_t)sizeof h + h.stream_len + h.type_len + h.metadata_len + h.data_len;
    if (h.record_bytes != need || need > body_len - offset)
        return LOG_ECORRUPT;
    if (checksum64(body + offset + 8, h.record_bytes - 8, position) != h.checksum)
        return LOG_ECORRUPT;
    const char *p = (const char *)body + offset + sizeof h;
    ev->position = position;
    ev->version = h.version;
    ev->timestamp_ns = h.timestamp_ns;
    memcpy(ev->id, h.id, 16);
    ev->stream = p;
    ev->stream_len = h.stream_len;
    ev->type = p + h.stream_len;
    ev->type_len = h.type_len;
    ev->metadata = p + h.stream_len + h.type_len;
    ev->metadata_len = h.metadata_len;
    ev->data = p + h.stream_len + h.type_len + h.metadata_len;
    ev->data_len = h.data_len;
    if (record_len)
        *record_len = align8(h.record_bytes);
    return 0;
}
