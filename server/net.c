/* net.c -- addresses and the listening socket. */
#include "server_int.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NET_BACKLOG 1024

int net_parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[128];
    uint16_t port;
    if (util_hostport(text, host, sizeof host, &port, true) != 0)
        return -EINVAL;
    size_t hlen = strlen(host);
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') {
        host[hlen - 1] = '\0';
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
            return -EINVAL;
        *len = sizeof *a;
        return 0;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
        return -EINVAL;
    *len = sizeof *a;
    return 0;
}

/* Formats a socket address as HOST:PORT. */
static void addr_format(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        snprintf(buf, cap, "[%s]:%u", host, port);
        return;
    }
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
    snprintf(buf, cap, "%s:%u", host, port);
}

int net_listen(const char *text, char *bound, size_t bound_cap)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (net_parse_addr(text, &ss, &len) != 0)
        return -EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, NET_BACKLOG) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    addr_format(&ss, bound, bound_cap);
    return fd;
}
