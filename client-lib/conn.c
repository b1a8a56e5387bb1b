/* conn.c -- connections: options, connect and handshake, reconnection with
 * backoff, close, flush. */
#include "client_int.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

void evs_options_default(evs_options_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->host = "127.0.0.1";
    opts->port = EVS_PORT_DEFAULT;
    opts->client_name = "libevstore";
    opts->connect_timeout_ms = EVS_CONNECT_TIMEOUT_MS_DEFAULT;
    opts->io_timeout_ms = EVS_IO_TIMEOUT_MS_DEFAULT;
    opts->inflight_max = EVS_INFLIGHT_MAX_DEFAULT;
    opts->recv_frame_bytes_max = EVS_RECV_FRAME_BYTES_MAX_DEFAULT;
    opts->reconnect_backoff_ms_initial = EVS_RECONNECT_BACKOFF_MS_INITIAL_DEFAULT;
    opts->reconnect_backoff_ms_max = EVS_RECONNECT_BACKOFF_MS_MAX_DEFAULT;
    opts->retry_ms_max = EVS_RETRY_MS_MAX_DEFAULT;
}

int evsi_options_check(const evs_options_t *o)
{
    const char *bad = NULL;
    if (!o->host || !o->host[0])
        bad = "host is empty";
    else if (!o->client_name || strlen(o->client_name) > EVS_CLIENT_NAME_BYTES_MAX)
        bad = "client_name is missing or too long";
    else if (o->connect_timeout_ms <= 0 || o->io_timeout_ms <= 0)
        bad = "timeouts must be positive";
    else if (o->inflight_max == 0 || o->inflight_max > EVS_INFLIGHT_MAX_LIMIT)
        bad = "inflight_max is out of range";
    else if (o->recv_frame_bytes_max < 1024 || o->recv_frame_bytes_max > FRAME_BYTES_MAX_LIMIT)
        bad = "recv_frame_bytes_max is out of range";
    else if (o->reconnect_backoff_ms_initial <= 0 ||
             o->reconnect_backoff_ms_max < o->reconnect_backoff_ms_initial)
        bad = "reconnect backoff must be positive, initial <= max";
    else if (o->retry_ms_max < 0)
        bad = "retry_ms_max is negative";
    if (!bad)
        return 0;
    evsi_errmsg_set("options: %s", bad);
    return -EINVAL;
}

static void slots_destroy(evs_conn_t *conn, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++)
        pthread_cond_destroy(&conn->slots[i].cond);
    free(conn->slots);
}

/* Allocates the slot table, every slot free, with CLOCK_MONOTONIC conds. */
static int slots_create(evs_conn_t *conn)
{
    uint32_t n = conn->opts.inflight_max;
    conn->slots = calloc(n, sizeof *conn->slots);
    if (!conn->slots)
        return -ENOMEM;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    for (uint32_t i = 0; i < n; i++) {
        pthread_cond_init(&conn->slots[i].cond, &attr);
        conn->slots[i].next = i + 1 < n ? i + 1 : SLOT_NONE;
        conn->slots[i].prev = SLOT_NONE;
    }
    pthread_cond_init(&conn->slot_free_cond, &attr);
    pthread_cond_init(&conn->idle_cond, &attr);
    pthread_cond_init(&conn->link_cond, &attr);
    pthread_condattr_destroy(&attr);
    conn->free_head = 0;
    conn->async_head = conn->async_tail = SLOT_NONE;
    return 0;
}

static void conn_free(evs_conn_t *conn)
{
    slots_destroy(conn, conn->opts.inflight_max);
    pthread_cond_destroy(&conn->slot_free_cond);
    pthread_cond_destroy(&conn->idle_cond);
    pthread_cond_destroy(&conn->link_cond);
    pthread_mutex_destroy(&conn->lock);
    pthread_mutex_destroy(&conn->send_lock);
    close(conn->wake_fd);
    free(conn->host);
    free(conn->client_name);
    free(conn);
}

static int conn_alloc(const evs_options_t *opts, evs_conn_t **out)
{
    evs_conn_t *conn = calloc(1, sizeof *conn);
    if (!conn)
        return -ENOMEM;
    conn->fd = -1;
    conn->opts = *opts;
    conn->host = strdup(opts->host);
    conn->client_name = strdup(opts->client_name);
    conn->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!conn->host || !conn->client_name || conn->wake_fd < 0)
        goto err_free_strings;
    conn->opts.host = conn->host;
    conn->opts.client_name = conn->client_name;
    conn->backoff_ms = opts->reconnect_backoff_ms_initial;
    if (slots_create(conn))
        goto err_free_strings;
    pthread_mutex_init(&conn->lock, NULL);
    pthread_mutex_init(&conn->send_lock, NULL);
    *out = conn;
    return 0;

