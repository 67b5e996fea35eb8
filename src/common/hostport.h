/*
 * "HOST:PORT" addresses, as every listening and advertised address of a node is written.
 */
#ifndef PLATOON_COMMON_HOSTPORT_H
#define PLATOON_COMMON_HOSTPORT_H

#include <stdbool.h>
#include <stddef.h>

/* Splits "HOST:PORT" or "[V6]:PORT" at its last colon into @host (without brackets; "" means
 * any address) and @port (the text after the colon, not checked: callers parse it). False when
 * there is no port or a part does not fit its buffer. */
bool pt__split_host_port(const char *addr, char *host, size_t host_cap, char *port,
                         size_t port_cap);

#endif
