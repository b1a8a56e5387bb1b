/* sys_nats.c -- the NATS JetStream peer: nats-server -js on a free 127.0.0.1
 * port with a temporary store directory, one file-backed stream ORDERS on
 * subjects order.>, each bench stream a subject order.<stream>.
 *
 * An append of N events is N messages published with a reply subject (the
 * JetStream ack comes back there); the first carries
 * Nats-Expected-Last-Subject-Sequence (the stream sequence of the subject's
 * last message, 0 for none), every message a Nats-Msg-Id (JetStream's
 * de-duplication: its idempotency). JetStream before 2.12 has no atomic
 * multi-message publish, so a batch here is not all-or-nothing; the append
 * completes when all N acks are in. Durability: nats-server 2.9 writes each
 * message to the OS and fsyncs on its sync interval (2 minutes by default;
 * `sync_interval: always` exists from 2.10 on): an acknowledged message is
 * not synced. The suite says so in its table. */
#define _GNU_SOURCE
#include "bench_proc.h"
#include "bench_sys.h"
#include "util.h"

#include <errno.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NATS_STREAM "ORDERS"
#define NATS_FETCH_TIMEOUT_MS 2000

typedef struct {
    bool sync_always; /* the server took sync_interval: always */
    char version[32];
} nats_sys_t;

static natsConnection *nats_connect(bench_sys_t *sys)
{
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    char url[64];
    snprintf(url, sizeof url, "nats://127.0.0.1:%u", sys->port);
    if (natsOptions_Create(&o) != NATS_OK)
        return NULL;
    natsOptions_SetURL(o, url);
    natsOptions_SetSendAsap(o, true);
    natsOptions_SetTimeout(o, 10000);
    natsOptions_SetAllowReconnect(o, false);
    natsStatus st = natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
    if (st != NATS_OK) {
        fprintf(stderr, "evstore-bench: nats: connect: %s\n", natsStatus_GetText(st));
        return NULL;
    }
    return nc;
}

/* Writes the config and starts the server; false if it exits at once. */
static bool nats_try_start(bench_sys_t *sys, bool sync_always)
{
    char conf[PATH_MAX + 16], log[PATH_MAX + 16];
    snprintf(conf, sizeof conf, "%s/nats.conf", sys->dir);
    snprintf(log, sizeof log, "%s/nats.log", sys->dir);
    FILE *f = fopen(conf, "w");
    if (!f)
        return false;
    fprintf(f, "listen: 127.0.0.1:%u\nmax_payload: 8MB\njetstream {\n  store_dir: \"%s/js\"\n%s}\n",
            sys->port, sys->dir, sync_always ? "  sync_interval: always\n" : "");
    fclose(f);
    char *argv[] = {"nats-server", "-c", conf, NULL};
    sys->pid = bench_spawn(argv, NULL, log, NULL);
    if (sys->pid < 0) {
        sys->pid = 0;
        return false;
    }
    if (bench_wait_port(sys->port, sys->pid, BENCH_START_SECONDS_MAX) != 0) {
        bench_stop(sys->pid);
        sys->pid = 0;
        return false;
    }
    return true;
}

static int nats_start(bench_sys_t *sys)
{
    nats_sys_t *ns = calloc(1, sizeof *ns);
    if (!ns)
        return -ENOMEM;
    sys->priv = ns;
    int rc = bench_mkdtemp(sys->tmp_root, "nats", sys->dir, sizeof sys->dir);
    if (rc)
        return rc;
    sys->port = bench_free_port();
    ns->sync_always = true;
    if (!nats_try_start(sys, true)) {
        ns->sync_always = false; /* 2.9 refuses the field: run with its default */
        if (!nats_try_start(sys, false)) {
            fprintf(stderr, "evstore-bench: nats: skipped: nats-server did not start (apt-get"
                            " install nats-server; log in %s)\n", sys->dir);
            sys->keep_data = true;
            return -EIO;
        }
    }
    natsConnection *nc = nats_connect(sys);
    if (!nc)
        return -ECONNREFUSED;
    snprintf(ns->version, sizeof ns->version, "?");
    char ver[64] = "";
    jsCtx *js = NULL;
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char *subjects[] = {"order.>"};
    cfg.Name = NATS_STREAM;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    jsErrCode jerr = 0;
    natsStatus st = natsConnection_JetStream(&js, nc, NULL);
    if (st == NATS_OK)
        st = js_AddStream(NULL, js, &cfg, NULL, &jerr);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    if (st != NATS_OK) {
        fprintf(stderr, "evstore-bench: nats: skipped: cannot add the stream: %s (%d)\n",
                natsStatus_GetText(st), (int)jerr);
        return -EIO;
    }
    FILE *p = popen("nats-server --version 2>/dev/null", "r");
    if (p) {
        if (fgets(ver, sizeof ver, p))
            sscanf(ver, "nats-server: v%31s", ns->version);
        pclose(p);
    }
    sys->syncs_each_ack = ns->sync_always;
    snprintf(sys->durability, sizeof sys->durability, "%s",
             ns->sync_always ? "sync-always" : "sync-2min");
    snprintf(sys->note, sizeof sys->note,
             "nats-server %s JetStream, file storage, %s; expected version by "
             "Nats-Expected-Last-Subject-Sequence on the first message of an append; a batch is "
             "N messages, not atomic", ns->version,
             ns->sync_always ? "sync_interval: always (each message fsync'd before its ack)"
                             : "default sync interval (fsync every 2 min; sync_interval: always "
                               "needs nats-server 2.10+): acknowledged messages are NOT synced");
    return 0;
}

