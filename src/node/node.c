/*
 * Starting and stopping a node: the data directory (opened, or created and bootstrapped), the
 * state machine restored from the newest snapshot, the core rebuilt from the store, the
 * transport bound, the threads started; and the reverse, in an order that answers every
 * request and leaks nothing.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include "common/log.h"
#include "http/http.h"
#include "node/node_internal.h"

void pnode__requests_init(pnode *n);

void pnode_options_init(pnode_options *opts, uint64_t id)
{
    memset(opts, 0, sizeof(*opts));
    opts->id = id;
    opts->cluster_id = 1;
    opts->tick_ms = 50;
    opts->election_ticks = 10;
    opts->heartbeat_ticks = 1;
    opts->snapshot_every = 10000;
    opts->snapshot_keep = 1000;
    opts->sync = PSTORE_SYNC_FULL;
    opts->storage_engine = PSTORE_ENGINE_WAL;
    opts->leader_wait_ms = 2000;
    opts->preflight_check = true;
    /* The transport's bounds: its defaults are the node's. */
    pnet_transport_options to;
    pnet_transport_options_init(&to);
    opts->io_threads = (uint32_t)to.io_threads;
    opts->max_request_bytes = to.max_request_bytes;
    opts->max_streams_per_connection = to.max_streams_per_connection;
    opts->max_unread_bytes_per_connection = to.max_unread_bytes_per_connection;
    opts->max_unread_bytes = to.max_unread_bytes;
    opts->send_timeout_ms = to.send_timeout_ms;
    opts->handshake_timeout_ms = to.handshake_timeout_ms;
    opts->max_idle_ms = to.max_idle_ms;
    opts->transport_memory_bytes = to.transport_memory_bytes;
}

int pnode__code(int err)
{
    switch (err) {
    case 0:
        return PNODE_OK;
    case PT_ENOTLEADER:
    case PT_ETRANSFER:
    case PT_ESHUTDOWN:
    case PT_ENOQUORUM:
        return PNODE_UNAVAILABLE;
    case PT_EBUSY:
    case PT_ENOMEM:
    case PT_ETOOBIG:
    case PT_ENOSPC:
        return PNODE_RESOURCE_EXHAUSTED;
    case PT_ECONFCHANGE:
    case PT_ENOTREADY:
        return PNODE_FAILED_PRECONDITION;
    case PT_EINVAL:
    case PT_EMALFORMED:
        return PNODE_INVALID_ARGUMENT;
    case PT_ENOTFOUND:
        return PNODE_NOT_FOUND;
    case PT_ETIMEDOUT:
        return PNODE_DEADLINE_EXCEEDED;
    default:
        return PNODE_INTERNAL;
    }
}

int pnode_code_from_error(int err)
{
    return pnode__code(err);
}

