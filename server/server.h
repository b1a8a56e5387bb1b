/* server.h -- evstored: the event store on the network. The only place where
 * storage and protocol meet. main.c parses the configuration and calls
 * server_run(), which returns when the server has stopped. */
#ifndef EVSTORE_SERVER_H
#define EVSTORE_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"

#define SERVER_VERSION "0.1.0"

/* Defaults of the server's limits; each is a field of server_config_t. */
#define SERVER_LISTEN_DEFAULT "127.0.0.1:7411"
#define SERVER_METRICS_DEFAULT "127.0.0.1:7412"
#define SERVER_CONNECTIONS_MAX_DEFAULT 1024u
#define SERVER_OUTPUT_BYTES_MAX_DEFAULT (32u * 1024 * 1024)
#define SERVER_READ_EVENTS_MAX_DEFAULT 4096u
#define SERVER_LIST_STREAMS_MAX 1000u
#define SERVER_SHUTDOWN_MS_MAX 5000u /* time given to flushing answers at shutdown */
#define SERVER_SUBSCRIPTIONS_MAX_DEFAULT 10000u

typedef struct {
    log_config_t log;            /* data directory, durability, segment size, event limits */
    char listen[256];            /* HOST:PORT (port 0: any free port) */
    char metrics[256];           /* HOST:PORT of /metrics and /health; "" for none */
    uint32_t connections_max;    /* open client connections */
    uint32_t frame_bytes_max;    /* largest frame accepted and sent */
    uint32_t output_bytes_max;   /* answers queued for one connection before it is dropped */
    uint32_t read_events_max;    /* events in one read answer */
    uint32_t subscriptions_max;  /* catch-up subscriptions and group consumers, in all */
    bool quiet;                  /* no per-connection log lines */
} server_config_t;

/* Fills *cfg with the defaults (data directory "data"). */
void server_config_default(server_config_t *cfg);

/* Parses command-line flags over the environment (EVSTORE_DATA, EVSTORE_LISTEN,
 * EVSTORE_METRICS, EVSTORE_DURABILITY) over the defaults. Returns 0, 1 when
 * --help was printed, or -1 after printing an error to stderr. */
int server_config_parse(server_config_t *cfg, int argc, char **argv);

/* Runs the server until SIGTERM or SIGINT: opens the log, listens, prints
 * "evstored ready listen=ADDR metrics=ADDR" on stdout, serves, then stops
 * accepting, finishes in-flight appends, syncs and closes. Returns 0 on a
 * clean stop, or a negative error after printing why to stderr. */
int server_run(const server_config_t *cfg);

#endif
