/* kv-server's command line: platoond's flags, parsed into the runtime's options. */
#ifndef KV_FLAGS_H
#define KV_FLAGS_H

#include <stdbool.h>

#include <platoon/log.h>
#include <platoon/node.h>

typedef struct kv_flags {
    pnode_options node; /* strings point into argv */
    enum pt_log_level log_level;
    bool help;
} kv_flags;

/* Parses argv into @f. On error returns -1 with one line in @err naming the flag. */
int kv_flags_parse(int argc, char **argv, kv_flags *f, char *err, size_t err_cap);

extern const char kv_server_usage[];

#endif
