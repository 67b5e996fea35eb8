#include "common/hostport.h"

#include <stdio.h>
#include <string.h>

bool pt__split_host_port(const char *addr, char *host, size_t host_cap, char *port, size_t port_cap)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) >= port_cap) {
        return false;
    }
    size_t hlen = (size_t)(colon - addr);
    const char *h = addr;
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen >= host_cap) {
        return false;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    snprintf(port, port_cap, "%s", colon + 1);
    return true;
}
