/*
 * Membership: the configuration codec, the history of configurations in the log, and changes
 * by joint consensus (§6, thesis §4.3) with learners.
 *
 * A configuration takes effect as soon as its entry is appended (thesis §4.1), committed or
 * not; when a conflicting suffix is cut, the node falls back to the latest configuration left
 * in its log or snapshot. That is why every configuration entry after the last committed one
 * is remembered here.
 *
 * Encoding (little-endian), version 1:
 *   "PCFG" | u8 version | u8 flags (bit 0: joint) | u16 n_members |
 *   n_members x { u64 id | u8 role | u8 old_role | u16 address length | address bytes } |
 *   u64 XXH3-64 of everything before it.
 */
#include "raft/core.h"

#include <stdlib.h>
#include <string.h>

#include "common/checksum.h"

#define CFG_VERSION 1

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

const praft_member *praft_config_find(const praft_config *config, uint64_t id)
{
    if (config == NULL || id == PRAFT_NONE) {
        return NULL;
    }
    for (uint32_t i = 0; i < config->n_members && i < PRAFT_MAX_MEMBERS; i++) {
        if (config->members[i].id == id) {
            return &config->members[i];
        }
    }
    return NULL;
}

int praft__cfg_validate(const praft_config *c, bool allow_joint)
{
    if (c->n_members == 0 || c->n_members > PRAFT_MAX_MEMBERS || (c->joint && !allow_joint)) {
        return PT_EINVAL;
    }
    bool voter_new = false, voter_old = false;
    for (uint32_t i = 0; i < c->n_members; i++) {
        const praft_member *m = &c->members[i];
        if (m->id == PRAFT_NONE || (i > 0 && c->members[i - 1].id >= m->id)) {
            return PT_EINVAL; /* ids are non-zero, unique and sorted */
        }
        if (m->role > PRAFT_ROLE_LEARNER || m->old_role > PRAFT_ROLE_LEARNER) {
            return PT_EINVAL;
        }
        if (!c->joint && (m->old_role != PRAFT_ROLE_NONE || m->role == PRAFT_ROLE_NONE)) {
            return PT_EINVAL;
        }
        if (m->role == PRAFT_ROLE_NONE && m->old_role == PRAFT_ROLE_NONE) {
            return PT_EINVAL;
        }
        if (memchr(m->address, '\0', PRAFT_ADDRESS_MAX) == NULL) {
            return PT_EINVAL;
        }
        voter_new |= m->role == PRAFT_ROLE_VOTER;
        voter_old |= m->old_role == PRAFT_ROLE_VOTER;
    }
    if (!voter_new || (c->joint && !voter_old)) {
        return PT_EINVAL;
    }
    return 0;
}

int praft_config_encode(const praft_config *config, uint8_t **data, size_t *len)
{
    if (config == NULL || data == NULL || len == NULL || praft__cfg_validate(config, true)) {
        return PT_EINVAL;
    }
    size_t size = 4 + 1 + 1 + 2 + 8;
    for (uint32_t i = 0; i < config->n_members; i++) {
        size += 8 + 1 + 1 + 2 + strlen(config->members[i].address);
    }
    uint8_t *buf = malloc(size);
    if (buf == NULL) {
        return PT_ENOMEM;
    }
    uint8_t *p = buf;
    memcpy(p, "PCFG", 4);
    p += 4;
    *p++ = CFG_VERSION;
    *p++ = config->joint ? 1 : 0;
    put_u16(p, (uint16_t)config->n_members);
    p += 2;
    for (uint32_t i = 0; i < config->n_members; i++) {
        const praft_member *m = &config->members[i];
        size_t alen = strlen(m->address);
        put_u64(p, m->id);
        p += 8;
        *p++ = m->role;
        *p++ = m->old_role;
        put_u16(p, (uint16_t)alen);
        p += 2;
        memcpy(p, m->address, alen);
        p += alen;
    }
    put_u64(p, pt__checksum(buf, (size_t)(p - buf)));
    *data = buf;
    *len = size;
    return 0;
}

