/* cli_print.c -- printing events as text or JSON lines, for read, tail and
 * group consume. */
#include "cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

/* Bytes as a JSON value: parsed JSON, else a string; NULL if not UTF-8. */
static json_t *json_of_bytes(const uint8_t *p, size_t len)
{
    json_t *v = len ? json_loadb((const char *)p, len, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_stringn((const char *)p, len);
}

static void json_put_bytes(json_t *obj, const char *key, const uint8_t *p, size_t len)
{
    json_t *v = json_of_bytes(p, len);
    if (v) {
        json_object_set_new(obj, key, v);
        return;
    }
    char *hex = malloc(len * 2 + 1), name[32];
    for (size_t i = 0; hex && i < len; i++)
        sprintf(hex + 2 * i, "%02x", p[i]);
    if (hex) {
        hex[len * 2] = '\0';
        snprintf(name, sizeof name, "%s_hex", key);
        json_object_set_new(obj, name, json_string(hex));
    }
    free(hex);
}

static void event_print_json(const evs_recorded_event_t *e, int64_t retry_count)
{
    char id[EVS_ID_TEXT_BYTES];
    json_t *o = json_object();
    json_object_set_new(o, "position", json_integer((json_int_t)e->position));
    json_object_set_new(o, "stream", json_string(e->stream));
    json_object_set_new(o, "version", json_integer(e->version));
    json_object_set_new(o, "id", json_string(evs_id_format(e->id, id)));
    json_object_set_new(o, "type", json_string(e->type));
    json_object_set_new(o, "timestamp_ns", json_integer(e->timestamp_ns));
    json_put_bytes(o, "data", e->data, e->data_len);
    if (e->metadata_len)
        json_put_bytes(o, "metadata", e->metadata, e->metadata_len);
    if (retry_count >= 0)
        json_object_set_new(o, "retry_count", json_integer(retry_count));
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text)
        puts(text);
    free(text);
    json_decref(o);
}

/* Text form: the data as is when it is printable, else its size. */
static void event_print_text(const evs_recorded_event_t *e, int64_t retry_count)
{
    bool printable = true;
    for (size_t i = 0; i < e->data_len && printable; i++)
        printable = e->data[i] >= 0x20 || e->data[i] == '\t';
    printf("%llu %s@%lld %s ", (unsigned long long)e->position, e->stream,
           (long long)e->version, e->type);
    if (printable)
        fwrite(e->data, 1, e->data_len, stdout);
    else
        printf("<%zu bytes>", e->data_len);
    if (retry_count > 0)
        printf(" (retry %lld)", (long long)retry_count);
    putchar('\n');
}

void cli_event_print(const evs_recorded_event_t *e, bool json, int64_t retry_count)
{
    if (json)
        event_print_json(e, retry_count);
    else
        event_print_text(e, retry_count);
}
