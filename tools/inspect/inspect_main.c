/* inspect_main.c -- evstore-inspect: commands, options and help. */
#include "inspect.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define INSPECT_LIMIT_DEFAULT 1000u
#define INSPECT_PAYLOAD_BYTES_DEFAULT 256u

static const char inspect_usage[] =
    "usage: evstore-inspect <command> [options] PATH\n"
    "\n"
    "Offline inspection of an evstore log. PATH is a data directory or one segment file\n"
    "(<20 digits>.seg). Nothing is written unless a command says so (index --rebuild,\n"
    "repair --apply).\n"
    "\n"
    "commands:\n"
    "  verify   check every batch, record, the checksum chain, positions, stream versions\n"
    "           and the index files\n"
    "  dump     print batches and events as text or JSON lines, with filters\n"
    "  stats    per-segment and total counts, largest streams, event types, time span\n"
    "  index    --check the index files against the segments, or --rebuild them\n"
    "  repair   cut a torn tail of the last segment (dry run unless --apply)\n"
    "\n"
    "exit codes: 0 clean, 1 damage found (repair: found and not changed), 2 usage or I/O\n"
    "error, or the directory is locked by a running evstored.\n"
    "`evstore-inspect <command> --help` describes each command.\n";

static const char help_verify[] =
    "usage: evstore-inspect verify [--no-index] [--verbose] PATH\n"
    "\n"
    "Reads every segment in order and checks: each segment header (magic, version, checksum,\n"
    "its name, its size) and that it continues the previous segment (first position and\n"
    "prev_checksum); each batch's header checksum, position and prev_checksum (the chain),\n"
    "body checksum, LZ4 body, and every event record (bounds, checksum, stream name); that\n"
    "stream versions go 0, 1, 2... without gaps across the whole log; that the bytes after\n"
    "the data of a segment are zeros; and each index file (.idx): whole (checksums, length),\n"
    "current, and every entry pointing at the event it claims (position, batch offset,\n"
    "record offset, stream, version, category), with no event missing.\n"
    "Each problem is one line: '<kind>: <file> offset <n>: <what>: expected ..., found ...',\n"
    "kind being damage, torn tail, index or note (notes do not count as problems).\n"
    "\n"
    "  --no-index   do not check the index files\n"
    "  --verbose    also print one line per segment\n";

static const char help_dump[] =
    "usage: evstore-inspect dump [options] PATH\n"
    "\n"
    "Prints batches and their events in log order, verifying each as it goes. A batch line\n"
    "precedes its events; damaged batches are always printed, with the events whose records\n"
    "still pass their checksums. Payloads (metadata, data) are shown as text when they are\n"
    "valid UTF-8 (JSON payloads thus appear as JSON text), else as hex; a payload of a known\n"
    "protobuf message type is also shown decoded, field by field (\"data_decoded\"): the\n"
    "store's own records (GroupSettings, GroupCheckpoint, GroupDeleted in $group- streams,\n"
    "GroupParked in $parked- streams) always; an application's events when a decoder\n"
    "plugin knows their type (--decoder, or $EVSTORE_INSPECT_DECODERS: PATH[:PATH...]).\n"
    "Problems go to stderr.\n"
    "\n"
    "  --json               one JSON object per line: {\"kind\":\"batch\"|\"event\",...}\n"
    "  --stream NAME        only events of this stream\n"
    "  --category NAME      only events of streams named NAME-<id>\n"
    "  --type TYPE          only events of this type\n"
    "  --from POS, --to POS only positions in [from, to]\n"
    "  --since T, --until T only events with since <= timestamp < until; T is nanoseconds\n"
    "                       since the epoch or YYYY-MM-DD[THH:MM[:SS[.frac]]][Z] (UTC)\n"
    "  --limit N            print at most N events (default 1000; 0: no limit)\n"
    "  --payload-bytes N    show at most N bytes of each payload (default 256)\n"
    "  --decoder PATH       load a decoder plugin: a shared object exporting\n"
    "                       evstore_payload_descriptor() (docs/inspect.md); may be repeated,\n"
    "                       e.g. --decoder liboms-decoder.so for the OMS's events\n";

