/* platoond's command line. */
#ifndef PLATOOND_FLAGS_H
#define PLATOOND_FLAGS_H

#include "platoon/log.h"
#include "platoon/node.h"
#include "platoon/service.h"
#include "platoon/vehicle.h"

typedef struct platoond_flags {
    pnode_options node;
    pveh_options sm;
    pveh_watch_options watch; /* --watch-* */
    enum pt_log_level log_level;
    char data_dir[4096];
    const char *http; /* --http HOST:PORT, NULL: no monitoring endpoint */
    bool help;
    bool version;
} platoond_flags;

/* Parses argv into @f. On error returns -1 with one line in @err naming the flag. */
int platoond_parse(int argc, char **argv, platoond_flags *f, char *err, size_t err_cap);

/* The usage text. */
extern const char platoond_usage[];

#endif
