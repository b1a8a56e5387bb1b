/* inspect_index.c -- persisted index files (<pos>.idx) checked against the
 * segments they describe, and rebuilt from them with the engine's writer.
 *
 * The check reads the file whole (walk_index_open: magic, version,
 * checksums, length), then its structure (format.md 3.6), then lays its
 * entries out by position; the scan then visits every event of the segment
 * once and compares it with the entries that claim it: batch offset, record
 * offset, stream, version, category. Whatever an entry claims that the walk
 * never finds is reported at the end. */
#include "inspect.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INSPECT_INDEX_DETAIL_MAX 10u /* problems printed per index file; the rest counted */
#define CLAIM_NONE UINT32_MAX        /* no entry claims the position */
#define CLAIM_DONE (UINT32_MAX - 1)  /* the claim was checked against the event */

typedef struct {
    uint32_t stream;       /* entry index in a stream run, or CLAIM_* */
    uint32_t stream_run;   /* that run (saves a search per event) */
    uint32_t category;     /* entry index in a category run, or CLAIM_* */
    uint32_t category_run;
} inspect_claim_t;

struct inspect_index_state_s {
    char file[40];               /* "<20 digits>.idx" */
    walk_index_t v;
    bool usable;                 /* whole and well-formed: claims are laid out */
    inspect_claim_t *claims;     /* claims[p - first]: the entries claiming position p */
    uint64_t first, end;         /* positions covered: [first, end) */
    uint64_t reported;           /* problems found in this file */
    uint64_t sparse_next;        /* the sparse entry expected next */
    uint64_t sparse_next_offset; /* a batch at or past it has a sparse entry */
    bool boundary;               /* some batch ends exactly at end */
};

/* Reports one problem of the current index file; prints the first
 * INSPECT_INDEX_DETAIL_MAX of them. */
__attribute__((format(printf, 4, 5))) static void
inspect_index_problem(inspect_scan_t *sc, inspect_index_state_t *st, uint64_t offset,
                      const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    FILE *out = sc->rep->out;
    if (st->reported++ >= INSPECT_INDEX_DETAIL_MAX)
        sc->rep->out = NULL;
    inspect_problem(sc->rep, INSPECT_INDEX, st->file, offset, "%s", buf);
    sc->rep->out = out;
}

/* File offsets of the arrays, for the messages. */
static uint64_t inspect_index_run_off(const walk_index_t *v, uint64_t j)
{
    return sizeof(index_header_t) + v->h.sparse_count * sizeof(sparse_entry_t) +
           j * sizeof(index_run_t);
}

static uint64_t inspect_index_entry_off(const walk_index_t *v, uint64_t i)
{
    return inspect_index_run_off(v, v->h.run_count) + i * sizeof(index_entry_t);
}

static const char *inspect_run_name(const walk_index_t *v, const index_run_t *r)
{
    return v->names + r->name_offset;
}

