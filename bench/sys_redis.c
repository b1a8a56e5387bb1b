/* sys_redis.c -- the Redis Streams peer: redis-server on a free 127.0.0.1
 * port in a temporary directory with --appendonly yes --appendfsync always
 * (the AOF is written and fsync'd before the replies of an event-loop
 * iteration go out: every acknowledged write is synced, group-committed
 * across clients). An append is one EVALSHA of a small Lua script that
 * checks the expected version against XLEN of the stream key and XADDs the
 * events (atomic: a script runs alone). Appends in flight are pipelined on
 * each connection. Redis has no global order over keys: no $all read. */
#define _GNU_SOURCE
#include "bench_proc.h"
#include "bench_sys.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define REDIS_ARGS_FIXED 5u /* EVALSHA sha 1 key expected type */

static const char redis_script[] =
    "local n = redis.call('XLEN', KEYS[1])\n"
    "if n - 1 ~= tonumber(ARGV[1]) then\n"
    "  return redis.error_reply('WRONGVERSION stream is at ' .. (n - 1))\n"
    "end\n"
    "for i = 3, #ARGV, 2 do\n"
    "  redis.call('XADD', KEYS[1], '*', 'id', ARGV[i], 'type', ARGV[2], 'data', ARGV[i + 1])\n"
    "end\n"
    "return n - 1 + (#ARGV - 2) / 2\n";

static redisContext *redis_connect(bench_sys_t *sys)
{
    struct timeval tv = {.tv_sec = 10};
    redisContext *r = redisConnectWithTimeout("127.0.0.1", sys->port, tv);
    if (!r || r->err) {
        fprintf(stderr, "evstore-bench: redis: connect: %s\n", r ? r->errstr : "out of memory");
        if (r)
            redisFree(r);
        return NULL;
    }
    struct timeval io = {.tv_sec = (long)BENCH_DRAIN_SECONDS_MAX};
    redisSetTimeout(r, io);
    return r;
}

static int redis_start(bench_sys_t *sys)
{
    int rc = bench_mkdtemp(sys->tmp_root, "redis", sys->dir, sizeof sys->dir);
    if (rc)
        return rc;
    sys->port = bench_free_port();
    char port[16], log[PATH_MAX + 16];
    snprintf(port, sizeof port, "%u", sys->port);
    snprintf(log, sizeof log, "%s/redis.log", sys->dir);
    char *argv[] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", sys->dir,
                    "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                    "--daemonize", "no", "--protected-mode", "no", "--logfile", log,
                    "--maxclients", "2000", NULL};
    sys->pid = bench_spawn(argv, NULL, log, NULL);
    if (sys->pid < 0) {
        sys->pid = 0;
        return -ENOENT;
    }
    rc = bench_wait_port(sys->port, sys->pid, BENCH_START_SECONDS_MAX);
    if (rc) {
        fprintf(stderr, "evstore-bench: redis: skipped: redis-server did not start (%s; "
                        "apt-get install redis-server)\n", strerror(-rc));
        sys->keep_data = true;
        return rc;
    }
    redisContext *r = redis_connect(sys);
    if (!r)
        return -ECONNREFUSED;
    redisReply *rep = redisCommand(r, "INFO server");
    char version[32] = "?";
    const char *v = rep && rep->type == REDIS_REPLY_STRING ? strstr(rep->str, "redis_version:") : NULL;
    if (v)
        sscanf(v + strlen("redis_version:"), "%31[^\r\n]", version);
    if (rep)
        freeReplyObject(rep);
    redisFree(r);
    sys->syncs_each_ack = true;
    snprintf(sys->durability, sizeof sys->durability, "aof-always");
    snprintf(sys->note, sizeof sys->note,
             "Redis %s, appendonly yes, appendfsync always: the AOF is fsync'd before replies "
             "(group commit per event-loop turn); expected version by a Lua script checking XLEN; "
             "pipelined", version);
    return 0;
}

static void redis_stop(bench_sys_t *sys)
{
    bench_stop(sys->pid);
    sys->pid = 0;
    if (sys->dir[0] && !sys->keep_data)
        bench_rmtree(sys->dir);
    sys->dir[0] = '\0';
}

typedef struct {
    redisContext *r;
    char sha[48];
    bench_slot_t **fifo;
    uint32_t head, count, cap;
    const char **argv;
    size_t *argl;
} redis_conn_t;

static void redis_conn_free(redis_conn_t *p)
{
    if (p->r)
        redisFree(p->r);
    free(p->fifo);
    free(p->argv);
    free(p->argl);
    free(p);
}

