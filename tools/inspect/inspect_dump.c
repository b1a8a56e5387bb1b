/* inspect_dump.c -- `dump`: batches and events as text or JSON lines, with
 * filters. Every batch is verified as it is read (the shared scan); damaged
 * batches are shown as such, with the events that still pass their record
 * checksums. Problems also go to stderr, so stdout holds only the dump. */
#include "inspect.h"

#include <string.h>

typedef struct {
    const inspect_opts_t *o;
    FILE *out;
    uint64_t printed;   /* events printed */
    bool limited;       /* stopped at --limit */
} inspect_dump_t;

/* True if the event passes every filter of o. */
static bool inspect_dump_keeps(const inspect_opts_t *o, const log_event_t *ev)
{
    if (ev->position < o->from || ev->position > o->to || ev->timestamp_ns < o->since ||
        ev->timestamp_ns >= o->until)
        return false;
    if (o->stream && (strlen(o->stream) != ev->stream_len ||
                      memcmp(o->stream, ev->stream, ev->stream_len) != 0))
        return false;
    if (o->type &&
        (strlen(o->type) != ev->type_len || memcmp(o->type, ev->type, ev->type_len) != 0))
        return false;
    if (o->category) {
        size_t n = stream_category_len(ev->stream, ev->stream_len);
        if (n == 0 || strlen(o->category) != n || memcmp(o->category, ev->stream, n) != 0)
            return false;
    }
    return true;
}

static const char *inspect_batch_state(const walk_t *w)
{
    return w->status == WALK_OK ? "ok" : walk_status_name(w->status);
}

static void inspect_dump_batch_text(inspect_dump_t *d, const inspect_seg_t *is, const walk_t *w)
{
    char t[48];
    inspect_time_format(w->h.timestamp_ns, t, sizeof t);
    fprintf(d->out, "batch %s offset %llu: positions %llu..%llu, %u events, stored %u bytes, raw "
            "%u bytes, %s, %s, header 0x%016llx, checksums %s\n", is->file,
            (unsigned long long)w->offset, (unsigned long long)w->h.first_position,
            (unsigned long long)(w->h.first_position + w->h.event_count - 1), w->h.event_count,
            w->h.stored_bytes, w->h.raw_bytes, (w->h.flags & BATCH_FLAG_LZ4) ? "lz4" : "raw", t,
            (unsigned long long)w->h.header_checksum, inspect_batch_state(w));
}

static void inspect_dump_batch_json(inspect_dump_t *d, const inspect_seg_t *is, const walk_t *w)
{
    char t[48];
    inspect_time_format(w->h.timestamp_ns, t, sizeof t);
    fprintf(d->out, "{\"kind\":\"batch\",\"segment\":\"%s\",\"offset\":%llu,\"first_position\":"
            "%llu,\"event_count\":%u,\"stored_bytes\":%u,\"raw_bytes\":%u,\"compression\":\"%s\","
            "\"timestamp_ns\":%lld,\"time\":\"%s\",\"header_checksum\":\"0x%016llx\","
            "\"checksum\":", is->file, (unsigned long long)w->offset,
            (unsigned long long)w->h.first_position, w->h.event_count, w->h.stored_bytes,
            w->h.raw_bytes, (w->h.flags & BATCH_FLAG_LZ4) ? "lz4" : "none",
            (long long)w->h.timestamp_ns, t, (unsigned long long)w->h.header_checksum);
    inspect_json_string(d->out, inspect_batch_state(w), strlen(inspect_batch_state(w)));
    fputs("}\n", d->out);
}

/* Writes one payload (metadata or data): text when it is UTF-8, else hex,
 * at most --payload-bytes of it. */
static void inspect_dump_payload(inspect_dump_t *d, const char *key, const void *p, size_t n)
{
    size_t cap = d->o->payload_bytes;
    bool text = inspect_utf8_valid(p, n);
    size_t shown = text ? inspect_utf8_cut(p, n, cap) : (n < cap ? n : cap);
    if (d->o->json) {
        fprintf(d->out, ",\"%s%s\":", key, text ? "" : "_hex");
        if (text) {
            inspect_json_string(d->out, p, shown);
        } else {
            fputc('"', d->out);
            inspect_hex(d->out, p, shown);
            fputc('"', d->out);
        }
        if (shown < n)
            fprintf(d->out, ",\"%s_truncated\":true", key);
        return;
    }
    fprintf(d->out, "\n    %s%s: ", key, text ? "" : " (hex)");
    if (text)
        inspect_json_string(d->out, p, shown);
    else
        inspect_hex(d->out, p, shown);
    if (shown < n)
        fprintf(d->out, " ... (%zu of %zu bytes)", shown, n);
}