int praft_config_decode(const uint8_t *data, size_t len, praft_config *out)
{
    if (data == NULL || out == NULL || len < 16 || memcmp(data, "PCFG", 4) != 0) {
        return PT_ECORRUPT;
    }
    if (get_u64(data + len - 8) != pt__checksum(data, len - 8)) {
        return PT_ECORRUPT;
    }
    if (data[4] != CFG_VERSION || data[5] > 1) {
        return PT_ECORRUPT;
    }
    praft_config c;
    memset(&c, 0, sizeof(c));
    c.joint = data[5] == 1;
    c.n_members = get_u16(data + 6);
    if (c.n_members > PRAFT_MAX_MEMBERS) {
        return PT_ECORRUPT;
    }
    size_t off = 8, end = len - 8;
    for (uint32_t i = 0; i < c.n_members; i++) {
        if (end - off < 12) {
            return PT_ECORRUPT;
        }
        praft_member *m = &c.members[i];
        m->id = get_u64(data + off);
        m->role = data[off + 8];
        m->old_role = data[off + 9];
        size_t alen = get_u16(data + off + 10);
        off += 12;
        if (alen >= PRAFT_ADDRESS_MAX || end - off < alen) {
            return PT_ECORRUPT;
        }
        memcpy(m->address, data + off, alen);
        off += alen;
    }
    if (off != end || praft__cfg_validate(&c, true) != 0) {
        return PT_ECORRUPT;
    }
    *out = c;
    return 0;
}

/* ---- configurations in the log ------------------------------------------------------------ */

static void set_current(praft_node *n)
{
    n->cfg = n->n_hist ? n->hist[n->n_hist - 1].cfg : n->log.snap.config;
    n->pending_conf_index = 0;
    if (n->n_hist > 0 && n->hist[n->n_hist - 1].index > n->commit) {
        n->pending_conf_index = n->hist[n->n_hist - 1].index;
    }
}

int praft__cfg_appended(praft_node *n, uint64_t index, const uint8_t *data, size_t len)
{
    praft_config c;
    int rv = praft_config_decode(data, len, &c);
    if (rv != 0) {
        return rv;
    }
    void *h = n->hist;
    rv = praft__grow(&h, &n->cap_hist, n->n_hist + 1, sizeof(*n->hist));
    n->hist = h;
    if (rv != 0) {
        return rv;
    }
    n->hist[n->n_hist].index = index;
    n->hist[n->n_hist].cfg = c;
    n->n_hist++;
    set_current(n);
    return praft__cfg_apply(n);
}

void praft__cfg_truncated(praft_node *n, uint64_t from)
{
    size_t k = n->n_hist;
    while (n->n_hist > 0 && n->hist[n->n_hist - 1].index >= from) {
        n->n_hist--;
    }
    if (k != n->n_hist) {
        set_current(n);
        (void)praft__cfg_apply(n);
    }
}

void praft__cfg_restored(praft_node *n, const praft_config *c)
{
    (void)c;
    n->n_hist = 0;
    set_current(n);
    (void)praft__cfg_apply(n);
}

static void leave_joint(praft_node *n)
{
    praft_config c = n->cfg;
    uint32_t k = 0;
    for (uint32_t i = 0; i < c.n_members; i++) {
        if (c.members[i].role != PRAFT_ROLE_NONE) {
            c.members[k] = c.members[i];
            c.members[k].old_role = PRAFT_ROLE_NONE;
            k++;
        }
    }
    c.n_members = k;
    c.joint = false;
    uint8_t *data = NULL;
    size_t len = 0;
    if (praft_config_encode(&c, &data, &len) != 0) {
        return; /* retried when the commit index next moves */
    }
    if (praft__append_own(n, PRAFT_ENTRY_CONFIG, data, (uint32_t)len) != 0) {
        free(data);
    }
}

void praft__cfg_committed(praft_node *n)
{
    /* Earlier configurations are kept until a snapshot covers them: praft_snapshot_taken
     * needs the one in force at the snapshot's index. */
    if (n->pending_conf_index != 0 && n->pending_conf_index <= n->commit) {
        n->pending_conf_index = 0;
    }
    if (n->role != PRAFT_LEADER || n->pending_conf_index != 0) {
        return;
    }
    if (n->cfg.joint) {
        /* thesis §4.3: once C_old,new is committed the leader moves on to C_new by itself. */
        leave_joint(n);
        return;
    }
    if (!praft__cfg_is_voter(&n->cfg, n->id)) {
        /* A leader removed from the cluster steps down once C_new is committed (§6). */
        praft__become_follower(n, n->term, PRAFT_NONE);
    }
}

int praft__cfg_apply(praft_node *n)
{
    if (n->role == PRAFT_LEADER) {
        int rv = praft__pr_sync(n);
        if (rv != 0) {
            return rv;
        }
        if (n->transferee != PRAFT_NONE && !praft__cfg_is_voter(&n->cfg, n->transferee)) {
            praft__transfer_abort(n);
        }
        return 0;
    }
    bool voter = praft__cfg_is_voter(&n->cfg, n->id);
    if (n->role == PRAFT_CANDIDATE && !voter) {
        praft__become_follower(n, n->term, PRAFT_NONE);
    }
    if (n->role == PRAFT_FOLLOWER || n->role == PRAFT_LEARNER) {
        n->role = praft__self_is_learner(n) ? PRAFT_LEARNER : PRAFT_FOLLOWER;
    }
    return 0;
}

