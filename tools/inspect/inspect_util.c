/* inspect_util.c -- problem reports, and the text and JSON forms of
 * times, ids and payloads. JSON is made by Jansson, never by hand. */
#include "inspect.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const inspect_kind_names[] = {"damage", "torn tail", "index", "note"};

void inspect_problem(inspect_report_t *r, inspect_kind_t kind, const char *file, uint64_t offset,
                     const char *fmt, ...)
{
    r->count[kind]++;
    if (!r->out || (kind == INSPECT_NOTE && r->quiet_notes))
        return;
    fprintf(r->out, "%s: %s", inspect_kind_names[kind], file);
    if (offset != UINT64_MAX)
        fprintf(r->out, " offset %llu", (unsigned long long)offset);
    fputs(": ", r->out);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(r->out, fmt, ap);
    va_end(ap);
    fputc('\n', r->out);
}

void inspect_io_error(inspect_report_t *r, const char *file, int err)
{
    r->io_error = true;
    fprintf(stderr, "evstore-inspect: %s: %s\n", file, log_strerror(err));
}

uint64_t inspect_problems(const inspect_report_t *r)
{
    return r->count[INSPECT_DAMAGE] + r->count[INSPECT_TORN] + r->count[INSPECT_INDEX];
}

/* ---- times ---- */

void inspect_time_format(int64_t ns, char *buf, size_t cap)
{
    int64_t sec = ns / 1000000000, frac = ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, cap, "%lld", (long long)ns);
        return;
    }
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)frac);
}

int inspect_u64_parse(const char *text, uint64_t *out)
{
    if (!text || !*text || strspn(text, "0123456789") != strlen(text) || strlen(text) > 20)
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(text, NULL, 10);
    if (errno)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Reads exactly n digits at *p into *v. */
static bool inspect_digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return false;
        *v = *v * 10 + (**p - '0');
    }
    return true;
}

/* Parses the optional fraction ".ddd" of a second into nanoseconds. */
static bool inspect_fraction(const char **p, int64_t *ns)
{
    *ns = 0;
    if (**p != '.')
        return true;
    (*p)++;
    int64_t scale = 100000000;
    if (**p < '0' || **p > '9')
        return false;
    for (; **p >= '0' && **p <= '9'; (*p)++, scale /= 10)
        *ns += scale * (**p - '0');
    return true;
}

int inspect_time_parse(const char *text, int64_t *ns)
{
    uint64_t raw;
    if (inspect_u64_parse(text, &raw) == 0 && raw <= INT64_MAX) {
        *ns = (int64_t)raw;
        return 0;
    }
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, s = 0;
    int64_t frac = 0;
    const char *p = text;
    if (!inspect_digits(&p, 4, &y) || *p++ != '-' || !inspect_digits(&p, 2, &mo) ||
        *p++ != '-' || !inspect_digits(&p, 2, &d))
        return -EINVAL;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (!inspect_digits(&p, 2, &h) || *p++ != ':' || !inspect_digits(&p, 2, &mi))
            return -EINVAL;
        if (*p == ':' && (p++, !inspect_digits(&p, 2, &s) || !inspect_fraction(&p, &frac)))
            return -EINVAL;
    }
    if (*p == 'Z')
        p++;
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return -EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    time_t t = timegm(&tm);
    *ns = (int64_t)t * 1000000000 + frac;
    return 0;
}

/* ---- ids and payloads ---- */

void inspect_uuid_format(const uint8_t id[16], char *buf)
{
    static const char hex[] = "0123456789abcdef";
    char *p = buf;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[id[i] >> 4];
        *p++ = hex[id[i] & 15];
    }
    *p = '\0';
}

/* Length of the UTF-8 character at p (of n bytes left), or 0 if invalid. */
static size_t inspect_utf8_char(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (len == 0 || c > 0xf4 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || (c == 0xf0 && p[1] < 0x90) ||
        (c == 0xf4 && p[1] > 0x8f))
        return 0; /* overlong, surrogate, or above U+10FFFF */
    return len;
}

bool inspect_utf8_valid(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t len = inspect_utf8_char(p + i, n - i);
        if (len == 0)
            return false;
        i += len;
    }
    return true;
}

size_t inspect_utf8_cut(const uint8_t *p, size_t n, size_t cap)
{
    size_t i = 0;
    while (i < n) {
        size_t len = inspect_utf8_char(p + i, n - i);
        if (len == 0 || i + len > cap)
            break;
        i += len;
    }
    return i;
}

/* Appends the UTF-8 form of code point U+0080..U+00FF (c) at o. */
static size_t inspect_latin1(uint8_t c, char *o)
{
    o[0] = (char)(0xc0 | c >> 6);
    o[1] = (char)(0x80 | (c & 0x3f));
    return 2;
}

json_t *inspect_json_text(const void *p, size_t n)
{
    const uint8_t *s = p;
    if (inspect_utf8_valid(s, n))
        return json_stringn((const char *)s, n);
    char *text = malloc(2 * n + 1); /* each byte at most doubles */
    if (!text)
        return NULL;
    size_t len = 0;
    for (size_t i = 0; i < n;) {
        size_t c = inspect_utf8_char(s + i, n - i);
        if (c == 0) {
            len += inspect_latin1(s[i++], text + len);
            continue;
        }
        memcpy(text + len, s + i, c);
        len += c;
        i += c;
    }
    json_t *j = json_stringn(text, len);
    free(text);
    return j;
}

void inspect_quoted(FILE *f, const void *p, size_t n)
{
    json_t *j = inspect_json_text(p, n);
    if (!j || json_dumpf(j, f, JSON_ENCODE_ANY) != 0)
        fputs("\"(out of memory)\"", f);
    json_decref(j);
}

json_t *inspect_json_hex(const void *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *s = p;
    char *text = malloc(2 * n + 1);
    if (!text)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        text[2 * i] = hex[s[i] >> 4];
        text[2 * i + 1] = hex[s[i] & 15];
    }
    json_t *j = json_stringn(text, 2 * n);
    free(text);
    return j;
}

void inspect_json_line(FILE *f, json_t *o)
{
    if (!o || json_dumpf(o, f, JSON_COMPACT) != 0)
        fputs("{\"kind\":\"error\",\"error\":\"out of memory\"}", f);
    fputc('\n', f);
    json_decref(o);
}

void inspect_hex(FILE *f, const void *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++) {
        fputc(hex[s[i] >> 4], f);
        fputc(hex[s[i] & 15], f);
    }
}
