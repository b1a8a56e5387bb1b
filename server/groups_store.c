/* groups_store.c -- a group's records in its system streams, all protobuf
 * messages of protocol/evstore.proto (docs/groups.md describes them):
 *
 *   "$group-<name>"   GroupSettings (at create, update, and every
 *                     GROUP_SETTINGS_EVERY checkpoints), GroupCheckpoint,
 *                     GroupDeleted (a GroupName)
 *   "$parked-<name>"  GroupParked (a ParkedEvent): a dead letter
 *
 * Appending them (the answer to a create, update or delete waits for its
 * record to be durable), rebuilding every group from them at start-up, and
 * queueing dead letters for replay. Two legacy records of earlier servers
 * are handled: raw little-endian "Checkpoint"s are read; JSON "Parked" dead
 * letters are not replayed (counted in a log line: docs/groups.md). */
#include "groups_int.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROUP_TYPE_SETTINGS "GroupSettings"
#define GROUP_TYPE_CHECKPOINT "GroupCheckpoint"
#define GROUP_TYPE_DELETED "GroupDeleted"
#define GROUP_TYPE_PARKED "GroupParked"
#define GROUP_TYPE_CHECKPOINT_LEGACY "Checkpoint" /* 16 or 24 bytes: LE u64s */
#define GROUP_TYPE_PARKED_LEGACY "Parked"         /* JSON: not replayed */

/* ---- appends ---- */

typedef struct {
    server_t *srv;
    group_t *g;           /* the group it is for */
    conn_t *conn;         /* answer Done to it, or NULL */
    uint64_t corr;
    gappend_kind_t kind;
    uint64_t park_position; /* a park: the event now done */
} gappend_t;

static void gappend_done(void *ctx, const log_append_result_t *res)
{
    gappend_t *a = ctx;
    group_t *g = a->g;
    VERIFY(g->appends_pending > 0);
    g->appends_pending--;
    if (a->kind == GAPPEND_PARK)
        msg_park_done(a->srv, g, a->park_position, res->status);
    else if (a->kind == GAPPEND_CREATE && res->status != 0 && !g->deleted)
        group_drop(a->srv, g, "group could not be created"); /* memory follows the disk */
    else if (a->kind == GAPPEND_DELETE && res->status == 0 && !g->deleted)
        group_drop(a->srv, g, "group deleted");
    if (a->conn) {
        if (res->status)
            conn_send_error(a->conn, a->corr, error_code_of(res->status),
                            log_strerror(res->status), 0, 0);
        else
            send_body(a->conn, a->corr, EVSTORE__V1__ENVELOPE__BODY_DONE,
                      &(Evstore__V1__Done)EVSTORE__V1__DONE__INIT);
        conn_release(a->conn);
    }
    if (g->deleted && g->appends_pending == 0)
        group_free(g);
    free(a);
}

/* One record to append to a system stream of a group. */
typedef struct {
    gappend_kind_t kind;
    const char *stream_prefix; /* GROUP_STREAM_PREFIX or PARKED_STREAM_PREFIX */
    const char *type;
    const ProtobufCMessage *data;
    const uint8_t *id;         /* the event id, or NULL for a random one */
    conn_t *conn;              /* answer Done to it once durable, or NULL */
    uint64_t corr;
    uint64_t park_position;
} grecord_t;

static void random_id(uint8_t id[16])
{
    for (int i = 0; i < 16; i += 8) {
        uint64_t r = (uint64_t)rand() << 32 ^ (uint64_t)rand() ^ util_mono_ns();
        memcpy(id + i, &r, 8);
    }
}

/* Appends r to its stream of g; gappend_done() runs once it is durable. */
static int group_append(server_t *srv, group_t *g, const grecord_t *r)
{
    char stream[GROUP_STREAM_BYTES_MAX];
    snprintf(stream, sizeof stream, "%s%s", r->stream_prefix, g->name);
    size_t len = protobuf_c_message_get_packed_size(r->data);
    uint8_t *data = malloc(len ? len : 1);
    gappend_t *a = malloc(sizeof *a);
    if (!data || !a) {
        free(data);
        free(a);
        return -ENOMEM;
    }
    protobuf_c_message_pack(r->data, data);
    *a = (gappend_t){.srv = srv, .g = g, .conn = r->conn, .corr = r->corr, .kind = r->kind,
                     .park_position = r->park_position};
    log_event_in_t ev = {.type = r->type, .type_len = strlen(r->type), .data = data,
                         .data_len = len};
    if (r->id)
        memcpy(ev.id, r->id, 16);
    else
        random_id(ev.id);
    log_stream_append_t sa = {.stream = stream, .stream_len = strlen(stream),
                              .expected_version = LOG_EXPECT_ANY, .events = &ev, .event_count = 1};
    log_append_t req = {.streams = &sa, .stream_count = 1, .system = true};
    int rc = log_append(srv->log, &req, gappend_done, a, NULL);
    free(data); /* log_append has copied it (or failed) */
    if (rc) {
        free(a);
        return rc;
    }
    g->appends_pending++;
    if (r->conn)
        r->conn->refs++;
    return 0;
}

