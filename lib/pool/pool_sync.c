/* pool_sync.c - waiting primitives of the pool: deadlines, futex(2) waits,
 * monotonic condition variables, and the execution-slot semaphore.
 *
 * Execution slots are the pool's single thread budget (see pool.c for who
 * holds them). The count of free slots is an atomic integer, so taking and
 * giving back a slot when some are free costs one compare-and-swap; only a
 * thread that has to wait touches the mutex and condition variable. The
 * lost-wake-up race between a sleeper and a giver is closed Dekker-style
 * with sequentially consistent atomics: the sleeper increments `sleepers`
 * and then re-reads `free` under the mutex; the giver adds to `free` and
 * then reads `sleepers`, and broadcasts under the mutex if it is non-zero.
 * One of the two always sees the other's write.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pool_internal.h"

pm__deadline pm__deadline_in(double timeout)
{
    pm__deadline d = {.forever = 1};
    if (!(timeout >= 0) || timeout > 1e9)      /* negative, NaN, huge: forever */
        return d;
    d.forever = 0;
    clock_gettime(CLOCK_MONOTONIC, &d.at);
    time_t whole = (time_t)timeout;             /* truncation = floor for >= 0 */
    d.at.tv_sec += whole;
    d.at.tv_nsec += (long)((timeout - (double)whole) * 1e9);
    if (d.at.tv_nsec >= 1000000000L) {
        d.at.tv_sec++;
        d.at.tv_nsec -= 1000000000L;
    }
    return d;
}

int pm__deadline_passed(const pm__deadline *d)
{
    if (d->forever)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > d->at.tv_sec ||
           (now.tv_sec == d->at.tv_sec && now.tv_nsec >= d->at.tv_nsec);
}

int pm__futex_wait(_Atomic uint32_t *word, uint32_t val, const pm__deadline *d)
{
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time. */
    const struct timespec *at = d && !d->forever ? &d->at : NULL;
    long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET_PRIVATE,
                      val, at, NULL, FUTEX_BITSET_MATCH_ANY);
    if (rc < 0 && errno == ETIMEDOUT)
        return -ETIMEDOUT;
    return 0;     /* woken, value changed (EAGAIN) or interrupted (EINTR) */
}

void pm__futex_wake(_Atomic uint32_t *word, int n)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

int pm__cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc)
        return -rc;
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    rc = pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
    return -rc;
}

int pm__cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu, const pm__deadline *d)
{
    if (d->forever) {
        pthread_cond_wait(cv, mu);
        return 0;
    }
    return pthread_cond_timedwait(cv, mu, &d->at) == ETIMEDOUT ? -ETIMEDOUT : 0;
}

/* ---- execution slots ---- */

int pm__slots_init(pm__slots *s, int total)
{
    atomic_init(&s->free, total);
    atomic_init(&s->hungry, 0);
    atomic_init(&s->sleepers, 0);
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
    while ((k = pm__slots_try_take(s, max)) == 0)
        pthread_cond_wait(&s->cv, &s->mu);
    atomic_fetch_sub(&s->sleepers, 1);
    atomic_fetch_sub(&s->hungry, 1);
    /* Workers held back by our hunger may take what is left now. */
    if (atomic_load(&s->sleepers) > 0)
        pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return k;
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
