#include "sim/history.h"

#include <stdlib.h>

#include "platoon/error.h"

void psim_history_init(psim_history *h)
{
    h->ops = NULL;
    h->n = h->cap = 0;
}

void psim_history_free(psim_history *h)
{
    free(h->ops);
    psim_history_init(h);
}

int psim_history_add(psim_history *h, const psim_op *op)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        psim_op *ops = realloc(h->ops, cap * sizeof(*ops));
        if (ops == NULL) {
            return PT_ENOMEM;
        }
        h->ops = ops;
        h->cap = cap;
    }
    h->ops[h->n++] = *op;
    return 0;
}
