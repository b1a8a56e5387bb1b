/* inspect_dump.c -- `dump`: batches and events as text or JSON lines, with
 * filters. JSON is made by Jansson; payloads of known protobuf types are
 * decoded by util's pbjson, exactly as oms-order shows them. Every batch is
 * verified as it is read (the shared scan); damaged batches are shown as
 * such, with the events that still pass their record checksums. Problems
 * also go to stderr, so stdout holds only the dump. */
#include "inspect.h"

#include "pbjson.h"

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
    char t[48], sum[24];
    inspect_time_format(w->h.timestamp_ns, t, sizeof t);
    snprintf(sum, sizeof sum, "0x%016llx", (unsigned long long)w->h.header_checksum);
    inspect_json_line(d->out, json_pack(
        "{s:s,s:o,s:I,s:I,s:I,s:I,s:I,s:s,s:I,s:s,s:s,s:s}", "kind", "batch", "segment",
        inspect_json_text(is->file, strlen(is->file)),
        "offset", (json_int_t)w->offset, "first_position", (json_int_t)w->h.first_position,
        "event_count", (json_int_t)w->h.event_count, "stored_bytes",
        (json_int_t)w->h.stored_bytes, "raw_bytes", (json_int_t)w->h.raw_bytes, "compression",
        (w->h.flags & BATCH_FLAG_LZ4) ? "lz4" : "none", "timestamp_ns",
        (json_int_t)w->h.timestamp_ns, "time", t, "header_checksum", sum, "checksum",
        inspect_batch_state(w)));
}

/* Adds one payload (metadata or data) to the event object o: text when it
 * is UTF-8 ("<key>"), else hex ("<key>_hex"), at most --payload-bytes of
 * it ("<key>_truncated" when cut). */
static void inspect_dump_payload_json(inspect_dump_t *d, json_t *o, const char *key,
                                      const void *p, size_t n)
{
    size_t cap = d->o->payload_bytes;
    bool text = inspect_utf8_valid(p, n);
    size_t shown = text ? inspect_utf8_cut(p, n, cap) : (n < cap ? n : cap);
    char name[32];
    snprintf(name, sizeof name, "%s%s", key, text ? "" : "_hex");
    json_object_set_new(o, name, text ? inspect_json_text(p, shown) : inspect_json_hex(p, shown));
    if (shown < n) {
        snprintf(name, sizeof name, "%s_truncated", key);
        json_object_set_new(o, name, json_true());
    }
}

/* Writes one payload as text: quoted when it is UTF-8, else hex. */
static void inspect_dump_payload_text(inspect_dump_t *d, const char *key, const void *p,
                                      size_t n)
{
    size_t cap = d->o->payload_bytes;
    bool text = inspect_utf8_valid(p, n);
    size_t shown = text ? inspect_utf8_cut(p, n, cap) : (n < cap ? n : cap);
    fprintf(d->out, "\n    %s%s: ", key, text ? "" : " (hex)");
    if (text)
        inspect_quoted(d->out, p, shown);
    else
        inspect_hex(d->out, p, shown);
    if (shown < n)
        fprintf(d->out, " ... (%zu of %zu bytes)", shown, n);
}

/* The data decoded field by field when it is a known protobuf message
 * (json null when it does not decode), or NULL when it is not one. */
static json_t *inspect_dump_decoded(const log_event_t *ev)
{
    const struct ProtobufCMessageDescriptor *desc = inspect_proto_for(ev);
    if (!desc)
        return NULL;
    json_t *j = pbjson_decode(desc, ev->data, ev->data_len);
    return j ? j : json_null();
}

static void inspect_dump_event_json(inspect_dump_t *d, const inspect_seg_t *is, const walk_t *w,
                                    const walk_event_t *e, const char *state)
{
    const log_event_t *ev = &e->ev;
    char id[40], t[48];
    inspect_uuid_format(ev->id, id);
    inspect_time_format(ev->timestamp_ns, t, sizeof t);
    json_t *o = json_pack(
        "{s:s,s:I,s:o,s:I,s:o,s:s,s:I,s:s,s:o,s:I,s:I,s:I,s:I,s:I,s:s}", "kind", "event",
        "position", (json_int_t)ev->position, "stream", inspect_json_text(ev->stream,
        ev->stream_len), "version", (json_int_t)ev->version, "type",
        inspect_json_text(ev->type, ev->type_len), "id", id, "timestamp_ns",
        (json_int_t)ev->timestamp_ns, "time", t, "segment",
        inspect_json_text(is->file, strlen(is->file)), "batch_offset",
        (json_int_t)w->offset, "record_offset", (json_int_t)e->body_offset, "record_bytes",
        (json_int_t)e->record_bytes, "metadata_bytes", (json_int_t)ev->metadata_len,
        "data_bytes", (json_int_t)ev->data_len, "checksum", state);
    if (o && ev->metadata_len)
        inspect_dump_payload_json(d, o, "metadata", ev->metadata, ev->metadata_len);
    if (o)
        inspect_dump_payload_json(d, o, "data", ev->data, ev->data_len);
    json_t *decoded = o ? inspect_dump_decoded(ev) : NULL;
    if (decoded)
        json_object_set_new(o, "data_decoded", decoded);
    inspect_json_line(d->out, o);
}

static void inspect_dump_event_text(inspect_dump_t *d, const walk_event_t *e, const char *state)
{
    const log_event_t *ev = &e->ev;
    char id[40], t[48];
    inspect_uuid_format(ev->id, id);
    inspect_time_format(ev->timestamp_ns, t, sizeof t);
    fprintf(d->out, "  event %llu: stream ", (unsigned long long)ev->position);
    inspect_quoted(d->out, ev->stream, ev->stream_len);
    fprintf(d->out, " version %lld type ", (long long)ev->version);
    inspect_quoted(d->out, ev->type, ev->type_len);
    fprintf(d->out, " id %s time %s record offset %u, %u bytes, metadata %u, data %u, "
            "checksum %s", id, t, e->body_offset, e->record_bytes, ev->metadata_len,
            ev->data_len, state);
    if (ev->metadata_len)
        inspect_dump_payload_text(d, "metadata", ev->metadata, ev->metadata_len);
    inspect_dump_payload_text(d, "data", ev->data, ev->data_len);
    json_t *decoded = inspect_dump_decoded(ev);
    if (decoded) {
        fputs("\n    data decoded: ", d->out);
        if (json_is_null(decoded) || json_dumpf(decoded, d->out, JSON_COMPACT) != 0)
            fputs("(does not decode)", d->out);
        json_decref(decoded);
    }
    fputc('\n', d->out);
}

static void inspect_dump_event(inspect_dump_t *d, const inspect_seg_t *is, const walk_t *w,
                               const walk_event_t *e, const char *state)
{
    if (d->o->json)
        inspect_dump_event_json(d, is, w, e, state);
    else
        inspect_dump_event_text(d, e, state);
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
    if (inspect_decoders_load(o->decoders, o->decoder_count) != 0)
        return INSPECT_EXIT_ERROR;
    inspect_log_t log;
    int rc = inspect_log_open(path, &log, &r);
    if (rc) {
        inspect_io_error(&r, path, rc);
        inspect_decoders_unload();
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
    inspect_decoders_unload();
    if (r.io_error)
        return INSPECT_EXIT_ERROR;
    /* Damage seen before the scan stopped makes the exit code 1. */
    return inspect_problems(&r) ? INSPECT_EXIT_DAMAGED : INSPECT_EXIT_CLEAN;
}
