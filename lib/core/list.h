/* list.h - intrusive lists, written once: a FIFO and a list kept in
 * sequence order (the reorder buffer of serial points and framing).
 *
 * Embed a pm__node (or pm__seqnode) in the struct that travels and get
 * the struct back with pm__container_of(). No allocation, no locking: the
 * owner of a list decides who may touch it (see each user's lock notes).
 */
#ifndef PM_CORE_LIST_H
#define PM_CORE_LIST_H

#include <stddef.h>
#include <stdint.h>

#define pm__container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

typedef struct pm__node {
    struct pm__node *next;
} pm__node;

/* ---- FIFO ---- */

typedef struct pm__fifo {
    pm__node *head, *tail;
} pm__fifo;

static inline int pm__fifo_empty(const pm__fifo *q)
{
    return q->head == NULL;
}

static inline void pm__fifo_push(pm__fifo *q, pm__node *n)
{
    n->next = NULL;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
}

static inline void pm__fifo_push_front(pm__fifo *q, pm__node *n)
{
    n->next = q->head;
    q->head = n;
    if (!q->tail)
        q->tail = n;
}

/* The oldest node, or NULL. */
static inline pm__node *pm__fifo_pop(pm__fifo *q)
{
    pm__node *n = q->head;
    if (n) {
        q->head = n->next;
        if (!q->head)
            q->tail = NULL;
    }
    return n;
}

/* Detaches every node at once: the chain from the oldest, NULL-terminated. */
static inline pm__node *pm__fifo_take_all(pm__fifo *q)
{
    pm__node *n = q->head;
    q->head = q->tail = NULL;
    return n;
}

/* Unlinks n if it is queued; 1 if it was. O(length). */
static inline int pm__fifo_remove(pm__fifo *q, pm__node *n)
{
    pm__node *prev = NULL;
    for (pm__node *p = q->head; p; prev = p, p = p->next) {
        if (p != n)
            continue;
        if (prev)
            prev->next = p->next;
        else
            q->head = p->next;
        if (q->tail == p)
            q->tail = prev;
        return 1;
    }
    return 0;
}

/* ---- sequence order (a reorder buffer) ---- */

/* Items that must pass in order 0, 1, 2, ... but arrive in any order: the
 * early ones wait here, sorted; `next` is the sequence number whose turn
 * it is. Arrivals are mostly near the front, so insertion is cheap. */
typedef struct pm__seqnode {
    pm__node node;
    uint64_t seq;
} pm__seqnode;

typedef struct pm__seqlist {
    pm__node *head;              /* sorted by seq */
    uint64_t next;               /* whose turn it is */
} pm__seqlist;

static inline void pm__seq_park(pm__seqlist *l, pm__seqnode *n)
{
    pm__node **pp = &l->head;
    while (*pp && pm__container_of(*pp, pm__seqnode, node)->seq < n->seq)
        pp = &(*pp)->next;
    n->node.next = *pp;
    *pp = &n->node;
}

/* The parked node whose turn it is, unlinked, or NULL (next unchanged). */
static inline pm__seqnode *pm__seq_ready(pm__seqlist *l)
{
    pm__node *h = l->head;
    if (!h || pm__container_of(h, pm__seqnode, node)->seq != l->next)
        return NULL;
    l->head = h->next;
    return pm__container_of(h, pm__seqnode, node);
}

#endif
