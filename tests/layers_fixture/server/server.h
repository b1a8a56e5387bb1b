/* server.h -- fixture: the public header of server. */
