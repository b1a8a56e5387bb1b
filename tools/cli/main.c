/* main.c -- evstore, the command-line client of the evstore event store:
 * global options, then one command. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_head[] =
    "usage: evstore [--host H] [--port P] [--timeout MS] COMMAND [ARGS]\n"
    "\n"
    "Talks to an evstored server.\n"
    "\n"
    "commands:\n";

static const char usage_tail[] =
    "\n"
    "options:\n"
    "  --host H        server host (default $EVSTORE_HOST or 127.0.0.1)\n"
    "  --port P        server port (default $EVSTORE_PORT or 7411)\n"
    "  --timeout MS    connect and request timeout in ms (default 5000 / 30000)\n"
    "  --help          this text; 'evstore COMMAND --help' for a command\n"
    "  --version       the client's version\n"
    "\n"
    "exit status: 0 ok, 1 the server refused the request, 2 bad usage or input,\n"
    "3 no connection (refused, closed, timed out).\n";

typedef struct {
    const char *name;
    const char *args; /* as the usage line shows them */
    const char *summary;
    int (*run)(const cli_global_t *g, int argc, char **argv);
} command_t;

/* Every command, in the order --help lists them: the list printed is this
 * table, so a command cannot exist without being listed. */
static const command_t commands[] = {
    { "append", "STREAM", "append events (from arguments, or JSON/text lines on stdin)",
      cmd_append },
    { "read", "STREAM", "read a stream, a category ($ce-CAT) or the whole log ($all)", cmd_read },
    { "tail", "STREAM", "print a stream, category or $all, then every new event as it comes",
      cmd_tail },
    { "streams", "", "list streams and their versions", cmd_streams },
    { "group", "COMMAND", "manage and consume persistent subscription groups", cmd_group },
    { "stats", "", "show the server's counters", cmd_stats },
    { "ping", "", "check that the server answers", cmd_ping },
};

static void usage_print(void)
{
    fputs(usage_head, stdout);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char head[32];
        snprintf(head, sizeof head, "%s %s", commands[i].name, commands[i].args);
        printf("  %-16s%s\n", head, commands[i].summary);
    }
    fputs(usage_tail, stdout);
}

/* Defaults from the environment. Returns 0 or a usage error. */
static int global_from_env(cli_global_t *g)
{
    g->host = getenv("EVSTORE_HOST") && getenv("EVSTORE_HOST")[0] ? getenv("EVSTORE_HOST")
                                                                    : "127.0.0.1";
    g->port = EVS_PORT_DEFAULT;
    const char *port = getenv("EVSTORE_PORT");
    int64_t v;
    if (port && port[0]) {
        if (cli_parse_i64(port, 1, 65535, &v))
            return cli_usage_error(NULL, "EVSTORE_PORT '%s' is not a port", port);
        g->port = (uint16_t)v;
    }
    return 0;
}

/* Parses the options before the command; *next gets the command's index. */
static int global_parse(int argc, char **argv, cli_global_t *g, int *next)
{
    static const struct option opts[] = {
        { "host", required_argument, NULL, 'H' }, { "port", required_argument, NULL, 'p' },
        { "timeout", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },     { NULL, 0, NULL, 0 },
    };
    int c, err = global_from_env(g);
    int64_t v;
    while (!err && (c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (c == 'H')
            g->host = optarg;
        else if (c == 'p' && !cli_parse_i64(optarg, 1, 65535, &v))
            g->port = (uint16_t)v;
        else if (c == 't' && !cli_parse_i64(optarg, 1, 3600000, &v))
            g->timeout_ms = (int)v;
        else if (c == 'h')
            return usage_print(), -1;
        else if (c == 'V')
            return printf("evstore %s\n", evs_version()), -1;
        else
            err = cli_usage_error(NULL, "bad option or value: %s", argv[optind - 1]);
    }
    *next = optind;
    return err;
}

int main(int argc, char **argv)
{
    cli_global_t g = { 0 };
    int next = 0;
    int err = global_parse(argc, argv, &g, &next);
    if (err)
        return err < 0 ? CLI_OK : err;
    if (next >= argc)
        return cli_usage_error(NULL, "no command");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[next], commands[i].name) == 0) {
            optind = 0; /* GNU getopt: start over for the command's options */
            return commands[i].run(&g, argc - next, argv + next);
        }
    }
    return cli_usage_error(NULL, "unknown command '%s'", argv[next]);
}