static const char help_stats[] =
    "usage: evstore-inspect stats PATH\n"
    "\n"
    "Per segment and in total: batches, events, streams, raw and stored body bytes, the\n"
    "compression ratio (raw/stored), LZ4 batches and the time span of the events; then the\n"
    "10 largest streams, a histogram of event types (top 20) and the time span of the log.\n"
    "Only valid batches are counted; problems go to stderr (exit code 1).\n";

static const char help_index[] =
    "usage: evstore-inspect index (--check | --rebuild [--dry-run]) PATH\n"
    "\n"
    "  --check     check the index files against the segments (as verify does) and exit 1\n"
    "              on any problem\n"
    "  --rebuild   write a fresh index file for every sealed segment, and for the last one\n"
    "              when its data ends cleanly, with the engine's own scan and index writer.\n"
    "              Needs PATH to be a data directory; refuses while another process holds\n"
    "              its LOCK; stops at the first segment whose data is damaged.\n"
    "  --dry-run   with --rebuild: say what would be written, write nothing\n";

static const char help_repair[] =
    "usage: evstore-inspect repair [--apply] PATH\n"
    "\n"
    "Cuts a torn tail of the last segment (an unfinished last write) back to the last whole\n"
    "batch: the bytes after it are overwritten with zeros, and a file cut short gets its\n"
    "length back, as the engine's recovery does. Without --apply it only says exactly what\n"
    "it would do (exit 1 if there is something to do). It never zeroes a valid batch, and\n"
    "refuses (changing nothing) when: another process holds the directory's LOCK; any\n"
    "damage other than the torn tail is found (damage inside the log is reported, not\n"
    "repaired); or the last segment's index file covers the damaged bytes.\n"
    "\n"
    "  --apply     make the change (and fsync it)\n";

enum {
    OPT_JSON = 256, OPT_STREAM, OPT_CATEGORY, OPT_TYPE, OPT_FROM, OPT_TO, OPT_SINCE, OPT_UNTIL,
    OPT_LIMIT, OPT_PAYLOAD, OPT_APPLY, OPT_CHECK, OPT_REBUILD, OPT_DRY_RUN, OPT_NO_INDEX,
    OPT_VERBOSE, OPT_DECODER, OPT_HELP,
};

static const struct option inspect_options[] = {
    {"json", no_argument, NULL, OPT_JSON},
    {"stream", required_argument, NULL, OPT_STREAM},
    {"category", required_argument, NULL, OPT_CATEGORY},
    {"type", required_argument, NULL, OPT_TYPE},
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"since", required_argument, NULL, OPT_SINCE},
    {"until", required_argument, NULL, OPT_UNTIL},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"payload-bytes", required_argument, NULL, OPT_PAYLOAD},
    {"apply", no_argument, NULL, OPT_APPLY},
    {"check", no_argument, NULL, OPT_CHECK},
    {"rebuild", no_argument, NULL, OPT_REBUILD},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"no-index", no_argument, NULL, OPT_NO_INDEX},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"decoder", required_argument, NULL, OPT_DECODER},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

typedef struct {
    const char *name;
    const char *help;
    const char *allowed; /* options it takes, as " name name " */
} inspect_command_t;

static const inspect_command_t inspect_commands[] = {
    {"verify", help_verify, " no-index verbose "},
    {"dump", help_dump,
     " json stream category type from to since until limit payload-bytes decoder "},
    {"stats", help_stats, " "},
    {"index", help_index, " check rebuild dry-run verbose "},
    {"repair", help_repair, " apply "},
};

/* True when command c takes the long option named name. */
static bool inspect_allowed(const inspect_command_t *c, const char *name)
{
    char key[40];
    snprintf(key, sizeof key, " %s ", name);
    return strcmp(name, "help") == 0 || strstr(c->allowed, key) != NULL;
}

