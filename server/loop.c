/* loop.c -- evstored's event loop: one thread, one io_uring for accept,
 * receive and send, plus the storage engine's own ring, whose completions
 * arrive here through its eventfd. Every request handled in one turn of the
 * loop joins the same group-commit write. */
#include "server_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>


void server_log(const server_t *s, const char *fmt, ...)
{
    if (s->cfg.quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "evstored: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

struct io_uring_sqe *server_sqe(server_t *s)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
    if (!sqe) {
        io_uring_submit(&s->ring); /* the queue is full: hand it to the kernel */
        sqe = io_uring_get_sqe(&s->ring);
    }
    assert(sqe);
    return sqe;
}


static void arm_accept(server_t *s)
{
    if (s->accept_armed || s->listen_fd < 0)
        return;
    struct io_uring_sqe *sqe = server_sqe(s);
    io_uring_prep_accept(sqe, s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, op_data(s, OP_ACCEPT));
    s->accept_armed = true;
}

static void arm_read(server_t *s, int fd, void *buf, size_t len, int op)
{
    struct io_uring_sqe *sqe = server_sqe(s);
    io_uring_prep_read(sqe, fd, buf, (unsigned)len, 0);
    io_uring_sqe_set_data64(sqe, op_data(s, op));
}

static void peer_name(int fd, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    snprintf(buf, cap, "?");
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_INET) {
        const unsigned char *a = (const unsigned char *)&((struct sockaddr_in *)&ss)->sin_addr;
        unsigned port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        snprintf(buf, cap, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3], port);
    }
}

/* A connection over the limit is told so and closed at once. */
static void reject(server_t *s, int fd)
{
    Evstore__V1__Error err = EVSTORE__V1__ERROR__INIT;
    err.code = EVSTORE__V1__ERROR_CODE__BUSY;
    err.message = "too many connections";
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_ERROR;
    env.error = &err;
    uint8_t buf[256];
    if (frame_size(&env) <= sizeof buf) {
        ssize_t n = send(fd, buf, frame_encode(&env, buf), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n; /* best effort: the client may learn only from the close */
    }
    close(fd);
    atomic_fetch_add_explicit(&s->metrics.connections_rejected, 1, memory_order_relaxed);
    metrics_count_error(s, EVSTORE__V1__ERROR_CODE__BUSY);
}

static void on_accept(server_t *s, int res)
{
    s->accept_armed = false;
    if (res < 0) {
        if (!s->stopping)
            server_log(s, "accept: %s", strerror(-res));
        if (res == -EMFILE || res == -ENFILE)
            return; /* retried at the next housekeeping turn */
    } else if (s->stopping) {
        close(res);
    } else if (s->conn_count >= s->cfg.connections_max) {
        reject(s, res);
    } else {
        conn_t *c = conn_new(s, res);
        if (!c) {
            close(res);
        } else {
            peer_name(res, c->peer, sizeof c->peer);
            server_log(s, "conn %llu (%s): open", (unsigned long long)c->id, c->peer);
            conn_update(c);
        }
    }
    if (!s->stopping)
        arm_accept(s);
}

static void begin_stop(server_t *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    s->stop_deadline_ns = util_mono_ns() + (uint64_t)SERVER_SHUTDOWN_MS_MAX * 1000000u;
    server_log(s, "stopping: no new connections; finishing in-flight appends");
    if (s->listen_fd >= 0) {
        shutdown(s->listen_fd, SHUT_RDWR); /* ends the accept in flight */
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    for (conn_t *c = s->conns; c; c = c->next)
        conn_stop_reading(c);
}

static void on_cqe(server_t *s, const struct io_uring_cqe *cqe)
{
    uint64_t data = io_uring_cqe_get_data64(cqe);
    int op = (int)(data & 7);
    void *p = (void *)(uintptr_t)(data & ~(uint64_t)7);
    switch (op) {
    case OP_ACCEPT: on_accept(s, cqe->res); break;
    case OP_RECV: conn_on_recv(p, cqe->res); break;
    case OP_SEND: conn_on_send(p, cqe->res); break;
    case OP_EVENTFD:
        arm_read(s, s->log_fd, &s->eventfd_buf, sizeof s->eventfd_buf, OP_EVENTFD);
        break;
    case OP_SIGNAL:
        begin_stop(s);
        break;
    default: break;
    }
}

/* Waits for and handles one batch of completions, then lets the storage
 * engine start its group-commit write and run its callbacks. */
static int loop_turn(server_t *s)
{
    struct io_uring_cqe *cqe;
    unsigned ms = SERVER_HOUSEKEEPING_MS;
    if (s->cfg.log.durability == LOG_DURABILITY_INTERVAL && s->cfg.log.interval_ms < ms)
        ms = s->cfg.log.interval_ms;
    struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = (long long)ms * 1000000};
    int rc = io_uring_submit_and_wait_timeout(&s->ring, &cqe, 1, &ts, NULL);
    if (rc < 0 && rc != -ETIME && rc != -EINTR)
        return rc;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&s->ring, head, cqe) {
        on_cqe(s, cqe);
        seen++;
    }
    io_uring_cq_advance(&s->ring, seen);
    rc = log_poll(s->log, 0);
    if (rc < 0)
        server_log(s, "storage: %s", log_strerror(rc));
    subs_pump_all(s);
    groups_turn(s);
    if (!s->stopping)
        arm_accept(s);
    metrics_refresh(s);
    return 0;
}

