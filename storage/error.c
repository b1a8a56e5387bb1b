/* error.c -- names of error codes and durability modes. */
#include "log_int.h"

#include <string.h>

const char *log_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case LOG_EWRONG_VERSION: return "wrong expected version";
    case LOG_EIDEMPOTENCY: return "event ids partly match events already written";
    case LOG_EBAD_REQUEST: return "bad request";
    case LOG_ETOO_LARGE: return "event or batch too large";
    case LOG_EBUSY: return "busy: too many bytes waiting to be written";
    case LOG_ECORRUPT: return "checksum failure: data is corrupt";
    case LOG_ELOCKED: return "log directory is locked by another process";
    case LOG_EFORMAT: return "not an evstore file, or an unsupported format version";
    case LOG_ENOT_FOUND: return "stream not found";
    case LOG_ECLOSING: return "log is closing";
    default: break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}

const char *log_durability_name(log_durability_t mode)
{
    switch (mode) {
    case LOG_DURABILITY_ALWAYS: return "always";
    case LOG_DURABILITY_INTERVAL: return "interval";
    case LOG_DURABILITY_NONE: return "none";
    }
    return "unknown";
}

int log_durability_parse(const char *text, log_durability_t *mode, uint32_t *interval_ms)
{
    if (!text)
        return LOG_EBAD_REQUEST;
    if (strcmp(text, "always") == 0) {
        *mode = LOG_DURABILITY_ALWAYS;
        return 0;
    }
    if (strcmp(text, "none") == 0) {
        *mode = LOG_DURABILITY_NONE;
        return 0;
    }
    if (strncmp(text, "interval", 8) != 0)
        return LOG_EBAD_REQUEST;
    if (text[8] == '\0') {
        *mode = LOG_DURABILITY_INTERVAL;
        if (interval_ms)
            *interval_ms = LOG_INTERVAL_MS_DEFAULT;
        return 0;
    }
    if (text[8] != ':' || text[9] == '\0')
        return LOG_EBAD_REQUEST;
    uint64_t ms = 0;
    for (const char *p = text + 9; *p; p++) {
        if (*p < '0' || *p > '9' || ms > 3600000)
            return LOG_EBAD_REQUEST;
        ms = ms * 10 + (uint64_t)(*p - '0');
    }
    if (ms == 0 || ms > 3600000)
        return LOG_EBAD_REQUEST;
    *mode = LOG_DURABILITY_INTERVAL;
    if (interval_ms)
        *interval_ms = (uint32_t)ms;
    return 0;
}
