/* The chunked copy-on-write vehicle map: order, lookups, splits and merges checked against a
 * plain sorted array, and frozen views that later changes never reach. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "platoon/vehicle_map.h"

static pveh_vehicle mk(uint64_t id, uint64_t rev)
{
    pveh_vehicle v = {.id = id, .latitude = 1, .longitude = 2, .speed = 3, .heading = 4};
    v.revision = rev;
    return v;
}

/* A reference model: the plain sorted array the map used to be. */
typedef struct model {
    pveh_vehicle *v;
    size_t n, cap;
} model;

static size_t model_lb(const model *md, uint64_t id)
{
    size_t i = 0;
    while (i < md->n && md->v[i].id < id) {
        i++;
    }
    return i;
}

static void model_put(model *md, const pveh_vehicle *v)
{
    size_t i = model_lb(md, v->id);
    if (i < md->n && md->v[i].id == v->id) {
        md->v[i] = *v;
        return;
    }
    if (md->n == md->cap) {
        md->cap = md->cap ? md->cap * 2 : 64;
        md->v = realloc(md->v, md->cap * sizeof(*md->v));
        assert_non_null(md->v);
    }
    memmove(&md->v[i + 1], &md->v[i], (md->n - i) * sizeof(*md->v));
    md->v[i] = *v;
    md->n++;
}

static bool model_remove(model *md, uint64_t id)
{
    size_t i = model_lb(md, id);
    if (i >= md->n || md->v[i].id != id) {
        return false;
    }
    memmove(&md->v[i], &md->v[i + 1], (md->n - i - 1) * sizeof(*md->v));
    md->n--;
    return true;
}