/* Orders runs as the writer does: streams first, then names as bytes. */
static int inspect_run_cmp(const walk_index_t *v, const index_run_t *a, const index_run_t *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(inspect_run_name(v, a), inspect_run_name(v, b), n);
    return c ? c : (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

/* ---- before the walk ---- */

/* Reports why a file that is not whole was rejected. */
static void inspect_index_not_whole(inspect_scan_t *sc, inspect_index_state_t *st)
{
    const walk_index_t *v = &st->v;
    const char *what = walk_index_problem_name(v->problem);
    if (v->problem == WALK_INDEX_HEADER_CHECKSUM)
        inspect_index_problem(sc, st, 88, "%s: expected 0x%016llx, found 0x%016llx", what,
                              (unsigned long long)v->header_sum,
                              (unsigned long long)v->h.header_checksum);
    else if (v->problem == WALK_INDEX_BODY_CHECKSUM)
        inspect_index_problem(sc, st, 72, "%s: expected 0x%016llx, found 0x%016llx", what,
                              (unsigned long long)v->body_sum,
                              (unsigned long long)v->h.body_checksum);
    else
        inspect_index_problem(sc, st, 0, "%s (file is %llu bytes)", what,
                              (unsigned long long)v->file_bytes);
}

/* Checks the header fields against the segment (format.md 3.6). */
static bool inspect_index_header(inspect_scan_t *sc, inspect_index_state_t *st, uint32_t seg)
{
    const inspect_log_t *log = sc->log;
    const index_header_t *h = &st->v.h;
    const inspect_seg_t *is = &log->segs[seg];
    if (h->first_position != is->hdr.first_position) {
        inspect_index_problem(sc, st, 16, "first_position: expected %llu (the segment's), found %llu",
                              (unsigned long long)is->hdr.first_position,
                              (unsigned long long)h->first_position);
        return false;
    }
    if (h->end_position < h->first_position || h->end_offset < SEGMENT_HEADER_BYTES ||
        h->end_offset > is->hdr.segment_bytes) {
        inspect_index_problem(sc, st, 24, "end_position %llu / end_offset %llu outside the segment",
                              (unsigned long long)h->end_position,
                              (unsigned long long)h->end_offset);
        return false;
    }
    return true;
}

/* Checks one run's bounds, order and first ordinal. false: the structure
 * is broken and the entries cannot be laid out. */
static bool inspect_index_run(inspect_scan_t *sc, inspect_index_state_t *st, uint32_t j,
                              uint64_t want_entry)
{
    const walk_index_t *v = &st->v;
    const index_run_t *r = &v->runs[j];
    uint64_t off = inspect_index_run_off(v, j);
    if ((uint64_t)r->name_offset + r->name_len > v->h.names_bytes || r->name_len == 0 ||
        r->kind > RUN_KIND_CATEGORY || r->entry_index != want_entry ||
        r->entry_index + r->count > v->h.entry_count) {
        inspect_index_problem(sc, st, off,
                              "run %u malformed: name [%u, +%u) of %llu bytes, kind %u, entries "
                              "[%llu, +%u) (expected to start at %llu) of %llu", j, r->name_offset,
                              r->name_len, (unsigned long long)v->h.names_bytes, r->kind,
                              (unsigned long long)r->entry_index, r->count,
                              (unsigned long long)want_entry,
                              (unsigned long long)v->h.entry_count);
        return false;
    }
    const char *name = inspect_run_name(v, r);
    if (j > 0 && inspect_run_cmp(v, &v->runs[j - 1], r) >= 0)
        inspect_index_problem(sc, st, off, "run %u (\"%.*s\") is out of order", j,
                              (int)r->name_len, name);
    if (sc->log->single || sc->epoch > 0)
        return true; /* earlier segments unknown or damaged: ordinals cannot be checked */
    uint32_t kind = r->kind == RUN_KIND_CATEGORY ? INSPECT_KIND_CATEGORY : INSPECT_KIND_STREAM;
    const inspect_name_t *n = inspect_names_find(&sc->streams, name, r->name_len, kind);
    uint64_t have = n ? n->count : 0;
    if (r->first_ordinal != have)
        inspect_index_problem(sc, st, off,
                              "run for %s \"%.*s\": first_ordinal expected %llu (its events in "
                              "earlier segments), found %llu",
                              kind == INSPECT_KIND_STREAM ? "stream" : "category",
                              (int)r->name_len, name, (unsigned long long)have,
                              (unsigned long long)r->first_ordinal);
    return true;
}

/* Records which entry claims each position; reports entries outside the
 * covered range, out of order or claiming a position twice. */
static void inspect_index_claims(inspect_scan_t *sc, inspect_index_state_t *st)
{
    const walk_index_t *v = &st->v;
    for (uint32_t j = 0; j < v->h.run_count; j++) {
        const index_run_t *r = &v->runs[j];
        uint64_t prev = 0;
        for (uint32_t k = 0; k < r->count; k++) {
            uint64_t i = r->entry_index + k;
            const index_entry_t *e = &v->entries[i];
            uint64_t off = inspect_index_entry_off(v, i);
            if (e->position < st->first || e->position >= st->end ||
                e->batch_offset < SEGMENT_HEADER_BYTES || e->batch_offset >= v->h.end_offset) {
                inspect_index_problem(sc, st, off,
                                      "entry %llu (run \"%.*s\"): position %llu, batch offset %u "
                                      "outside the covered positions [%llu, %llu) and offsets "
                                      "[4096, %llu)", (unsigned long long)i, (int)r->name_len,
                                      inspect_run_name(v, r), (unsigned long long)e->position,
                                      e->batch_offset, (unsigned long long)st->first,
                                      (unsigned long long)st->end,
                                      (unsigned long long)v->h.end_offset);
                continue;
            }
            if (k > 0 && e->position <= prev)
                inspect_index_problem(sc, st, off, "entry %llu (run \"%.*s\"): position %llu "
                                      "not after the run's previous %llu", (unsigned long long)i,
                                      (int)r->name_len, inspect_run_name(v, r),
                                      (unsigned long long)e->position, (unsigned long long)prev);
            prev = e->position;
            inspect_claim_t *c = &st->claims[e->position - st->first];
            uint32_t *slot = r->kind == RUN_KIND_STREAM ? &c->stream : &c->category;
            if (*slot != CLAIM_NONE) {
                inspect_index_problem(sc, st, off, "entry %llu: position %llu is listed twice "
                                      "(also by entry %u)", (unsigned long long)i,
                                      (unsigned long long)e->position, *slot);
                continue;
            }
            *slot = (uint32_t)i;
            *(r->kind == RUN_KIND_STREAM ? &c->stream_run : &c->category_run) = j;
        }
    }
}

/* Checks the runs, then lays the entries out by position. */
static void inspect_index_layout(inspect_scan_t *sc, inspect_index_state_t *st)
{
    const walk_index_t *v = &st->v;
    uint64_t want = 0;
    for (uint32_t j = 0; j < v->h.run_count; j++) {
        if (!inspect_index_run(sc, st, j, want))
            return;
        want += v->runs[j].count;
    }
    if (want != v->h.entry_count) {
        inspect_index_problem(sc, st, 48, "runs own %llu entries, the header says %llu",
                              (unsigned long long)want, (unsigned long long)v->h.entry_count);
        return;
    }
    uint64_t span = st->end - st->first;
    if (span > v->h.entry_count || v->h.entry_count >= CLAIM_DONE) {
        inspect_index_problem(sc, st, 24, "covers %llu positions but lists %llu entries: events "
                              "are missing", (unsigned long long)span,
                              (unsigned long long)v->h.entry_count);
        return;
    }
    st->claims = malloc((span ? span : 1) * sizeof *st->claims);
    if (!st->claims) {
        inspect_io_error(sc->rep, st->file, -ENOMEM);
        return;
    }
    memset(st->claims, 0xff, span * sizeof *st->claims);
    inspect_index_claims(sc, st);
    st->usable = true;
}

/* Frees what the state of the previous file holds. */
static void inspect_index_reset(inspect_index_state_t *st)
{
    free(st->claims);
    walk_index_close(&st->v);
    memset(st, 0, sizeof *st);
}

int inspect_index_begin(inspect_scan_t *sc, uint32_t seg)
{
    if (!sc->index && !(sc->index = calloc(1, sizeof *sc->index)))
        return -ENOMEM;
    inspect_index_state_t *st = sc->index;
    inspect_index_reset(st);
    const inspect_seg_t *is = &sc->log->segs[seg];
    bool last = seg + 1 == sc->log->count;
    snprintf(st->file, sizeof st->file, "%020llu.idx", (unsigned long long)is->hdr.first_position);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", sc->log->dir, st->file);
    int rc = walk_index_open(path, &st->v);
    if (rc == -ENOENT) {
        inspect_problem(sc->rep, last ? INSPECT_NOTE : INSPECT_INDEX, st->file, UINT64_MAX,
                        last ? "no index file for the last segment (normal after a crash; "
                               "start-up scans it)"
                             : "missing: the sealed segment has no index file (start-up scans "
                               "it; `index --rebuild` writes it)");
        return 0;
    }
    if (rc < 0) {
        inspect_io_error(sc->rep, st->file, rc);
        return 0;
    }
    if (st->v.problem != WALK_INDEX_OK) {
        inspect_index_not_whole(sc, st);
        return 0;
    }
    st->first = st->v.h.first_position;
    st->end = st->v.h.end_position;
    if (!inspect_index_header(sc, st, seg))
        return 0;
    inspect_index_layout(sc, st);
    st->boundary = st->end == st->first;
    if (st->usable && st->boundary &&
        (st->v.h.end_offset != SEGMENT_HEADER_BYTES || st->v.h.end_checksum != is->hdr.prev_checksum))
        inspect_index_problem(sc, st, 32, "covers no events but end_offset %llu / end_checksum "
                              "0x%016llx differ from 4096 / the segment's prev_checksum",
                              (unsigned long long)st->v.h.end_offset,
                              (unsigned long long)st->v.h.end_checksum);
    return 0;
}

void inspect_index_free(inspect_scan_t *sc)
{
    if (sc->index)
        inspect_index_reset(sc->index);
    free(sc->index);
    sc->index = NULL;
}

/* ---- during the walk ---- */

/* Checks the sparse entry a batch at offset should have. */
static void inspect_index_sparse(inspect_scan_t *sc, inspect_index_state_t *st, const walk_t *w)
{
    if (w->offset < st->sparse_next_offset)
        return;
    st->sparse_next_offset = (w->offset / SPARSE_STEP_BYTES + 1) * SPARSE_STEP_BYTES;
    const walk_index_t *v = &st->v;
    uint64_t k = st->sparse_next++;
    uint64_t off = sizeof(index_header_t) + k * sizeof(sparse_entry_t);
    if (k >= v->h.sparse_count) {
        inspect_index_problem(sc, st, off, "sparse entry %llu missing: expected position %llu at "
                              "batch offset %llu", (unsigned long long)k,
                              (unsigned long long)w->h.first_position,
                              (unsigned long long)w->offset);
        return;
    }
    const sparse_entry_t *e = &v->sparse[k];
    if (e->position != w->h.first_position || e->batch_offset != w->offset)
        inspect_index_problem(sc, st, off, "sparse entry %llu: expected position %llu at batch "
                              "offset %llu, found position %llu at %u", (unsigned long long)k,
                              (unsigned long long)w->h.first_position,
                              (unsigned long long)w->offset, (unsigned long long)e->position,
                              e->batch_offset);
}

/* Compares the entry claiming an event (in a stream or category run) with
 * the event; name is the stream or category it should be listed under. */
static void inspect_index_entry(inspect_scan_t *sc, inspect_index_state_t *st, const walk_t *w,
                                uint32_t k, uint32_t *claim, uint32_t run,
                                const inspect_name_t *name)
{
    const walk_event_t *e = &w->events[k];
    const char *kind = name->kind == INSPECT_KIND_STREAM ? "stream" : "category";
    if (*claim == CLAIM_NONE) {
        inspect_index_problem(sc, st, UINT64_MAX, "event at position %llu (stream \"%.*s\" "
                              "version %lld) is missing from the runs of its %s",
                              (unsigned long long)e->ev.position, (int)e->ev.stream_len,
                              e->ev.stream, (long long)e->ev.version, kind);
        return;
    }
    if (*claim == CLAIM_DONE)
        return;
    const walk_index_t *v = &st->v;
    const index_entry_t *x = &v->entries[*claim];
    const index_run_t *r = &v->runs[run];
    uint64_t ordinal = r->first_ordinal + (*claim - r->entry_index);
    bool kind_ok = (r->kind == RUN_KIND_CATEGORY) == (name->kind == INSPECT_KIND_CATEGORY);
    bool name_ok = r->name_len == name->len && memcmp(inspect_run_name(v, r), name->name,
                                                      name->len) == 0;
    bool version_ok = r->kind == RUN_KIND_CATEGORY || ordinal == (uint64_t)e->ev.version;
    if (x->batch_offset != w->offset || x->body_offset != e->body_offset || !kind_ok || !name_ok ||
        !version_ok)
        inspect_index_problem(sc, st, inspect_index_entry_off(v, *claim),
                              "entry %u claims position %llu at batch offset %u, record offset "
                              "%u, %s \"%.*s\" ordinal %llu; the event there is at batch offset "
                              "%llu, record offset %u, %s \"%.*s\" version %lld", *claim,
                              (unsigned long long)x->position, x->batch_offset, x->body_offset,
                              r->kind == RUN_KIND_CATEGORY ? "category" : "stream",
                              (int)r->name_len, inspect_run_name(v, r),
                              (unsigned long long)ordinal, (unsigned long long)w->offset,
                              e->body_offset, kind, (int)name->len, name->name,
                              (long long)e->ev.version);
    *claim = CLAIM_DONE;
}

/* Checks the end_offset/end_checksum of the index at the batch ending at end. */
static void inspect_index_boundary(inspect_scan_t *sc, inspect_index_state_t *st, const walk_t *w)
{
    uint64_t end_offset = w->offset + batch_stored_size(&w->h);
    st->boundary = true;
    if (st->v.h.end_offset != end_offset || st->v.h.end_checksum != w->h.header_checksum)
        inspect_index_problem(sc, st, 32, "end_offset/end_checksum: expected %llu / 0x%016llx "
                              "(after the batch ending at position %llu), found %llu / 0x%016llx",
                              (unsigned long long)end_offset,
                              (unsigned long long)w->h.header_checksum,
                              (unsigned long long)st->end, (unsigned long long)st->v.h.end_offset,
                              (unsigned long long)st->v.h.end_checksum);
}

void inspect_index_batch(inspect_scan_t *sc, uint32_t seg, const walk_t *w)
{
    (void)seg;
    inspect_index_state_t *st = sc->index;
    if (!st || !st->usable || w->h.first_position >= st->end || w->h.first_position < st->first)
        return;
    if (!sc->log->segs[seg].damaged) /* after damage the batch starts are not all known */
        inspect_index_sparse(sc, st, w);
    uint64_t last = w->h.first_position + w->h.event_count;
    if (last > st->end)
        inspect_index_problem(sc, st, 24, "end_position %llu falls inside the batch at offset "
                              "%llu (positions %llu..%llu)", (unsigned long long)st->end,
                              (unsigned long long)w->offset,
                              (unsigned long long)w->h.first_position,
                              (unsigned long long)(last - 1));
    for (uint32_t k = 0; k < w->event_count && w->events[k].ev.position < st->end; k++) {
        inspect_claim_t *c = &st->claims[w->events[k].ev.position - st->first];
        const inspect_name_t *n = sc->names[k];
        inspect_index_entry(sc, st, w, k, &c->stream, c->stream_run, n);
        if (n->category)
            inspect_index_entry(sc, st, w, k, &c->category, c->category_run, n->category);
        else if (c->category != CLAIM_NONE && c->category != CLAIM_DONE)
            inspect_index_problem(sc, st, inspect_index_entry_off(&st->v, c->category),
                                  "entry %u lists position %llu in a category, but its stream "
                                  "\"%.*s\" has none", c->category,
                                  (unsigned long long)w->events[k].ev.position,
                                  (int)n->len, n->name);
    }
    if (last == st->end)
        inspect_index_boundary(sc, st, w);
}

/* ---- after the walk ---- */

/* Reports entries that claim events the walk never found; in a damaged
 * segment they are counted in one note (the damage is the problem). */
static void inspect_index_unclaimed(inspect_scan_t *sc, inspect_index_state_t *st, bool damaged)
{
    const walk_index_t *v = &st->v;
    uint64_t n = 0;
    for (uint64_t p = 0; p < st->end - st->first; p++) {
        uint32_t ids[2] = {st->claims[p].stream, st->claims[p].category};
        for (int j = 0; j < 2; j++) {
            if (ids[j] == CLAIM_NONE || ids[j] == CLAIM_DONE)
                continue;
            n++;
            const index_entry_t *e = &v->entries[ids[j]];
            if (!damaged)
                inspect_index_problem(sc, st, inspect_index_entry_off(v, ids[j]),
                                      "entry %u claims position %llu at batch offset %u, record "
                                      "offset %u, but no valid event is there", ids[j],
                                      (unsigned long long)e->position, e->batch_offset,
                                      e->body_offset);
        }
    }
    if (damaged && n)
        inspect_problem(sc->rep, INSPECT_NOTE, st->file, UINT64_MAX,
                        "%llu entries point at events of damaged batches (see the damage above)",
                        (unsigned long long)n);
}

/* Compares how far the index reaches with how far the valid data does. */
static void inspect_index_reach(inspect_scan_t *sc, inspect_index_state_t *st, uint32_t seg)
{
    const inspect_seg_t *is = &sc->log->segs[seg];
    bool last = seg + 1 == sc->log->count;
    if (!st->boundary && !is->damaged)
        inspect_index_problem(sc, st, 24, "covers positions up to %llu (offset %llu), but the "
                              "segment's valid data ends at position %llu (offset %llu)",
                              (unsigned long long)st->end,
                              (unsigned long long)st->v.h.end_offset,
                              (unsigned long long)is->end_position,
                              (unsigned long long)is->data_end);
    else if (st->boundary && st->end < is->end_position && !last)
        inspect_index_problem(sc, st, 24, "stale: covers positions up to %llu, but the sealed "
                              "segment holds positions up to %llu", (unsigned long long)st->end,
                              (unsigned long long)is->end_position);
    else if (st->boundary && st->end < is->end_position)
        inspect_problem(sc->rep, INSPECT_NOTE, st->file, UINT64_MAX,
                        "covers positions up to %llu; the rest of the last segment (up to %llu) "
                        "is scanned at start-up", (unsigned long long)st->end,
                        (unsigned long long)is->end_position);
}

void inspect_index_end(inspect_scan_t *sc, uint32_t seg)
{
    inspect_index_state_t *st = sc->index;
    const inspect_seg_t *is = &sc->log->segs[seg];
    if (st && st->usable) {
        inspect_index_reach(sc, st, seg);
        inspect_index_unclaimed(sc, st, is->damaged);
        if (st->sparse_next < st->v.h.sparse_count && !is->damaged)
            inspect_index_problem(sc, st, sizeof(index_header_t) +
                                  st->sparse_next * sizeof(sparse_entry_t),
                                  "%llu sparse entries more than the segment's batches give",
                                  (unsigned long long)(st->v.h.sparse_count - st->sparse_next));
    }
    if (st && st->reported > INSPECT_INDEX_DETAIL_MAX && sc->rep->out)
        fprintf(sc->rep->out, "index: %s: ... and %llu more problems in this file\n", st->file,
                (unsigned long long)(st->reported - INSPECT_INDEX_DETAIL_MAX));
    if (st)
        inspect_index_reset(st);
}

/* ---- rebuilding ---- */

/* Scans segment i with the engine (log_offline_scan: the same checks and
 * index building as recovery). Returns true when its data is whole: it
 * continues the log and, unless last, ends where the next segment starts. */
static bool inspect_rebuild_scan(inspect_log_t *log, uint32_t i, inspect_report_t *rep,
                                 uint64_t *end)
{
    const inspect_seg_t *is = &log->segs[i];
    bool last = i + 1 == log->count;
    uint64_t position, chain;
    log_offline_head(log->set, &position, &chain);
    if (is->hdr_rc != 0 || (is->short_file && !last) || is->first != position ||
        is->hdr.prev_checksum != chain) {
        inspect_problem(rep, INSPECT_DAMAGE, is->file, 0, "header damaged or does not continue "
                        "the log (expected position %llu); run `verify`",
                        (unsigned long long)position);
        return false;
    }
    if (log_offline_scan(log->set, i, end) != 0) {
        inspect_io_error(rep, is->file, -ENOMEM);
        return false;
    }
    log_offline_head(log->set, &position, &chain);
    const inspect_seg_t *next = last ? NULL : &log->segs[i + 1];
    bool zeros = walk_first_nonzero(is->map, *end, is->size) == is->size;
    if (zeros && (!next || (next->hdr_rc == 0 && next->hdr.first_position == position &&
                            next->hdr.prev_checksum == chain)))
        return true;
    inspect_problem(rep, last ? INSPECT_TORN : INSPECT_DAMAGE, is->file, *end,
                    "the valid data ends here (position %llu) and %s follows; run `verify`%s",
                    (unsigned long long)position,
                    zeros ? "a segment that does not continue it" : "damage",
                    last ? " and `repair`" : "");
    return false;
}

int inspect_index_rebuild(inspect_log_t *log, inspect_report_t *rep, bool dry_run)
{
    for (uint32_t i = 0; i < log->count; i++) {
        uint64_t end, first, last, chain;
        log_offline_head(log->set, &first, &chain);
        if (!inspect_rebuild_scan(log, i, rep, &end)) {
            fprintf(stdout, "stopped: no index written for %s%s\n", log->segs[i].file,
                    i + 1 < log->count ? " or later segments" : "");
            return rep->io_error ? INSPECT_EXIT_ERROR : INSPECT_EXIT_DAMAGED;
        }
        log_offline_head(log->set, &last, &chain);
        int rc = 0;
        if (dry_run)
            log_offline_index_forget(log->set, i);
        else
            rc = log_offline_index_write(log->set, i, end);
        if (rc) {
            inspect_io_error(rep, log->segs[i].file, rc);
            return INSPECT_EXIT_ERROR;
        }
        fprintf(stdout, "%s %020llu.idx: positions [%llu, %llu) (%llu events), data up to offset "
                "%llu\n", dry_run ? "would write" : "wrote", (unsigned long long)log->segs[i].first,
                (unsigned long long)first, (unsigned long long)last,
                (unsigned long long)(last - first), (unsigned long long)end);
    }
    return INSPECT_EXIT_CLEAN;
}

int inspect_index_rebuild_cmd(const char *path, const inspect_opts_t *o)
{
    inspect_report_t r = {.out = stdout};
    int lock = log_offline_lock(path, !o->dry_run);
    if (lock < 0 && lock != -ENOENT) {
        fprintf(stderr, "evstore-inspect: %s: %s%s\n", path, log_strerror(lock),
                lock == LOG_ELOCKED ? " (is evstored running?); nothing was changed" : "");
        return INSPECT_EXIT_ERROR;
    }
    inspect_log_t log;
    int code = INSPECT_EXIT_ERROR;
    int rc = inspect_log_open(path, &log, &r);
    if (rc) {
        inspect_io_error(&r, path, rc);
    } else {
        if (log.single || log.count == 0)
            fprintf(stderr, "evstore-inspect: %s: index --rebuild needs a data directory with "
                    "segments\n", path);
        else if (!r.io_error)
            code = inspect_index_rebuild(&log, &r, o->dry_run);
        inspect_log_close(&log);
    }
    if (lock >= 0)
        close(lock);
    return code;
}
