/* pool_imap.c - pm_pool_imap / pm_pool_imap_unordered: lazy iterators with
 * a bound on the results in flight.
 *
 * Slots. An iterator owns `nslots` chunk slots of `cs` items each, with
 * nslots x cs <= max_inflight: a slot holds one chunk's results and
 * statuses (and, with an input callback, copies of its input items). A free
 * slot is filled with the next chunk of input and handed to the pool as a
 * task; the consumer drains finished slots item by item and, once a slot is
 * drained, frees it and immediately refills it. So input is read only when
 * a result has been taken out, and never more than max_inflight items are
 * read and not yet returned: that is the memory bound Python's imap lacks.
 *
 * Threads. Only the consumer (the thread calling pm_imap_next or creating
 * the iterator) reads input, dispatches chunks and drains slots; workers
 * only run a chunk's items into its slot. When a chunk's future is done
 * (run or cancelled), its hook marks the slot done under the iterator's
 * mutex, queues it on the ready FIFO (unordered mode) and signals the
 * consumer. In ordered mode the consumer waits for chunk numbers in
 * sequence (by_chunk maps a chunk number modulo nslots to its slot); in
 * unordered mode it takes whichever slot the ready FIFO gives first.
 *
 * Ending early. pm_imap_free sets `cancelled` (running chunks stop after
 * their current item), cancels the chunks still queued, and waits until no
 * chunk is in flight before freeing the slots. A terminated pool cancels
 * the queued chunks itself and refuses new ones; the consumer reports the
 * first item that did not run as -ECANCELED and stops.
 *
 * While an iterator may still submit chunks it is registered with the pool
 * ("live"), so that closed workers stay until it is done or freed.
 * Lock order: the iterator mutex is never held while calling into the pool.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pmap/pool.h>

#include "pool_internal.h"

#define IMAP_AUTO_CHUNK_MAX 64

typedef struct imap_slot {
    struct pm_imap *it;
    pm_future *fut;              /* the chunk's task (one ref is ours); NULL: free */
    size_t first, count;         /* input indexes first .. first+count */
    size_t ran;                  /* items run; the rest were cancelled */
    size_t pos;                  /* next item to return */
    int done;                    /* chunk finished or cancelled (it->mu) */
    uintptr_t in;                /* its input: the caller's array or inbuf */
    unsigned char *inbuf;        /* input callback mode: cs * in_size */
    unsigned char *out;          /* cs * out_size */
    int *status;                 /* cs */
} imap_slot;

struct pm_imap {
    pm_pool *pool;               /* we hold a reference */
    pm_map_spec spec;
    int ordered;
    size_t cs, nslots;
    imap_slot *slots;
    pthread_mutex_t mu;          /* guards done, inflight, the ready FIFO */
    pthread_cond_t cv;           /* a chunk became done */
    size_t inflight;             /* chunks dispatched and not done */
    size_t *ready;               /* unordered: done slots, FIFO ring */
    size_t ready_head, ready_len;
    _Atomic int cancelled;       /* set by pm_imap_free */
    /* consumer-only state */
    size_t *free_slots, nfree;
    size_t *by_chunk;            /* ordered: chunk % nslots -> slot */
    size_t next_item;            /* items read so far */
    size_t next_chunk;           /* chunks dispatched so far */
    size_t consume_chunk;        /* ordered: next chunk to drain */
    imap_slot *cur;              /* slot being drained */
    int input_end, input_err;    /* input exhausted; its error, if any */
    size_t input_err_index;
    int ended;
    int live;
    pm__iter_link link;
    void *mem;                   /* slot buffers */
};

/* ---- workers' side ---- */

