/* sync.h - waiting primitives shared by the executor, the pool and the
 * futures (core/sync.c), and small helpers for lock-free code. */
#ifndef PM_CORE_SYNC_H
#define PM_CORE_SYNC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define PM__LIKELY(x) __builtin_expect(!!(x), 1)
#define PM__UNLIKELY(x) __builtin_expect(!!(x), 0)

/* An absolute CLOCK_MONOTONIC deadline, or none (forever). */
typedef struct pm__deadline {
    int forever;
    struct timespec at;
} pm__deadline;

pm__deadline pm__deadline_in(double timeout);
int pm__deadline_passed(const pm__deadline *d);

/* futex(2) on a 32-bit word: wait while *word == val (until woken, a
 * spurious wake-up, or the deadline: -ETIMEDOUT), wake up to n waiters. */
int pm__futex_wait(_Atomic uint32_t *word, uint32_t val, const pm__deadline *d);
void pm__futex_wake(_Atomic uint32_t *word, int n);

/* A condition variable on CLOCK_MONOTONIC, and a timed wait on it that
 * returns -ETIMEDOUT once d has passed (0 otherwise, spurious included). */
int pm__cond_init(pthread_cond_t *cv);
int pm__cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu, const pm__deadline *d);

/* The one clock: CLOCK_MONOTONIC in nanoseconds and in seconds. */
int64_t pm__now_ns(void);
double pm__now(void);

static inline void pm__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#endif