static void say(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t cap, const char *fmt, ...)
{
    if (err == NULL || cap == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* ----- the core's view of the store, under the store lock ----- */

#define LOCKED(n, call)                       \
    do {                                      \
        pthread_mutex_lock(&(n)->store_mu);   \
        int rc_ = (call);                     \
        pthread_mutex_unlock(&(n)->store_mu); \
        return rc_;                           \
    } while (0)

static int v_initial_state(void *ctx, praft_hard_state *hs, praft_snapshot_meta *snap)
{
    pnode *n = ctx;
    LOCKED(n, n->store_view.initial_state(n->store_view.ctx, hs, snap));
}

static int v_first_index(void *ctx, uint64_t *index)
{
    pnode *n = ctx;
    LOCKED(n, n->store_view.first_index(n->store_view.ctx, index));
}

static int v_last_index(void *ctx, uint64_t *index)
{
    pnode *n = ctx;
    LOCKED(n, n->store_view.last_index(n->store_view.ctx, index));
}

static int v_term(void *ctx, uint64_t index, uint64_t *term)
{
    pnode *n = ctx;
    LOCKED(n, n->store_view.term(n->store_view.ctx, index, term));
}

static int v_entries(void *ctx, uint64_t lo, uint64_t hi, size_t max_bytes, praft_entry *out,
                     size_t *count)
{
    pnode *n = ctx;
    LOCKED(n, n->store_view.entries(n->store_view.ctx, lo, hi, max_bytes, out, count));
}

static int v_snapshot_read(void *ctx, const praft_snapshot_meta *meta, uint64_t offset, void *buf,
                           size_t cap, size_t *len)
{
    pnode *n = ctx;
    LOCKED(n, n->store_view.snapshot_read(n->store_view.ctx, meta, offset, buf, cap, len));
}

/* ----- start ----- */

static int check_options(const pnode_options *o, char *err, size_t cap)
{
    if (o->id == 0) {
        say(err, cap, "the node id must not be 0");
        return PT_EINVAL;
    }
    if (o->cluster_id == 0) {
        say(err, cap, "the cluster id must not be 0");
        return PT_EINVAL;
    }
    if (o->listen[0] == '\0') {
        say(err, cap, "no listen address");
        return PT_EINVAL;
    }
    if (o->data_dir == NULL || o->data_dir[0] == '\0') {
        say(err, cap, "no data directory");
        return PT_EINVAL;
    }
    if (o->sm.ops == NULL) {
        say(err, cap, "no state machine");
        return PT_EINVAL;
    }
    if (o->tick_ms == 0 || o->tick_ms > 10000) {
        say(err, cap, "tick must be within [1, 10000] ms");
        return PT_EINVAL;
    }
    if (o->heartbeat_ticks == 0 || o->election_ticks <= o->heartbeat_ticks) {
        say(err, cap, "the election timeout (%u ticks) must exceed the heartbeat interval (%u)",
            o->election_ticks, o->heartbeat_ticks);
        return PT_EINVAL;
    }
    if (o->n_methods > PNODE_MAX_METHODS || o->n_initial > PRAFT_MAX_MEMBERS) {
        say(err, cap, "too many methods or initial members");
        return PT_EINVAL;
    }
    bool any_tls =
        o->tls.ca != NULL || o->tls.cert != NULL || o->tls.key != NULL || o->tls.crl != NULL;
    if (any_tls && (o->tls.ca == NULL || o->tls.cert == NULL || o->tls.key == NULL)) {
        say(err, cap, "TLS needs a CA, a certificate and a key (--tls-ca, --tls-cert, --tls-key)");
        return PT_EINVAL;
    }
    if (any_tls && o->insecure) {
        say(err, cap, "TLS files and insecure mode are contradictory: choose one");
        return PT_EINVAL;
    }
    if (!any_tls && !o->insecure) {
        say(err, cap,
            "no TLS material (--tls-ca, --tls-cert, --tls-key): a node without TLS "
            "obeys anyone who reaches its port; give --insecure to run so anyway");
        return PT_EINVAL;
    }
    return 0;
}

/* Everything about a bootstrap that can be wrong, checked before the directory is touched:
 * a refused first start must leave nothing that changes what a corrected retry does. */
static int check_initial(const pnode_options *o, char *err, size_t cap)
{
    char why[256];
    bool self = false;
    for (size_t i = 0; i < o->n_initial; i++) {
        const praft_member *m = &o->initial[i];
        if (pnode__address_check(m->address, false, why, sizeof(why)) != 0) {
            say(err, cap, "initial cluster, member %llu: %s", (unsigned long long)m->id, why);
            return PT_EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (o->initial[j].id == m->id) {
                say(err, cap, "initial cluster: member %llu is listed twice",
                    (unsigned long long)m->id);
                return PT_EINVAL;
            }
            if (pnode__same_endpoint(o->initial[j].address, m->address)) {
                say(err, cap, "initial cluster: members %llu and %llu have the same address %s",
                    (unsigned long long)o->initial[j].id, (unsigned long long)m->id, m->address);
                return PT_EINVAL;
            }
        }
        if (m->id == o->id) {
            self = true;
            if (!pnode__listen_serves(o->listen, m->address)) {
                say(err, cap,
                    "the listen address %s does not serve this node's address %s in the initial "
                    "cluster: peers would dial an address nobody answers; make them agree",
                    o->listen, m->address);
                return PT_EINVAL;
            }
        }
    }
    if (!self) {
        say(err, cap, "node %llu is not in the initial cluster: add %llu=%s to it",
            (unsigned long long)o->id, (unsigned long long)o->id, o->listen);
        return PT_EINVAL;
    }
    return 0;
}

/* Removes what a failed first start created, so that the directory is left as it was. */
static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void undo_create(pnode *n)
{
    const pnode_options *o = &n->opts;
    if (!n->created_store) {
        return;
    }
    pstore_close(n->store);
    n->store = NULL;
    static const char *const made[] = {"log", "snapshots", "LOCK"};
    char path[4096];
    for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", o->data_dir, made[i]);
        nftw(path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    }
    if (n->created_dir) {
        rmdir(o->data_dir);
    }
    n->created_store = false;
}

/* True when the store holds nothing at all: no entry, no vote, no snapshot. Such a store is
 * what a first start that stopped between creating the store and bootstrapping it leaves. */
static bool store_is_blank(pstore *s)
{
    praft_hard_state hs;
    bool has_snap = false;
    uint64_t first = 0, last = 0;
    praft_snapshot_meta *meta = calloc(1, sizeof(*meta));
    if (meta == NULL) {
        return false;
    }
    pstore_hard_state(s, &hs);
    pstore_snapshot_current(s, &has_snap, meta);
    pstore_log_range(s, &first, &last);
    free(meta);
    return hs.term == 0 && hs.vote == 0 && hs.commit == 0 && !has_snap && last == 0;
}

/* Copies the TLS paths (the caller's strings need not outlive pnode_start) and reads them. */
static int tls_setup(pnode *n, char *err, size_t cap)
{
    const pnode_tls *in = &n->opts.tls;
    if (in->ca == NULL) {
        memset(&n->opts.tls, 0, sizeof(n->opts.tls));
        return 0;
    }
    const char *src[4] = {in->ca, in->cert, in->key, in->crl};
    for (int i = 0; i < 4; i++) {
        if (src[i] != NULL && (n->tls_paths[i] = strdup(src[i])) == NULL) {
            return PT_ENOMEM;
        }
    }
    n->opts.tls = (pnode_tls){.ca = n->tls_paths[0],
                              .cert = n->tls_paths[1],
                              .key = n->tls_paths[2],
                              .crl = n->tls_paths[3]};
    pnet_tls_files f = {.ca = n->opts.tls.ca,
                        .cert = n->opts.tls.cert,
                        .key = n->opts.tls.key,
                        .crl = n->opts.tls.crl};
    return pnet__tls_load(&f, n->opts.id, ++n->tls_generation, &n->tls, err, cap);
}

int pnode_reload_tls(pnode *n, char *err, size_t cap)
{
    char why[512];
    if (n == NULL) {
        return PT_EINVAL;
    }
    pthread_mutex_lock(&n->tls_mu);
    int rc = PT_EINVAL;
    snprintf(why, sizeof(why), "this node runs without TLS; restart it with TLS files instead");
    if (n->tls != NULL) {
        pnet_tls_files f = {.ca = n->opts.tls.ca,
                            .cert = n->opts.tls.cert,
                            .key = n->opts.tls.key,
                            .crl = n->opts.tls.crl};
        pnet_tls *fresh = NULL;
        rc = pnet__tls_load(&f, n->opts.id, n->tls_generation + 1, &fresh, why, sizeof(why));
        if (rc == 0) {
            rc = pnet_transport_set_tls(n->net, fresh);
        }
        if (rc == 0) {
            n->tls_generation++;
            pnet__tls_unref(n->tls);
            n->tls = fresh;
            if (n->http != NULL) {
                phttp__set_tls(n->http, fresh);
            }
            PT_INFO("node %llu: TLS material reloaded (certificate %s)",
                    (unsigned long long)n->opts.id, fresh->subject);
        } else {
            pnet__tls_unref(fresh);
        }
    }
    pthread_mutex_unlock(&n->tls_mu);
    if (rc != 0) {
        say(err, cap, "%s", why);
    }
    return rc;
}

static bool dir_is_empty_or_missing(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        return errno == ENOENT;
    }
    char probe[4096];
    snprintf(probe, sizeof(probe), "%s/log", dir);
    if (stat(probe, &st) == 0) {
        return false;
    }
    snprintf(probe, sizeof(probe), "%s/snapshots", dir);
    return stat(probe, &st) != 0;
}

static int bootstrap(pnode *n, char *err, size_t cap)
{
    const pnode_options *o = &n->opts;
    praft_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL) {
        return PT_ENOMEM;
    }
    int rc = 0;
    bool self = false;
    for (size_t i = 0; i < o->n_initial; i++) {
        praft_member *m = &cfg->members[cfg->n_members++];
        *m = o->initial[i];
        m->role = PRAFT_ROLE_VOTER;
        m->old_role = PRAFT_ROLE_NONE;
        self = self || m->id == o->id;
    }
    /* praft_config requires members sorted by id. */
    for (uint32_t i = 1; i < cfg->n_members; i++) {
        for (uint32_t j = i; j > 0 && cfg->members[j - 1].id > cfg->members[j].id; j--) {
            praft_member t = cfg->members[j];
            cfg->members[j] = cfg->members[j - 1];
            cfg->members[j - 1] = t;
        }
    }
    if (!self) {
        say(err, cap, "node %llu is not in the initial cluster", (unsigned long long)o->id);
        rc = PT_EINVAL;
        goto out;
    }
    praft_entry e;
    rc = praft_bootstrap_entry(cfg, &e);
    if (rc != 0) {
        say(err, cap, "invalid initial cluster: %s", pt_strerror(rc));
        goto out;
    }
    praft_hard_state hs = {.term = e.term, .vote = PRAFT_NONE, .commit = e.index};
    pstore_batch b = {
        .entries = &e, .n_entries = 1, .hard_state = &hs, .config = cfg, .config_index = e.index};
    rc = pstore_write(n->store, &b);
    free(e.data);
    if (rc != 0) {
        say(err, cap, "bootstrapping %s: %s", o->data_dir, pstore_last_error(n->store));
        goto out;
    }
    PT_INFO("bootstrapped a new cluster of %u members in %s", cfg->n_members, o->data_dir);
out:
    free(cfg);
    return rc;
}