static void nats_stop(bench_sys_t *sys)
{
    bench_stop(sys->pid);
    sys->pid = 0;
    if (sys->dir[0] && !sys->keep_data)
        bench_rmtree(sys->dir);
    sys->dir[0] = '\0';
    free(sys->priv);
    sys->priv = NULL;
}

typedef struct {
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *acks;
    char inbox[64]; /* _INBOX.bench.<n>.<conn>: acks to <inbox>.<slot> */
} nats_conn_t;

static void nats_conn_free(nats_conn_t *p)
{
    if (p->acks)
        natsSubscription_Destroy(p->acks);
    if (p->js)
        jsCtx_Destroy(p->js);
    if (p->nc)
        natsConnection_Destroy(p->nc);
    free(p);
}

static int nats_conn_open(bench_sys_t *sys, bench_conn_t *c)
{
    static _Atomic uint32_t conn_counter;
    nats_conn_t *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    snprintf(p->inbox, sizeof p->inbox, "_INBOX.bench.%u", atomic_fetch_add(&conn_counter, 1));
    char subj[80];
    snprintf(subj, sizeof subj, "%s.*", p->inbox);
    if (!(p->nc = nats_connect(sys)) || natsConnection_JetStream(&p->js, p->nc, NULL) != NATS_OK ||
        natsConnection_SubscribeSync(&p->acks, p->nc, subj) != NATS_OK ||
        natsSubscription_SetPendingLimits(p->acks, -1, -1) != NATS_OK ||
        natsConnection_Flush(p->nc) != NATS_OK) {
        nats_conn_free(p);
        return -ECONNREFUSED;
    }
    c->drv = p;
    return 0;
}

static void nats_conn_close(bench_sys_t *sys, bench_conn_t *c)
{
    (void)sys;
    nats_conn_free(c->drv);
    c->drv = NULL;
}

static int nats_append_send(bench_conn_t *c, bench_slot_t *s)
{
    nats_conn_t *p = c->drv;
    const bench_load_t *l = &c->run->load;
    char subj[96], reply[96], seq[24], msgid[40];
    snprintf(subj, sizeof subj, "order.%s", s->stream);
    snprintf(reply, sizeof reply, "%s.%u", p->inbox, s->index);
    s->acks_pending = l->events;
    s->status_pending = 0;
    s->version_pending = s->version;
    for (uint32_t i = 0; i < l->events; i++) {
        natsMsg *m = NULL;
        if (natsMsg_Create(&m, subj, reply, s->data[i], (int)l->event_bytes) != NATS_OK)
            return -ENOMEM;
        util_hex(s->ids[i], sizeof s->ids[i], msgid);
        natsMsgHeader_Set(m, "Nats-Msg-Id", msgid);
        if (i == 0) {
            snprintf(seq, sizeof seq, "%lld", (long long)(s->version < 0 ? 0 : s->version));
            natsMsgHeader_Set(m, "Nats-Expected-Last-Subject-Sequence", seq);
        }
        natsStatus st = natsConnection_PublishMsg(p->nc, m);
        natsMsg_Destroy(m);
        if (st != NATS_OK) {
            if (i == 0)
                return -EIO;
            s->acks_pending = i; /* the acks of those sent still come */
            s->status_pending = -EIO;
            return 0;
        }
    }
    return 0;
}

