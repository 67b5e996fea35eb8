/*
 * The in-memory backend: the log is an array of owned entries, snapshots are byte buffers in
 * the same file format as on disk. Cheap to create and write (the simulator runs thousands of
 * clusters); no durability of its own: the simulator models crashes by holding writes back.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"

typedef struct blob {
    uint64_t index, term;
    uint8_t *data;
    size_t len, cap;
} blob;

typedef struct mem {
    praft_entry *ents; /* ents[start .. start + n) hold indexes first .. first + n - 1 */
    size_t start, n, cap;
    uint64_t first;
    blob blobs[PSTORE_MAX_SNAPS + 1];
    size_t n_blobs;
    blob tmp[PSTORE_SLOTS];
} mem;

static void mem_close(pstore *s)
{
    mem *m = s->be;
    for (size_t i = 0; i < m->n; i++) {
        free(m->ents[m->start + i].data);
    }
    free(m->ents);
    for (size_t i = 0; i < m->n_blobs; i++) {
        free(m->blobs[i].data);
    }
    for (int i = 0; i < PSTORE_SLOTS; i++) {
        free(m->tmp[i].data);
    }
    free(m);
}

int pstore_open_memory(const pstore_options *opts, pstore **out)
{
    if (out == NULL) {
        return PT_EINVAL;
    }
    pstore *s = NULL;
    if (opts == NULL || opts->cluster_id == 0 || opts->node_id == 0) {
        return PT_EINVAL;
    }
    int rv = pstore__alloc(opts, "memory", &s);
    if (rv != 0) {
        return rv;
    }
    s->be = calloc(1, sizeof(mem));
    if (s->be == NULL) {
        pstore__free(s);
        return PT_ENOMEM;
    }
    ((mem *)s->be)->first = 1;
    s->ops = &pstore__memory_ops;
    *out = s;
    return 0;
}

static int mem_commit(pstore *s, const pstore_change *c)
{
    mem *m = s->be;
    /* Everything that can fail happens first, so that a failure changes nothing. */
    uint8_t **copies = NULL;
    if (c->n_entries > 0) {
        copies = calloc(c->n_entries, sizeof(*copies));
        if (copies == NULL) {
            return PT_ENOMEM;
        }
        for (size_t i = 0; i < c->n_entries; i++) {
            if (c->entries[i].len == 0) {
                continue;
            }
            copies[i] = malloc(c->entries[i].len);
            if (copies[i] == NULL) {
                for (size_t j = 0; j < i; j++) {
                    free(copies[j]);
                }
                free(copies);
                return PT_ENOMEM;
            }
            memcpy(copies[i], c->entries[i].data, c->entries[i].len);
        }
        if (m->start + m->n + c->n_entries > m->cap) {
            /* Compact to the front or grow. */
            size_t need = m->n + c->n_entries;
            size_t ncap = m->cap ? m->cap : 64;
            while (ncap < need) {
                ncap *= 2;
            }
            praft_entry *ne = ncap == m->cap ? m->ents : malloc(ncap * sizeof(*ne));
            if (ne == NULL) {
                for (size_t j = 0; j < c->n_entries; j++) {
                    free(copies[j]);
                }
                free(copies);
                return PT_ENOMEM;
            }
            if (m->n > 0) {
                memmove(ne, m->ents + m->start, m->n * sizeof(*ne));
            }
            if (ne != m->ents) {
                free(m->ents);
            }
            m->ents = ne;
            m->cap = ncap;
            m->start = 0;
        }
    }
    if (c->del_from != 0) {
        while (m->n > 0 && m->first + m->n - 1 >= c->del_from) {
            free(m->ents[m->start + m->n - 1].data);
            m->n--;
        }
    }
    if (c->del_upto != 0) {
        while (m->n > 0 && m->first <= c->del_upto) {
            free(m->ents[m->start].data);
            m->start++;
            m->n--;
            m->first++;
        }
    }
    if (c->n_entries > 0) {
        if (m->n == 0) {
            m->first = c->entries[0].index;
        }
        for (size_t i = 0; i < c->n_entries; i++) {
            praft_entry *e = &m->ents[m->start + m->n++];
            *e = c->entries[i];
            e->data = copies[i];
        }
        free(copies);
    }
    return 0;
}

static const praft_entry *mem_at(mem *m, uint64_t index)
{
    if (index < m->first || index >= m->first + m->n) {
        return NULL;
    }
    return &m->ents[m->start + (index - m->first)];
}

static int mem_term(pstore *s, uint64_t index, uint64_t *term)
{
    const praft_entry *e = mem_at(s->be, index);
    if (e == NULL) {
        return pstore__fail(s, PT_EINTERNAL, "memory: entry %llu missing",
                            (unsigned long long)index);
    }
    *term = e->term;
    return 0;
}