static int chunk_run(void *arg, void **result_ret)
{
    (void)result_ret;
    imap_slot *s = arg;
    pm_imap *it = s->it;
    const pm_map_fn fn = it->spec.fn;
    void *const farg = it->spec.arg;
    const size_t isz = it->spec.in_size, osz = it->spec.out_size;
    const uintptr_t out = (uintptr_t)s->out;
    size_t i;
    for (i = 0; i < s->count; i++) {
        if (atomic_load_explicit(&it->cancelled, memory_order_relaxed) ||
            atomic_load_explicit(&it->pool->ex->state, memory_order_relaxed) == PM__TERMINATED)
            break;
        s->status[i] = fn((const void *)(s->in + i * isz), (void *)(out + i * osz), farg);
    }
    s->ran = i;
    return 0;
}

static void chunk_done(pm_future *f, void *arg)
{
    (void)f;
    imap_slot *s = arg;
    pm_imap *it = s->it;
    pthread_mutex_lock(&it->mu);
    s->done = 1;
    if (!it->ordered)
        it->ready[(it->ready_head + it->ready_len++) % it->nslots] = (size_t)(s - it->slots);
    it->inflight--;
    pthread_cond_signal(&it->cv);
    pthread_mutex_unlock(&it->mu);
}

/* ---- the consumer's side ---- */

/* Reads up to cs items into s; returns how many. Updates the input state. */
static size_t fill_input(pm_imap *it, imap_slot *s)
{
    const pm_map_spec *sp = &it->spec;
    size_t count = 0;
    if (!sp->input) {
        size_t left = sp->n - it->next_item;
        count = left < it->cs ? left : it->cs;
        s->in = (uintptr_t)sp->in + it->next_item * sp->in_size;
        if (count == left)
            it->input_end = 1;
        return count;
    }
    s->in = (uintptr_t)s->inbuf;
    while (count < it->cs) {
        int rc = sp->input(s->inbuf + count * sp->in_size, sp->input_arg);
        if (rc > 0) {
            count++;
            continue;
        }
        it->input_end = 1;
        if (rc < 0) {
            it->input_err = rc;
            it->input_err_index = it->next_item + count;
        }
        break;
    }
    return count;
}

/* Queues slot s (filled with count items) as a task. */
static void submit_slot(pm_imap *it, imap_slot *s, size_t count)
{
    s->first = it->next_item;
    s->count = count;
    s->pos = s->ran = 0;
    s->done = 0;
    it->next_item += count;
    if (it->ordered)
        it->by_chunk[it->next_chunk % it->nslots] = (size_t)(s - it->slots);
    it->next_chunk++;
    pthread_mutex_lock(&it->mu);
    it->inflight++;
    pthread_mutex_unlock(&it->mu);
    pm_future *f = pm__future_new(chunk_run, s, 2);    /* ours and the queue's */
    if (!f) {
        for (size_t i = 0; i < count; i++)
            s->status[i] = -ENOMEM;
        s->ran = count;
        chunk_done(NULL, s);
        return;
    }
    f->hook = chunk_done;
    f->hook_arg = s;
    s->fut = f;
    if (pm__pool_submit(it->pool, &f, 1, 1)) {    /* terminated */
        pm__future_cancel(f);
        pm__future_unref(f);
    }
}

/* Fills every free slot from the input. */
static void dispatch(pm_imap *it)
{
    while (it->nfree > 0 && !it->input_end) {
        imap_slot *s = &it->slots[it->free_slots[it->nfree - 1]];
        size_t count = fill_input(it, s);
        if (count == 0)
            break;
        it->nfree--;
        submit_slot(it, s, count);
    }
    if (it->input_end && it->live) {
        pm__pool_iter_remove(it->pool, &it->link);
        it->live = 0;
    }
}

static void recycle(pm_imap *it, imap_slot *s)
{
    if (s->fut) {
        pm__future_unref(s->fut);
        s->fut = NULL;
    }
    it->free_slots[it->nfree++] = (size_t)(s - it->slots);
}

/* Takes the next item of the current slot: 1 with an item, 0 when the slot
 * is drained (it is recycled and refilled). */
