/* pool_imap.c - pm_pool_imap / pm_pool_imap_unordered: lazy iterators with
 * a bound on the results in flight.
 *
 * Slots. An iterator may own up to `nslots` chunk slots of at most `cs`
 * items each, with nslots x cs <= max_inflight: a slot holds one chunk's
 * results and statuses (and, with an input callback, copies of its input
 * items). A free slot is filled with the next chunk of input and handed to
 * the pool as a task; the consumer drains finished slots item by item and,
 * once a slot is drained, frees it and immediately refills it. So input is
 * read only when a result has been taken out, and never more than
 * max_inflight items are read and not yet returned: that is the memory
 * bound Python's imap lacks.
 *
 * Memory follows the input, not the bound. Slots are made only when a
 * chunk needs one and none is free, and a slot's buffers grow (doubling)
 * to the largest chunk it has held, so 10 items cost 10 items' worth
 * whatever max_inflight or chunksize say; chunksize is capped at n for an
 * in[] array, and the default bound saturates instead of wrapping. An
 * allocation that fails once the iterator runs ends the input there: the
 * item that could not be read is reported with -ENOMEM, as an input
 * callback's error would be.
 *
 * Threads. Only the consumer (the thread calling pm_imap_next or creating
 * the iterator) reads input, dispatches chunks and drains slots; workers
 * only run a chunk's items into its slot. When a chunk's future is done
 * (run or cancelled), its hook marks the slot done under the iterator's
 * mutex, appends it to the ready list (unordered mode) and signals the
 * consumer. In ordered mode the consumer keeps its dispatched slots in a
 * list in chunk order and waits for the head to be done; in unordered mode
 * it takes whichever slot the ready list gives first. A slot's `next` link
 * serves one list at a time: free (consumer), dispatched (ordered,
 * consumer) or ready (unordered, under the mutex).
 *
 * On a process pool a chunk's items run in its proxy's worker process
 * (chunk_run_procs); pm_imap_free's cancel then takes effect between
 * requests to it, not between items.
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
    struct imap_slot *next;      /* on the free, dispatched or ready list */
    struct imap_slot *all_next;  /* every slot of the iterator */
    pm_future *fut;              /* the chunk's task (one ref is ours); NULL: none */
    size_t first, count;         /* input indexes first .. first+count */
    size_t ran;                  /* items run; the rest were cancelled */
    size_t pos;                  /* next item to return */
    int done;                    /* chunk finished or cancelled (it->mu) */
    uintptr_t in;                /* its input: the caller's array or inbuf */
    size_t cap;                  /* items the three buffers below hold */
    unsigned char *inbuf;        /* input callback mode: cap * in_size */
    unsigned char *out;          /* cap * out_size */
    int *status;                 /* cap */
} imap_slot;

struct pm_imap {
    pm_pool *pool;               /* we hold a reference */
    pm_map_spec spec;
    int ordered;
    size_t cs;                   /* items per chunk, at most */
    int grow;                    /* automatic chunks over an input callback */
    size_t nslots, nmade;        /* slots allowed, slots made */
    imap_slot *all;              /* every slot made (all_next) */
    pthread_mutex_t mu;          /* guards done, inflight, the ready list */
    pthread_cond_t cv;           /* a chunk became done */
    size_t inflight;             /* chunks dispatched and not done */
    imap_slot *ready, **ready_tail;   /* unordered: done slots, FIFO */
    _Atomic int cancelled;       /* set by pm_imap_free */
    /* consumer-only state */
    imap_slot *free_slots;       /* drained slots */
    size_t nbusy;                /* slots dispatched and not yet recycled */
    imap_slot *disp, **disp_tail;     /* ordered: dispatched, in chunk order */
    size_t next_item;            /* items read so far */
    imap_slot *cur;              /* slot being drained */
    int input_end, input_err;    /* input exhausted; its error, if any */
    size_t input_err_index;
    int ended;
    int live;
    pm__iter_link link;
};

/* ---- workers' side ---- */