/*
 * Opens and fully verifies the store in a child process. LMDB does not checksum its own B-tree
 * pages, so some damage makes it crash rather than return an error; in a child, that crash
 * becomes one line naming the file. Returns 0, PT_ENOTFOUND (no store: a new node), or the
 * error of the open or the check, with the message in @err.
 */
static int preflight(const char *dir, const pstore_options *so, char *err, size_t cap)
{
    int fds[2];
    if (pipe(fds) != 0) {
        return 0; /* cannot isolate the check: the open below still verifies what it can */
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    if (pid == 0) {
        close(fds[0]);
        char e[512] = "";
        pstore *s = NULL;
        int rc = pstore_open(dir, so, &s, e, sizeof(e));
        if (rc == 0) {
            rc = pstore_check(s);
            if (rc != 0) {
                snprintf(e, sizeof(e), "%s", pstore_last_error(s));
            }
            pstore_close(s);
        }
        if (write(fds[1], e, strlen(e)) < 0) {
            /* the parent reports the exit code alone */
        }
        _exit(rc == 0 ? 0 : (rc == PT_ENOTFOUND ? 3 : 1));
    }
    close(fds[1]);
    char e[512];
    ssize_t got = 0, r;
    while (got < (ssize_t)sizeof(e) - 1 && (r = read(fds[0], e + got, sizeof(e) - 1 - got)) > 0) {
        got += r;
    }
    e[got > 0 ? got : 0] = '\0';
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(st)) {
        say(err, cap,
            "data directory %s: %s/log/data.mdb is damaged (reading it crashed with "
            "signal %d); restore this node from a backup or replace it",
            dir, dir, WTERMSIG(st));
        return PT_ECORRUPT;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 3) {
        return PT_ENOTFOUND;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        say(err, cap, "data directory %s: %s", dir, e[0] ? e : "integrity check failed");
        return PT_ECORRUPT;
    }
    return 0;
}

