/* co_internal.h - internal: lib/co's machine contexts, stacks, and the
 * scheduler record shared by co.c (tasks, scheduling, waiting) and
 * co_io.c (the awaits).
 *
 * A context is what one side of a switch saves. On x86-64 and aarch64 it
 * is just a stack pointer: switch.c's pm__co_switch stores the
 * callee-saved registers on the old stack, stores the stack pointer, loads
 * the new one and restores. Elsewhere (or with PM_CO_UCONTEXT defined) it
 * is a ucontext_t and swapcontext(), which also saves the signal mask with
 * a system call at every switch: correct, slow.
 */
#ifndef PM_CO_INTERNAL_H
#define PM_CO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pmap/co.h>

#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(PM_CO_UCONTEXT)
#define PM__CO_ASM 1
#else
#define PM__CO_ASM 0
#include <ucontext.h>
#endif

typedef struct pm__co_ctx {
#if PM__CO_ASM
    void *sp;                /* saved stack pointer */
#else
    ucontext_t uc;
    void (*fn)(void *);      /* entry, for the first switch */
    void *arg;
#endif
} pm__co_ctx;

/* Prepares c so that switching to it calls fn(arg) on the stack
 * [lo, lo + size). fn must never return (it switches away for good). */
void pm__co_ctx_make(pm__co_ctx *c, void *lo, size_t size, void (*fn)(void *), void *arg);
/* Saves the running context in from and continues in to. */
void pm__co_ctx_switch(pm__co_ctx *from, pm__co_ctx *to);
/* "asm-x86_64", "asm-aarch64" or "ucontext": which switch this build uses. */
const char *pm__co_switch_kind(void);

/* A stack: one mapping, [guard page][usable bytes], and this record in the
 * mapping's top bytes (the usable bytes end below it). */
typedef struct pm__co_stack {
    void *map;               /* mapping start (the guard page, if any) */
    size_t map_len;
    void *lo;                /* usable stack: [lo, lo + size) */
    size_t size;
    size_t guard;            /* guard bytes below lo (0: none) */
} pm__co_stack;

/* Maps a stack of at least size usable bytes with (guard != 0) a guard
 * page below it. Returns NULL with *err set to -errno. */
pm__co_stack *pm__co_stack_new(size_t size, int guard, int *err);
void pm__co_stack_free(pm__co_stack *st);
/* How the guard page was made: "madvise" (MADV_GUARD_INSTALL: no extra
 * VMA), "mprotect", or "none". For tests and the bench. */
const char *pm__co_guard_kind(void);

/* For co_io.c. pm__co_enter: the running task, or NULL with *err = -EPERM
 * (outside tasks) or -ECANCELED (a pending cancel, now consumed, or the
 * scheduler shutting down). pm__co_await_op: suspends t until the callback
 * of loop operation id, queued with pm__co_op_cb() and arg t, has run, and
 * returns its result (id < 0 is returned as is). */
pm_co_task *pm__co_enter(int *err);
ssize_t pm__co_await_op(pm_co_task *t, int64_t id);
pm_loop_cb pm__co_op_cb(void);
pm_loop *pm__co_loop(const pm_co_task *t);

/* Tests: the guard range of a task's stack ([*lo, *lo + *len)), 0 or
 * -ENOENT when the task has no stack (not started or finished). */
int pm__co_task_guard(const pm_co_task *t, void **lo, size_t *len);

#endif