static void chunk_fail(void *ctx, size_t i, int status)
{
    imap_slot *s = ctx;
    s->status[i] = status;
}

/* A chunk on a process pool: its items run in the proxy's worker. */
static void chunk_run_procs(imap_slot *s)
{
    pm_imap *it = s->it;
    const pm_map_spec *sp = &it->spec;
    pm__rmap m = {.fn = sp->fn, .arg = sp->arg, .arg_size = sp->arg_size,
                  .in_size = sp->in_size, .out_size = sp->out_size,
                  .fail = chunk_fail, .ctx = s, .stop = &it->cancelled};
    memset(s->status, 0, s->count * sizeof *s->status);
    s->ran = pm__procs_map(it->pool->ex, &m, (const void *)s->in, s->out, s->count);
}

static int chunk_run(void *arg, void **result_ret)
{
    (void)result_ret;
    imap_slot *s = arg;
    pm_imap *it = s->it;
    if (pm__pool_procs(it->pool)) {
        chunk_run_procs(s);
        return 0;
    }
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
    if (!it->ordered) {
        s->next = NULL;
        *it->ready_tail = s;
        it->ready_tail = &s->next;
    }
    it->inflight--;
    pthread_cond_signal(&it->cv);
    pthread_mutex_unlock(&it->mu);
}

/* ---- slots ---- */