static int open_store(pnode *n, char *err, size_t cap)
{
    const pnode_options *o = &n->opts;
    pstore_options so;
    pstore_options_init(&so, o->cluster_id, o->id);
    so.sync = o->sync;
    so.engine = o->storage_engine;
    if (o->preflight_check && !dir_is_empty_or_missing(o->data_dir)) {
        int prc = preflight(o->data_dir, &so, err, cap);
        if (prc != 0 && prc != PT_ENOTFOUND) {
            return prc;
        }
    }
    char e[512] = "";
    /* Opening takes the directory's lock file, also on a directory that turns out to be new:
     * a start refused below removes it again unless it was there before. */
    char lock[4096];
    struct stat lst;
    snprintf(lock, sizeof(lock), "%s/LOCK", o->data_dir);
    bool had_lock = stat(lock, &lst) == 0;
    int rc = pstore_open(o->data_dir, &so, &n->store, e, sizeof(e));
    if (rc == 0 && !o->join && o->n_initial > 0 && store_is_blank(n->store)) {
        /* An earlier first start stopped before its bootstrap was written: this one
         * finishes it, with the flags it was given now. */
        PT_WARN("data directory %s holds an empty store: bootstrapping it now", o->data_dir);
        if ((rc = check_initial(o, err, cap)) != 0) {
            return rc;
        }
        return bootstrap(n, err, cap);
    }
    if (rc == 0) {
        PT_INFO("opened the data directory %s", o->data_dir);
        return 0;
    }
    if (rc != PT_ENOTFOUND || !dir_is_empty_or_missing(o->data_dir)) {
        say(err, cap, "data directory %s: %s", o->data_dir, e[0] ? e : pt_strerror(rc));
        return rc;
    }
    /* A new node. */
    char why[256] = "";
    rc = 0;
    if (!o->join && o->n_initial == 0) {
        say(err, cap, "data directory %s is empty: give the initial cluster to bootstrap, or join",
            o->data_dir);
        rc = PT_EINVAL;
    } else if (!o->join) {
        rc = check_initial(o, err, cap);
    }
    if (rc == 0 && (rc = pnode__bind_probe(o->listen, why, sizeof(why))) != 0) {
        say(err, cap, "%s", why);
    }
    if (rc != 0) {
        if (!had_lock) {
            unlink(lock);
        }
        return rc;
    }
    if (mkdir(o->data_dir, 0700) == 0) {
        n->created_dir = true;
    } else if (errno != EEXIST) {
        say(err, cap, "cannot create data directory %s: %s", o->data_dir, strerror(errno));
        return PT_EIO;
    }
    so.create = true;
    rc = pstore_open(o->data_dir, &so, &n->store, e, sizeof(e));
    n->created_store = true;
    if (rc != 0) {
        say(err, cap, "data directory %s: %s", o->data_dir, e[0] ? e : pt_strerror(rc));
        return rc;
    }
    if (o->join) {
        PT_INFO("new node %llu waiting to be added to the cluster", (unsigned long long)o->id);
        return 0;
    }
    return bootstrap(n, err, cap);
}

