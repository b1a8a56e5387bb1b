/* groups_int.h -- internals of the persistent subscription groups, shared by
 * server/groups*.c and nothing else (the rest of the server calls the group_*
 * and groups_* functions of server_int.h).
 *
 * A group reads its stream, category or $all from a cursor (`next`) and hands
 * each event to one of its consumers (round robin, or pinned by stream),
 * keeping every delivered event in the ring `outstanding`, in log order,
 * until it is acked, skipped or parked. The files:
 *
 *   groups.c           the group object: settings, lookup, lifetime, info
 *   groups_handlers.c  the requests (create ... replay-parked, leave)
 *   groups_delivery.c  the delivery policy: choose, pin, take, deliver,
 *                      redeliver, expire, compact, one loop turn
 *   groups_check.c     the invariants of the ring and of the pins
 *   groups_store.c     the group's records in "$group-<name>" and
 *                      "$parked-<name>": writing them, loading at start
 *   groups_metrics.c   the groups' lines of /metrics
 *
 * docs/groups.md describes the policy and the records for users. */
#ifndef EVSTORE_GROUPS_INT_H
#define EVSTORE_GROUPS_INT_H

#include "server_int.h"
#include "util.h"

/* ---- limits ---- */

#define GROUP_ACK_TIMEOUT_MS_DEFAULT 30000u
#define GROUP_MAX_RETRIES_DEFAULT 10u
#define GROUP_INFLIGHT_DEFAULT 100u
#define GROUP_INFLIGHT_MAX 10000u
#define GROUP_OUTSTANDING_MAX 65536u    /* delivered, not yet done, per group: the ring */
#define GROUP_READ_MAX 512u             /* events read for a group in one loop turn */
#define GROUP_CHECKPOINT_EVENTS 1000u   /* write the checkpoint after this many done */
#define GROUP_CHECKPOINT_MS 1000u       /* ...or this long after the last one */
#define GROUP_NAME_BYTES_MAX 200u
#define GROUP_SCAN_NS 5000000ull        /* timeouts and retries are looked for this often */
#define GROUP_REASON_BYTES_MAX 1024u    /* a nack's reason kept in the dead letter */
#define GROUP_REPLAYS_MAX 65536u        /* parked events queued by one replay */
#define GROUP_SETTINGS_EVERY 1000u      /* checkpoints between rewrites of the settings,
                                           so a restart reads few events to find them */
#define GROUPS_MAX 1000u
#define GROUP_PIN_SLOTS_INITIAL 1024u

#define GROUP_STREAM_PREFIX "$group-"
#define PARKED_STREAM_PREFIX "$parked-"
#define GROUP_STREAM_BYTES_MAX (GROUP_NAME_BYTES_MAX + 16u) /* a system stream's name */

/* ---- the states of a delivered event ----
 *
 * Every event the group has read (a msg_t in the ring) or is replaying from
 * its dead letters (a msg_t in `replays`) is in one state. msg_state() is the
 * only place a state changes, and it checks each change against this table
 * (msg_transition_ok in groups_delivery.c), always, in every build:
 *
 *   from \ to  | INFLIGHT        | RETRY               | PARKING           | DONE
 *   -----------+-----------------+---------------------+-------------------+------------------
 *   NEW        | sent at once    | waits: its pinned   | -                 | -
 *              |                 | stream is behind or |                   |
 *              |                 | its consumer full;  |                   |
 *              |                 | a replay queued     |                   |
 *   INFLIGHT   | -               | nack RETRY, ack     | nack PARK, or     | ack, nack SKIP
 *              |                 | timeout, consumer   | retries past      |
 *              |                 | left               | max_retries       |
 *   RETRY      | sent again      | -                   | -                 | ack (late), or it
 *              |                 |                     |                   | can no longer be
 *              |                 |                     |                   | read (logged)
 *   PARKING    | -               | the dead letter's   | -                 | the dead letter
 *              |                 | append failed       |                   | is durable
 *   DONE       | -               | -                   | -                 | -
 *
 * NEW lasts only from the moment the msg_t is made to its first msg_state()
 * call, within one function. DONE is final: the ring's done prefix and done
 * replays are dropped by compact() each turn; the checkpoint is the key of
 * the oldest event of the ring not DONE (or `next` when there is none).
 *
 * The delivery policy (groups_delivery.c, once per loop turn):
 * - every GROUP_SCAN_NS: events in flight past their deadline are retried
 *   (or parked past max_retries), then RETRY events are sent again, replays
 *   first, then the ring in log order, while consumers have room;
 * - new events are read from `next`, at most GROUP_READ_MAX, and no more than
 *   the consumers' free room and the ring's free slots;
 * - round robin: each event goes to the next consumer with room; pinned:
 *   each stream's events go to one consumer (its hash modulo the number of
 *   consumers, fixed while any of its events is outstanding), in order: an
 *   event waits (RETRY) while an earlier one of its stream waits, and a
 *   stream whose consumer is full does not hold up the others;
 * - the checkpoint is written after GROUP_CHECKPOINT_EVENTS events done, or
 *   GROUP_CHECKPOINT_MS after the last one, if it moved.
 */