err_free_strings:
    if (conn->wake_fd >= 0)
        close(conn->wake_fd);
    free(conn->host);
    free(conn->client_name);
    free(conn);
    return -ENOMEM;
}

/* Copies HelloOk into *info. */
static int hello_ok_take(evs_server_info_t *info, const Evstore__V1__HelloOk *ok)
{
    if (ok->protocol_version != PROTOCOL_VERSION || ok->frame_bytes_max == 0) {
        evsi_errmsg_set("server answered Hello with protocol version %u, frame limit %u",
                   ok->protocol_version, ok->frame_bytes_max);
        return EVS_EPROTOCOL;
    }
    info->protocol_version = ok->protocol_version;
    snprintf(info->server_version, sizeof info->server_version, "%s",
             ok->server_version ? ok->server_version : "");
    info->frame_bytes_max = ok->frame_bytes_max;
    info->append_events_max = ok->append_events_max;
    info->read_events_max = ok->read_events_max;
    return 0;
}

int evsi_handshake_run(int fd, const evs_options_t *opts, uint64_t deadline_ns,
                  evs_server_info_t *info)
{
    Evstore__V1__Hello hello = EVSTORE__V1__HELLO__INIT;
    hello.protocol_version = PROTOCOL_VERSION;
    hello.client_name = (char *)opts->client_name;
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.correlation_id = 1;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    uint8_t buf[FRAME_HEADER_BYTES + EVS_CLIENT_NAME_BYTES_MAX + 32];
    size_t len = frame_encode(&env, buf);
    int err = evsi_sock_send_all(fd, buf, len, deadline_ns);
    envelope_t *resp = NULL;
    if (!err)
        err = evsi_sock_recv_frame(fd, opts->recv_frame_bytes_max, deadline_ns, &resp);
    if (err) {
        if (err == EVS_ETIMEDOUT || err == EVS_ECLOSED)
            evsi_errmsg_set("handshake with %s:%u: %s", opts->host, (unsigned)opts->port,
                       evs_strerror(err));
        return err;
    }
    if (resp->body_case == EVSTORE__V1__ENVELOPE__BODY_HELLO_OK)
        err = hello_ok_take(info, resp->hello_ok);
    else if (resp->body_case == EVSTORE__V1__ENVELOPE__BODY_ERROR)
        err = evsi_error_from_envelope(resp);
    else {
        evsi_errmsg_set("server answered Hello with message %d", (int)resp->body_case);
        err = EVS_EPROTOCOL;
    }
    frame_free(resp);
    return err;
}

int evsi_socket_open(const evs_options_t *opts, evs_server_info_t *info)
{
    uint64_t deadline = evsi_deadline_after_ms(opts->connect_timeout_ms);
    int fd = evsi_sock_connect(opts->host, opts->port, opts->connect_timeout_ms);
    if (fd < 0)
        return fd;
    int err = evsi_handshake_run(fd, opts, deadline, info);
    if (err) {
        close(fd);
        return err;
    }
    return fd;
}

/* Installs a new socket (epoch + 1) and wakes the reader to poll it.
 * While the connection is closing the reader is gone: the socket is closed
 * instead, and EVS_ECLOSED returned. */
static int socket_install(evs_conn_t *conn, int fd, const evs_server_info_t *info)
{
    pthread_mutex_lock(&conn->send_lock);
    pthread_mutex_lock(&conn->lock);
    if (conn->closing) {
        pthread_mutex_unlock(&conn->lock);
        pthread_mutex_unlock(&conn->send_lock);
        close(fd);
        evsi_errmsg_set("connection closed");
        return EVS_ECLOSED;
    }
    assert(conn->fd < 0);
    conn->fd = fd;
    conn->epoch++;
    conn->info = *info;
    conn->err = 0;
    conn->err_msg[0] = '\0';
    pthread_mutex_unlock(&conn->lock);
    pthread_mutex_unlock(&conn->send_lock);
    evsi_reader_wake(conn);
    return 0;
}

/* One reconnection attempt, made with conn->lock released (connecting set,
 * so no other thread makes one meanwhile). A failure schedules the next
 * attempt after the backoff, which doubles. Returns 0 or the error. Caller
 * holds conn->lock. */
