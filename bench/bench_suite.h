/* bench_suite.h -- the whole comparison: the machine's limits, then every
 * system through the same matrix of scenarios, then the results as JSON, a
 * Markdown table and a gnuplot chart. */
#ifndef EVSTORE_BENCH_SUITE_H
#define EVSTORE_BENCH_SUITE_H

#include <stdbool.h>

typedef struct {
    bool full;              /* the full matrix (else quick: under 2 minutes) */
    int repeat;             /* runs per point; the median by events/s is kept */
    double seconds;         /* per append run */
    const char *out_dir;    /* bench/results */
    const char *tmp_root;   /* data directories of the servers and the limit files */
    const char *systems;    /* comma-separated driver names, NULL: all compiled in */
    const char *evstored;   /* the evstored binary */
} suite_opts_t;

/* Runs the suite; 0 when it ran (systems that could not start are skipped
 * and reported), non-zero when nothing could be measured. */
int bench_suite_run(const suite_opts_t *o);

#endif
