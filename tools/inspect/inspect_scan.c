/* inspect_scan.c -- the verifying scan every command shares: segments in
 * order, each batch checked by the walk (storage/log_offline.h), the chain carried
 * across segments, stream versions checked across the whole log, and the
 * bytes after the data of each segment judged as recovery judges them.
 *
 * Unlike recovery it does not stop at the first damage: it reports it,
 * finds the next well-formed batch header, and goes on from there. */
#include "inspect.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void inspect_scan_damage_detail(const walk_t *w, char *buf, size_t cap)
{
    const char *what = walk_status_name(w->status);
    switch (w->status) {
    case WALK_BAD_MAGIC:
        snprintf(buf, cap, "%s: expected 0x%08llx, found 0x%08llx", what,
                 (unsigned long long)w->expected, (unsigned long long)w->found);
        break;
    case WALK_BAD_HEADER_CHECKSUM:
    case WALK_BAD_BODY_CHECKSUM:
    case WALK_BAD_CHAIN:
        snprintf(buf, cap, "%s (batch at position %llu): expected 0x%016llx, found 0x%016llx",
                 what, (unsigned long long)w->h.first_position, (unsigned long long)w->expected,
                 (unsigned long long)w->found);
        break;
    case WALK_BAD_RECORD:
    case WALK_BAD_STREAM:
        snprintf(buf, cap, "%s: record %u of the batch (position %llu) at body offset %llu fails "
                 "its bounds or checksum", what, w->bad_record,
                 (unsigned long long)w->expected, (unsigned long long)w->bad_record_offset);
        break;
    default:
        snprintf(buf, cap, "%s: expected %llu, found %llu", what, (unsigned long long)w->expected,
                 (unsigned long long)w->found);
        break;
    }
}

/* The stream of every event of a valid batch, for the version check and
 * the commands' hooks. */
static int inspect_scan_names(inspect_scan_t *sc, const walk_t *w)
{
    if (w->event_count > sc->names_cap) {
        uint32_t cap = w->event_count < 64 ? 64 : w->event_count;
        inspect_name_t **fresh = realloc(sc->names, cap * sizeof *fresh);
        if (!fresh)
            return -ENOMEM;
        sc->names = fresh;
        sc->names_cap = cap;
    }
    for (uint32_t k = 0; k < w->event_count; k++) {
        const log_event_t *ev = &w->events[k].ev;
        sc->names[k] = inspect_names_get(&sc->streams, ev->stream, ev->stream_len,
                                         INSPECT_KIND_STREAM);
        if (!sc->names[k])
            return -ENOMEM;
    }
    return 0;
}

/* Checks that each event's version follows its stream's previous one. A
 * jump forward is not reported for a stream not seen since the last damage
 * (the missing events may be in the damaged bytes). */
static void inspect_scan_versions(inspect_scan_t *sc, uint32_t seg, const walk_t *w)
{
    for (uint32_t k = 0; k < w->event_count; k++) {
        const walk_event_t *e = &w->events[k];
        inspect_name_t *n = sc->names[k];
        bool fresh = n->count == 0;
        int64_t want = n->next_version;
        bool excused = (n->epoch < sc->epoch && e->ev.version > want) ||
                       (fresh && !sc->versions_from_zero);
        if (e->ev.version != want && !excused)
            inspect_problem(sc->rep, INSPECT_DAMAGE, sc->log->segs[seg].file, w->offset,
                            "stream \"%.*s\": event at position %llu has version %lld, expected "
                            "%lld", (int)(n->len > 200 ? 200 : n->len), n->name,
                            (unsigned long long)e->ev.position, (long long)e->ev.version,
                            (long long)want);
        n->next_version = e->ev.version + 1;
        n->epoch = sc->epoch;
        n->count++;
        n->bytes += e->record_bytes;
        if (n->category)
            n->category->count++;
    }
}

/* Handles a valid batch: names, versions, index, hook. */
static int inspect_scan_valid(inspect_scan_t *sc, uint32_t seg, walk_t *w)
{
    if (inspect_scan_names(sc, w) != 0)
        return -ENOMEM;
    if (sc->index)
        inspect_index_batch(sc, seg, w);
    inspect_scan_versions(sc, seg, w);
    sc->batches++;
    sc->events += w->event_count;
    if (sc->on_batch && sc->on_batch(sc->ctx, sc, seg, w))
        sc->stop = true;
    return 0;
}

