/* test_pipeline_pool.c - pipelines on a pm_pool: one thread budget shared
 * with the pool's other work, per-worker state, and the pool's lifecycle
 * (closed, terminated mid-run, a run from one of its own workers). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pmap/pipeline.h>
#include <pmap/pool.h>
#include "testutil.h"

/* How many pieces of work (stages and tasks) run at once, at most. */
static atomic_int running, peak;

static void enter(void)
{
    int n = atomic_fetch_add(&running, 1) + 1;
    int p = atomic_load(&peak);
    while (n > p && !atomic_compare_exchange_weak(&peak, &p, n))
        ;
}

static void leave(void)
{
    atomic_fetch_sub(&running, 1);
}

static int busy_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    enter();
    usleep(200);
    c->value = c->len;
    leave();
    return 0;
}

static int busy_task(void *arg, void **result_ret)
{
    (void)arg;
    (void)result_ret;
    enter();
    usleep(300);
    leave();
    return 0;
}

/* A tree of n files of size bytes each under dir/src. */
static void make_tree(const char *dir, int n, int size)
{
    CU_ASSERT_EQUAL_FATAL(pm_test_sh("mkdir -p '%s/src' && cd '%s/src' && for i in $(seq 1 %d); do "
                                     "head -c %d /dev/urandom > f$i; done", dir, dir, n, size), 0);
}

typedef struct run_arg {
    pm_pipeline *pl;
    const char *path;
    int rc;
    pm_pipeline_stats st;
} run_arg;

static void *run_thread(void *arg)
{
    run_arg *a = arg;
    const char *paths[] = {a->path};
    a->rc = pm_pipeline_run(a->pl, paths, 1, &a->st);
    return NULL;
}

/* A pipeline and apply_async tasks on one pool of 2 workers: never more
 * than 2 pieces of work run at once, and both make progress. */
static void test_shared_budget(void)
{
    char *dir = pm_test_tmpdir();
    make_tree(dir, 60, 40000);
    pm_pool *pool;
    pm_pool_opts po = PM_POOL_OPTS_INIT;
    po.workers = 2;
    CU_ASSERT_EQUAL_FATAL(pm_pool_new(&po, &pool), 0);
    pm_pipeline_opts o = {.pool = pool, .chunk_size = 8192, .sink = PM_SINK_NONE};
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_jobs(pl), 2);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "busy", PM_STAGE_PARALLEL, busy_stage, NULL), 0);
    atomic_store(&peak, 0);
    char src[600];
    snprintf(src, sizeof src, "%s/src", dir);
    run_arg a = {.pl = pl, .path = src};
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, run_thread, &a), 0);
    enum { NT = 200 };
    pm_future *fs[NT];
    for (int i = 0; i < NT; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(pool, busy_task, NULL, &fs[i]), 0);
    CU_ASSERT_EQUAL(pm_wait_all(fs, NT, -1), 0);
    for (int i = 0; i < NT; i++) {
        CU_ASSERT_EQUAL(pm_future_status(fs[i]), 0);
        pm_future_free(fs[i]);
    }
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(a.rc, 0);
    CU_ASSERT_EQUAL(a.st.files_done, 60);
    CU_ASSERT_EQUAL(a.st.chunks, 60 * 5);
    CU_ASSERT(atomic_load(&peak) <= 2);
    CU_ASSERT(atomic_load(&peak) >= 1);
    pm_pipeline_free(pl);
    /* The pool outlives the pipeline and still works. */
    pm_future *f;
    CU_ASSERT_EQUAL(pm_pool_apply_async(pool, busy_task, NULL, &f), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, -1), 0);
    pm_future_free(f);
    pm_pool_free(pool);
    /* jobs must agree with the pool's workers. */
    CU_ASSERT_EQUAL_FATAL(pm_pool_new(&po, &pool), 0);
    o.pool = pool;
    o.jobs = 3;
    CU_ASSERT_EQUAL(pm_pipeline_new(&o, &pl), -EINVAL);
    o.jobs = 2;
    CU_ASSERT_EQUAL(pm_pipeline_new(&o, &pl), 0);
    pm_pipeline_free(pl);
    pm_pool_free(pool);
    pm_test_rmtree(dir);
    free(dir);
}

