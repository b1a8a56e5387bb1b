/* server_int.h -- fixture: an internal header of server. */