int group_save_settings(server_t *srv, group_t *g, gappend_kind_t kind, conn_t *c,
                        uint64_t corr)
{
    Evstore__V1__GroupSettings m;
    Evstore__V1__EventFilter f;
    group_settings_of(g, &m, &f);
    grecord_t r = {.kind = kind, .stream_prefix = GROUP_STREAM_PREFIX,
                   .type = GROUP_TYPE_SETTINGS, .data = &m.base, .conn = c, .corr = corr};
    return group_append(srv, g, &r);
}

void group_save_checkpoint(server_t *srv, group_t *g)
{
    Evstore__V1__GroupCheckpoint cp = EVSTORE__V1__GROUP_CHECKPOINT__INIT;
    cp.key = group_checkpoint(g);
    cp.replay_from = g->replay_from;
    cp.replay_restart = group_replay_checkpoint(g);
    VERIFY(cp.key >= g->checkpoint_written && cp.replay_restart <= cp.replay_from);
    grecord_t r = {.kind = GAPPEND_PLAIN, .stream_prefix = GROUP_STREAM_PREFIX,
                   .type = GROUP_TYPE_CHECKPOINT, .data = &cp.base};
    if (group_append(srv, g, &r) != 0)
        return; /* tried again at the next turn */
    g->checkpoint_written = cp.key;
    g->done_since_checkpoint = 0;
    g->checkpoint_ns = util_mono_ns();
    if (++g->checkpoints % GROUP_SETTINGS_EVERY == 0)
        group_save_settings(srv, g, GAPPEND_PLAIN, NULL, 0);
}

int group_save_deleted(server_t *srv, group_t *g, conn_t *c, uint64_t corr)
{
    Evstore__V1__GroupName m = EVSTORE__V1__GROUP_NAME__INIT;
    m.name = g->name;
    grecord_t r = {.kind = GAPPEND_DELETE, .stream_prefix = GROUP_STREAM_PREFIX,
                   .type = GROUP_TYPE_DELETED, .data = &m.base, .conn = c, .corr = corr};
    return group_append(srv, g, &r);
}

/* ---- dead letters ---- */

/* The length of the UTF-8 sequence that starts s[0..n), or 0 if none does
 * (a bad lead byte, a missing continuation, an overlong form, a surrogate,
 * past U+10FFFF). */
static size_t utf8_char_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (len == 0 || s[0] > 0xf4 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return len;
}

/* The reason kept in a dead letter: at most GROUP_REASON_BYTES_MAX bytes,
 * cut at a character; "(not UTF-8)" in place of one that is not UTF-8 (a
 * protobuf string must be). */
static const char *park_reason(const char *reason, size_t *len)
{
    const unsigned char *s = (const unsigned char *)(reason ? reason : "");
    size_t n = strnlen((const char *)s, GROUP_REASON_BYTES_MAX + 1), i = 0;
    while (i < n) {
        size_t k = utf8_char_len(s + i, n - i);
        if (k == 0 && n > GROUP_REASON_BYTES_MAX && n - i < 4)
            break; /* a character cut by the limit */
        if (k == 0) {
            *len = strlen("(not UTF-8)");
            return "(not UTF-8)";
        }
        if (i + k > GROUP_REASON_BYTES_MAX)
            break;
        i += k;
    }
    *len = i;
    return (const char *)s;
}

/* The event a dead letter refers to, as read at its position. */
typedef struct {
    uint64_t position;
    char *stream, *type; /* malloc'd; NULL until found */
    int64_t version;
} park_found_t;

static int park_visit(void *ctx, const log_event_t *ev)
{
    park_found_t *f = ctx;
    if (ev->position == f->position) {
        f->stream = strndup(ev->stream, ev->stream_len);
        f->type = strndup(ev->type, ev->type_len);
        f->version = ev->version;
    }
    return 1;
}

