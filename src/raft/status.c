/*
 * Options (defaults from the paper and etcd's experience), status, and names for logs.
 */
#include "raft/core.h"

#include <string.h>

void praft_options_init(praft_options *opts, uint64_t id)
{
    memset(opts, 0, sizeof(*opts));
    opts->id = id;
    /* §5.6 asks broadcastTime << electionTimeout: 10 heartbeats per election timeout. */
    opts->election_ticks = 10;
    opts->heartbeat_ticks = 1;
    opts->seed = id;
    opts->max_msg_bytes = 1u << 20;
    opts->max_inflight_msgs = 256;
    opts->max_inflight_bytes = 32u << 20;
    opts->snapshot_chunk_bytes = 1u << 20;
    opts->snapshot_retry_ticks = 2 * opts->election_ticks;
    opts->max_uncommitted_bytes = 64u << 20;
}

int praft_options_validate(const praft_options *o, const char **why)
{
    const char *w = NULL;
    if (o == NULL) {
        w = "options: NULL";
    } else if (o->id == PRAFT_NONE) {
        w = "id: must not be 0 (PRAFT_NONE)";
    } else if (o->heartbeat_ticks == 0) {
        w = "heartbeat_ticks: must be at least 1";
    } else if (o->election_ticks <= o->heartbeat_ticks) {
        w = "election_ticks: must exceed heartbeat_ticks (§5.6: broadcast time << election "
            "timeout)";
    } else if (o->lease_reads && o->disable_check_quorum) {
        w = "lease_reads: requires check-quorum, which brings leader stickiness (thesis §6.4.1)";
    } else if (o->max_msg_bytes == 0) {
        w = "max_msg_bytes: must be at least 1";
    } else if (o->max_inflight_msgs == 0) {
        w = "max_inflight_msgs: must be at least 1";
    } else if (o->max_inflight_bytes < o->max_msg_bytes) {
        w = "max_inflight_bytes: must be at least max_msg_bytes";
    } else if (o->snapshot_chunk_bytes == 0) {
        w = "snapshot_chunk_bytes: must be at least 1";
    } else if (o->snapshot_retry_ticks == 0) {
        w = "snapshot_retry_ticks: must be at least 1";
    }
    if (why != NULL) {
        *why = w;
    }
    return w == NULL ? 0 : PT_EINVAL;
}

void praft_status_get(praft_node *n, praft_status *out)
{
    memset(out, 0, sizeof(*out));
    out->id = n->id;
    out->role = n->role;
    out->term = n->term;
    out->vote = n->vote;
    out->leader = n->leader;
    out->commit = n->commit;
    out->applied = n->applied;
    out->first_index = n->log.snap.index + 1;
    out->last_index = praft__log_last(&n->log);
    out->snapshot_index = n->log.snap.index;
    out->snapshot_term = n->log.snap.term;
    out->transferee = n->transferee;
    out->pending_config_index = n->pending_conf_index;
    out->config = n->cfg;
    if (n->role == PRAFT_LEADER) {
        for (size_t i = 0; i < n->n_prs; i++) {
            const praft_pr *p = &n->prs[i];
            out->progress[i] = (praft_progress){.id = p->id,
                                                .match = p->match,
                                                .next = p->next,
                                                .state = p->state,
                                                .recently_active = p->recently_active,
                                                .snapshot_offset = p->snap_offset};
        }
        out->n_progress = n->n_prs;
    }
    out->counters = n->c;
}

const char *praft_role_name(uint32_t role)
{
    switch (role) {
    case PRAFT_FOLLOWER:
        return "follower";
    case PRAFT_CANDIDATE:
        return "candidate";
    case PRAFT_LEADER:
        return "leader";
    case PRAFT_LEARNER:
        return "learner";
    default:
        return "unknown";
    }
}

const char *praft_progress_state_name(uint32_t state)
{
    switch (state) {
    case PRAFT_PROGRESS_PROBE:
        return "probe";
    case PRAFT_PROGRESS_REPLICATE:
        return "replicate";
    case PRAFT_PROGRESS_SNAPSHOT:
        return "snapshot";
    default:
        return "unknown";
    }
}

const char *praft_msg_type_name(uint32_t type)
{
    static const char *const names[] = {
        NULL,           "APPEND",          "APPEND_RESP",
        "VOTE",         "VOTE_RESP",       "PREVOTE",
        "PREVOTE_RESP", "HEARTBEAT",       "HEARTBEAT_RESP",
        "SNAPSHOT",     "SNAPSHOT_RESP",   "TIMEOUT_NOW",
        "READ_INDEX",   "READ_INDEX_RESP",
    };
    if (type == 0 || type >= sizeof(names) / sizeof(names[0])) {
        return "UNKNOWN";
    }
    return names[type];
}
