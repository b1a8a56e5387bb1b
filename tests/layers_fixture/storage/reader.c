/* reader.c -- fixture: storage reaching up into the server. */
#include "log.h"
#include "server_int.h"