/* Per-worker state: made once per worker that runs a stage, handed to the
 * stages of that worker only, released at the end of the run. */
typedef struct wstate {
    unsigned worker;
    atomic_int uses;
} wstate;

static atomic_int inits, finis, wrong_state, fail_init;

static int w_init(void **state_ret, unsigned worker, void *arg)
{
    (void)arg;
    if (atomic_load(&fail_init))
        return -EMFILE;
    wstate *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->worker = worker;
    *state_ret = s;
    atomic_fetch_add(&inits, 1);
    return 0;
}

static void w_fini(void *state, unsigned worker, void *arg)
{
    (void)arg;
    wstate *s = state;
    if (s->worker != worker)
        atomic_fetch_add(&wrong_state, 1);
    atomic_fetch_add(&finis, 1);
    free(s);
}

static int state_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    wstate *s = c->worker_state;
    if (!s || s->worker != worker)
        atomic_fetch_add(&wrong_state, 1);
    else
        atomic_fetch_add(&s->uses, 1);
    return 0;
}

static int fail_count;
static char fail_msg[256];

static void count_errors(const pm_event *ev, void *arg)
{
    (void)arg;
    if (ev->kind == PM_EVENT_ERROR) {
        fail_count++;
        snprintf(fail_msg, sizeof fail_msg, "%s", ev->message);
    }
}

static void test_worker_state(void)
{
    char *dir = pm_test_tmpdir();
    make_tree(dir, 20, 30000);
    char src[600];
    snprintf(src, sizeof src, "%s/src", dir);
    const char *paths[] = {src};
    pm_pipeline_opts o = {.jobs = 3, .chunk_size = 4096, .sink = PM_SINK_NONE,
                          .worker_init = w_init, .worker_fini = w_fini,
                          .on_event = count_errors};
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "a", PM_STAGE_PARALLEL, state_stage, NULL), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "b", PM_STAGE_SERIAL_IN_ORDER, state_stage, NULL), 0);
    for (int round = 0; round < 2; round++) {      /* state is per run */
        atomic_store(&inits, 0);
        atomic_store(&finis, 0);
        atomic_store(&wrong_state, 0);
        CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, NULL), 0);
        CU_ASSERT(atomic_load(&inits) >= 1 && atomic_load(&inits) <= 3);
        CU_ASSERT_EQUAL(atomic_load(&finis), atomic_load(&inits));
        CU_ASSERT_EQUAL(atomic_load(&wrong_state), 0);
    }
    /* A failing init fails the files whose chunks needed it, with its error. */
    atomic_store(&fail_init, 1);
    atomic_store(&inits, 0);
    atomic_store(&finis, 0);
    fail_count = 0;
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, NULL), -EMFILE);
    CU_ASSERT_EQUAL(fail_count, 20);
    CU_ASSERT_EQUAL(atomic_load(&finis), 0);
    atomic_store(&fail_init, 0);
    pm_pipeline_free(pl);
    pm_test_rmtree(dir);
    free(dir);
}

/* The pool's lifecycle seen from a pipeline. */
static int run_from_task(void *arg, void **result_ret)
{
    run_arg *a = arg;
    (void)result_ret;
    const char *paths[] = {a->path};
    a->rc = pm_pipeline_run(a->pl, paths, 1, NULL);
    return 0;
}

static int slow_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)c;
    (void)arg;
    (void)worker;
    usleep(2000);
    return 0;
}

