/* fake_server.c -- a scripted protocol peer for client library tests. */
#include "fake_server.h"

#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol.h"

static int recv_exact(int fd, uint8_t *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = recv(fd, buf + done, len - done, 0);
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

static envelope_t *frame_read(int fd)
{
    uint8_t head[4];
    uint32_t len;
    if (recv_exact(fd, head, 4) || frame_peek(head, 4, FRAME_BYTES_MAX_LIMIT, &len) ==
                                        FRAME_TOO_LARGE)
        return NULL;
    uint8_t *body = malloc(len);
    envelope_t *env = body && !recv_exact(fd, body, len) ? frame_decode(body, len) : NULL;
    free(body);
    return env;
}

static void frame_write(int fd, const envelope_t *env)
{
    uint8_t *buf = malloc(frame_size(env));
    size_t len = frame_encode(env, buf);
    if (send(fd, buf, len, MSG_NOSIGNAL) < 0) {
        /* the client went away; the test notices */
    }
    free(buf);
}

static void hello_answer(fake_server_t *f)
{
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    Evstore__V1__HelloOk ok = EVSTORE__V1__HELLO_OK__INIT;
    Evstore__V1__Error err = EVSTORE__V1__ERROR__INIT;
    env.correlation_id = 1;
    if (f->mode == FAKE_OLD_VERSION) {
        err.code = EVSTORE__V1__ERROR_CODE__PROTOCOL_VERSION;
        err.message = "fake speaks protocol 99";
        env.body_case = EVSTORE__V1__ENVELOPE__BODY_ERROR;
        env.error = &err;
    } else {
        ok.protocol_version = 1;
        ok.server_version = "fake";
        ok.frame_bytes_max = f->frame_bytes_max;
        ok.append_events_max = 1000;
        ok.read_events_max = 1000;
        env.body_case = EVSTORE__V1__ENVELOPE__BODY_HELLO_OK;
        env.hello_ok = &ok;
    }
    frame_write(f->conn_fd, &env);
}

/* Answers a Ping with a Pong, an Append with a made-up result, anything
 * else with Error BAD_REQUEST. */
static void answer(fake_server_t *f, const envelope_t *req)
{
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    Evstore__V1__Pong pong = EVSTORE__V1__PONG__INIT;
    Evstore__V1__AppendResponse ar = EVSTORE__V1__APPEND_RESPONSE__INIT;
    Evstore__V1__Error err = EVSTORE__V1__ERROR__INIT;
    int64_t versions[128] = { 0 };
    env.correlation_id = req->correlation_id;
    if (req->body_case == EVSTORE__V1__ENVELOPE__BODY_PING) {
        pong.nonce = req->ping->nonce;
        env.body_case = EVSTORE__V1__ENVELOPE__BODY_PONG;
        env.pong = &pong;
    } else if (req->body_case == EVSTORE__V1__ENVELOPE__BODY_APPEND) {
        ar.first_position = (uint64_t)f->requests * 1000;
        ar.event_count = (uint32_t)req->append->streams[0]->n_events;
        ar.n_last_versions = req->append->n_streams;
        ar.last_versions = versions;
        env.body_case = EVSTORE__V1__ENVELOPE__BODY_APPEND_OK;
        env.append_ok = &ar;
    } else {
        err.code = EVSTORE__V1__ERROR_CODE__BAD_REQUEST;
        err.message = "fake: not supported";
        env.body_case = EVSTORE__V1__ENVELOPE__BODY_ERROR;
        env.error = &err;
    }
    frame_write(f->conn_fd, &env);
}

static void garbage_send(fake_server_t *f)
{
    const uint8_t junk[] = { 6, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    if (send(f->conn_fd, junk, sizeof junk, MSG_NOSIGNAL) < 0) {
        /* ignored */
    }
}

/* Serves requests after the handshake, as the mode says. */
static void serve(fake_server_t *f)
{
    envelope_t *held[4096];
    int n_held = 0;
    envelope_t *req;
    while ((req = frame_read(f->conn_fd)) != NULL) {
        f->requests++;
        if (f->mode == FAKE_ANSWER) {
            answer(f, req);
        } else if (f->mode == FAKE_GARBAGE) {
            garbage_send(f);
        } else if (f->mode == FAKE_REVERSE && n_held < 4096) {
            held[n_held++] = req;
            req = NULL;
            if (n_held == f->batch)
                while (n_held > 0) {
                    answer(f, held[--n_held]);
                    frame_free(held[n_held]);
                }
        }
        frame_free(req);
        if (f->mode == FAKE_CLOSE && f->requests >= f->batch)
            break;
    }
    while (n_held > 0)
        frame_free(held[--n_held]);
}

static void *fake_main(void *arg)
{
    fake_server_t *f = arg;
    struct pollfd p = { .fd = f->listen_fd, .events = POLLIN };
    if (poll(&p, 1, 10000) <= 0)
        return NULL;
    f->conn_fd = accept(f->listen_fd, NULL, NULL);
    if (f->conn_fd < 0)
        return NULL;
    envelope_t *hello = frame_read(f->conn_fd);
    if (hello && f->mode == FAKE_MUTE_HELLO) {
        serve(f);
    } else if (hello) {
        hello_answer(f);
        if (f->mode != FAKE_OLD_VERSION)
            serve(f);
    }
    frame_free(hello);
    shutdown(f->conn_fd, SHUT_RDWR);
    return NULL;
}

int fake_server_start(fake_server_t *f, fake_mode_t mode, int batch)
{
    memset(f, 0, sizeof *f);
    f->mode = mode;
    f->batch = batch;
    f->conn_fd = -1;
    f->frame_bytes_max = 1u << 20;
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (bind(f->listen_fd, (struct sockaddr *)&a, sizeof a) || listen(f->listen_fd, 4) ||
        getsockname(f->listen_fd, (struct sockaddr *)&a, &len))
        return -1;
    f->port = ntohs(a.sin_port);
    return pthread_create(&f->thread, NULL, fake_main, f) ? -1 : 0;
}

void fake_server_stop(fake_server_t *f)
{
    if (f->conn_fd >= 0)
        shutdown(f->conn_fd, SHUT_RDWR);
    shutdown(f->listen_fd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    if (f->conn_fd >= 0)
        close(f->conn_fd);
    close(f->listen_fd);
}
