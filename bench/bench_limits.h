/* bench_limits.h -- the limits of the machine, measured in the same run as
 * the systems, so every result can be read against them. */
#ifndef EVSTORE_BENCH_LIMITS_H
#define EVSTORE_BENCH_LIMITS_H

#define LIMITS_SYNC_FILE_BYTES (64u * 1024 * 1024)   /* the fdatasync latency file */
#define LIMITS_BW_FILE_BYTES (256u * 1024 * 1024)    /* the synced bandwidth file */
#define LIMITS_SYNC_WRITE_BYTES 4096u
#define LIMITS_BW_CHUNK_BYTES (1024u * 1024)
#define LIMITS_TCP_WRITE_BYTES (256u * 1024)

typedef struct {
    char dir[512];              /* where the disk figures were measured */
    double fdatasync_p50_us;    /* write 4 KiB + fdatasync, into a pre-written file */
    double fdatasync_p99_us;
    double fdatasyncs_per_s;    /* achieved by that loop */
    double synced_write_mb_s;   /* write 1 MiB + fdatasync, into a pre-written file */
    double loopback_gb_s;       /* one 127.0.0.1 TCP connection */
} bench_limits_t;

/* Measures the three limits, each for about seconds, with files in dir
 * (removed afterwards). 0 or a negative errno. */
int bench_limits_measure(const char *dir, double seconds, bench_limits_t *out);

#endif
