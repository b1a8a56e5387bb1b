/* cli.h -- the evstore command-line client: shared pieces of the commands.
 *
 * Exit codes: 0 success, 1 the server refused a request, 2 bad usage or bad
 * input, 3 no connection (connect failed, closed, timed out, protocol). */
#ifndef EVSTORE_CLI_H
#define EVSTORE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evstore.h"
#include "util.h"

enum {
    CLI_OK = 0,
    CLI_ESERVER = 1,
    CLI_EUSAGE = 2,
    CLI_ECONNECT = 3,
};

typedef struct {
    const char *host;
    uint16_t port;
    int timeout_ms;
} cli_global_t;

/* Connects as the global options say. On failure prints why and returns
 * NULL; *code gets the exit code. */
evs_conn_t *cli_connect(const cli_global_t *g, int *code);

/* Prints "evstore <what>: <error> (<details>)" to stderr and returns the
 * exit code for err. */
int cli_fail(const char *what, int err);

/* Prints "evstore: <message>" and "try 'evstore <cmd> --help'" to stderr;
 * returns CLI_EUSAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a decimal integer in [min, max]. Returns 0 or -1. */
int cli_parse_i64(const char *text, int64_t min, int64_t max, int64_t *out);

/* Prints one event on stdout: "POSITION STREAM@VERSION TYPE DATA", or a
 * JSON object (data and metadata as JSON when they parse, else strings, else
 * "<key>_hex"). retry_count >= 0 (group deliveries) is added as JSON
 * "retry_count", and in text as " (retry N)" when above 0. */
void cli_event_print(const evs_recorded_event_t *e, bool json, int64_t retry_count);

/* The global options as client options (host, port, timeouts). */
void cli_options(const cli_global_t *g, evs_options_t *o);

/* Set by SIGINT/SIGTERM once cli_signals_catch() ran: long-running commands
 * (tail, group consume) stop cleanly. */
extern volatile int cli_stop;
void cli_signals_catch(void);

/* The commands: argv[0] is the command's name. Each returns an exit code. */
int cmd_append(const cli_global_t *g, int argc, char **argv);
int cmd_read(const cli_global_t *g, int argc, char **argv);
int cmd_streams(const cli_global_t *g, int argc, char **argv);
int cmd_stats(const cli_global_t *g, int argc, char **argv);
int cmd_ping(const cli_global_t *g, int argc, char **argv);
int cmd_tail(const cli_global_t *g, int argc, char **argv);
int cmd_group(const cli_global_t *g, int argc, char **argv);


/* How long the next wait of a waiting loop may be: poll_ms, or less so that
 * silence_ms (-1: no limit) since last_ms is not exceeded. False once it is. */
bool cli_wait_ms(int64_t silence_ms, int64_t last_ms, int poll_ms, int *wait_ms);

#endif
