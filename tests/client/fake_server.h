/* fake_server.h -- a scripted protocol peer in a thread, for testing the
 * client library's own behaviour (ordering, timeouts, failures) without
 * evstored. It serves one connection. */
#ifndef EVSTORE_TEST_FAKE_SERVER_H
#define EVSTORE_TEST_FAKE_SERVER_H

#include <pthread.h>
#include <stdint.h>

typedef enum {
    FAKE_ANSWER,        /* answer each request at once */
    FAKE_REVERSE,       /* collect `batch` requests, answer them last first */
    FAKE_SILENT,        /* read requests, never answer */
    FAKE_CLOSE,         /* read `batch` requests, then close */
    FAKE_GARBAGE,       /* answer the first request with a frame that is no Envelope */
    FAKE_OLD_VERSION,   /* answer Hello with Error PROTOCOL_VERSION */
    FAKE_MUTE_HELLO,    /* never answer Hello */
} fake_mode_t;

typedef struct {
    fake_mode_t mode;
    int batch;
    uint32_t frame_bytes_max; /* sent in HelloOk */
    int listen_fd;
    int conn_fd;
    uint16_t port;
    pthread_t thread;
    int requests;             /* requests read so far */
} fake_server_t;

/* Listens on 127.0.0.1:0 and serves one connection in a thread. */
int fake_server_start(fake_server_t *f, fake_mode_t mode, int batch);
/* Closes the sockets and joins the thread. */
void fake_server_stop(fake_server_t *f);

#endif
