/* main.c -- oms-projections: keeps the SQLite read model of the OMS
 * (orders, stock, customers) up to date from the event store.
 *
 *   oms-projections [--db PATH] [--batch-max N]   follow the log
 *   oms-projections --rebuild                      drop the tables, replay
 *                                                  from position 0, follow
 *   oms-projections --digest [--db PATH]           print the rows' digest
 *
 * Exit status: 0 after a clean stop (SIGINT/SIGTERM) or a digest, 1 on a
 * fatal error, 2 on bad arguments. */
#include <inttypes.h>
#include <stdio.h>

#include "proj.h"

#define STRINGIFY(x) #x
#define DEFAULT_TEXT(x) STRINGIFY(x)

int main(int argc, char **argv)
{
    const char *db_path = OMS_PROJ_DB_DEFAULT;
    const char *rebuild = NULL;
    const char *digest = NULL;
    const char *batch_max_text = DEFAULT_TEXT(OMS_PROJ_BATCH_MAX_DEFAULT);
    const oms_opt_t opts[] = {
        {"db", "OMS_READMODEL", "the SQLite read model (its directory is created)", &db_path,
         false},
        {"rebuild", NULL, "drop the tables and replay the log from position 0, then follow",
         &rebuild, true},
        {"digest", NULL, "print \"digest <16 hex>\" of the read model's rows and exit", &digest,
         true},
        {"batch-max", "OMS_PROJECTIONS_BATCH_MAX", "events per transaction", &batch_max_text,
         false},
    };
    oms_config_t cfg;
    uint32_t batch_max = 0;
    if (oms_config_parse(&cfg, "projections", OMS_METRICS_PORT_PROJECTIONS, argc, argv, opts,
                         sizeof opts / sizeof opts[0]) != 0 ||
        oms_parse_u32("batch-max", batch_max_text, 1, OMS_PROJ_BATCH_MAX_LIMIT, &batch_max) != 0)
        return 2;
    if (digest && rebuild) {
        fprintf(stderr, "oms-projections: --digest and --rebuild exclude each other\n");
        return 2;
    }
    if (digest) {
        uint64_t d = 0;
        if (oms_proj_digest(db_path, &d) != 0)
            return 1;
        printf("digest %016" PRIx64 "\n", d);
        return 0;
    }
    oms_proj_run_t run = {
        .cfg = &cfg,
        .db_path = db_path,
        .rebuild = rebuild != NULL,
        .batch_max = batch_max,
        .stop = oms_stop_flag_install(),
    };
    return oms_proj_run(&run);
}
