/* inspect_proto.c -- payloads that are known protobuf messages, for dump's
 * "data_decoded" (util/pbjson: the same JSON as oms-order's audit trail).
 *
 * Two sources of message types:
 *   - the store's own records, built in (protocol/evstore.proto): the
 *     events the server writes to its system streams, by stream prefix and
 *     event type (the table below);
 *   - decoder plugins, for application payloads: shared objects loaded with
 *     dlopen (--decoder PATH, and $EVSTORE_INSPECT_DECODERS), each exporting
 *         const ProtobufCMessageDescriptor *
 *         evstore_payload_descriptor(const char *event_type);
 *     which returns the descriptor of the message an event of that type
 *     holds, or NULL (docs/inspect.md). The store's tool thus never links
 *     an application: the OMS ships its plugin (services/domain,
 *     liboms-decoder.so). */
#include "inspect.h"

#include "protocol.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

/* The symbol every decoder plugin exports. */
#define INSPECT_DECODER_SYMBOL "evstore_payload_descriptor"

typedef const ProtobufCMessageDescriptor *(*inspect_decoder_fn)(const char *event_type);

typedef struct {
    void *handle;
    inspect_decoder_fn fn;
} inspect_decoder_t;

static inspect_decoder_t decoders[INSPECT_DECODERS_LIMIT];
static size_t decoder_count;

typedef struct {
    const char *stream_prefix;
    const char *type;
    const ProtobufCMessageDescriptor *desc;
} inspect_proto_known_t;

/* The server's own records (docs/groups.md): settings, checkpoints and
 * deletion of a group in "$group-<name>", dead letters in "$parked-<name>". */
static const inspect_proto_known_t known[] = {
    {"$group-", "GroupSettings", &evstore__v1__group_settings__descriptor},
    {"$group-", "GroupCheckpoint", &evstore__v1__group_checkpoint__descriptor},
    {"$group-", "GroupDeleted", &evstore__v1__group_name__descriptor},
    {"$parked-", "GroupParked", &evstore__v1__parked_event__descriptor},
};

/* Loads one plugin. 0, or -1 after saying why. */
static int inspect_decoder_load(const char *path)
{
    if (decoder_count == INSPECT_DECODERS_LIMIT) {
        fprintf(stderr, "evstore-inspect: decoder %s: more than %u decoder plugins\n", path,
                INSPECT_DECODERS_LIMIT);
        return -1;
    }
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        fprintf(stderr, "evstore-inspect: decoder %s: cannot load it: %s\n", path, dlerror());
        return -1;
    }
    inspect_decoder_fn fn = (inspect_decoder_fn)dlsym(handle, INSPECT_DECODER_SYMBOL);
    if (!fn) {
        fprintf(stderr, "evstore-inspect: decoder %s: exports no %s() (see docs/inspect.md)\n",
                path, INSPECT_DECODER_SYMBOL);
        dlclose(handle);
        return -1;
    }
    decoders[decoder_count++] = (inspect_decoder_t){handle, fn};
    return 0;
}

/* Loads each plugin of a colon-separated list (empty entries skipped). */
static int inspect_decoders_env(const char *list)
{
    char *copy = strdup(list);
    if (!copy) {
        fprintf(stderr, "evstore-inspect: %s: out of memory\n", INSPECT_DECODERS_ENV);
        return -1;
    }
    int rc = 0;
    char *save = NULL;
    for (char *p = strtok_r(copy, ":", &save); p && rc == 0; p = strtok_r(NULL, ":", &save))
        rc = inspect_decoder_load(p);
    free(copy);
    return rc;
}

int inspect_decoders_load(const char *const *paths, size_t n)
{
    const char *env = getenv(INSPECT_DECODERS_ENV);
    int rc = env ? inspect_decoders_env(env) : 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = inspect_decoder_load(paths[i]);
    if (rc)
        inspect_decoders_unload();
    return rc;
}

void inspect_decoders_unload(void)
{
    while (decoder_count > 0)
        dlclose(decoders[--decoder_count].handle);
}

/* What the plugins say of a type; the first that knows it wins. A pointer
 * that is not a message descriptor is ignored. */
static const ProtobufCMessageDescriptor *inspect_decoders_ask(const log_event_t *ev)
{
    char type[LOG_TYPE_BYTES_MAX + 1];
    if (decoder_count == 0 || ev->type_len >= sizeof type)
        return NULL;
    memcpy(type, ev->type, ev->type_len);
    type[ev->type_len] = '\0';
    for (size_t i = 0; i < decoder_count; i++) {
        const ProtobufCMessageDescriptor *d = decoders[i].fn(type);
        if (d && d->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
            return d;
    }
    return NULL;
}

const ProtobufCMessageDescriptor *inspect_proto_for(const log_event_t *ev)
{
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        size_t p = strlen(known[i].stream_prefix), t = strlen(known[i].type);
        if (ev->stream_len >= p && memcmp(ev->stream, known[i].stream_prefix, p) == 0 &&
            ev->type_len == t && memcmp(ev->type, known[i].type, t) == 0)
            return known[i].desc;
    }
    return inspect_decoders_ask(ev);
}
