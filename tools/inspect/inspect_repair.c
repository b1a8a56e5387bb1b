/* inspect_repair.c -- `repair`: cuts a torn tail of the last segment back
 * to the last whole batch with the engine's own tail cut
 * (log_offline_cut_tail: zeros over the torn bytes, and a file cut short
 * restored to its length). A dry run unless --apply.
 *
 * It refuses when a process holds the directory lock, when any damage other
 * than that torn tail is found (that is reported, never "repaired"), and
 * when the last segment's index file covers the torn bytes (they had been
 * durable: corruption, not an unfinished write). It never zeroes a batch
 * that passes its checks: the torn range starts where the valid data ends
 * and no well-formed batch header follows it. */
#include "inspect.h"

#include <errno.h>
#include <unistd.h>

/* True when the last segment's index covers bytes past its valid data. */
static bool inspect_repair_indexed(const inspect_log_t *log, const inspect_seg_t *is)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%020llu.idx", log->dir,
             (unsigned long long)is->hdr.first_position);
    walk_index_t v;
    if (walk_index_open(path, &v) != 0)
        return false;
    bool covers = v.problem == WALK_INDEX_OK && v.h.end_offset > is->data_end;
    walk_index_close(&v);
    return covers;
}

/* Decides and prints what to do; returns the exit code. */
static int inspect_repair_plan(const inspect_log_t *log, const inspect_report_t *r, bool apply)
{
    const inspect_seg_t *is = &log->segs[log->count - 1];
    if (r->count[INSPECT_DAMAGE] > 0) {
        printf("refusing: %llu problem(s) other than a torn tail (above). Damage inside the log "
               "is reported, not repaired; nothing was changed.\n",
               (unsigned long long)r->count[INSPECT_DAMAGE]);
        return INSPECT_EXIT_DAMAGED;
    }
    if (!is->torn) {
        printf("nothing to repair: the last segment %s ends cleanly at offset %llu (position "
               "%llu)%s\n", is->file, (unsigned long long)is->data_end,
               (unsigned long long)is->end_position,
               r->count[INSPECT_INDEX] ? "; index problems above: `index --rebuild` fixes them" : "");
        return INSPECT_EXIT_CLEAN;
    }
    if (inspect_repair_indexed(log, is)) {
        printf("refusing: the index file of %s covers bytes past offset %llu, so the damaged "
               "batches had been durable (corruption, not a torn write); nothing was changed.\n",
               is->file, (unsigned long long)is->data_end);
        return INSPECT_EXIT_DAMAGED;
    }
    uint64_t to = is->torn_end < is->file_bytes ? is->torn_end : is->file_bytes;
    printf("%s %s: zero bytes [%llu, %llu) (%llu bytes) after the last whole batch; the log "
           "keeps positions below %llu", apply ? "repairing" : "would repair (dry run; --apply "
           "to do it)", is->file, (unsigned long long)is->data_end, (unsigned long long)to,
           (unsigned long long)(to > is->data_end ? to - is->data_end : 0),
           (unsigned long long)is->end_position);
    if (is->short_file)
        printf("; restore the file length from %llu to %llu bytes",
               (unsigned long long)is->file_bytes, (unsigned long long)is->hdr.segment_bytes);
    printf("\n");
    if (!apply)
        return INSPECT_EXIT_DAMAGED;
    /* storage's own tail cut: zeros, the file's length back, fsync */
    int rc = log_offline_cut_tail(log->set, log->count - 1, is->data_end, to);
    if (rc) {
        fprintf(stderr, "evstore-inspect: %s: %s\n", is->file, log_strerror(rc));
        return INSPECT_EXIT_ERROR;
    }
    printf("done: %s now ends at offset %llu (position %llu)\n", is->file,
           (unsigned long long)is->data_end, (unsigned long long)is->end_position);
    return INSPECT_EXIT_CLEAN;
}

int inspect_repair(const char *path, const inspect_opts_t *o)
{
    inspect_report_t r = {.out = stdout, .quiet_notes = true};
    int lock = log_offline_lock(path, o->apply);
    if (lock < 0 && lock != -ENOENT) {
        fprintf(stderr, "evstore-inspect: %s: %s%s\n", path, log_strerror(lock),
                lock == LOG_ELOCKED ? " (is evstored running?); nothing was changed" : "");
        return INSPECT_EXIT_ERROR;
    }
    inspect_log_t log;
    int rc = inspect_log_open(path, &log, &r);
    int code = INSPECT_EXIT_ERROR;
    if (rc) {
        inspect_io_error(&r, path, rc);
    } else if (log.single || log.count == 0) {
        fprintf(stderr, "evstore-inspect: %s: repair needs a data directory with segments\n", path);
    } else {
        inspect_scan_t sc = {.check_index = false};
        if (inspect_scan_run(&sc, &log, &r) == 0 && !r.io_error)
            code = inspect_repair_plan(&log, &r, o->apply);
        inspect_scan_free(&sc);
    }
    if (rc == 0)
        inspect_log_close(&log);
    if (lock >= 0)
        close(lock);
    return code;
}