/* Every vehicle of @m equals @md's, in order, and every chunk is non-empty and in order. */
static void assert_same(const pveh_map *m, const model *md)
{
    assert_int_equal(m->n, md->n);
    size_t total = 0;
    for (size_t k = 0; k < m->nc; k++) {
        assert_true(m->c[k]->n >= 1 && m->c[k]->n <= PVEH_CHUNK_MAX);
        total += m->c[k]->n;
    }
    assert_int_equal(total, md->n);
    pveh_map_iter it;
    pveh__map_seek_after(m, 0, &it);
    for (size_t i = 0; i < md->n; i++) {
        const pveh_vehicle *v = pveh__map_next(&it);
        assert_non_null(v);
        assert_int_equal(v->id, md->v[i].id);
        assert_int_equal(v->revision, md->v[i].revision);
    }
    assert_null(pveh__map_next(&it));
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void random_operations_match_a_sorted_array(void **state)
{
    (void)state;
    pveh_map m;
    pveh__map_init(&m);
    model md = {0};
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (uint64_t step = 1; step <= 60000; step++) {
        uint64_t id = rnd(&seed) % 5000 + 1;
        /* Two phases: growth past several chunks, then mostly removals (merges). */
        bool grow = step < 30000 ? rnd(&seed) % 4 != 0 : rnd(&seed) % 4 == 0;
        assert_int_equal(pveh__map_reserve_one(&m), 0);
        if (grow) {
            pveh_vehicle v = mk(id, step);
            assert_int_equal(pveh__map_put(&m, &v), 0);
            model_put(&md, &v);
        } else {
            assert_int_equal(pveh__map_remove(&m, id), model_remove(&md, id));
        }
        if (step % 5000 == 0) {
            assert_same(&m, &md);
        }
    }
    assert_same(&m, &md);
    for (uint64_t id = 0; id <= 5001; id++) {
        size_t i = model_lb(&md, id);
        assert_int_equal(pveh__map_lower_bound(&m, id), i);
        const pveh_vehicle *v = pveh__map_find(&m, id);
        if (i < md.n && md.v[i].id == id) {
            assert_non_null(v);
            assert_int_equal(v->revision, md.v[i].revision);
        } else {
            assert_null(v);
        }
    }
    pveh__map_free(&m);
    free(md.v);
}

static void ascending_inserts_split_into_chunks_and_removals_merge_them(void **state)
{
    (void)state;
    pveh_map m;
    pveh__map_init(&m);
    size_t n = 10 * PVEH_CHUNK_MAX;
    for (uint64_t id = 1; id <= n; id++) {
        pveh_vehicle v = mk(id, id);
        assert_int_equal(pveh__map_put(&m, &v), 0);
    }
    assert_int_equal(m.n, n);
    assert_true(m.nc >= 10 && m.nc <= 20); /* halves at worst */
    assert_int_equal(pveh__map_last(&m)->id, n);
    for (uint64_t id = 1; id <= n; id++) {
        if (id % 100 != 0) {
            assert_int_equal(pveh__map_reserve_one(&m), 0);
            assert_true(pveh__map_remove(&m, id));
        }
    }
    assert_int_equal(m.n, n / 100);
    /* What is left (a hundredth) no longer spreads over many nearly empty chunks. */
    assert_true(m.nc <= 2);
    for (uint64_t id = 100; id <= n; id += 100) {
        assert_non_null(pveh__map_find(&m, id));
    }
    pveh__map_free(&m);
}

static void append_builds_full_chunks(void **state)
{
    (void)state;
    pveh_map m;
    pveh__map_init(&m);
    for (uint64_t id = 1; id <= 3 * PVEH_CHUNK_MAX + 1; id++) {
        pveh_vehicle v = mk(id * 2, 1);
        assert_int_equal(pveh__map_append(&m, &v), 0);
    }
    assert_int_equal(m.nc, 4);
    assert_int_equal(m.c[0]->n, PVEH_CHUNK_MAX);
    assert_null(pveh__map_find(&m, 3));
    assert_non_null(pveh__map_find(&m, 4));
    pveh__map_free(&m);
}

static void a_view_is_unchanged_by_later_writes(void **state)
{
    (void)state;
    pveh_map m;
    pveh__map_init(&m);
    model md = {0};
    for (uint64_t id = 10; id <= 30000; id += 10) {
        pveh_vehicle v = mk(id, 1);
        assert_int_equal(pveh__map_put(&m, &v), 0);
        model_put(&md, &v);
    }
    pveh_map view;
    assert_int_equal(pveh__map_freeze(&m, &view), 0);
    model frozen = {malloc(md.n * sizeof(*md.v)), md.n, md.n};
    memcpy(frozen.v, md.v, md.n * sizeof(*md.v));

    /* Replacements, insertions (splitting shared chunks), removals (emptying some chunks
     * entirely), and a second view in between. */
    uint64_t seed = 12345;
    pveh_map view2 = {0};
    for (uint64_t step = 2; step < 20000; step++) {
        uint64_t id = rnd(&seed) % 31000 + 1;
        assert_int_equal(pveh__map_reserve_one(&m), 0);
        if (step % 3 == 0) {
            assert_int_equal(pveh__map_remove(&m, id), model_remove(&md, id));
        } else {
            pveh_vehicle v = mk(id, step);
            assert_int_equal(pveh__map_put(&m, &v), 0);
            model_put(&md, &v);
        }
        if (step == 10000) {
            assert_int_equal(pveh__map_freeze(&m, &view2), 0);
        }
    }
    for (uint64_t id = 1; id <= 5000; id++) {
        assert_int_equal(pveh__map_reserve_one(&m), 0);
        pveh__map_remove(&m, id);
        model_remove(&md, id);
    }
    assert_same(&m, &md);
    assert_same(&view, &frozen);
    assert_int_equal(view2.n > 0, 1);

    /* The views outlive the live map. */
    pveh__map_free(&m);
    assert_same(&view, &frozen);
    pveh_map_iter it;
    pveh__map_seek_after(&view, 15000, &it);
    assert_int_equal(pveh__map_next(&it)->id, 15010);
    pveh__map_free(&view2);
    pveh__map_free(&view);
    free(md.v);
    free(frozen.v);
}

static void memory_is_shared_until_written(void **state)
{
    (void)state;
    pveh_map m;
    pveh__map_init(&m);
    for (uint64_t id = 1; id <= 8 * PVEH_CHUNK_MAX; id++) {
        pveh_vehicle v = mk(id, 1);
        assert_int_equal(pveh__map_append(&m, &v), 0);
    }
    assert_int_equal(m.nc, 8);
    pveh_map view;
    assert_int_equal(pveh__map_freeze(&m, &view), 0);
    for (size_t k = 0; k < 8; k++) {
        assert_ptr_equal(view.c[k], m.c[k]); /* nothing copied by the freeze */
        assert_int_equal(atomic_load(&m.c[k]->refs), 2);
    }

    /* One write copies its chunk only. */
    pveh_vehicle v = mk(3 * PVEH_CHUNK_MAX + 5, 7);
    assert_int_equal(pveh__map_reserve_one(&m), 0);
    assert_int_equal(pveh__map_put(&m, &v), 0);
    for (size_t k = 0; k < 8; k++) {
        if (k == 3) {
            assert_ptr_not_equal(view.c[k], m.c[k]);
            assert_int_equal(atomic_load(&m.c[k]->refs), 1);
            assert_int_equal(atomic_load(&view.c[k]->refs), 1);
        } else {
            assert_ptr_equal(view.c[k], m.c[k]);
        }
    }
    assert_int_equal(pveh__map_find(&m, v.id)->revision, 7);
    assert_int_equal(pveh__map_find(&view, v.id)->revision, 1);

    /* A second write to the same chunk copies nothing more. */
    pveh_chunk *mine = m.c[3];
    v.revision = 8;
    assert_int_equal(pveh__map_put(&m, &v), 0);
    assert_ptr_equal(m.c[3], mine);

    /* Releasing the view makes every chunk private again: writes go in place. */
    pveh__map_free(&view);
    pveh_chunk *first = m.c[0];
    v = mk(1, 9);
    assert_int_equal(pveh__map_put(&m, &v), 0);
    assert_ptr_equal(m.c[0], first);
    pveh__map_free(&m);
}

static void seek_after_positions_between_chunks(void **state)
{
    (void)state;
    pveh_map m;
    pveh__map_init(&m);
    for (uint64_t id = 1; id <= 3 * PVEH_CHUNK_MAX; id++) {
        pveh_vehicle v = mk(id * 3, 1);
        assert_int_equal(pveh__map_append(&m, &v), 0);
    }
    pveh_map_iter it;
    pveh__map_seek_after(&m, 3 * PVEH_CHUNK_MAX, &it); /* the last id of chunk 0 */
    assert_int_equal(pveh__map_next(&it)->id, 3 * (PVEH_CHUNK_MAX + 1));
    pveh__map_seek_after(&m, 3 * PVEH_CHUNK_MAX + 1, &it);
    assert_int_equal(pveh__map_next(&it)->id, 3 * (PVEH_CHUNK_MAX + 1));
    pveh__map_seek_after(&m, 9 * PVEH_CHUNK_MAX, &it);
    assert_null(pveh__map_next(&it));
    pveh__map_seek_after(&m, UINT64_MAX, &it);
    assert_null(pveh__map_next(&it));
    pveh_map empty;
    pveh__map_init(&empty);
    pveh__map_seek_after(&empty, 0, &it);
    assert_null(pveh__map_next(&it));
    assert_null(pveh__map_last(&empty));
    pveh_map empty_view;
    assert_int_equal(pveh__map_freeze(&empty, &empty_view), 0);
    assert_int_equal(empty_view.n, 0);
    pveh__map_free(&empty_view);
    pveh__map_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_operations_match_a_sorted_array),
        cmocka_unit_test(ascending_inserts_split_into_chunks_and_removals_merge_them),
        cmocka_unit_test(append_builds_full_chunks),
        cmocka_unit_test(a_view_is_unchanged_by_later_writes),
        cmocka_unit_test(memory_is_shared_until_written),
        cmocka_unit_test(seek_after_positions_between_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
