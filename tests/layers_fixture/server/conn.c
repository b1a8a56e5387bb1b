/* conn.c -- fixture: the server through storage's public header only. */
#include "log.h"
#include "server_int.h"