int group_save_parked(server_t *srv, group_t *g, const msg_t *m, const char *reason)
{
    Evstore__V1__ParkedEvent pe = EVSTORE__V1__PARKED_EVENT__INIT;
    pe.position = m->position;
    pe.key = m->key;
    pe.retries = m->retries;
    size_t reason_len;
    const char *text = park_reason(reason, &reason_len);
    char reason_buf[GROUP_REASON_BYTES_MAX + 1];
    memcpy(reason_buf, text, reason_len);
    reason_buf[reason_len] = '\0';
    pe.reason = reason_buf;
    /* Unread (an I/O error, no memory), the position and key still suffice. */
    park_found_t found = {.position = m->position};
    group_read_msg(srv, g, m, park_visit, &found);
    if (found.stream && found.type) {
        pe.stream = found.stream;
        pe.type = found.type;
        pe.version = found.version;
    }
    /* The id is derived from the group, the event and how often it was
     * replayed: a retried park of the same delivery is written once, a park
     * after a replay is a new dead letter. */
    uint8_t id[16];
    uint64_t h = group_hash(g->name, strlen(g->name)) ^ (m->parked_version * 0x9e3779b97f4a7c15ull);
    memcpy(id, &h, 8);
    memcpy(id + 8, &m->position, 8);
    grecord_t r = {.kind = GAPPEND_PARK, .stream_prefix = PARKED_STREAM_PREFIX,
                   .type = GROUP_TYPE_PARKED, .data = &pe.base, .id = id,
                   .park_position = m->position};
    int rc = group_append(srv, g, &r);
    free(found.stream);
    free(found.type);
    return rc;
}

int64_t group_parked_count(server_t *srv, const group_t *g)
{
    char stream[GROUP_STREAM_BYTES_MAX];
    snprintf(stream, sizeof stream, "%s%s", PARKED_STREAM_PREFIX, g->name);
    int64_t v;
    return log_stream_version(srv->log, stream, strlen(stream), &v) == 0 ? v + 1 : 0;
}

static bool type_is(const log_event_t *ev, const char *type)
{
    size_t n = strlen(type);
    return ev->type_len == n && memcmp(ev->type, type, n) == 0;
}

typedef struct {
    group_t *g;
    uint64_t legacy;     /* JSON "Parked" records passed over */
    uint64_t unreadable; /* "GroupParked" records that do not decode */
} replay_t;

/* Queues the parked events after replay_from for delivery again. */
static int replay_visit(void *ctx, const log_event_t *ev)
{
    replay_t *r = ctx;
    group_t *g = r->g;
    if (type_is(ev, GROUP_TYPE_PARKED)) {
        Evstore__V1__ParkedEvent *pe =
            evstore__v1__parked_event__unpack(NULL, ev->data_len, ev->data);
        bool queued = pe && group_replay_queue(g, pe->key, pe->position,
                                               (uint64_t)ev->version + 1);
        bool full = pe && !queued;
        r->unreadable += !pe;
        if (pe)
            evstore__v1__parked_event__free_unpacked(pe, NULL);
        if (full)
            return 1; /* the rest on a later replay */
    } else if (type_is(ev, GROUP_TYPE_PARKED_LEGACY)) {
        r->legacy++;
    }
    g->replay_from = (uint64_t)ev->version + 1; /* queued (or not a reference): done */
    return 0;
}

/* Says what a replay passed over: dead letters it cannot deliver again. */
static void replay_report(server_t *srv, const group_t *g, const replay_t *r)
{
    if (r->legacy)
        server_log(srv,
                   "group %s: %llu dead letters in %s%s are JSON \"Parked\" records of an "
                   "earlier server and are not replayed (each names the event's position; "
                   "see docs/groups.md)",
                   g->name, (unsigned long long)r->legacy, PARKED_STREAM_PREFIX, g->name);
    if (r->unreadable)
        server_log(srv,
                   "group %s: %llu \"GroupParked\" records in %s%s do not decode: not replayed",
                   g->name, (unsigned long long)r->unreadable, PARKED_STREAM_PREFIX, g->name);
}

int group_replay_range(server_t *srv, group_t *g, uint64_t until)
{
    char stream[GROUP_STREAM_BYTES_MAX];
    snprintf(stream, sizeof stream, "%s%s", PARKED_STREAM_PREFIX, g->name);
    replay_t r = {.g = g};
    int rc = 0;
    for (;;) {
        uint64_t before = g->replay_from;
        if (before >= until || g->replay_count >= GROUP_REPLAYS_MAX)
            break;
        uint64_t n = until - before;
        log_read_t req = {.stream = stream, .stream_len = strlen(stream), .from = before,
                          .max_count = n < LOG_READ_SCAN_MAX_DEFAULT ? (uint32_t)n
                                                                     : LOG_READ_SCAN_MAX_DEFAULT};
        log_read_result_t res;
        rc = log_read(srv->log, &req, replay_visit, &r, &res);
        if (rc == LOG_ENOT_FOUND) {
            rc = 0; /* nothing was ever parked */
            break;
        }
        if (rc || res.end || g->replay_from == before)
            break; /* an error, the end, or the visitor could take no more */
    }
    replay_report(srv, g, &r);
    return rc;
}

