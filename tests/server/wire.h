/* wire.h -- a small wire-level evstore client for the server's integration
 * tests: it sends exactly the bytes a test asks for and receives frames with
 * a timeout. Built on the protocol library (frame_* and Evstore__V1__*).
 *
 * Not thread-safe: one wire_t per thread. Every call that waits is bounded
 * by the timeout it is given. Functions return 0 or a negative errno:
 * -ETIMEDOUT (nothing within the timeout), -EPIPE (the server closed the
 * connection), -EBADMSG (bytes that are not a frame holding an Envelope). */
#ifndef EVSTORE_TESTS_WIRE_H
#define EVSTORE_TESTS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"
#include "util.h"

#define WIRE_TIMEOUT_MS 10000     /* default bound of one answer */
#define WIRE_FRAME_BYTES_MAX (64u * 1024 * 1024) /* largest frame received */

typedef struct {
    int fd;
    uint8_t *in;          /* received bytes not yet returned as frames */
    size_t in_len, in_cap;
    uint64_t next_corr;   /* correlation ids handed out by the blocking calls */
} wire_t;

/* One event of an append. */
typedef struct {
    uint8_t id[16];
    const char *type;
    const void *data;
    size_t data_len;
    const void *metadata;
    size_t metadata_len;
    int64_t timestamp_ns;
    const uint8_t *raw_id; /* when set: sent as the id instead of id[]... */
    size_t raw_id_len;     /* ...with this length (to send malformed ids) */
} wire_event_t;

/* One stream of an append: its expected version and its events. */
typedef struct {
    const char *stream;
    int64_t expected_version; /* >= 0 exact, or WIRE_ANY / WIRE_NO_STREAM / WIRE_STREAM_EXISTS */
    const wire_event_t *events;
    size_t event_count;
} wire_stream_t;

#define WIRE_ANY (-1)
#define WIRE_NO_STREAM (-2)
#define WIRE_STREAM_EXISTS (-3)

/* A read request; zero-initialise and set what matters. */
typedef struct {
    const char *stream;   /* a stream, "$ce-<category>" or "$all" */
    uint64_t from;
    bool from_end;
    bool backwards;
    uint32_t max_count;
    const char *const *types; /* filter: NULL-terminated list, or NULL */
    const char *type_prefix;  /* filter: or NULL */
} wire_read_t;

/* Connects to 127.0.0.1:port within timeout_ms. */
int wire_connect(wire_t *w, uint16_t port, int timeout_ms);

/* Closes the socket and frees the buffer; safe on a closed wire_t. */
void wire_close(wire_t *w);

/* Sends n raw bytes (all of them, within timeout_ms). */
int wire_send_raw(wire_t *w, const void *bytes, size_t n, int timeout_ms);

/* Encodes env as one frame and sends it. */
int wire_send(wire_t *w, const envelope_t *env);

/* Receives one frame within timeout_ms into *out (free with frame_free()). */
int wire_recv(wire_t *w, int timeout_ms, envelope_t **out);

/* Receives and drops frames until the server closes the connection. Returns
 * 0 once closed, -ETIMEDOUT if still open after timeout_ms. *frames (may be
 * NULL) gets the number of frames dropped; *first_error (may be NULL) the
 * code of the first Error frame seen, or 0. */
int wire_wait_closed(wire_t *w, int timeout_ms, int *frames, int *first_error);

/* Request senders: each sends one frame with the given correlation id. */
int wire_send_hello(wire_t *w, uint64_t corr, uint32_t version, const char *client_name);
int wire_send_append(wire_t *w, uint64_t corr, const wire_stream_t *streams, size_t n);
int wire_send_read(wire_t *w, uint64_t corr, const wire_read_t *r);
int wire_send_stream_info(wire_t *w, uint64_t corr, const char *stream);
int wire_send_list_streams(wire_t *w, uint64_t corr, const char *prefix, const char *after,
                           uint32_t max_count);
int wire_send_stats(wire_t *w, uint64_t corr);
int wire_send_ping(wire_t *w, uint64_t corr, uint64_t nonce);

/* Encodes an append as a frame into a malloc'd buffer (*len bytes), for
 * tests that cut or repeat bytes. Returns NULL on ENOMEM. */
uint8_t *wire_encode_append(uint64_t corr, const wire_stream_t *streams, size_t n, size_t *len);

/* Blocking calls: send one request with a fresh correlation id and return
 * its answer (NULL on a socket error, a timeout of WIRE_TIMEOUT_MS, or an
 * answer with another correlation id). The answer may be an Error. */
envelope_t *wire_hello(wire_t *w, const char *client_name);
envelope_t *wire_append(wire_t *w, const wire_stream_t *streams, size_t n);
envelope_t *wire_read(wire_t *w, const wire_read_t *r);
envelope_t *wire_stream_info(wire_t *w, const char *stream);
envelope_t *wire_list_streams(wire_t *w, const char *prefix, const char *after,
                              uint32_t max_count);
envelope_t *wire_stats(wire_t *w);
envelope_t *wire_ping(wire_t *w, uint64_t nonce);

/* Connects and says hello; returns 0 once HelloOk arrived. */
int wire_open(wire_t *w, uint16_t port);

/* Appends one event of type to stream (expected version ev) and returns the
 * answer. Its id is id_seed spread over 16 bytes; data is the given text. */
envelope_t *wire_append_one(wire_t *w, const char *stream, int64_t ev, uint64_t id_seed,
                            const char *type, const char *data);

/* Fills id with a 16-byte id derived from two numbers (distinct pairs give
 * distinct ids). */
void wire_id(uint8_t id[16], uint64_t a, uint64_t b);

#endif
