/* cli_util.c -- connecting, error reporting and number parsing for the
 * evstore commands. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_fail(const char *what, int err)
{
    const char *detail = evs_errmsg();
    if (detail[0] && strcmp(detail, evs_strerror(err)) != 0)
        fprintf(stderr, "evstore %s: %s (%s)\n", what, evs_strerror(err), detail);
    else
        fprintf(stderr, "evstore %s: %s\n", what, evs_strerror(err));
    if (evs_is_server_error(err))
        return CLI_ESERVER;
    if (err == -EINVAL)
        return CLI_EUSAGE;
    return CLI_ECONNECT;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("evstore: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "\ntry 'evstore %s --help'\n", cmd);
    else
        fputs("\ntry 'evstore --help'\n", stderr);
    return CLI_EUSAGE;
}

volatile int cli_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    cli_stop = 1;
}

void cli_signals_catch(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void cli_options(const cli_global_t *g, evs_options_t *o)
{
    evs_options_default(o);
    o->host = g->host;
    o->port = g->port;
    o->client_name = "evstore-cli";
    if (g->timeout_ms > 0) {
        o->connect_timeout_ms = g->timeout_ms;
        o->io_timeout_ms = g->timeout_ms;
    }
}

evs_conn_t *cli_connect(const cli_global_t *g, int *code)
{
    evs_options_t o;
    cli_options(g, &o);
    evs_conn_t *conn = NULL;
    int err = evs_connect(&o, &conn);
    if (err) {
        *code = cli_fail("connect", err);
        if (*code == CLI_EUSAGE || *code == CLI_ESERVER)
            *code = CLI_ECONNECT; /* a refused handshake is still "no connection" */
        return NULL;
    }
    return conn;
}

int cli_parse_i64(const char *text, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

bool cli_wait_ms(int64_t silence_ms, int64_t last_ms, int poll_ms, int *wait_ms)
{
    *wait_ms = poll_ms;
    if (silence_ms < 0)
        return true;
    int64_t rest = silence_ms - ((int64_t)util_mono_ms() - last_ms);
    if (rest <= 0)
        return false;
    if (rest < poll_ms)
        *wait_ms = (int)rest;
    return true;
}