static int take_item(pm_imap *it, void *out, size_t *index_ret, int *status_ret)
{
    imap_slot *s = it->cur;
    if (s->pos == s->count) {
        it->cur = NULL;
        recycle(it, s);
        dispatch(it);
        return 0;
    }
    size_t i = s->pos++;
    if (index_ret)
        *index_ret = s->first + i;
    if (i >= s->ran) {            /* cancelled: the pool was terminated */
        *status_ret = -ECANCELED;
        it->ended = 1;
        return 1;
    }
    *status_ret = s->status[i];
    if (s->status[i] == 0 && it->spec.out_size)
        memcpy(out, s->out + i * it->spec.out_size, it->spec.out_size);
    return 1;
}

/* Sets it->cur to the next done slot: 1, or 0 at the end, or -ETIMEDOUT. */
static int next_slot(pm_imap *it, const pm__deadline *d)
{
    int rc = 0;
    pthread_mutex_lock(&it->mu);
    for (;;) {
        if (it->ordered) {
            if (it->consume_chunk == it->next_chunk && it->input_end)
                break;
            imap_slot *s = &it->slots[it->by_chunk[it->consume_chunk % it->nslots]];
            if (it->consume_chunk < it->next_chunk && s->done) {
                it->cur = s;
                it->consume_chunk++;
                rc = 1;
                break;
            }
        } else {
            if (it->ready_len > 0) {
                it->cur = &it->slots[it->ready[it->ready_head]];
                it->ready_head = (it->ready_head + 1) % it->nslots;
                it->ready_len--;
                rc = 1;
                break;
            }
            if (it->inflight == 0 && it->input_end)
                break;
        }
        if (pm__cond_wait(&it->cv, &it->mu, d)) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&it->mu);
    return rc;
}

int pm_imap_next(pm_imap *it, void *out, size_t *index_ret, int *status_ret,
                 double timeout)
{
    if (!it || !status_ret)
        return -EINVAL;
    pm__deadline d = pm__deadline_in(timeout);
    while (!it->ended) {
        if (it->cur) {
            if (take_item(it, out, index_ret, status_ret))
                return 1;
            continue;
        }
        int rc = next_slot(it, &d);
        if (rc < 0)
            return rc;
        if (rc == 0) {            /* everything returned */
            it->ended = 1;
            if (it->input_err) {
                if (index_ret)
                    *index_ret = it->input_err_index;
                *status_ret = it->input_err;
                return 1;
            }
        }
    }
    return 0;
}

/* ---- creation and teardown ---- */

static size_t align16(size_t x)
{
    return (x + 15) & ~(size_t)15;
}

/* Chunk size and slot count from the spec and the pool. */
static int imap_geometry(pm_pool *pool, const pm_map_spec *sp, size_t *cs, size_t *nslots)
{
    size_t c = sp->chunksize;
    if (!c) {
        c = sp->input ? 1 : pm__auto_chunksize(sp->n, pool->workers);
        if (c > IMAP_AUTO_CHUNK_MAX)
            c = IMAP_AUTO_CHUNK_MAX;
    }
    size_t bound = sp->max_inflight ? sp->max_inflight : pool->imap_inflight;
    if (!bound)
        bound = (size_t)pool->workers * 4 * c;
    if (c > bound)
        c = bound;
    *cs = c;
    *nslots = bound / c;
    /* Absurd sizes would overflow the buffer arithmetic (imap_alloc). */
    if (sp->out_size > SIZE_MAX / 8 || sp->in_size > SIZE_MAX / 8)
        return -EINVAL;
    return 0;
}

