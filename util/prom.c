/* prom.c -- the Prometheus text exposition format (see prom.h).
 *
 * Every byte of a page goes through page_put(), which grows the text up to
 * the page's limit and keeps it NUL-terminated; text that comes from outside
 * (label values, HELP, prom_lines) goes through put_text(), which escapes
 * and replaces invalid UTF-8 on the way. */
#include "prom.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROM_PAGE_BYTES_FIRST 4096u
#define PROM_NUMBER_BYTES_MAX 32u /* "%.17g" of a double, or a 64-bit integer */

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD in UTF-8 */

void prom_page_init(prom_page_t *p, size_t bytes_max)
{
    *p = (prom_page_t){.bytes_max = bytes_max};
}

void prom_page_free(prom_page_t *p)
{
    free(p->text);
    prom_page_init(p, p->bytes_max);
}

int prom_page_error(const prom_page_t *p)
{
    return p->err;
}

/* Makes room for n more bytes and the NUL. */
static int page_reserve(prom_page_t *p, size_t n)
{
    if (p->err)
        return p->err;
    if (n > p->bytes_max || p->len > p->bytes_max - n)
        return p->err = -EMSGSIZE;
    if (p->len + n < p->cap)
        return 0;
    size_t cap = p->cap ? p->cap : PROM_PAGE_BYTES_FIRST;
    while (cap <= p->len + n)
        cap *= 2;
    char *text = realloc(p->text, cap);
    if (!text)
        return p->err = -ENOMEM;
    p->text = text;
    p->cap = cap;
    return 0;
}

static void page_put(prom_page_t *p, const char *s, size_t n)
{
    if (page_reserve(p, n) < 0)
        return;
    memcpy(p->text + p->len, s, n);
    p->len += n;
    p->text[p->len] = '\0';
}

static void page_puts(prom_page_t *p, const char *s)
{
    page_put(p, s, strlen(s));
}

char *prom_page_take(prom_page_t *p, size_t *len)
{
    page_reserve(p, 0);
    if (p->err) {
        prom_page_free(p);
        return NULL;
    }
    char *text = p->text;
    *len = p->len;
    text[p->len] = '\0';
    prom_page_init(p, p->bytes_max);
    return text;
}

/* ---- text from outside ------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s (n bytes available), or 0 when
 * s[0] does not start one (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF). */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* bounds of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

typedef enum {
    TEXT_AS_IS, /* prom_lines: only UTF-8 is repaired */
    TEXT_HELP,  /* backslash and newline escaped */
    TEXT_LABEL, /* backslash, newline and double quote escaped */
} text_kind_t;

/* Writes n bytes of s as kind requires. */
static void put_text(prom_page_t *p, const char *s, size_t n, text_kind_t kind)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t done = 0; /* s[done..i) is still to be copied as it is */
    for (size_t i = 0; i < n;) {
        size_t seq = utf8_sequence(u + i, n - i);
        const char *instead = NULL;
        if (seq == 0)
            instead = replacement;
        else if (kind != TEXT_AS_IS && s[i] == '\\')
            instead = "\\\\";
        else if (kind != TEXT_AS_IS && s[i] == '\n')
            instead = "\\n";
        else if (kind == TEXT_LABEL && s[i] == '"')
            instead = "\\\"";
        if (!instead) {
            i += seq;
            continue;
        }
        page_put(p, s + done, i - done);
        page_puts(p, instead);
        i++;
        done = i;
    }
    page_put(p, s + done, n - done);
}

/* ---- names and numbers ------------------------------------------------- */

static bool name_valid(const char *name, bool colon_ok)
{
    if (!name || !*name || (*name >= '0' && *name <= '9'))
        return false;
    for (const char *c = name; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '_' || (colon_ok && *c == ':');
        if (!ok)
            return false;
    }
    return true;
}

bool prom_metric_name_valid(const char *name)
{
    return name_valid(name, true);
}

bool prom_label_name_valid(const char *name)
{
    return name_valid(name, false);
}

/* Writes name, or fails the page when it is not a metric name. */
static void put_metric_name(prom_page_t *p, const char *name)
{
    if (!prom_metric_name_valid(name)) {
        if (!p->err)
            p->err = -EINVAL;
        return;
    }
    page_puts(p, name);
}

/* Formats v so that strtod() reads back the same double. */
static void format_f64(double v, char out[PROM_NUMBER_BYTES_MAX])
{
    if (isnan(v)) {
        strcpy(out, "NaN");
    } else if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(out, PROM_NUMBER_BYTES_MAX, "%.15g", v);
        if (strtod(out, NULL) != v)
            snprintf(out, PROM_NUMBER_BYTES_MAX, "%.17g", v);
    }
}

/* ---- families and samples ---------------------------------------------- */

void prom_family(prom_page_t *p, const char *name, prom_type_t type, const char *help)
{
    static const char *const type_names[] = {
        [PROM_COUNTER] = "counter", [PROM_GAUGE] = "gauge", [PROM_HISTOGRAM] = "histogram"};
    assert((size_t)type < sizeof type_names / sizeof type_names[0]);
    page_puts(p, "# HELP ");
    put_metric_name(p, name);
    page_puts(p, " ");
    if (help)
        put_text(p, help, strlen(help), TEXT_HELP);
    page_puts(p, "\n# TYPE ");
    put_metric_name(p, name);
    page_puts(p, " ");
    page_puts(p, type_names[type]);
    page_puts(p, "\n");
}