/* Restarts the walk at a well-formed header found at off (after damage). */
static void inspect_scan_resume(walk_t *w, uint64_t off)
{
    batch_header_t h;
    memcpy(&h, w->map + off, sizeof h);
    w->offset = off;
    w->position = h.first_position;
    w->chain = h.prev_checksum;
}

/* Judges the bytes after the data ends at w->offset (a zero magic or no
 * room). Returns true when a well-formed batch follows a hole (the walk
 * resumes there). */
static bool inspect_scan_after_end(inspect_scan_t *sc, uint32_t seg, walk_t *w, bool last)
{
    inspect_seg_t *is = &sc->log->segs[seg];
    uint64_t end = w->offset;
    uint64_t nz = walk_first_nonzero(w->map, end, w->size);
    if (nz == w->size)
        return false;
    uint64_t found = walk_find_header(w->map, w->size, end);
    if (found < w->size) {
        inspect_problem(sc->rep, INSPECT_DAMAGE, is->file, end,
                        "zeros where a batch (position %llu) was expected, then a well-formed "
                        "batch at offset %llu (a lost write or overwritten data)",
                        (unsigned long long)w->position, (unsigned long long)found);
        is->damaged = true;
        sc->epoch++;
        sc->damaged_batches++;
        inspect_scan_resume(w, found);
        return true;
    }
    uint64_t dirty_end = walk_last_nonzero_end(w->map, end, w->size);
    if (last) {
        is->torn = true;
        is->torn_end = dirty_end;
        inspect_problem(sc->rep, INSPECT_TORN, is->file, end,
                        "%llu bytes of an incomplete write after the last whole batch (up to "
                        "offset %llu); `repair` cuts them", (unsigned long long)(dirty_end - end),
                        (unsigned long long)dirty_end);
    } else {
        is->damaged = true;
        inspect_problem(sc->rep, INSPECT_DAMAGE, is->file, nz,
                        "nonzero bytes after the end of the data (at offset %llu) of a sealed "
                        "segment, up to offset %llu", (unsigned long long)end,
                        (unsigned long long)dirty_end);
    }
    return false;
}

/* Handles a batch that fails: a torn tail (the last segment, nothing
 * well-formed after it) ends the segment; other damage is reported and the
 * walk goes on after it. Returns true when the walk goes on. */
static bool inspect_scan_bad(inspect_scan_t *sc, uint32_t seg, walk_t *w, bool last)
{
    inspect_seg_t *is = &sc->log->segs[seg];
    bool whole = walk_header_whole(w->status);
    uint64_t next = whole ? w->offset + batch_stored_size(&w->h) : w->offset + BATCH_ALIGN;
    uint64_t found = walk_find_header(w->map, w->size, next);
    char detail[320];
    inspect_scan_damage_detail(w, detail, sizeof detail);
    if (last && found >= w->size) {
        uint64_t dirty_end = walk_last_nonzero_end(w->map, w->offset, w->size);
        is->torn = true;
        is->torn_end = dirty_end;
        inspect_problem(sc->rep, INSPECT_TORN, is->file, w->offset,
                        "incomplete last batch (expected position %llu): %s; %llu bytes up to "
                        "offset %llu would be cut by `repair`", (unsigned long long)w->position,
                        detail, (unsigned long long)(dirty_end - w->offset),
                        (unsigned long long)dirty_end);
        return false;
    }
    inspect_problem(sc->rep, INSPECT_DAMAGE, is->file, w->offset, "%s", detail);
    is->damaged = true;
    sc->epoch++;
    sc->damaged_batches++;
    if (sc->on_batch && sc->on_batch(sc->ctx, sc, seg, w))
        sc->stop = true;
    if (whole) {
        walk_advance(w);
        return true;
    }
    if (found >= w->size)
        return false;
    inspect_problem(sc->rep, INSPECT_NOTE, is->file, next - BATCH_ALIGN,
                    "skipped %llu bytes to the next well-formed batch header at offset %llu",
                    (unsigned long long)(found - w->offset), (unsigned long long)found);
    inspect_scan_resume(w, found);
    return true;
}

/* Walks the batches of segment seg from 4096, expecting sc->position and
 * sc->chain; leaves them at the values after its data. */
