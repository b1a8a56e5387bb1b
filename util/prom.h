/* prom.h -- the Prometheus text exposition format (version 0.0.4), written
 * once for every /metrics page of the project: evstored's and the OMS
 * services'.
 *
 * A page is built in memory, family by family: prom_family() writes the
 * HELP and TYPE lines, then prom_sample_*() or prom_histogram() the samples.
 * Whatever the input, the page is a valid exposition or an error, never an
 * invalid text:
 *   - label values and HELP text are escaped as the format requires
 *     (backslash, and newline; double quote too in label values);
 *   - bytes that are not part of valid UTF-8 become U+FFFD, one per byte
 *     (the format has no byte escapes: "\xff" in a label value is a parse
 *     error): a group name of the bytes ff fe 0d is shown as two U+FFFD
 *     (ef bf bd each) and the carriage return, which is valid as it is;
 *   - a metric or label name outside the format's grammar fails the page
 *     (-EINVAL) rather than being written;
 *   - numbers are written so they read back exactly (NaN, +Inf and -Inf as
 *     the format spells them).
 * The first error sticks: later calls on the page do nothing, and
 * prom_page_take() returns NULL.
 *
 * util/ sits below every folder: this file links nothing but libc. */
#ifndef EVS_PROM_H
#define EVS_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM } prom_type_t;

/* One label of a sample: name="value". value is any bytes (escaped and made
 * valid UTF-8 on output). */
typedef struct {
    const char *name;
    const char *value;
} prom_label_t;

/* A page being written. Treat as opaque; the fields are here so a page can
 * live on the stack. */
typedef struct {
    char *text;       /* NUL-terminated; malloc'd; NULL until the first byte */
    size_t len;       /* bytes in text, without the NUL */
    size_t cap;       /* bytes allocated for text */
    size_t bytes_max; /* the page never grows past this: -EMSGSIZE */
    int err;          /* 0, or the first error: -ENOMEM, -EMSGSIZE, -EINVAL */
} prom_page_t;

/* Starts an empty page of at most bytes_max bytes. Allocates nothing. */
void prom_page_init(prom_page_t *p, size_t bytes_max);

/* Frees the page's text. The page may be started again. */
void prom_page_free(prom_page_t *p);

/* The page's first error (0: none so far). */
int prom_page_error(const prom_page_t *p);

/* Hands over the page's text (NUL-terminated, *len bytes before the NUL; the
 * caller frees it) and leaves the page empty. Returns NULL, and frees the
 * text, when the page failed. */
char *prom_page_take(prom_page_t *p, size_t *len);

/* Writes "# HELP name help" and "# TYPE name type". help may be NULL. */
void prom_family(prom_page_t *p, const char *name, prom_type_t type, const char *help);

/* Writes one sample line: name{labels} value. label_count may be 0 (labels
 * may then be NULL). */
void prom_sample_u64(prom_page_t *p, const char *name, const prom_label_t *labels,
                     size_t label_count, uint64_t value);
void prom_sample_i64(prom_page_t *p, const char *name, const prom_label_t *labels,
                     size_t label_count, int64_t value);
void prom_sample_f64(prom_page_t *p, const char *name, const prom_label_t *labels,
                     size_t label_count, double value);

/* Writes the samples of one histogram: name_bucket{labels,le="bound"} with
 * cumulative counts for each of bounds[0..bucket_count) (increasing) and for
 * le="+Inf", then name_sum{labels} and name_count{labels}. counts holds
 * bucket_count + 1 non-cumulative counts, the last one above every bound;
 * _count is their total, so it always equals the +Inf bucket. */
void prom_histogram(prom_page_t *p, const char *name, const prom_label_t *labels,
                    size_t label_count, const double *bounds, const uint64_t *counts,
                    size_t bucket_count, double sum);

/* Appends len bytes of lines already in the exposition format (rendered
 * elsewhere, e.g. a cached part of a page), replacing bytes that are not
 * valid UTF-8 with U+FFFD. The text should end with a newline. */
void prom_lines(prom_page_t *p, const char *text, size_t len);

/* Whether name is a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*). */
bool prom_metric_name_valid(const char *name);

/* Whether name is a label name ([a-zA-Z_][a-zA-Z0-9_]*). */
bool prom_label_name_valid(const char *name);

/* Parses a label set written in the format, `a="x",b="y\"z"` (or "": no
 * labels), into at most label_max labels whose names and unescaped values
 * point into buf (buf_bytes >= strlen(text) + 1 is always enough). Returns
 * the number of labels, -EINVAL when text is not such a label set, or -E2BIG
 * (more than label_max labels, or buf too small). */
int prom_labels_parse(const char *text, char *buf, size_t buf_bytes, prom_label_t *labels,
                      size_t label_max);

#endif
