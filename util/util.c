/* util.c -- clock, sleep, hex, HOST:PORT and VERIFY's failure path. */
#include "util.h"

#include <errno.h>
#include <string.h>
#include <time.h>

void util_verify_failed(const char *cond, const char *file, int line, const char *func)
{
    fprintf(stderr, "%s:%d: %s: invariant failed: %s\n", file, line, func, cond);
    fflush(stderr);
    abort();
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t util_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

uint64_t util_mono_ms(void)
{
    return clock_ns(CLOCK_MONOTONIC) / 1000000u;
}

uint64_t util_real_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

void util_sleep_ms(long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static const char hex_digits[] = "0123456789abcdef";

char *util_hex(const void *p, size_t n, char *out)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[b[i] >> 4];
        out[2 * i + 1] = hex_digits[b[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

void util_hex_print(FILE *f, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        fputc(hex_digits[b[i] >> 4], f);
        fputc(hex_digits[b[i] & 15], f);
    }
}

int util_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int util_unhex(const char *text, void *out, size_t n)
{
    if (strlen(text) != 2 * n)
        return -EINVAL;
    uint8_t *b = out;
    for (size_t i = 0; i < n; i++) {
        int hi = util_hex_digit(text[2 * i]), lo = util_hex_digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int util_hostport(const char *text, char *host, size_t host_bytes, uint16_t *port,
                  bool allow_zero)
{
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text || (size_t)(colon - text) >= host_bytes || colon[1] == '\0')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || errno || colon[1] == '-' || colon[1] == '+' || p > 65535 ||
        (p == 0 && !allow_zero))
        return -EINVAL;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    *port = (uint16_t)p;
    return 0;
}