static int inspect_scan_batches(inspect_scan_t *sc, uint32_t seg, bool last)
{
    inspect_seg_t *is = &sc->log->segs[seg];
    walk_t *w = &sc->walk;
    walk_init(w, is->map, is->size, SEGMENT_HEADER_BYTES, sc->position, sc->chain);
    bool more = is->size > SEGMENT_HEADER_BYTES;
    while (more && !sc->stop) {
        walk_status_t st = walk_batch(w);
        if (st == WALK_OK) {
            if (inspect_scan_valid(sc, seg, w) != 0)
                return -ENOMEM;
            walk_advance(w);
            is->data_end = w->offset;
        } else if (st == WALK_END || st == WALK_NO_ROOM) {
            is->data_end = w->offset;
            more = inspect_scan_after_end(sc, seg, w, last);
        } else {
            is->data_end = w->offset;
            more = inspect_scan_bad(sc, seg, w, last);
        }
    }
    is->end_position = sc->position = w->position;
    is->end_checksum = sc->chain = w->chain;
    return 0;
}

/* Checks a segment's header and its place after the previous segment. */
static bool inspect_scan_header(inspect_scan_t *sc, uint32_t seg, bool last)
{
    inspect_seg_t *is = &sc->log->segs[seg];
    inspect_report_t *r = sc->rep;
    if (is->hdr_rc != 0) {
        if (is->hdr_rc > -10000 && is->hdr_rc < 0)
            return false; /* reported as an I/O error when opened */
        inspect_problem(r, INSPECT_DAMAGE, is->file, 0, "segment header: %s%s",
                        log_strerror(is->hdr_rc),
                        is->file_bytes < sizeof(segment_header_t) ? " (file too short)" : "");
        is->damaged = true;
        return false;
    }
    const segment_header_t *h = &is->hdr;
    if (h->first_position != is->first)
        inspect_problem(r, INSPECT_DAMAGE, is->file, 0,
                        "segment header first_position: expected %llu (the file name), found %llu",
                        (unsigned long long)is->first, (unsigned long long)h->first_position);
    if (is->short_file)
        inspect_problem(r, last ? INSPECT_TORN : INSPECT_DAMAGE, is->file, is->file_bytes,
                        "file is %llu bytes, its header says %llu: cut short%s",
                        (unsigned long long)is->file_bytes, (unsigned long long)h->segment_bytes,
                        last ? "; `repair` restores its length" : "");
    if (!sc->resync && (h->first_position != sc->position || h->prev_checksum != sc->chain)) {
        inspect_problem(r, INSPECT_DAMAGE, is->file, 0,
                        "segment does not continue the log: expected position %llu, chain "
                        "0x%016llx; found position %llu, chain 0x%016llx (a missing, damaged or "
                        "foreign segment)", (unsigned long long)sc->position,
                        (unsigned long long)sc->chain, (unsigned long long)h->first_position,
                        (unsigned long long)h->prev_checksum);
        sc->epoch++;
    }
    sc->position = h->first_position;
    sc->chain = h->prev_checksum;
    sc->resync = false;
    return true;
}

static int inspect_scan_segment(inspect_scan_t *sc, uint32_t seg)
{
    bool last = seg + 1 == sc->log->count;
    inspect_seg_t *is = &sc->log->segs[seg];
    is->data_end = SEGMENT_HEADER_BYTES;
    if (!inspect_scan_header(sc, seg, last)) {
        sc->resync = true;
        sc->epoch++;
        return 0;
    }
    int rc = sc->check_index ? inspect_index_begin(sc, seg) : 0;
    if (rc == 0)
        rc = inspect_scan_batches(sc, seg, last);
    if (rc == 0 && sc->check_index && !sc->stop)
        inspect_index_end(sc, seg);
    /* Done with its pages: keeps the resident set to about one segment. */
    if (is->map && !sc->keep_pages)
        (void)madvise((void *)is->map, is->size, MADV_DONTNEED);
    if (is->short_file && last)
        is->torn = true;
    else if (is->short_file)
        is->damaged = true;
    return rc;
}

int inspect_scan_run(inspect_scan_t *sc, inspect_log_t *log, inspect_report_t *rep)
{
    sc->log = log;
    sc->rep = rep;
    sc->versions_from_zero = !log->single;
    sc->resync = log->single;
    int rc = inspect_names_init(&sc->streams);
    for (uint32_t i = 0; rc == 0 && i < log->count && !sc->stop; i++)
        rc = inspect_scan_segment(sc, i);
    if (rc)
        inspect_io_error(rep, log->dir, rc);
    return rc;
}

void inspect_scan_free(inspect_scan_t *sc)
{
    walk_free(&sc->walk);
    inspect_index_free(sc);
    inspect_names_free(&sc->streams);
    free(sc->names);
    sc->names = NULL;
}
