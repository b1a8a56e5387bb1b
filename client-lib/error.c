/* error.c -- error codes, their names, and the per-thread error details. */
#include "client_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char errmsg_text[EVS_MESSAGE_BYTES_MAX];

void evsi_errmsg_set(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg_text, sizeof errmsg_text, fmt, ap);
    va_end(ap);
}

void evsi_errmsg_clear(void)
{
    errmsg_text[0] = '\0';
}

const char *evs_errmsg(void)
{
    return errmsg_text;
}

const char *evs_version(void)
{
    return EVS_VERSION_STRING;
}

bool evs_is_server_error(int err)
{
    return err >= EVS_ESERVER_FIRST && err <= EVS_ESERVER_LAST;
}

bool evs_error_retryable(int err)
{
    switch (err) {
    case EVS_ECLOSED:
    case EVS_ETIMEDOUT:
    case EVS_EPROTOCOL:
    case EVS_ERESOLVE:
    case EVS_EBUSY:
    case EVS_ENOT_READY:
    case EVS_EIO:
    case -ECONNREFUSED:
    case -ECONNRESET:
    case -ECONNABORTED:
    case -EPIPE:
    case -ETIMEDOUT:
    case -EHOSTUNREACH:
    case -EHOSTDOWN:
    case -ENETUNREACH:
    case -ENETDOWN:
    case -ENETRESET:
    case -ENOTCONN:
    case -EADDRNOTAVAIL:
    case -EAGAIN:
    case -EINTR:
        return true;
    default:
        return false;
    }
}

int evsi_error_from_wire(int code)
{
    if (code >= EVSTORE__V1__ERROR_CODE__WRONG_EXPECTED_VERSION &&
        code <= EVSTORE__V1__ERROR_CODE__GROUP_EXISTS)
        return EVS_EWRONG_VERSION - (code - EVSTORE__V1__ERROR_CODE__WRONG_EXPECTED_VERSION);
    return EVS_ESERVER;
}

int evsi_error_from_envelope(const envelope_t *env)
{
    const Evstore__V1__Error *e = env->error;
    int err = evsi_error_from_wire(e->code);
    if (e->message && e->message[0])
        evsi_errmsg_set("%s", e->message);
    else
        evsi_errmsg_set("server error %d", (int)e->code);
    return err;
}

static const char *const server_names[] = {
    "wrong expected version",
    "stream not found",
    "bad request",
    "frame too large (the server closed the connection)",
    "server busy, retry later",
    "server not ready",
    "protocol version not supported by the server",
    "event ids match an earlier append only in part",
    "event or append too large",
    "stored data is corrupt",
    "server I/O error, nothing written",
    "access denied",
    "internal server error",
    "subscription group not found",
    "subscription group already exists",
};

static const char *const client_names[] = {
    "connection closed",
    "timed out",
    "protocol error from the server",
    "host name not resolved",
    "blocking call from a completion callback",
    "too many requests in flight",
};

const char *evs_strerror(int err)
{
    if (err == 0)
        return "success";
    if (err <= EVS_EWRONG_VERSION && err >= EVS_EGROUP_EXISTS)
        return server_names[EVS_EWRONG_VERSION - err];
    if (err == EVS_ESERVER)
        return "unknown server error";
    if (err <= EVS_ECLOSED && err >= EVS_EINFLIGHT)
        return client_names[EVS_ECLOSED - err];
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}
