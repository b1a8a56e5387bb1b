/* main.c -- evstored's entry point. */
#include "server.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    server_config_t cfg;
    server_config_default(&cfg);
    int rc = server_config_parse(&cfg, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    return server_run(&cfg) == 0 ? 0 : 1;
}