/* ---- change requests ---------------------------------------------------------------------- */

static int insert_member(praft_config *c, uint64_t id, uint8_t role, const char *address)
{
    size_t alen = strnlen(address, PRAFT_ADDRESS_MAX);
    if (c->n_members >= PRAFT_MAX_MEMBERS || alen == PRAFT_ADDRESS_MAX) {
        return PT_EINVAL;
    }
    uint32_t pos = 0;
    while (pos < c->n_members && c->members[pos].id < id) {
        pos++;
    }
    memmove(&c->members[pos + 1], &c->members[pos], (c->n_members - pos) * sizeof(c->members[0]));
    praft_member *m = &c->members[pos];
    memset(m, 0, sizeof(*m));
    m->id = id;
    m->role = role;
    memcpy(m->address, address, alen + 1);
    c->n_members++;
    return 0;
}

int praft_change_membership(praft_node *n, const praft_change *change, uint64_t *index)
{
    if (n == NULL || change == NULL || change->id == PRAFT_NONE) {
        return PT_EINVAL;
    }
    if (n->role != PRAFT_LEADER) {
        return PT_ENOTLEADER;
    }
    if (n->transferee != PRAFT_NONE) {
        return PT_ETRANSFER;
    }
    if (n->pending_conf_index > n->commit || n->cfg.joint) {
        return PT_ECONFCHANGE;
    }
    /* thesis §4.1 (and the single-server bug): a new leader first commits an entry of its own
     * term, so that no earlier, uncommitted change can still be in flight. */
    if (praft__log_term_or0(n, n->commit) != n->term) {
        return PT_ENOTREADY;
    }
    praft_config c = n->cfg;
    const praft_member *cur = praft_config_find(&c, change->id);
    bool joint = false;
    int rv = 0;
    switch (change->type) {
    case PRAFT_CHANGE_ADD_LEARNER:
        if (cur != NULL) {
            return PT_EINVAL;
        }
        rv = insert_member(&c, change->id, PRAFT_ROLE_LEARNER, change->address);
        break;
    case PRAFT_CHANGE_ADD_VOTER:
        if (cur != NULL && cur->role == PRAFT_ROLE_VOTER) {
            return PT_EINVAL;
        }
        if (cur != NULL) {
            /* Promote a learner only once it has caught up, or the new majority would wait
             * for it (thesis §4.2.1). */
            praft_pr *p = praft__pr_find(n, change->id);
            if (p == NULL || p->match < n->commit) {
                return PT_ENOTREADY;
            }
        }
        joint = true;
        break;
    case PRAFT_CHANGE_REMOVE:
        if (cur == NULL) {
            return PT_EINVAL;
        }
        joint = cur->role == PRAFT_ROLE_VOTER;
        if (!joint) {
            uint32_t pos = (uint32_t)(cur - c.members);
            memmove(&c.members[pos], &c.members[pos + 1],
                    (c.n_members - pos - 1) * sizeof(c.members[0]));
            c.n_members--;
        }
        break;
    default:
        return PT_EINVAL;
    }
    if (rv != 0) {
        return rv;
    }
    if (joint) {
        for (uint32_t i = 0; i < c.n_members; i++) {
            c.members[i].old_role = c.members[i].role;
        }
        c.joint = true;
        if (change->type == PRAFT_CHANGE_ADD_VOTER) {
            praft_member *m = (praft_member *)praft_config_find(&c, change->id);
            if (m == NULL) {
                rv = insert_member(&c, change->id, PRAFT_ROLE_VOTER, change->address);
                if (rv != 0) {
                    return rv;
                }
            } else {
                m->role = PRAFT_ROLE_VOTER;
            }
        } else {
            ((praft_member *)praft_config_find(&c, change->id))->role = PRAFT_ROLE_NONE;
        }
    }
    if (praft__cfg_validate(&c, true) != 0) {
        return PT_EINVAL; /* e.g. no voter would remain */
    }
    uint8_t *data = NULL;
    size_t len = 0;
    rv = praft_config_encode(&c, &data, &len);
    if (rv != 0) {
        return rv;
    }
    rv = praft__append_own(n, PRAFT_ENTRY_CONFIG, data, (uint32_t)len);
    if (rv != 0) {
        free(data);
        return rv;
    }
    if (index != NULL) {
        *index = praft__log_last(&n->log);
    }
    return 0;
}
