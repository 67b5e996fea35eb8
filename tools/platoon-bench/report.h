/*
 * The report of a run: a few human lines, or one JSON object (--json) for scripts such as
 * bench/run. Latencies are in milliseconds in the text and in microseconds in the JSON.
 */
#ifndef PBENCH_REPORT_H
#define PBENCH_REPORT_H

#include <stdio.h>

#include "engine.h"

void pbench_report_text(const pbench_engine_cfg *cfg, const pbench_result *res, FILE *out);
/* Returns 0 or PT_ENOMEM / PT_EIO. */
int pbench_report_json(const pbench_engine_cfg *cfg, const pbench_result *res, FILE *out);

#endif