static void test_pool_lifecycle(void)
{
    char *dir = pm_test_tmpdir();
    make_tree(dir, 30, 100000);
    char src[600];
    snprintf(src, sizeof src, "%s/src", dir);
    pm_pool *pool;
    pm_pool_opts po = PM_POOL_OPTS_INIT;
    po.workers = 2;
    CU_ASSERT_EQUAL_FATAL(pm_pool_new(&po, &pool), 0);
    pm_pipeline_opts o = {.pool = pool, .chunk_size = 4096, .sink = PM_SINK_NONE};
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "slow", PM_STAGE_PARALLEL, slow_stage, NULL), 0);

    /* From one of the pool's own workers: refused, not a deadlock. */
    run_arg a = {.pl = pl, .path = src, .rc = 1};
    pm_future *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(pool, run_from_task, &a, &f), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, 30), 0);
    pm_future_free(f);
    CU_ASSERT_EQUAL(a.rc, -EDEADLK);

    /* Terminated mid-run: the run is cancelled and returns. */
    a.rc = 1;
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, run_thread, &a), 0);
    usleep(50000);
    CU_ASSERT_EQUAL(pm_pool_terminate(pool), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(a.rc, -ECANCELED);
    CU_ASSERT(a.st.files_done < 30);
    /* Afterwards the pool refuses runs. */
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, (const char *[]){src}, 1, NULL), -EINVAL);
    pm_pipeline_free(pl);
    pm_pool_join(pool);
    pm_pool_free(pool);

    /* A closed pool refuses a new run too. */
    CU_ASSERT_EQUAL_FATAL(pm_pool_new(&po, &pool), 0);
    o.pool = pool;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "slow", PM_STAGE_PARALLEL, slow_stage, NULL), 0);
    pm_pool_close(pool);
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, (const char *[]){src}, 1, NULL), -EINVAL);
    pm_pipeline_free(pl);
    pm_pool_join(pool);
    pm_pool_free(pool);
    pm_test_rmtree(dir);
    free(dir);
}

/* Per-file and per-chunk state managed by the pipeline. */
typedef struct fstate {
    uint64_t chunks, bytes;
    int freed;
} fstate;

static atomic_int state_frees, state_bad;

static int mark_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    uint64_t *cs = c->state;
    if (cs[0] != 0 || cs[1] != 0)          /* zeroed for every chunk */
        atomic_fetch_add(&state_bad, 1);
    cs[0] = c->seq * 3 + 1;
    cs[1] = c->len;
    return 0;
}

static int sum_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    uint64_t *cs = c->state;
    fstate *fs = c->file->state;
    if (cs[0] != c->seq * 3 + 1 || cs[1] != c->len || !fs)
        atomic_fetch_add(&state_bad, 1);
    else {
        fs->chunks++;
        fs->bytes += cs[1];
    }
    return 0;
}

static void fstate_free(void *state, void *arg)
{
    (void)arg;
    fstate *fs = state;
    if (fs->freed++)
        atomic_fetch_add(&state_bad, 1);
    atomic_fetch_add(&state_frees, 1);
}

static atomic_int events_ok;

static void check_state_event(const pm_event *ev, void *arg)
{
    (void)arg;
    const fstate *fs = ev->file ? ev->file->state : NULL;
    if (ev->kind == PM_EVENT_DONE && fs && !fs->freed && fs->bytes == ev->file->bytes_in &&
        fs->chunks == (ev->file->bytes_in + 4095) / 4096)
        atomic_fetch_add(&events_ok, 1);
}

static void test_file_and_chunk_state(void)
{
    char *dir = pm_test_tmpdir();
    make_tree(dir, 25, 50000);
    char src[600];
    snprintf(src, sizeof src, "%s/src", dir);
    const char *paths[] = {src};
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 4096, .sink = PM_SINK_NONE,
                          .file_state_size = sizeof(fstate), .file_state_free = fstate_free,
                          .chunk_state_size = 2 * sizeof(uint64_t),
                          .on_event = check_state_event};
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "mark", PM_STAGE_PARALLEL, mark_stage, NULL), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "sum", PM_STAGE_SERIAL_IN_ORDER, sum_stage, NULL), 0);
    atomic_store(&state_frees, 0);
    atomic_store(&state_bad, 0);
    atomic_store(&events_ok, 0);
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, NULL), 0);
    CU_ASSERT_EQUAL(atomic_load(&events_ok), 25);
    CU_ASSERT_EQUAL(atomic_load(&state_frees), 25);
    CU_ASSERT_EQUAL(atomic_load(&state_bad), 0);
    pm_pipeline_free(pl);
    pm_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    static const pm_test_case cases[] = {
        {"one thread budget: pipeline and apply_async on one pool", test_shared_budget},
        {"per-worker state", test_worker_state},
        {"pool closed, terminated mid-run, run from a worker", test_pool_lifecycle},
        {"per-file and per-chunk state", test_file_and_chunk_state},
        {NULL, NULL},
    };
    return pm_test_run("pipeline_pool", cases);
}