/* ---- start-up ---- */

typedef struct {
    Evstore__V1__GroupSettings *settings;
    bool deleted;
    bool have_checkpoint;
    uint64_t key, replay_from, replay_restart; /* of the newest checkpoint */
} loaded_t;

/* A legacy "Checkpoint": little-endian u64 key, replay_from and (24 bytes
 * only) replay_restart. False if it is not one. */
static bool load_legacy_checkpoint(loaded_t *l, const log_event_t *ev)
{
    if (ev->data_len != 16 && ev->data_len != 24)
        return false;
    uint64_t cp[3] = {0};
    memcpy(cp, ev->data, ev->data_len);
    l->key = le64toh(cp[0]);
    l->replay_from = le64toh(cp[1]);
    l->replay_restart = ev->data_len == 24 ? le64toh(cp[2]) : l->replay_from;
    return true;
}

static bool load_checkpoint(loaded_t *l, const log_event_t *ev)
{
    Evstore__V1__GroupCheckpoint *cp =
        evstore__v1__group_checkpoint__unpack(NULL, ev->data_len, ev->data);
    if (!cp)
        return false;
    l->key = cp->key;
    l->replay_from = cp->replay_from;
    l->replay_restart = cp->replay_restart;
    evstore__v1__group_checkpoint__free_unpacked(cp, NULL);
    return true;
}

/* Reading a group's stream backwards: the newest checkpoint (if newer than
 * the newest settings), then the newest settings, unless deleted first. */
static int load_visit(void *ctx, const log_event_t *ev)
{
    loaded_t *l = ctx;
    if (!l->have_checkpoint && type_is(ev, GROUP_TYPE_CHECKPOINT)) {
        l->have_checkpoint = load_checkpoint(l, ev);
    } else if (!l->have_checkpoint && type_is(ev, GROUP_TYPE_CHECKPOINT_LEGACY)) {
        l->have_checkpoint = load_legacy_checkpoint(l, ev);
    } else if (type_is(ev, GROUP_TYPE_DELETED)) {
        l->deleted = true;
        return 1;
    } else if (type_is(ev, GROUP_TYPE_SETTINGS)) {
        l->settings = evstore__v1__group_settings__unpack(NULL, ev->data_len, ev->data);
        return l->settings != NULL;
    }
    return 0;
}

/* Makes the group l describes, from its newest settings and checkpoint. */
static void load_make(server_t *srv, const loaded_t *l)
{
    group_t *g = group_new(l->settings, l->have_checkpoint ? l->key : l->settings->from);
    if (!g) {
        server_log(srv, "group %s: out of memory: not loaded", l->settings->name);
        return;
    }
    group_link(srv, g);
    if (l->have_checkpoint) {
        /* Replays not done at the stop are queued again. */
        g->replay_from = l->replay_restart;
        group_replay_range(srv, g, l->replay_from);
        g->replay_from = l->replay_from;
    } else {
        g->replay_from = (uint64_t)group_parked_count(srv, g);
    }
    g->checkpoint_written = g->next;
}

/* Rebuilds one group from its stream (log_streams_each visitor). */
static int load_group(void *ctx, const char *name, size_t len, int64_t version)
{
    server_t *srv = ctx;
    size_t plen = strlen(GROUP_STREAM_PREFIX);
    if (len <= plen || memcmp(name, GROUP_STREAM_PREFIX, plen) != 0)
        return 0;
    loaded_t l = {0};
    log_read_t req = {.stream = name, .stream_len = len, .from = (uint64_t)version,
                      .backwards = true, .max_count = LOG_READ_SCAN_MAX_DEFAULT};
    int rc = 0;
    for (;;) { /* the settings are rewritten every GROUP_SETTINGS_EVERY checkpoints */
        log_read_result_t res;
        rc = log_read(srv->log, &req, load_visit, &l, &res);
        if (rc || l.settings || l.deleted || res.end)
            break;
        req.from = res.next;
    }
    if (rc == 0 && l.settings && !l.deleted)
        load_make(srv, &l);
    else if (rc)
        server_log(srv, "group stream %.*s: %s", (int)len, name, log_strerror(rc));
    if (l.settings)
        evstore__v1__group_settings__free_unpacked(l.settings, NULL);
    return 0;
}

void groups_load(server_t *srv)
{
    log_streams_each(srv->log, load_group, srv);
}

void groups_checkpoint_all(server_t *srv)
{
    for (group_t *g = srv->groups; g; g = g->next_group)
        if (!g->deleted && group_checkpoint(g) != g->checkpoint_written)
            group_save_checkpoint(srv, g);
}
