/* sync.c - waiting primitives shared by the executor, the pool and the
 * futures: deadlines, futex(2) waits, monotonic condition variables. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/sync.h"

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

int64_t pm__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double pm__now(void)
{
    return (double)pm__now_ns() / 1e9;
}
