/* fuzz_frame.c -- libFuzzer target over the frame codec and the message
 * decoder: arbitrary bytes are read as a receive buffer of frames, the way
 * evstored reads a connection. For every frame: frame_peek (with a small
 * frame_bytes_max), frame_decode, frame_check; for every decoded envelope:
 * frame_size + frame_encode, which must decode again and encode to the same
 * bytes, then frame_free. Any crash, sanitizer report or broken invariant
 * (abort) is a finding. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

#define FUZZ_FRAME_BYTES_MAX 4096u /* small, so that the limit is hit often */
#define FUZZ_FRAMES_MAX 64u        /* frames looked at per input */

#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "fuzz_frame: invariant broken: %s (%s:%d)\n", #cond, __FILE__, \
                    __LINE__);                                                             \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether m or a message inside it kept an unknown field numbered 0.
 * protobuf-c 1.4.1 refuses tag 0 only in its one-byte form (0x02), yet
 * accepts it spelled in two bytes (0x82 0x00) and keeps it as an unknown
 * field; packing writes it back in the one-byte form, which unpacking then
 * refuses. Harmless to evstore (unknown fields are ignored, and the server
 * never re-encodes what it receives), but it breaks the round trip, so the
 * round trip is checked for every other input. */
static bool has_unknown_field_zero(const ProtobufCMessage *m)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return true;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                if (has_unknown_field_zero(items[k]))
                    return true;
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + f->offset);
        if (sub && has_unknown_field_zero(sub))
            return true;
    }
    return false;
}

/* Encodes env, decodes the frame again and checks that nothing changed
 * that the codec promises to keep. */
static void round_trip(const envelope_t *env)
{
    size_t n = frame_size(env);
    FUZZ_CHECK(n >= FRAME_HEADER_BYTES);
    uint8_t *buf = malloc(n);
    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(frame_encode(env, buf) == n);
    uint32_t body = 0;
    frame_status_t st = frame_peek(buf, n, UINT32_MAX, &body);
    FUZZ_CHECK(body == n - FRAME_HEADER_BYTES);
    /* An envelope with every field at its default packs to zero bytes,
     * which the frame layer refuses as a length: no sender ever makes one
     * (every request and answer has a body). */
    FUZZ_CHECK(st == (body == 0 ? FRAME_TOO_LARGE : FRAME_READY));
    envelope_t *again = frame_decode(buf + FRAME_HEADER_BYTES, body);
    if (!again) {
        FUZZ_CHECK(has_unknown_field_zero(&env->base));
        free(buf);
        return;
    }
    FUZZ_CHECK(again->correlation_id == env->correlation_id);
    FUZZ_CHECK(again->body_case == env->body_case);
    FUZZ_CHECK((frame_check(again) == NULL) == (frame_check(env) == NULL));
    size_t n2 = frame_size(again);
    FUZZ_CHECK(n2 == n);
    uint8_t *buf2 = malloc(n2);
    FUZZ_CHECK(buf2 != NULL);
    FUZZ_CHECK(frame_encode(again, buf2) == n2);
    FUZZ_CHECK(memcmp(buf, buf2, n) == 0);
    free(buf2);
    free(buf);
    frame_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* data may be NULL */
    size_t off = 0;
    for (unsigned i = 0; i < FUZZ_FRAMES_MAX && off <= size; i++) {
        uint32_t body = 0;
        frame_status_t st = frame_peek(data + off, size - off, FUZZ_FRAME_BYTES_MAX, &body);
        if (st == FRAME_TOO_LARGE) {
            FUZZ_CHECK(body == 0 || body > FUZZ_FRAME_BYTES_MAX);
            break;
        }
        if (st == FRAME_NEED_MORE) {
            FUZZ_CHECK(size - off < FRAME_HEADER_BYTES ||
                       size - off - FRAME_HEADER_BYTES < body);
            break;
        }
        FUZZ_CHECK(st == FRAME_READY && body > 0 && body <= FUZZ_FRAME_BYTES_MAX);
        FUZZ_CHECK(size - off - FRAME_HEADER_BYTES >= body);
        /* One byte less of the same frame is not a whole frame. */
        uint32_t short_body = 0;
        FUZZ_CHECK(frame_peek(data + off, FRAME_HEADER_BYTES + body - 1, FUZZ_FRAME_BYTES_MAX,
                              &short_body) == FRAME_NEED_MORE);
        FUZZ_CHECK(short_body == body);
        envelope_t *env = frame_decode(data + off + FRAME_HEADER_BYTES, body);
        if (env) {
            (void)frame_check(env);
            round_trip(env);
            frame_free(env);
        }
        off += FRAME_HEADER_BYTES + body;
    }
    return 0;
}
