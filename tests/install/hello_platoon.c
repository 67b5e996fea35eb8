/*
 * The smallest program of the install tests that needs all of libplatoon: it creates a data
 * directory with the storage engine (LMDB), a vehicle state machine, and node options, then
 * releases them. Built outside the tree with `pkg-config --cflags --libs platoon` only.
 *   hello_platoon DIR    (DIR must not exist yet)
 */
#include <stdio.h>

#include <platoon/node.h>
#include <platoon/storage.h>
#include <platoon/vehicle.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: hello_platoon DIR\n");
        return 2;
    }
    pstore_options so;
    pstore_options_init(&so, 7, 1);
    so.create = true;
    pstore *store = NULL;
    char err[256];
    int rc = pstore_open(argv[1], &so, &store, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "hello_platoon: %s: %s\n", pt_error_name(rc), err);
        return 1;
    }
    uint64_t first = 0, last = 0;
    pstore_log_range(store, &first, &last);
    pstore_close(store);

    pveh_options vo;
    pveh_options_init(&vo);
    pveh_sm *sm = NULL;
    rc = pveh_sm_new(&vo, &sm);
    if (rc != 0) {
        fprintf(stderr, "hello_platoon: %s\n", pt_strerror(rc));
        return 1;
    }
    size_t vehicles = pveh_sm_vehicle_count(sm);
    pveh_sm_free(sm);

    pnode_options no;
    pnode_options_init(&no, 1);
    printf("hello_platoon: store log [%llu, %llu], %zu vehicles, node %llu\n",
           (unsigned long long)first, (unsigned long long)last, vehicles,
           (unsigned long long)no.id);
    return first == 1 && last == 0 && vehicles == 0 && no.id == 1 ? 0 : 1;
}