static int reconnect_locked(evs_conn_t *conn)
{
    conn->connecting = true;
    pthread_mutex_unlock(&conn->lock);
    evs_server_info_t info;
    int fd = evsi_socket_open(&conn->opts, &info);
    if (fd >= 0)
        fd = socket_install(conn, fd, &info) ? EVS_ECLOSED : fd;
    pthread_mutex_lock(&conn->lock);
    conn->connecting = false;
    pthread_cond_broadcast(&conn->link_cond);
    if (fd >= 0)
        return 0;
    snprintf(conn->err_msg, sizeof conn->err_msg, "reconnecting: %s", evs_errmsg());
    conn->err = fd;
    evsi_backoff_step(&conn->retry_at_ns, &conn->backoff_ms, conn->opts.reconnect_backoff_ms_max);
    return fd;
}

int evsi_link_ready_locked(evs_conn_t *conn, uint64_t until_ns)
{
    for (;;) {
        if (conn->fd >= 0 && !conn->closing)
            return 0;
        uint64_t now = util_mono_ns();
        bool wait = conn->connecting || now < conn->retry_at_ns;
        uint64_t wake = conn->connecting ? until_ns : conn->retry_at_ns;
        if (conn->closing || conn->opts.retry_ms_max == 0 || (wait && wake > until_ns) ||
            (!wait && now >= until_ns)) {
            evsi_errmsg_set("%s", conn->err_msg);
            return conn->err;
        }
        if (wait) {
            evsi_cond_wait_until(&conn->link_cond, &conn->lock, wake);
            continue;
        }
        int err = reconnect_locked(conn);
        if (err && !evs_error_retryable(err))
            return err;
    }
}

int evs_connect(const evs_options_t *opts, evs_conn_t **out)
{
    evs_options_t defaults;
    evsi_errmsg_clear();
    if (!opts) {
        evs_options_default(&defaults);
        opts = &defaults;
    }
    int err = evsi_options_check(opts);
    if (err)
        return err;
    evs_conn_t *conn;
    err = conn_alloc(opts, &conn);
    if (err)
        return err;
    conn->fd = evsi_socket_open(&conn->opts, &conn->info);
    if (conn->fd < 0) {
        err = conn->fd;
        goto err_free_conn;
    }
    conn->epoch = 1;
    err = -pthread_create(&conn->reader, NULL, evsi_reader_main, conn);
    if (err)
        goto err_close_fd;
    conn->reader_started = true;
    *out = conn;
    return 0;

err_close_fd:
    close(conn->fd);
err_free_conn:
    conn_free(conn);
    return err;
}

void evs_close(evs_conn_t *conn)
{
    if (!conn)
        return;
    pthread_mutex_lock(&conn->lock);
    conn->closing = true;
    pthread_mutex_unlock(&conn->lock);
    evsi_reader_wake(conn);
    pthread_join(conn->reader, NULL); /* it fails what is in flight and closes the socket */
    conn_free(conn);
}

int evs_flush(evs_conn_t *conn, int timeout_ms)
{
    if (evsi_on_reader_thread(conn)) {
        evsi_errmsg_set("evs_flush from a completion callback");
        return EVS_EDEADLOCK;
    }
    uint64_t deadline = evsi_deadline_after_ms(timeout_ms);
    int err = 0;
    pthread_mutex_lock(&conn->lock);
    while (conn->busy > 0 && !err)
        if (evsi_cond_wait_until(&conn->idle_cond, &conn->lock, deadline))
            err = EVS_ETIMEDOUT;
    if (!err && conn->err) {
        err = conn->err;
        evsi_errmsg_set("%s", conn->err_msg);
    } else if (err) {
        evsi_errmsg_set("%u requests still in flight after %d ms", conn->busy, timeout_ms);
    }
    pthread_mutex_unlock(&conn->lock);
    return err;
}

void evs_server_info(const evs_conn_t *conn, evs_server_info_t *out)
{
    evs_conn_t *c = (evs_conn_t *)conn; /* the lock only */
    pthread_mutex_lock(&c->lock);
    *out = c->info;
    pthread_mutex_unlock(&c->lock);
}

int evs_conn_error(evs_conn_t *conn)
{
    pthread_mutex_lock(&conn->lock);
    int err = conn->err;
    pthread_mutex_unlock(&conn->lock);
    return err;
}