static void free_node(pnode *n)
{
    if (n->net != NULL) {
        pnet_transport_free(n->net);
    }
    if (n->mailbox != NULL) {
        pnet_event *events = NULL;
        pnet_mailbox_wait(n->mailbox, 0, &events);
        while (events != NULL) {
            pnet_event *ev = events;
            events = ev->next;
            if (ev->type == PNET_EV_CLIENT_DONE) {
                ev->done(ev->done_ctx, ev->status, ev->message ? ev->message : "", NULL, 0);
            } else if (ev->type == PNET_EV_CALL) {
                pnet_call_fail(ev->call, PNODE_UNAVAILABLE, "the node is shutting down");
            }
            pnet_event_free(ev);
        }
        pnet_mailbox_free(n->mailbox);
    }
    praft_free(n->raft);
    pstore_close(n->store);
    pthread_mutex_destroy(&n->store_mu);
    pthread_mutex_destroy(&n->writer_mu);
    pthread_cond_destroy(&n->writer_cv);
    pthread_mutex_destroy(&n->inbox_mu);
    pthread_mutex_destroy(&n->status_mu);
    pthread_mutex_destroy(&n->tls_mu);
    pnode__metrics_destroy(&n->metrics);
    pnet__tls_unref(n->tls);
    for (int i = 0; i < 4; i++) {
        free(n->tls_paths[i]);
    }
    free(n);
}