static void put_label(prom_page_t *p, const prom_label_t *l, bool first)
{
    if (!prom_label_name_valid(l->name)) {
        if (!p->err)
            p->err = -EINVAL;
        return;
    }
    page_puts(p, first ? "{" : ",");
    page_puts(p, l->name);
    page_puts(p, "=\"");
    const char *v = l->value ? l->value : "";
    put_text(p, v, strlen(v), TEXT_LABEL);
    page_puts(p, "\"");
}

/* Writes name+suffix{labels,extra} value. extra (may be NULL) is one more
 * label, after the others. */
static void put_sample(prom_page_t *p, const char *name, const char *suffix,
                       const prom_label_t *labels, size_t label_count, const prom_label_t *extra,
                       const char *value)
{
    put_metric_name(p, name);
    page_puts(p, suffix);
    for (size_t i = 0; i < label_count; i++)
        put_label(p, &labels[i], i == 0);
    if (extra)
        put_label(p, extra, label_count == 0);
    if (label_count > 0 || extra)
        page_puts(p, "}");
    page_puts(p, " ");
    page_puts(p, value);
    page_puts(p, "\n");
}

void prom_sample_u64(prom_page_t *p, const char *name, const prom_label_t *labels,
                     size_t label_count, uint64_t value)
{
    char v[PROM_NUMBER_BYTES_MAX];
    snprintf(v, sizeof v, "%llu", (unsigned long long)value);
    put_sample(p, name, "", labels, label_count, NULL, v);
}

void prom_sample_i64(prom_page_t *p, const char *name, const prom_label_t *labels,
                     size_t label_count, int64_t value)
{
    char v[PROM_NUMBER_BYTES_MAX];
    snprintf(v, sizeof v, "%lld", (long long)value);
    put_sample(p, name, "", labels, label_count, NULL, v);
}

void prom_sample_f64(prom_page_t *p, const char *name, const prom_label_t *labels,
                     size_t label_count, double value)
{
    char v[PROM_NUMBER_BYTES_MAX];
    format_f64(value, v);
    put_sample(p, name, "", labels, label_count, NULL, v);
}

void prom_histogram(prom_page_t *p, const char *name, const prom_label_t *labels,
                    size_t label_count, const double *bounds, const uint64_t *counts,
                    size_t bucket_count, double sum)
{
    char le[PROM_NUMBER_BYTES_MAX], v[PROM_NUMBER_BYTES_MAX];
    prom_label_t le_label = {.name = "le", .value = le};
    uint64_t total = 0;
    for (size_t i = 0; i <= bucket_count; i++) {
        assert(i == 0 || i == bucket_count || bounds[i] > bounds[i - 1]);
        total += counts[i];
        if (i < bucket_count)
            format_f64(bounds[i], le);
        else
            strcpy(le, "+Inf");
        snprintf(v, sizeof v, "%llu", (unsigned long long)total);
        put_sample(p, name, "_bucket", labels, label_count, &le_label, v);
    }
    format_f64(sum, v);
    put_sample(p, name, "_sum", labels, label_count, NULL, v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)total);
    put_sample(p, name, "_count", labels, label_count, NULL, v);
}

void prom_lines(prom_page_t *p, const char *text, size_t len)
{
    put_text(p, text, len, TEXT_AS_IS);
}

/* ---- parsing a label set ----------------------------------------------- */

/* Unescapes the quoted value that starts after the opening quote at *s into
 * *out, up to and past the closing quote. */
static int parse_value(const char **s, char **out)
{
    const char *c = *s;
    char *o = *out;
    for (; *c != '"'; c++) {
        if (*c == '\0' || *c == '\n')
            return -EINVAL;
        if (*c == '\\') {
            c++;
            if (*c != '\\' && *c != '"' && *c != 'n')
                return -EINVAL;
            *o++ = *c == 'n' ? '\n' : *c;
        } else {
            *o++ = *c;
        }
    }
    *o++ = '\0';
    *s = c + 1;
    *out = o;
    return 0;
}

int prom_labels_parse(const char *text, char *buf, size_t buf_bytes, prom_label_t *labels,
                      size_t label_max)
{
    if (!text || !*text)
        return 0;
    if (buf_bytes < strlen(text) + 1)
        return -E2BIG;
    const char *c = text;
    char *o = buf;
    size_t n = 0;
    for (;;) {
        if (n == label_max)
            return -E2BIG;
        const char *eq = strchr(c, '=');
        if (!eq || eq[1] != '"')
            return -EINVAL;
        labels[n].name = o;
        memcpy(o, c, (size_t)(eq - c));
        o[eq - c] = '\0';
        o += eq - c + 1;
        if (!prom_label_name_valid(labels[n].name))
            return -EINVAL;
        labels[n].value = o;
        c = eq + 2;
        if (parse_value(&c, &o) < 0)
            return -EINVAL;
        n++;
        if (*c == '\0')
            return (int)n;
        if (*c++ != ',')
            return -EINVAL;
    }
}