static bool stop_done(server_t *s)
{
    if (util_mono_ns() > s->stop_deadline_ns) {
        server_log(s, "stopping: %u connections still had answers to send", s->conn_count);
        return true;
    }
    return s->conns == NULL;
}

static int signals_open(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -errno;
    signal(SIGPIPE, SIG_IGN);
    int fd = signalfd(-1, &set, SFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static int open_log(server_t *s)
{
    log_config_t lc = s->cfg.log;
    lc.on_commit = metrics_on_commit;
    lc.on_commit_ctx = s;
    log_recovery_t rec;
    int rc = log_open(&lc, &s->log, &rec);
    if (rc == LOG_ELOCKED) {
        fprintf(stderr, "evstored: data directory %s is locked by another evstored\n", lc.dir);
    } else if (rc == -EPERM || rc == -ENOSYS) {
        fprintf(stderr, "evstored: io_uring refused by the kernel (%s): check seccomp and the "
                        "kernel.io_uring_disabled sysctl\n", strerror(-rc));
    } else if (rc) {
        fprintf(stderr, "evstored: cannot open data directory %s: %s%s%s\n", lc.dir,
                log_strerror(rc), rec.problem[0] ? ": " : "", rec.problem);
    } else {
        fprintf(stderr, "evstored: opened %s: %u segments, %llu events, %llu streams, %u index "
                        "files loaded, %llu bytes scanned, %llu torn bytes cut\n", lc.dir,
                rec.segments, (unsigned long long)rec.events, (unsigned long long)rec.streams,
                rec.index_files_loaded, (unsigned long long)rec.bytes_scanned,
                (unsigned long long)rec.torn_bytes_cut);
    }
    return rc;
}

static int server_start(server_t *s)
{
    /* Before any thread starts (storage worker, HTTP), so that all inherit
     * the blocked signals and only the signalfd sees them. */
    s->signal_fd = signals_open();
    if (s->signal_fd < 0)
        return s->signal_fd;
    int rc = open_log(s);
    if (rc)
        return rc;
    s->log_fd = log_event_fd(s->log);
    s->listen_fd = net_listen(s->cfg.listen, s->listen_addr, sizeof s->listen_addr);
    if (s->listen_fd < 0) {
        fprintf(stderr, "evstored: cannot listen on %s: %s\n", s->cfg.listen,
                s->listen_fd == -EINVAL ? "not a HOST:PORT address" : strerror(-s->listen_fd));
        return s->listen_fd;
    }
    snprintf(s->metrics_addr, sizeof s->metrics_addr, "off");
    if (s->cfg.metrics[0] &&
        (rc = metrics_start(s, s->cfg.metrics, s->metrics_addr, sizeof s->metrics_addr)) != 0)
        return rc;
    /* One thread submits and reaps. (DEFER_TASKRUN was measured too: p99
     * latency at 1,000 appends/s went from ~1 ms to ~10 ms, so it is off.)
     * Older kernels refuse the flag: then plain. */
    rc = io_uring_queue_init(SERVER_RING_ENTRIES, &s->ring, IORING_SETUP_SINGLE_ISSUER);
    if (rc == -EINVAL)
        rc = io_uring_queue_init(SERVER_RING_ENTRIES, &s->ring, 0);
    if (rc < 0) {
        fprintf(stderr, "evstored: io_uring refused by the kernel (%s)\n", strerror(-rc));
        return rc;
    }
    groups_load(s);
    arm_read(s, s->log_fd, &s->eventfd_buf, sizeof s->eventfd_buf, OP_EVENTFD);
    arm_read(s, s->signal_fd, s->signal_buf, sizeof s->signal_buf, OP_SIGNAL);
    arm_accept(s);
    return 0;
}

int server_run(const server_config_t *cfg)
{
    server_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->cfg = *cfg;
    s->listen_fd = s->signal_fd = s->log_fd = -1;
    s->started_ns = util_mono_ns();
    pthread_mutex_init(&s->metrics.mu, NULL);
    s->ring.ring_fd = -1;
    int rc = server_start(s);
    if (rc == 0) {
        s->metrics.ready = true;
        printf("evstored ready listen=%s metrics=%s\n", s->listen_addr, s->metrics_addr);
        fflush(stdout);
        while (rc == 0 && !(s->stopping && stop_done(s)))
            rc = loop_turn(s);
        /* The groups' last checkpoints; then closing the log runs every
         * callback still pending while connections and groups are alive. */
        groups_checkpoint_all(s);
    }
    s->metrics.ready = false;
    metrics_stop(s);
    int crc = log_close(s->log);
    s->log = NULL;
    /* Connections still open here did not take their answers in time. */
    while (s->conns) {
        if (s->conns->fd >= 0)
            close(s->conns->fd);
        conn_free(s->conns);
    }
    groups_free(s);
    if (crc)
        fprintf(stderr, "evstored: closing the log: %s\n", log_strerror(crc));
    else if (rc == 0)
        fprintf(stderr, "evstored: stopped cleanly\n");
    if (s->ring.ring_fd >= 0)
        io_uring_queue_exit(&s->ring);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->signal_fd >= 0)
        close(s->signal_fd);
    pthread_mutex_destroy(&s->metrics.mu);
    free(s);
    return rc ? rc : crc;
}