/* The address peers dial this node at: its own entry in the configuration when it has one
 * (the address the cluster was told), else the listen address. */
static const char *advertised_address(pnode *n)
{
    snprintf(n->advertise, sizeof(n->advertise), "%s", n->opts.listen);
    praft_status *st = malloc(sizeof(*st));
    if (st != NULL) {
        praft_status_get(n->raft, st);
        const praft_member *self = praft_config_find(&st->config, n->opts.id);
        if (self != NULL && self->address[0] != '\0') {
            snprintf(n->advertise, sizeof(n->advertise), "%s", self->address);
        }
        free(st);
    }
    return n->advertise;
}

int pnode_start(const pnode_options *opts, pnode **out, char *err, size_t err_cap)
{
    *out = NULL;
    say(err, err_cap, "%s", "");
    int rc = check_options(opts, err, err_cap);
    if (rc != 0) {
        return rc;
    }
    pnode *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return PT_ENOMEM;
    }
    n->opts = *opts;
    pthread_mutex_init(&n->store_mu, NULL);
    pthread_mutex_init(&n->writer_mu, NULL);
    pthread_cond_init(&n->writer_cv, NULL);
    pthread_mutex_init(&n->inbox_mu, NULL);
    pthread_mutex_init(&n->status_mu, NULL);
    pthread_mutex_init(&n->tls_mu, NULL);
    pnode__metrics_init(&n->metrics);
    pnode__requests_init(n);
    pnode__streams_init(n);
    n->no_leader_since_ms = pnode_now_ms(); /* no leader is known at start */
    n->no_leader_since_wall = pnode_wall_ms();

    /* Before anything is written: a mistake in the TLS files must leave the data directory
     * as it was. */
    rc = tls_setup(n, err, err_cap);
    if (rc != 0) {
        goto fail;
    }
    if (n->tls == NULL) {
        PT_WARN("node %llu runs WITHOUT TLS (--insecure): anyone who reaches %s can read and "
                "change the platoon and the cluster",
                (unsigned long long)opts->id, opts->listen);
    }
    rc = open_store(n, err, err_cap);
    if (rc != 0) {
        goto fail;
    }
    bool has_snap = false;
    praft_snapshot_meta *snap = calloc(1, sizeof(*snap));
    if (snap == NULL) {
        rc = PT_ENOMEM;
        goto fail;
    }
    pstore_snapshot_current(n->store, &has_snap, snap);
    if (has_snap) {
        rc = pnode__restore_from(n, snap, false);
        if (rc != 0) {
            say(err, err_cap, "data directory %s: cannot restore snapshot %llu: %s", opts->data_dir,
                (unsigned long long)snap->index, pt_strerror(rc));
            free(snap);
            goto fail;
        }
    }
    free(snap);

    pstore_raft_storage(n->store, &n->store_view);
    praft_storage locked = {
        .ctx = n,
        .initial_state = v_initial_state,
        .first_index = v_first_index,
        .last_index = v_last_index,
        .term = v_term,
        .entries = v_entries,
        .snapshot_read = v_snapshot_read,
    };
    praft_options ro;
    praft_options_init(&ro, opts->id);
    ro.election_ticks = opts->election_ticks;
    ro.heartbeat_ticks = opts->heartbeat_ticks;
    ro.lease_reads = opts->lease_reads;
    /* Different nodes must draw different election timeouts, and a restarted node should not
     * replay its previous draws: mix the id with the wall clock. */
    ro.seed = opts->id * UINT64_C(0x9E3779B97F4A7C15) ^ pnode_wall_ms();
    rc = praft_new(&ro, &locked, &n->raft);
    if (rc != 0) {
        say(err, err_cap, "data directory %s: the log cannot be loaded: %s (%s)", opts->data_dir,
            pt_strerror(rc), pstore_last_error(n->store));
        goto fail;
    }

    const char *recorded = advertised_address(n);
    if (!pnode__listen_serves(opts->listen, recorded)) {
        say(err, err_cap,
            "the listen address %s does not serve %s, this node's address recorded in the "
            "cluster: listen there again; to move a node to a new address, add a new node at "
            "that address and remove this one (docs/operations.md, \"Moving a node\")",
            opts->listen, recorded);
        rc = PT_EINVAL;
        goto fail;
    }

    rc = pnet_mailbox_new(&n->mailbox);
    if (rc != 0) {
        goto fail;
    }
    pnet_transport_options to;
    pnet_transport_options_init(&to);
    to.listen_address = n->opts.listen;
    to.advertise_address = advertised_address(n);
    to.mailbox = n->mailbox;
    to.node_id = n->opts.id;
    to.tls = n->tls;
    to.io_threads = (int)n->opts.io_threads;
    to.max_request_bytes = n->opts.max_request_bytes;
    to.max_streams_per_connection = n->opts.max_streams_per_connection;
    to.max_unread_bytes_per_connection = n->opts.max_unread_bytes_per_connection;
    to.max_unread_bytes = n->opts.max_unread_bytes;
    to.send_timeout_ms = n->opts.send_timeout_ms;
    to.handshake_timeout_ms = n->opts.handshake_timeout_ms;
    to.max_idle_ms = n->opts.max_idle_ms;
    to.transport_memory_bytes = n->opts.transport_memory_bytes;
    /* Every method the node will serve is known now: registered with gRPC before the server
     * starts, its calls come with their request (transport.h). */
    const char *names[PNODE_MAX_METHODS + 16];
    size_t n_names = pnode__admin_names(names, sizeof(names) / sizeof(names[0]));
    n_names += pnode__health_names(names + n_names, sizeof(names) / sizeof(names[0]) - n_names);
    for (size_t i = 0; i < n->opts.n_methods && n_names < sizeof(names) / sizeof(names[0]); i++) {
        names[n_names++] = n->opts.methods[i].name;
    }
    to.methods = names;
    to.n_methods = n_names;
    rc = pnet_transport_new(&to, &n->net);
    if (rc != 0) {
        say(err, err_cap, "cannot listen on %s: %s", opts->listen,
            rc == PT_EIO ? "address in use or not available" : pt_strerror(rc));
        goto fail;
    }
    /* Before any method is served: every request's role is checked, and its method's prepare
     * function run, on the network thread that received it. */
    pnet_transport_set_prepare(n->net, pnode__prepare_call, n);
    pnode__admin_register(n);
    pnode__health_register(n);
    for (size_t i = 0; i < n->opts.n_methods; i++) {
        pnet_transport_register_method(n->net, n->opts.methods[i].name, &n->opts.methods[i]);
    }
    pnode__refresh_peers(n);

    rc = pnode__writer_start(n);
    if (rc != 0) {
        goto fail;
    }
    if (pthread_create(&n->loop_thread, NULL, pnode__loop_main, n) != 0) {
        rc = PT_ENOMEM;
        goto fail;
    }
    n->loop_started = true;
    PT_INFO("node %llu serving on %s (%s)", (unsigned long long)opts->id, opts->listen,
            n->tls != NULL ? "mutual TLS" : "plaintext, no authentication");
    *out = n;
    return 0;