static int redis_conn_open(bench_sys_t *sys, bench_conn_t *c)
{
    redis_conn_t *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    uint32_t args = REDIS_ARGS_FIXED + 1 + 2 * c->run->load.events; /* + the type */
    p->cap = c->run->load.inflight;
    p->fifo = calloc(p->cap, sizeof *p->fifo);
    p->argv = calloc(args, sizeof *p->argv);
    p->argl = calloc(args, sizeof *p->argl);
    p->r = redis_connect(sys);
    if (!p->fifo || !p->argv || !p->argl || !p->r) {
        redis_conn_free(p);
        return -ENOMEM;
    }
    redisReply *rep = redisCommand(p->r, "SCRIPT LOAD %s", redis_script);
    if (!rep || rep->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "evstore-bench: redis: SCRIPT LOAD failed\n");
        if (rep)
            freeReplyObject(rep);
        redis_conn_free(p);
        return -EIO;
    }
    snprintf(p->sha, sizeof p->sha, "%s", rep->str);
    freeReplyObject(rep);
    c->drv = p;
    return 0;
}

static void redis_conn_close(bench_sys_t *sys, bench_conn_t *c)
{
    (void)sys;
    redis_conn_free(c->drv);
    c->drv = NULL;
}

static int redis_append_send(bench_conn_t *c, bench_slot_t *s)
{
    redis_conn_t *p = c->drv;
    const bench_load_t *l = &c->run->load;
    char expected[24];
    snprintf(expected, sizeof expected, "%lld", (long long)s->version);
    const char **a = p->argv;
    size_t *n = p->argl;
    a[0] = "EVALSHA", a[1] = p->sha, a[2] = "1", a[3] = s->stream, a[4] = expected;
    uint32_t k = REDIS_ARGS_FIXED;
    a[k++] = BENCH_EVENT_TYPE; /* ARGV[2] */
    for (uint32_t i = 0; i < l->events; i++) {
        n[k] = 16;
        a[k++] = (const char *)s->ids[i];
        n[k] = l->event_bytes;
        a[k++] = s->data[i];
    }
    for (uint32_t i = 0; i < REDIS_ARGS_FIXED + 1; i++)
        n[i] = strlen(a[i]);
    if (redisAppendCommandArgv(p->r, (int)k, a, n) != REDIS_OK)
        return -EIO;
    int done = 0;
    for (int tries = 0; !done && tries < 1000000; tries++)
        if (redisBufferWrite(p->r, &done) != REDIS_OK)
            return -EIO;
    p->fifo[(p->head + p->count++) % p->cap] = s;
    return 0;
}

static int redis_poll(bench_conn_t *c, int timeout_ms)
{
    redis_conn_t *p = c->drv;
    if (p->count == 0) {
        if (timeout_ms > 0)
            usleep((useconds_t)timeout_ms * 1000u);
        return 0;
    }
    struct pollfd pfd = {.fd = p->r->fd, .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return 0;
    if (redisBufferRead(p->r) != REDIS_OK)
        return -EIO;
    while (p->count > 0) {
        redisReply *rep = NULL;
        if (redisGetReplyFromReader(p->r, (void **)&rep) != REDIS_OK)
            return -EIO;
        if (!rep)
            break;
        bench_slot_t *s = p->fifo[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        int status = rep->type == REDIS_REPLY_INTEGER ? 0 : -EIO;
        if (status && rep->type == REDIS_REPLY_ERROR)
            fprintf(stderr, "evstore-bench: redis: %s\n", rep->str);
        int64_t v = rep->type == REDIS_REPLY_INTEGER ? rep->integer : s->version;
        freeReplyObject(rep);
        bench_append_done(s, status, v);
    }
    return 0;
}

static int redis_read_stream(bench_conn_t *c, const char *stream, uint64_t *events, uint64_t *bytes)
{
    redis_conn_t *p = c->drv;
    char from[64] = "-", count[16];
    snprintf(count, sizeof count, "%u", BENCH_READ_PAGE_EVENTS);
    for (;;) {
        const char *argv[] = {"XRANGE", stream, from, "+", "COUNT", count};
        redisReply *rep = redisCommandArgv(p->r, 6, argv, NULL);
        if (!rep || rep->type != REDIS_REPLY_ARRAY) {
            if (rep)
                freeReplyObject(rep);
            return -EIO;
        }
        size_t n = rep->elements;
        for (size_t i = 0; i < n; i++) {
            redisReply *e = rep->element[i], *f = e->element[1];
            for (size_t k = 1; k < f->elements; k += 2)
                if (f->element[k - 1]->len == 4 && memcmp(f->element[k - 1]->str, "data", 4) == 0)
                    *bytes += f->element[k]->len;
        }
        *events += n;
        if (n > 0)
            snprintf(from, sizeof from, "(%s", rep->element[n - 1]->element[0]->str);
        freeReplyObject(rep);
        if (n < BENCH_READ_PAGE_EVENTS)
            return 0;
    }
}

static void redis_sample(bench_sys_t *sys, bench_srv_sample_t *out)
{
    out->cpu_s = bench_tree_cpu_seconds(sys->pid);
}

const bench_driver_t bench_driver_redis = {
    .name = "redis",
    .start = redis_start,
    .stop = redis_stop,
    .conn_open = redis_conn_open,
    .conn_close = redis_conn_close,
    .append_send = redis_append_send,
    .poll = redis_poll,
    .read_stream = redis_read_stream,
    .read_all = NULL,
    .sample = redis_sample,
};