static int mem_read(pstore *s, uint64_t lo, uint64_t hi, size_t max_bytes, praft_entry *out,
                    size_t *n)
{
    size_t bytes = 0, k = 0;
    for (uint64_t i = lo; i < hi; i++) {
        const praft_entry *e = mem_at(s->be, i);
        if (e == NULL) {
            pstore_entries_free(out, k);
            return pstore__fail(s, PT_EINTERNAL, "memory: entry %llu missing",
                                (unsigned long long)i);
        }
        if (k > 0 && bytes + e->len > max_bytes) {
            break;
        }
        out[k] = *e;
        out[k].data = NULL;
        if (e->len > 0) {
            out[k].data = malloc(e->len);
            if (out[k].data == NULL) {
                pstore_entries_free(out, k);
                return PT_ENOMEM;
            }
            memcpy(out[k].data, e->data, e->len);
        }
        bytes += e->len;
        k++;
    }
    *n = k;
    return 0;
}

static int mem_check(pstore *s)
{
    mem *m = s->be;
    if (m->n > 0 && (m->first != s->base_index + 1 || m->first + m->n - 1 != s->last_index)) {
        return pstore__fail(s, PT_ECORRUPT, "memory: log range disagrees with its metadata");
    }
    for (size_t i = 0; i < m->n; i++) {
        if (m->ents[m->start + i].index != m->first + i) {
            return pstore__fail(s, PT_ECORRUPT, "memory: entry %llu: wrong index",
                                (unsigned long long)m->first + i);
        }
    }
    return 0;
}

static int mem_tmp_create(pstore *s, int slot, uint64_t index, uint64_t term)
{
    blob *b = &((mem *)s->be)->tmp[slot];
    b->index = index;
    b->term = term;
    b->len = 0;
    return 0;
}

static int mem_tmp_append(pstore *s, int slot, const void *data, size_t len)
{
    blob *b = &((mem *)s->be)->tmp[slot];
    if (b->len + len > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->len + len) {
            ncap *= 2;
        }
        uint8_t *nd = realloc(b->data, ncap);
        if (nd == NULL) {
            return PT_ENOMEM;
        }
        b->data = nd;
        b->cap = ncap;
    }
    if (len > 0) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
    return 0;
}

static int mem_tmp_sync(pstore *s, int slot)
{
    return 0;
}

static int blob_copy(const blob *b, uint64_t off, void *buf, size_t cap, size_t *n)
{
    *n = 0;
    if (off >= b->len) {
        return 0;
    }
    size_t k = b->len - off < cap ? (size_t)(b->len - off) : cap;
    memcpy(buf, b->data + off, k);
    *n = k;
    return 0;
}

static int mem_tmp_read(pstore *s, int slot, uint64_t off, void *buf, size_t cap, size_t *n)
{
    return blob_copy(&((mem *)s->be)->tmp[slot], off, buf, cap, n);
}

static blob *find_blob(mem *m, uint64_t index, uint64_t term)
{
    for (size_t i = 0; i < m->n_blobs; i++) {
        if (m->blobs[i].index == index && m->blobs[i].term == term) {
            return &m->blobs[i];
        }
    }
    return NULL;
}

static void mem_blob_remove(pstore *s, uint64_t index, uint64_t term)
{
    mem *m = s->be;
    blob *b = find_blob(m, index, term);
    if (b != NULL) {
        free(b->data);
        *b = m->blobs[--m->n_blobs];
    }
}

static int mem_tmp_publish(pstore *s, int slot)
{
    mem *m = s->be;
    blob *t = &m->tmp[slot];
    mem_blob_remove(s, t->index, t->term);
    if (m->n_blobs == PSTORE_MAX_SNAPS + 1) {
        return pstore__fail(s, PT_EINTERNAL, "memory: too many snapshots");
    }
    m->blobs[m->n_blobs++] = *t;
    memset(t, 0, sizeof(*t));
    return 0;
}

static void mem_tmp_drop(pstore *s, int slot)
{
    blob *t = &((mem *)s->be)->tmp[slot];
    t->len = 0;
}

static int mem_blob_read(pstore *s, uint64_t index, uint64_t term, uint64_t off, void *buf,
                         size_t cap, size_t *n)
{
    blob *b = find_blob(s->be, index, term);
    if (b == NULL) {
        return PT_ENOTFOUND;
    }
    return blob_copy(b, off, buf, cap, n);
}

const pstore_ops pstore__memory_ops = {
    .close = mem_close,
    .commit = mem_commit,
    .read = mem_read,
    .term = mem_term,
    .check = mem_check,
    .tmp_create = mem_tmp_create,
    .tmp_append = mem_tmp_append,
    .tmp_sync = mem_tmp_sync,
    .tmp_read = mem_tmp_read,
    .tmp_publish = mem_tmp_publish,
    .tmp_drop = mem_tmp_drop,
    .blob_read = mem_blob_read,
    .blob_remove = mem_blob_remove,
};