typedef enum { MSG_NEW, MSG_INFLIGHT, MSG_RETRY, MSG_PARKING, MSG_DONE, MSG_STATES } msg_state_t;

typedef struct consumer_s consumer_t;

typedef struct {
    uint64_t key;             /* cursor value: version (stream group) or position */
    uint64_t position;        /* global position: what consumers ack */
    uint64_t deadline_ns;
    consumer_t *consumer;     /* exactly while INFLIGHT */
    uint32_t retries;
    msg_state_t state;
    uint64_t parked_version;  /* a replay: its version in $parked-<name> (+1; 0: not a replay) */
    uint64_t stream_hash;     /* of its stream's name: its pin */
    bool sent;                /* delivered at least once */
    bool pinned;              /* counted in the pin of stream_hash (taken while PINNED) */
} msg_t;

/* A pinned group's stream: the consumer its events go to while any of them
 * is outstanding, and how many are (and how many wait to be sent). */
typedef struct {
    uint64_t hash;            /* 0: a free slot */
    consumer_t *consumer;     /* NULL: chosen again at the next delivery */
    uint32_t outstanding;     /* its msgs in the ring with `pinned`, not DONE */
    uint32_t waiting;         /* ...of which RETRY */
} pin_t;

struct consumer_s {
    group_t *g;
    conn_t *conn;
    uint64_t corr;
    uint32_t max_inflight, inflight;
    uint32_t requested;       /* the limit it asked for (0: the group's) */
    events_t batch;           /* events to send this turn */
    uint32_t *retries;        /* retry count of each event in batch */
    uint32_t check_inflight;  /* groups_check.c's count of its INFLIGHT msgs */
    consumer_t *next;
};

struct group_s {
    char *name;
    char *stream;
    bool by_version;          /* a stream group: keys are versions, else positions */
    Evstore__V1__GroupStrategy strategy;
    uint32_t ack_timeout_ms, max_retries, max_inflight;
    char **types;
    size_t type_count;
    char *type_prefix;
    uint64_t next;            /* next key to read from the log */
    msg_t *ring;              /* outstanding, in key order: GROUP_OUTSTANDING_MAX slots */
    uint64_t ring_head, ring_count;
    msg_t *replays;           /* parked events being delivered again (any order) */
    uint32_t replay_count, replay_cap;
    uint64_t replay_from;     /* version of $parked-<name> replayed up to */
    uint64_t scan_ns;         /* last scan for timeouts and retries */
    pin_t *pins;              /* pinned strategy: streams with outstanding events */
    uint64_t pin_mask, pin_used;
    consumer_t *consumers;
    uint32_t consumer_count, rr;
    uint64_t checkpoint_written, done_since_checkpoint, checkpoint_ns;
    uint64_t delivered, acked, redelivered, parked, checkpoints;
    uint32_t appends_pending; /* appends to its system streams holding the group */
    bool deleted;
    group_t *next_group;
};

/* The i-th outstanding message (0: the oldest); i < ring_count. */
static inline msg_t *ring_at(const group_t *g, uint64_t i)
{
    return &g->ring[(g->ring_head + i) % GROUP_OUTSTANDING_MAX];
}

/* ---- groups.c: the group object ---- */

/* A group with settings m reading from key start (not linked); NULL on ENOMEM. */
group_t *group_new(const Evstore__V1__GroupSettings *m, uint64_t start);
/* Frees g and what it owns (not its consumers: they are freed first). */
void group_free(group_t *g);
/* Applies the changeable settings of m (create and update). 0 or -ENOMEM
 * (then the filter may be partly set). */
int group_apply(group_t *g, const Evstore__V1__GroupSettings *m);
/* True if a group on stream reads by version (a stream), false for $all and
 * "$ce-" categories (by position). */
bool group_by_version(const char *stream);
/* The key after the last durable event of stream (a group's stream): a
 * version for a stream, a position for $all and "$ce-" categories. */
uint64_t group_stream_head(server_t *srv, const char *stream);
/* The live (not deleted) group of that name, or NULL. */
group_t *group_find(server_t *srv, const char *name);
/* Adds g to the server's groups. */
void group_link(server_t *srv, group_t *g);
/* Live groups of the server. */
uint32_t group_count(const server_t *srv);
/* Takes g out of the server: its consumers are dropped (told reason, if
 * any); it is freed once no append of its is pending (by the caller if none
 * is now, else by the last append's callback). */
