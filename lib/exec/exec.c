/* exec.c - the executor's backend-independent part (see exec.h): creation,
 * the thread-specific key, the initializer on non-worker threads, holds. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "exec/exec.h"

int pm__exec_new(const pm__exec_ops *ops, int workers, pm_init_fn init, void *initarg,
                 pm__exec **ex_ret)
{
    pm__exec *ex = calloc(1, sizeof *ex);
    if (!ex)
        return -ENOMEM;
    ex->ops = ops;
    ex->workers = workers;
    ex->init = init;
    ex->initarg = initarg;
    int rc = -pthread_key_create(&ex->key, NULL);
    if (rc) {
        free(ex);
        return rc;
    }
    rc = pm__slots_init(&ex->slots, workers);
    if (rc) {
        pthread_key_delete(ex->key);
        free(ex);
        return rc;
    }
    *ex_ret = ex;
    return 0;
}

void pm__exec_free(pm__exec *ex)
{
    if (!ex)
        return;
    if (ex->be) {
        ex->ops->stop(ex, 1);
        ex->ops->join(ex);
        ex->ops->destroy(ex);
    }
    pm__slots_destroy(&ex->slots);
    pthread_key_delete(ex->key);
    free(ex);
}

int pm__exec_thread_init(pm__exec *ex)
{
    if (pthread_getspecific(ex->key))
        return 0;
    int rc = ex->init ? ex->init(ex->initarg) : 0;
    if (rc == 0)
        pthread_setspecific(ex->key, PM__TLS_INITED);
    return rc;
}

int pm__exec_on_worker(pm__exec *ex)
{
    return pthread_getspecific(ex->key) == PM__TLS_WORKER;
}

void pm__exec_hold(pm__exec *ex)
{
    atomic_fetch_add(&ex->holds, 1);
}

void pm__exec_unhold(pm__exec *ex)
{
    if (atomic_fetch_sub(&ex->holds, 1) == 1)
        ex->ops->kick(ex);       /* closed workers may be waiting for the last */
}
