#include "sim/eventq.h"

#include <stdlib.h>

#include "platoon/error.h"

void psim_eventq_init(psim_eventq *q)
{
    q->heap = NULL;
    q->n = q->cap = 0;
    q->next_seq = 0;
}

void psim_eventq_free(psim_eventq *q, void (*free_payload)(int type, void *payload))
{
    for (size_t i = 0; i < q->n; i++) {
        if (free_payload != NULL && q->heap[i].payload != NULL) {
            free_payload(q->heap[i].type, q->heap[i].payload);
        }
    }
    free(q->heap);
    psim_eventq_init(q);
}

static int before(const psim_event *a, const psim_event *b)
{
    if (a->time != b->time) {
        return a->time < b->time;
    }
    return a->seq < b->seq;
}

int psim_eventq_push(psim_eventq *q, psim_event ev)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 256;
        psim_event *h = realloc(q->heap, cap * sizeof(*h));
        if (h == NULL) {
            return PT_ENOMEM;
        }
        q->heap = h;
        q->cap = cap;
    }
    ev.seq = q->next_seq++;
    size_t i = q->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&ev, &q->heap[p])) {
            break;
        }
        q->heap[i] = q->heap[p];
        i = p;
    }
    q->heap[i] = ev;
    return 0;
}

int psim_eventq_pop(psim_eventq *q, psim_event *out)
{
    if (q->n == 0) {
        return PT_ENOTFOUND;
    }
    *out = q->heap[0];
    psim_event last = q->heap[--q->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const psim_event *best = &last;
        if (l < q->n && before(&q->heap[l], best)) {
            m = l;
            best = &q->heap[l];
        }
        if (r < q->n && before(&q->heap[r], best)) {
            m = r;
        }
        if (m == i) {
            break;
        }
        q->heap[i] = q->heap[m];
        i = m;
    }
    if (q->n > 0) {
        q->heap[i] = last;
    }
    return 0;
}