fail:
    pnode__writer_stop(n);
    if (n->net != NULL) {
        pnet_transport_free(n->net);
        n->net = NULL;
    }
    undo_create(n);
    free_node(n);
    return rc;
}

void pnode_stop(pnode *n)
{
    if (n == NULL) {
        return;
    }
    /* The HTTP endpoint first: its scrapes read the transport, which goes below. */
    pthread_mutex_lock(&n->tls_mu);
    struct phttp *http = n->http;
    n->http = NULL;
    pthread_mutex_unlock(&n->tls_mu);
    phttp__stop(http);
    atomic_store(&n->stopping, true);
    if (n->loop_started) {
        pnet_mailbox_wake(n->mailbox);
        pthread_join(n->loop_thread, NULL);
    }
    /* A write in flight completes (what it makes durable stays so); nothing that depends on
     * it is sent by the loop, which is always safe. A write that failed and waits for its
     * retry is simply abandoned: nothing of it is durable. */
    while (pnode__writer_busy(n)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    pnode__requests_fail_all(n, PNODE_UNAVAILABLE, "the node is shutting down");
    pnode__streams_close_all(n);
    pthread_mutex_lock(&n->inbox_mu);
    pnode_request *inbox = n->inbox;
    n->inbox = NULL;
    pthread_mutex_unlock(&n->inbox_mu);
    while (inbox != NULL) {
        pnode_request *req = inbox;
        inbox = req->next;
        req->next = NULL;
        pnode_fail(req, PNODE_UNAVAILABLE, "the node is shutting down");
    }
    pnode__snapshot_join(n);
    pnode__writer_stop(n);
    const pnode_counters *c = &n->counters;
    PT_INFO("node %llu stopped; since start: %llu loop turns, %llu events, %llu readies, "
            "%llu writes of %llu entries, %llu entries applied",
            (unsigned long long)n->opts.id, (unsigned long long)c->loop_turns,
            (unsigned long long)c->events, (unsigned long long)c->readies,
            (unsigned long long)c->writes, (unsigned long long)c->entries_written,
            (unsigned long long)c->entries_applied);
    free_node(n);
}

void pnode_status_get(pnode *n, pnode_status *out)
{
    pthread_mutex_lock(&n->status_mu);
    *out = n->status;
    pthread_mutex_unlock(&n->status_mu);
}

int pnode_propose(pnode *n, const void *cmd, size_t len, uint32_t timeout_ms, uint8_t **result,
                  size_t *result_len)
{
    *result = NULL;
    *result_len = 0;
    if (atomic_load(&n->stopping)) {
        return PT_ESHUTDOWN;
    }
    struct internal_wait w;
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    pnode_request *req =
        pnode__request_new(n, NULL, NULL, cmd, len, pnode_now_ms() + (int64_t)timeout_ms, NULL, 0);
    if (req == NULL) {
        return PT_ENOMEM;
    }
    req->internal = &w;
    pthread_mutex_lock(&n->inbox_mu);
    req->next = n->inbox;
    n->inbox = req;
    pthread_mutex_unlock(&n->inbox_mu);
    pnet_mailbox_wake(n->mailbox);

    /* The loop answers every request by its deadline (or at stop), so this wait ends. */
    pthread_mutex_lock(&w.mu);
    while (!w.finished) {
        pthread_cond_wait(&w.cv, &w.mu);
    }
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    switch (w.code) {
    case PNODE_OK:
        *result = w.result;
        *result_len = w.result_len;
        return 0;
    case PNODE_FAILED_PRECONDITION:
        return PT_ENOTLEADER;
    case PNODE_RESOURCE_EXHAUSTED:
        return PT_ENOMEM;
    default:
        return atomic_load(&n->stopping) ? PT_ESHUTDOWN : PT_ETIMEDOUT;
    }
}