void group_drop(server_t *srv, group_t *g, const char *reason);
/* The key before which every event of the group is done. */
uint64_t group_checkpoint(const group_t *g);
/* The version of $parked-<name> from which a restart must replay again: the
 * oldest replayed event not yet done, or where replaying has reached. */
uint64_t group_replay_checkpoint(const group_t *g);
/* Fills m (and f, its filter) from g: pointers into g, valid while g is
 * unchanged. `from` is the checkpoint. */
void group_settings_of(const group_t *g, Evstore__V1__GroupSettings *m,
                       Evstore__V1__EventFilter *f);
/* Fills info (with set and f) for g: pointers into g, as group_settings_of(). */
void group_info_of(server_t *srv, const group_t *g, Evstore__V1__GroupInfo *info,
                   Evstore__V1__GroupSettings *set, Evstore__V1__EventFilter *f);
/* FNV-1a of s[0..n): stream pins and dead-letter ids. */
uint64_t group_hash(const char *s, size_t n);

/* ---- groups_delivery.c: the delivery policy ---- */

/* Moves m to state `to` (VERIFY: an allowed transition), keeping its stream's
 * pin counts. */
void msg_state(group_t *g, msg_t *m, msg_state_t to);
/* m is done (acked or skipped): its consumer's slot is freed. */
void msg_done(group_t *g, msg_t *m);
/* m (INFLIGHT) is to be delivered again with one more retry; parked instead
 * once past max_retries, with reason. */
void msg_retry(server_t *srv, group_t *g, msg_t *m, const char *reason);
/* m (INFLIGHT) is parked: PARKING until its dead letter is durable (then
 * DONE), RETRY if the dead letter cannot be appended. */
void msg_park(server_t *srv, group_t *g, msg_t *m, const char *reason);
/* The outstanding (not DONE) message with this position, or NULL. */
msg_t *msg_find(group_t *g, uint64_t position);
/* The dead letter of the PARKING message at position is durable (status 0)
 * or failed (it is retried). Nothing if no such message is PARKING. */
void msg_park_done(server_t *srv, group_t *g, uint64_t position, int status);
/* Queues a parked event for delivery again (RETRY); false when the replay
 * queue has no room (ENOMEM or GROUP_REPLAYS_MAX). */
bool group_replay_queue(group_t *g, uint64_t key, uint64_t position, uint64_t parked_version);
/* Reads the event of m from the log (at most one, unfiltered) into visit. */
int group_read_msg(server_t *srv, const group_t *g, const msg_t *m, log_visit_cb visit,
                   void *ctx);
/* Removes consumer k of g, giving its events in flight back (RETRY) and its
 * pinned streams to whoever is next; tells it reason (if not NULL). */
void consumer_free(group_t *g, consumer_t *k, const char *reason);

/* ---- groups_check.c: invariants ---- */

/* Checks the invariants of g's ring, consumers and pins: the cheap ones with
 * VERIFY (always), the walks over every message with assert() (NDEBUG off). */
void group_check(const group_t *g);

/* ---- groups_store.c: the records in the group's system streams ---- */

typedef enum { GAPPEND_PLAIN, GAPPEND_CREATE, GAPPEND_DELETE, GAPPEND_PARK } gappend_kind_t;

/* Appends g's settings ("GroupSettings") to "$group-<name>"; answers Done (or
 * an Error) to c, if not NULL, once durable; a failed GAPPEND_CREATE drops the
 * group. 0, or an error with nothing appended (nothing answered). */
int group_save_settings(server_t *srv, group_t *g, gappend_kind_t kind, conn_t *c,
                        uint64_t corr);
/* Appends g's checkpoint ("GroupCheckpoint") and notes it as written (and,
 * every GROUP_SETTINGS_EVERY checkpoints, the settings again). */
void group_save_checkpoint(server_t *srv, group_t *g);
/* Appends "GroupDeleted" to "$group-<name>": once durable the group is
 * dropped and c is answered. 0 or an error (nothing answered). */
int group_save_deleted(server_t *srv, group_t *g, conn_t *c, uint64_t corr);
/* Appends m's dead letter ("GroupParked") to "$parked-<name>"; once durable
 * (or failed) msg_park_done() is called. 0 or an error (no callback then). */
int group_save_parked(server_t *srv, group_t *g, const msg_t *m, const char *reason);
/* Queues the dead letters of g from replay_from up to (not including)
 * version `until` for delivery again. 0 or a read error. */
int group_replay_range(server_t *srv, group_t *g, uint64_t until);
/* Events in "$parked-<name>" (its next version). */
int64_t group_parked_count(server_t *srv, const group_t *g);

#endif
