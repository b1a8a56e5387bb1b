/* inspect_verify.c -- `verify` and `index --check`: the whole log scanned
 * with every check, each problem printed, and an exit code. */
#include "inspect.h"

#include <stdlib.h>

/* Prints one line per segment (--verbose). */
static void inspect_verify_segments(const inspect_log_t *log)
{
    for (uint32_t i = 0; i < log->count; i++) {
        const inspect_seg_t *is = &log->segs[i];
        printf("%s: %s, data up to offset %llu (position %llu)%s%s\n", is->file,
               is->hdr_rc ? "unreadable header" : "header ok", (unsigned long long)is->data_end,
               (unsigned long long)is->end_position, is->damaged ? ", damaged" : "",
               is->torn ? ", torn tail" : "");
    }
}

/* Prints the summary line and returns the exit code. */
static int inspect_verify_summary(const char *what, const inspect_log_t *log,
                                  const inspect_scan_t *sc, const inspect_report_t *r)
{
    printf("%s: %u segment%s, %llu batches, %llu events, %llu streams; %llu damaged, %llu torn "
           "tail, %llu index problem%s, %llu note%s: %s\n",
           what, log->count, log->count == 1 ? "" : "s", (unsigned long long)sc->batches,
           (unsigned long long)sc->events,
           (unsigned long long)sc->streams.count[INSPECT_KIND_STREAM],
           (unsigned long long)r->count[INSPECT_DAMAGE], (unsigned long long)r->count[INSPECT_TORN],
           (unsigned long long)r->count[INSPECT_INDEX], r->count[INSPECT_INDEX] == 1 ? "" : "s",
           (unsigned long long)r->count[INSPECT_NOTE], r->count[INSPECT_NOTE] == 1 ? "" : "s",
           r->io_error ? "I/O ERROR" : inspect_problems(r) ? "DAMAGED" : "OK");
    if (r->io_error)
        return INSPECT_EXIT_ERROR;
    return inspect_problems(r) ? INSPECT_EXIT_DAMAGED : INSPECT_EXIT_CLEAN;
}

/* Runs the scan over path; index: check the index files too. */
static int inspect_verify_run(const char *what, const char *path, const inspect_opts_t *o,
                              bool index)
{
    inspect_report_t r = {.out = stdout};
    inspect_log_t log;
    int rc = inspect_log_open(path, &log, &r);
    if (rc) {
        inspect_io_error(&r, path, rc);
        return INSPECT_EXIT_ERROR;
    }
    if (log.count == 0) {
        fprintf(stderr, "evstore-inspect: %s: no segment files (not an evstore data directory)\n",
                path);
        inspect_log_close(&log);
        return INSPECT_EXIT_ERROR;
    }
    inspect_scan_t sc = {.check_index = index};
    inspect_scan_run(&sc, &log, &r);
    if (o->verbose)
        inspect_verify_segments(&log);
    int code = inspect_verify_summary(what, &log, &sc, &r);
    inspect_scan_free(&sc);
    inspect_log_close(&log);
    return code;
}

int inspect_verify(const char *path, const inspect_opts_t *o)
{
    return inspect_verify_run("verify", path, o, !o->no_index);
}

int inspect_index_check_cmd(const char *path, const inspect_opts_t *o)
{
    return inspect_verify_run("index --check", path, o, true);
}
