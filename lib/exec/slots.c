/* slots.c - execution slots: the executor's single thread budget (see
 * exec.h and exec_threads.c for who holds them).
 *
 * The count of free slots is an atomic integer, so taking and giving back a
 * slot when some are free costs one compare-and-swap; only a thread that
 * has to wait touches the mutex and condition variable. The lost-wake-up
 * race between a sleeper and a giver is closed Dekker-style with
 * sequentially consistent atomics: the sleeper increments `sleepers` and
 * then re-reads `free` under the mutex; the giver adds to `free` and then
 * reads `sleepers`, and broadcasts under the mutex if it is non-zero. One
 * of the two always sees the other's write.
 *
 * Abort (terminate). A map waiting for a slot would otherwise wait for the
 * running tasks to end, however long they take. pm__slots_abort sets
 * `aborted` and broadcasts under the mutex; a map checks `aborted` under
 * the mutex before each sleep, so it either sees the flag or is asleep
 * when the broadcast comes.
 */
#include "exec/exec.h"

int pm__slots_init(pm__slots *s, int total)
{
    atomic_init(&s->free, total);
    atomic_init(&s->hungry, 0);
    atomic_init(&s->sleepers, 0);
    atomic_init(&s->aborted, 0);
    s->total = total;
    int rc = pthread_mutex_init(&s->mu, NULL);
    if (rc)
        return -rc;
    rc = pm__cond_init(&s->cv);
    if (rc)
        pthread_mutex_destroy(&s->mu);
    return rc;
}

void pm__slots_destroy(pm__slots *s)
{
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

int pm__slots_try_take(pm__slots *s, int max)
{
    int v = atomic_load(&s->free);
    while (v > 0) {
        int k = v < max ? v : max;
        if (atomic_compare_exchange_weak(&s->free, &v, v - k))
            return k;
    }
    return 0;
}

static int worker_may_take(pm__slots *s)
{
    return atomic_load(&s->hungry) == 0 && pm__slots_try_take(s, 1) == 1;
}

void pm__slots_take_worker(pm__slots *s)
{
    if (PM__LIKELY(worker_may_take(s)))
        return;
    pthread_mutex_lock(&s->mu);
    atomic_fetch_add(&s->sleepers, 1);
    while (!worker_may_take(s))
        pthread_cond_wait(&s->cv, &s->mu);
    atomic_fetch_sub(&s->sleepers, 1);
    pthread_mutex_unlock(&s->mu);
}

int pm__slots_take_map(pm__slots *s, int max)
{
    int k = pm__slots_try_take(s, max);
    if (PM__LIKELY(k > 0))
        return k;
    pthread_mutex_lock(&s->mu);
    atomic_fetch_add(&s->hungry, 1);
    atomic_fetch_add(&s->sleepers, 1);
    while ((k = pm__slots_try_take(s, max)) == 0 && !atomic_load(&s->aborted))
        pthread_cond_wait(&s->cv, &s->mu);
    atomic_fetch_sub(&s->sleepers, 1);
    atomic_fetch_sub(&s->hungry, 1);
    /* Workers held back by our hunger may take what is left now. */
    if (atomic_load(&s->sleepers) > 0)
        pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return k;
}

void pm__slots_abort(pm__slots *s)
{
    atomic_store(&s->aborted, 1);
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void pm__slots_give(pm__slots *s, int k)
{
    atomic_fetch_add(&s->free, k);
    if (atomic_load(&s->sleepers) > 0) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

void pm__slots_wait_idle(pm__slots *s)
{
    if (atomic_load(&s->free) == s->total)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_fetch_add(&s->sleepers, 1);
    while (atomic_load(&s->free) != s->total)
        pthread_cond_wait(&s->cv, &s->mu);
    atomic_fetch_sub(&s->sleepers, 1);
    pthread_mutex_unlock(&s->mu);
}