/* Handles one ack message. */
static void nats_ack(bench_conn_t *c, natsMsg *m)
{
    const char *subj = natsMsg_GetSubject(m);
    const char *dot = strrchr(subj, '.');
    uint32_t k = dot ? (uint32_t)strtoul(dot + 1, NULL, 10) : UINT32_MAX;
    if (k >= c->run->load.inflight)
        return;
    bench_slot_t *s = &c->slots[k];
    if (s->acks_pending == 0)
        return;
    const char *data = natsMsg_GetData(m);
    const char *sq = data ? strstr(data, "\"seq\":") : NULL;
    if (!data || strstr(data, "\"error\"") || !sq) {
        if (s->status_pending == 0)
            fprintf(stderr, "evstore-bench: nats: %.200s\n", data ? data : "(empty ack)");
        s->status_pending = -EIO;
    } else {
        int64_t v = strtoll(sq + 6, NULL, 10);
        if (v > s->version_pending)
            s->version_pending = v;
    }
    if (--s->acks_pending == 0)
        bench_append_done(s, s->status_pending, s->version_pending);
}

static int nats_poll(bench_conn_t *c, int timeout_ms)
{
    nats_conn_t *p = c->drv;
    natsMsg *m = NULL;
    if (natsSubscription_NextMsg(&m, p->acks, timeout_ms > 0 ? timeout_ms : 1) != NATS_OK)
        return 0;
    nats_ack(c, m);
    natsMsg_Destroy(m);
    int pending = 0, bytes = 0;
    natsSubscription_GetPending(p->acks, &pending, &bytes);
    for (int i = 0; i < pending; i++) {
        if (natsSubscription_NextMsg(&m, p->acks, 1) != NATS_OK)
            break;
        nats_ack(c, m);
        natsMsg_Destroy(m);
    }
    return 0;
}

/* Reads every message of subject from the start with an ephemeral pull
 * consumer (no acks), until its pending count is read or deadline_ns. */
static int nats_read(bench_conn_t *c, const char *subject, uint64_t deadline_ns, uint64_t *events,
                     uint64_t *bytes)
{
    nats_conn_t *p = c->drv;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = NATS_STREAM;
    so.Config.AckPolicy = js_AckNone;
    so.Config.DeliverPolicy = js_DeliverAll;
    natsSubscription *sub = NULL;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    if (js_PullSubscribe(&sub, p->js, subject, NULL, NULL, &so, &jerr) != NATS_OK ||
        natsSubscription_GetConsumerInfo(&ci, sub, NULL, &jerr) != NATS_OK) {
        fprintf(stderr, "evstore-bench: nats: pull subscribe %s failed (%d)\n", subject, (int)jerr);
        if (sub)
            natsSubscription_Destroy(sub);
        return -EIO;
    }
    uint64_t want = ci->NumPending, got = 0;
    jsConsumerInfo_Destroy(ci);
    int rc = 0;
    while (got < want && util_mono_ns() < deadline_ns) {
        natsMsgList list = {0};
        natsStatus st = natsSubscription_Fetch(&list, sub, (int)BENCH_READ_PAGE_EVENTS,
                                               NATS_FETCH_TIMEOUT_MS, &jerr);
        if (st != NATS_OK && list.Count == 0) {
            rc = -EIO;
            break;
        }
        for (int i = 0; i < list.Count; i++)
            *bytes += (uint64_t)natsMsg_GetDataLength(list.Msgs[i]);
        got += (uint64_t)list.Count;
        natsMsgList_Destroy(&list);
    }
    *events += got;
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return rc;
}

static int nats_read_stream(bench_conn_t *c, const char *stream, uint64_t *events, uint64_t *bytes)
{
    char subj[96];
    snprintf(subj, sizeof subj, "order.%s", stream);
    return nats_read(c, subj, util_mono_ns() + (uint64_t)(BENCH_DRAIN_SECONDS_MAX * 1e9), events,
                     bytes);
}

static int nats_read_all(bench_conn_t *c, uint64_t deadline_ns, uint64_t *events, uint64_t *bytes)
{
    return nats_read(c, "order.>", deadline_ns, events, bytes);
}

static void nats_sample(bench_sys_t *sys, bench_srv_sample_t *out)
{
    out->cpu_s = bench_tree_cpu_seconds(sys->pid);
}

const bench_driver_t bench_driver_nats = {
    .name = "nats",
    .start = nats_start,
    .stop = nats_stop,
    .conn_open = nats_conn_open,
    .conn_close = nats_conn_close,
    .append_send = nats_append_send,
    .poll = nats_poll,
    .read_stream = nats_read_stream,
    .read_all = nats_read_all,
    .sample = nats_sample,
};