/* a * b, or SIZE_MAX when that overflows. */
static size_t mul_sat(size_t a, size_t b)
{
    return b && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

/* Makes s's buffers hold at least `need` (<= cs) items, keeping their
 * contents: 0 or -ENOMEM (s unchanged, still usable at its old size). */
static int slot_reserve(pm_imap *it, imap_slot *s, size_t need)
{
    if (need <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 1;
    while (cap < need)
        cap = mul_sat(cap, 2);
    if (cap > it->cs)
        cap = it->cs;
    const size_t osz = it->spec.out_size, isz = it->spec.input ? it->spec.in_size : 0;
    size_t out_b = mul_sat(cap, osz), in_b = mul_sat(cap, isz);
    if (out_b == SIZE_MAX || in_b == SIZE_MAX || cap > SIZE_MAX / sizeof(int))
        return -ENOMEM;
    /* A grown buffer that is not used yet does no harm if a later one fails. */
    unsigned char *out = realloc(s->out, out_b ? out_b : 1);
    if (!out)
        return -ENOMEM;
    s->out = out;
    int *status = realloc(s->status, cap * sizeof(int));
    if (!status)
        return -ENOMEM;
    s->status = status;
    if (isz) {
        unsigned char *in = realloc(s->inbuf, in_b);
        if (!in)
            return -ENOMEM;
        s->inbuf = in;
    }
    s->cap = cap;
    return 0;
}

/* A free slot, made if none is free and fewer than nslots exist. NULL when
 * every slot is busy, or (*nomem set) when making one failed. */
static imap_slot *slot_get(pm_imap *it, int *nomem)
{
    imap_slot *s = it->free_slots;
    if (s) {
        it->free_slots = s->next;
        return s;
    }
    if (it->nmade == it->nslots)
        return NULL;
    s = calloc(1, sizeof *s);
    if (!s) {
        *nomem = 1;
        return NULL;
    }
    s->it = it;
    s->all_next = it->all;
    it->all = s;
    it->nmade++;
    return s;
}

static void slot_put(pm_imap *it, imap_slot *s)
{
    s->next = it->free_slots;
    it->free_slots = s;
}

/* ---- the consumer's side ---- */

/* Ends the input at item `index` with error err. */
static void input_fail(pm_imap *it, size_t index, int err)
{
    it->input_end = 1;
    it->input_err = err;
    it->input_err_index = index;
}

/* Items for the next chunk: cs; or, automatic over an input callback (n
 * unknown), Pool's rule applied to the items read so far, ceil(read / (4 x
 * workers)) within 1 .. cs: the first 4 x workers chunks hold one item
 * each, so a short input still spreads over every worker and the first
 * results come at once, and chunks grow by about 1/(4 x workers) each
 * until cs (64) after 256 x workers items, so a long input pays the
 * per-chunk cost (a few microseconds) once per 64 items. */
static size_t chunk_want(const pm_imap *it)
{
    if (!it->grow)
        return it->cs;
    size_t w4 = (size_t)it->pool->workers * 4, read = it->next_item;
    size_t c = read / w4 + (read % w4 != 0);
    return c < 1 ? 1 : c > it->cs ? it->cs : c;
}

/* Reads up to chunk_want() items into s; returns how many. Updates the
 * input state. */
static size_t fill_input(pm_imap *it, imap_slot *s)
{
    const pm_map_spec *sp = &it->spec;
    size_t count = 0, want = chunk_want(it);
    if (!sp->input) {
        size_t left = sp->n - it->next_item;
        count = left < it->cs ? left : it->cs;
        if (slot_reserve(it, s, count)) {
            input_fail(it, it->next_item, -ENOMEM);
            return 0;
        }
        s->in = (uintptr_t)sp->in + it->next_item * sp->in_size;
        if (count == left)
            it->input_end = 1;
        return count;
    }
    while (count < want) {
        if (count == s->cap && slot_reserve(it, s, count + 1)) {
            input_fail(it, it->next_item + count, -ENOMEM);
            break;
        }
        int rc = sp->input(s->inbuf + count * sp->in_size, sp->input_arg);
        if (rc > 0) {
            count++;
            continue;
        }
        if (rc < 0)
            input_fail(it, it->next_item + count, rc);
        it->input_end = 1;
        break;
    }
    s->in = (uintptr_t)s->inbuf;
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
    it->nbusy++;
    if (it->ordered) {
        s->next = NULL;
        *it->disp_tail = s;
        it->disp_tail = &s->next;
    }
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

/* Fills free slots (made on demand) from the input. */
static void dispatch(pm_imap *it)
{
    while (!it->input_end) {
        int nomem = 0;
        imap_slot *s = slot_get(it, &nomem);
        if (!s) {
            if (nomem && it->nbusy == 0)     /* nothing would ever free one */
                input_fail(it, it->next_item, -ENOMEM);
            break;
        }
        size_t count = fill_input(it, s);
        if (count == 0) {
            slot_put(it, s);
            break;
        }
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
    it->nbusy--;
    slot_put(it, s);
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

/* The next slot to drain, taken off its list, or NULL; under it->mu.
 * *end is set when no slot will ever come. */
static imap_slot *ready_slot(pm_imap *it, int *end)
{
    imap_slot *s;
    if (it->ordered) {
        s = it->disp;
        if (!s) {
            *end = it->input_end;
            return NULL;
        }
        if (!s->done)
            return NULL;
        if (!(it->disp = s->next))
            it->disp_tail = &it->disp;
        return s;
    }
    s = it->ready;
    if (!s) {
        *end = it->inflight == 0 && it->input_end;
        return NULL;
    }
    if (!(it->ready = s->next))
        it->ready_tail = &it->ready;
    return s;
}

/* Sets it->cur to the next done slot: 1, or 0 at the end, or -ETIMEDOUT. */
static int next_slot(pm_imap *it, const pm__deadline *d)
{
    int rc = 0, end = 0;
    pthread_mutex_lock(&it->mu);
    for (;;) {
        if ((it->cur = ready_slot(it, &end)) != NULL) {
            rc = 1;
            break;
        }
        if (end)
            break;
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
    if (pm__pool_forked(it->pool))
        return -ECHILD;
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

/* The automatic chunk size (the largest, with an input callback): Pool's
 * ceil(n / (4 x workers)), at most 64 and, under an explicit bound, at
 * most bound / (4 x workers), so that 4 x workers chunks fit in it. */
static size_t auto_chunk(const pm_imap *it, size_t bound)
{
    const pm_map_spec *sp = &it->spec;
    const size_t w4 = (size_t)it->pool->workers * 4;
    size_t c = sp->input ? IMAP_AUTO_CHUNK_MAX : pm__auto_chunksize(sp->n, it->pool->workers);
    if (c > IMAP_AUTO_CHUNK_MAX)
        c = IMAP_AUTO_CHUNK_MAX;
    if (bound && c > bound / w4)
        c = bound / w4 ? bound / w4 : 1;
    return c;
}

/* Chunk size and slot count from the spec and the pool. The bound never
 * wraps (a chunksize of 2^61 x 4 x workers saturates) and, for an in[]
 * array, neither the chunk nor the bound exceeds n (> 0 here). */
static int imap_geometry(pm_imap *it)
{
    const pm_map_spec *sp = &it->spec;
    const size_t w4 = (size_t)it->pool->workers * 4;
    if (sp->out_size > SIZE_MAX / 8 || sp->in_size > SIZE_MAX / 8)
        return -EINVAL;
    size_t bound = sp->max_inflight ? sp->max_inflight : it->pool->imap_inflight;
    size_t c = sp->chunksize;
    if (!c) {
        c = auto_chunk(it, bound);
        it->grow = sp->input != NULL;
    }
    if (!sp->input && c > sp->n)
        c = sp->n;
    if (!bound)
        bound = mul_sat(w4, c);
    if (!sp->input && bound > sp->n)
        bound = sp->n;
    if (c > bound)
        c = bound;
    it->cs = c;
    it->nslots = bound / c;
    return 0;
}

static void imap_release(pm_imap *it)
{
    imap_slot *s = it->all;
    while (s) {
        imap_slot *next = s->all_next;
        if (s->fut)
            pm__future_unref(s->fut);
        free(s->inbuf);
        free(s->out);
        free(s->status);
        free(s);
        s = next;
    }
    free(it);
}

static int imap_new(pm_pool *pool, const pm_map_spec *spec, int ordered, pm_imap **it_ret)
{
    if (!pool || !it_ret || pm__spec_check(spec))
        return -EINVAL;
    if (!spec->input && spec->n && spec->in_size && !spec->in)
        return -EINVAL;
    if (pm__pool_forked(pool))
        return -ECHILD;
    if (atomic_load(&pool->ex->state) != PM__OPEN)
        return -EINVAL;
    pm_imap *it = calloc(1, sizeof *it);
    if (!it)
        return -ENOMEM;
    it->spec = *spec;
    it->ordered = ordered;
    it->pool = pool;
    it->ready_tail = &it->ready;
    it->disp_tail = &it->disp;
    int empty = !spec->input && spec->n == 0;
    int rc = empty ? 0 : imap_geometry(it);
    if (!rc)
        rc = pm__cond_init(&it->cv);
    if (rc) {
        imap_release(it);
        return rc;
    }
    pthread_mutex_init(&it->mu, NULL);
    atomic_init(&it->cancelled, 0);
    pm__pool_ref(pool);
    if (empty) {
        it->input_end = 1;
    } else {
        pm__pool_iter_add(pool, &it->link);
        it->live = 1;
        dispatch(it);
        if (it->input_err == -ENOMEM && it->next_item == 0) {   /* not one chunk */
            pm_imap_free(it);
            return -ENOMEM;
        }
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
    if (!it || pm__pool_forked(it->pool))
        return;                  /* in a forked child: abandoned, as its pool */
    atomic_store(&it->cancelled, 1);
    for (imap_slot *s = it->all; s; s = s->all_next)
        if (s->fut)
            pm__future_cancel(s->fut);     /* queued: done now */
    pthread_mutex_lock(&it->mu);
    while (it->inflight > 0)
        pthread_cond_wait(&it->cv, &it->mu);
    pthread_mutex_unlock(&it->mu);
    if (it->live)
        pm__pool_iter_remove(it->pool, &it->link);
    pm__pool_unref(it->pool);
    pthread_cond_destroy(&it->cv);
    pthread_mutex_destroy(&it->mu);
    imap_release(it);
}