/* Adds the data decoded field by field when it is a known protobuf message. */
static void inspect_dump_decoded(inspect_dump_t *d, const log_event_t *ev)
{
    const struct ProtobufCMessageDescriptor *desc = inspect_proto_for(ev);
    if (!desc)
        return;
    fputs(d->o->json ? ",\"data_decoded\":" : "\n    data decoded: ", d->out);
    if (!inspect_proto_json(d->out, desc, ev->data, ev->data_len))
        fputs(d->o->json ? "null" : "(does not decode)", d->out);
}

static void inspect_dump_event(inspect_dump_t *d, const inspect_seg_t *is, const walk_t *w,
                               const walk_event_t *e, const char *state)
{
    const log_event_t *ev = &e->ev;
    char id[40], t[48];
    inspect_uuid_format(ev->id, id);
    inspect_time_format(ev->timestamp_ns, t, sizeof t);
    if (d->o->json) {
        fprintf(d->out, "{\"kind\":\"event\",\"position\":%llu,\"stream\":",
                (unsigned long long)ev->position);
        inspect_json_string(d->out, ev->stream, ev->stream_len);
        fprintf(d->out, ",\"version\":%lld,\"type\":", (long long)ev->version);
        inspect_json_string(d->out, ev->type, ev->type_len);
        fprintf(d->out, ",\"id\":\"%s\",\"timestamp_ns\":%lld,\"time\":\"%s\",\"segment\":\"%s\","
                "\"batch_offset\":%llu,\"record_offset\":%u,\"record_bytes\":%u,"
                "\"metadata_bytes\":%u,\"data_bytes\":%u,\"checksum\":\"%s\"", id,
                (long long)ev->timestamp_ns, t, is->file, (unsigned long long)w->offset,
                e->body_offset, e->record_bytes, ev->metadata_len, ev->data_len, state);
    } else {
        fprintf(d->out, "  event %llu: stream ", (unsigned long long)ev->position);
        inspect_json_string(d->out, ev->stream, ev->stream_len);
        fprintf(d->out, " version %lld type ", (long long)ev->version);
        inspect_json_string(d->out, ev->type, ev->type_len);
        fprintf(d->out, " id %s time %s record offset %u, %u bytes, metadata %u, data %u, "
                "checksum %s", id, t, e->body_offset, e->record_bytes, ev->metadata_len,
                ev->data_len, state);
    }
    if (ev->metadata_len)
        inspect_dump_payload(d, "metadata", ev->metadata, ev->metadata_len);
    inspect_dump_payload(d, "data", ev->data, ev->data_len);
    inspect_dump_decoded(d, ev);
    fputs(d->o->json ? "}\n" : "\n", d->out);
}

static int inspect_dump_on_batch(void *ctx, inspect_scan_t *sc, uint32_t seg, const walk_t *w)
{
    inspect_dump_t *d = ctx;
    const inspect_seg_t *is = &sc->log->segs[seg];
    const char *state = w->status == WALK_OK ? "ok" : "record ok, batch damaged";
    bool header = false;
    if (w->status != WALK_OK) { /* always shown, filters or not */
        d->o->json ? inspect_dump_batch_json(d, is, w) : inspect_dump_batch_text(d, is, w);
        header = true;
    }
    for (uint32_t k = 0; k < w->event_count; k++) {
        if (!inspect_dump_keeps(d->o, &w->events[k].ev))
            continue;
        if (d->o->limit && d->printed >= d->o->limit) {
            d->limited = true;
            return 1;
        }
        if (!header)
            d->o->json ? inspect_dump_batch_json(d, is, w) : inspect_dump_batch_text(d, is, w);
        header = true;
        inspect_dump_event(d, is, w, &w->events[k], state);
        d->printed++;
    }
    return w->status == WALK_OK && w->h.first_position + w->h.event_count > d->o->to;
}

int inspect_dump(const char *path, const inspect_opts_t *o)
{
    inspect_report_t r = {.out = stderr, .quiet_notes = true};
    inspect_log_t log;
    int rc = inspect_log_open(path, &log, &r);
    if (rc) {
        inspect_io_error(&r, path, rc);
        return INSPECT_EXIT_ERROR;
    }
    inspect_dump_t d = {.o = o, .out = stdout};
    inspect_scan_t sc = {.on_batch = inspect_dump_on_batch, .ctx = &d};
    inspect_scan_run(&sc, &log, &r);
    if (d.limited)
        fprintf(stderr, "evstore-inspect: stopped after --limit %llu events\n",
                (unsigned long long)o->limit);
    inspect_scan_free(&sc);
    inspect_log_close(&log);
    if (r.io_error)
        return INSPECT_EXIT_ERROR;
    /* Damage seen before the scan stopped makes the exit code 1. */
    return inspect_problems(&r) ? INSPECT_EXIT_DAMAGED : INSPECT_EXIT_CLEAN;
}