static int imap_alloc(pm_imap *it)
{
    size_t ns = it->nslots, cs = it->cs;
    /* Sizes are below SIZE_MAX / 8 (imap_geometry), so the sum is safe. */
    if (cs > SIZE_MAX / 8 / (it->spec.out_size + it->spec.in_size + sizeof(int)))
        return -ENOMEM;
    size_t out_b = align16(cs * it->spec.out_size), st_b = align16(cs * sizeof(int));
    size_t in_b = it->spec.input ? align16(cs * it->spec.in_size) : 0;
    size_t slot_b = out_b + st_b + in_b;
    if (ns > (SIZE_MAX - 1) / slot_b)
        return -ENOMEM;
    it->slots = calloc(ns, sizeof *it->slots);
    it->free_slots = calloc(ns, sizeof(size_t));
    it->by_chunk = calloc(ns, sizeof(size_t));
    it->ready = calloc(ns, sizeof(size_t));
    it->mem = malloc(ns * slot_b + 1);
    if (!it->slots || !it->free_slots || !it->by_chunk || !it->ready || !it->mem)
        return -ENOMEM;
    unsigned char *p = it->mem;
    for (size_t i = 0; i < ns; i++) {
        imap_slot *s = &it->slots[i];
        s->it = it;
        s->out = p;
        s->status = (int *)(void *)(p + out_b);
        s->inbuf = in_b ? p + out_b + st_b : NULL;
        p += slot_b;
        it->free_slots[i] = ns - 1 - i;     /* slot 0 is used first */
    }
    it->nfree = ns;
    return 0;
}

static void imap_release(pm_imap *it)
{
    free(it->slots);
    free(it->free_slots);
    free(it->by_chunk);
    free(it->ready);
    free(it->mem);
    free(it);
}

static int imap_new(pm_pool *pool, const pm_map_spec *spec, int ordered, pm_imap **it_ret)
{
    if (!pool || !it_ret || pm__spec_check(spec))
        return -EINVAL;
    if (!spec->input && spec->n && spec->in_size && !spec->in)
        return -EINVAL;
    if (atomic_load(&pool->ex->state) != PM__OPEN)
        return -EINVAL;
    pm_imap *it = calloc(1, sizeof *it);
    if (!it)
        return -ENOMEM;
    it->spec = *spec;
    it->ordered = ordered;
    int rc = imap_geometry(pool, spec, &it->cs, &it->nslots);
    if (!rc)
        rc = imap_alloc(it);
    if (!rc)
        rc = pm__cond_init(&it->cv);
    if (rc) {
        imap_release(it);
        return rc;
    }
    pthread_mutex_init(&it->mu, NULL);
    atomic_init(&it->cancelled, 0);
    it->pool = pool;
    pm__pool_ref(pool);
    if (!spec->input && spec->n == 0) {
        it->input_end = 1;
    } else {
        pm__pool_iter_add(pool, &it->link);
        it->live = 1;
        dispatch(it);
    }
    *it_ret = it;
    return 0;
}

int pm_pool_imap(pm_pool *pool, const pm_map_spec *spec, pm_imap **it_ret)
{
    return imap_new(pool, spec, 1, it_ret);
}

int pm_pool_imap_unordered(pm_pool *pool, const pm_map_spec *spec, pm_imap **it_ret)
{
    return imap_new(pool, spec, 0, it_ret);
}

void pm_imap_free(pm_imap *it)
{
    if (!it)
        return;
    atomic_store(&it->cancelled, 1);
    for (size_t i = 0; i < it->nslots; i++)
        if (it->slots[i].fut)
            pm__future_cancel(it->slots[i].fut);   /* queued: done now */
    pthread_mutex_lock(&it->mu);
    while (it->inflight > 0)
        pthread_cond_wait(&it->cv, &it->mu);
    pthread_mutex_unlock(&it->mu);
    for (size_t i = 0; i < it->nslots; i++)
        if (it->slots[i].fut)
            pm__future_unref(it->slots[i].fut);
    if (it->live)
        pm__pool_iter_remove(it->pool, &it->link);
    pm__pool_unref(it->pool);
    pthread_cond_destroy(&it->cv);
    pthread_mutex_destroy(&it->mu);
    imap_release(it);
}