/* Applies one option; 0, or -1 on a bad value. */
static int inspect_option(int opt, const char *arg, inspect_opts_t *o, int *mode)
{
    switch (opt) {
    case OPT_JSON: o->json = true; return 0;
    case OPT_STREAM: o->stream = arg; return 0;
    case OPT_CATEGORY: o->category = arg; return 0;
    case OPT_TYPE: o->type = arg; return 0;
    case OPT_FROM: return inspect_u64_parse(arg, &o->from);
    case OPT_TO: return inspect_u64_parse(arg, &o->to);
    case OPT_SINCE: return inspect_time_parse(arg, &o->since);
    case OPT_UNTIL: return inspect_time_parse(arg, &o->until);
    case OPT_LIMIT: return inspect_u64_parse(arg, &o->limit);
    case OPT_PAYLOAD: return inspect_u64_parse(arg, &o->payload_bytes);
    case OPT_APPLY: o->apply = true; return 0;
    case OPT_CHECK: *mode |= 1; return 0;
    case OPT_REBUILD: *mode |= 2; return 0;
    case OPT_DRY_RUN: o->dry_run = true; return 0;
    case OPT_NO_INDEX: o->no_index = true; return 0;
    case OPT_VERBOSE: o->verbose = true; return 0;
    case OPT_DECODER:
        if (o->decoder_count == INSPECT_DECODERS_LIMIT)
            return -1;
        o->decoders[o->decoder_count++] = arg;
        return 0;
    }
    return -1;
}

static int inspect_usage_error(const inspect_command_t *c, const char *what, const char *arg)
{
    fprintf(stderr, "evstore-inspect %s: %s%s%s\n\n%s", c->name, what, arg ? " " : "",
            arg ? arg : "", c->help);
    return INSPECT_EXIT_ERROR;
}

/* Parses the command's options and PATH, then runs it. */
static int inspect_run(const inspect_command_t *c, int argc, char **argv)
{
    inspect_opts_t o = {.to = UINT64_MAX, .since = INT64_MIN, .until = INT64_MAX,
                        .limit = INSPECT_LIMIT_DEFAULT,
                        .payload_bytes = INSPECT_PAYLOAD_BYTES_DEFAULT};
    int mode = 0, opt, index;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", inspect_options, &index)) != -1) {
        if (opt == '?')
            return inspect_usage_error(c, "unknown option or missing value:", argv[optind - 1]);
        const char *name = inspect_options[index].name;
        if (opt == OPT_HELP) {
            fputs(c->help, stdout);
            return INSPECT_EXIT_CLEAN;
        }
        if (!inspect_allowed(c, name))
            return inspect_usage_error(c, "option not taken by this command:", name);
        if (inspect_option(opt, optarg, &o, &mode) != 0)
            return inspect_usage_error(c, "bad value for", name);
    }
    if (optind + 1 != argc)
        return inspect_usage_error(c, optind == argc ? "PATH is missing" : "one PATH only", NULL);
    const char *path = argv[optind];
    if (strcmp(c->name, "verify") == 0)
        return inspect_verify(path, &o);
    if (strcmp(c->name, "dump") == 0)
        return inspect_dump(path, &o);
    if (strcmp(c->name, "stats") == 0)
        return inspect_stats(path, &o);
    if (strcmp(c->name, "repair") == 0)
        return inspect_repair(path, &o);
    if (mode == 1)
        return inspect_index_check_cmd(path, &o);
    if (mode == 2)
        return inspect_index_rebuild_cmd(path, &o);
    return inspect_usage_error(c, "give exactly one of --check and --rebuild", NULL);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(inspect_usage, stderr);
        return INSPECT_EXIT_ERROR;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(inspect_usage, stdout);
        return INSPECT_EXIT_CLEAN;
    }
    for (size_t i = 0; i < sizeof inspect_commands / sizeof inspect_commands[0]; i++)
        if (strcmp(argv[1], inspect_commands[i].name) == 0)
            return inspect_run(&inspect_commands[i], argc - 1, argv + 1);
    fprintf(stderr, "evstore-inspect: unknown command '%s'\n\n%s", argv[1], inspect_usage);
    return INSPECT_EXIT_ERROR;
}
