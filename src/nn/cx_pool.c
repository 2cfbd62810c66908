/* cx_pool: a fixed set of worker threads that run parallel-for jobs for the engine's non-GEMM work
 * (im2col, RoIAlign, pasting). Design: one job at a time; the caller publishes (fn, ctx, n_tasks)
 * under the mutex, bumps a generation counter and broadcasts; workers and the caller then claim task
 * indices with an atomic counter, and the caller waits until the done count reaches n_tasks. */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>

#include "cx_nn.h"

struct cx_pool {
    int n_threads;               /* including the caller */
    pthread_t *threads;
    struct worker_arg *args;     /* one per worker: the pool and the worker's slot */
    pthread_mutex_t mu;
    pthread_cond_t cv_job, cv_done;
    unsigned long generation;
    int stop;
    cx_pool_fn fn;
    void *ctx;
    int n_tasks;
    atomic_ullong next;          /* (generation << 32) | next task index: stale workers see a new generation */
    int done;                    /* tasks finished, under mu */
};

/* Which thread of its pool the current thread is: 0 for any thread that is not a pool worker
 * (the caller of cx_pool_run), 1..n-1 for the workers. */
static _Thread_local int pool_slot;

int cx_pool_slot(void)
{
    return pool_slot;
}

struct worker_arg {
    cx_pool *p;
    int slot;
};
typedef struct worker_arg worker_arg;

static void run_tasks(cx_pool *p, unsigned long gen, cx_pool_fn fn, void *ctx, int n)
{
    int mine = 0;
    unsigned long long g = (unsigned long long)(gen & 0xffffffffu) << 32;
    for (;;) {
        unsigned long long v = atomic_load(&p->next);
        if ((v & ~0xffffffffull) != g || (int)(v & 0xffffffffu) >= n)
            break;
        if (!atomic_compare_exchange_weak(&p->next, &v, v + 1))
            continue;
        fn(ctx, (int)(v & 0xffffffffu));
        mine++;
    }
    if (mine) {
        pthread_mutex_lock(&p->mu);
        p->done += mine;
        if (p->done >= n)
            pthread_cond_broadcast(&p->cv_done);
        pthread_mutex_unlock(&p->mu);
    }
}

static void *worker(void *arg)
{
    cx_pool *p = ((worker_arg *)arg)->p;
    pool_slot = ((worker_arg *)arg)->slot;
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->cv_job, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->generation;
        cx_pool_fn fn = p->fn;
        void *ctx = p->ctx;
        int n = p->n_tasks;
        pthread_mutex_unlock(&p->mu);
        run_tasks(p, seen, fn, ctx, n);
    }
}

cx_status cx_pool_new(int n_threads, cx_pool **out, cx_error *err)
{
    if (n_threads < 1 || n_threads > 256)
        return cx_error_set(err, CX_ERR_INVALID, "pool", "thread count %d outside 1..256", n_threads);
    cx_pool *p = cx_calloc(1, sizeof *p);
    if (!p)
        return cx_error_set(err, CX_ERR_NOMEM, "pool", "out of memory");
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_job, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    atomic_init(&p->next, 0ull);
    if (n_threads > 1) {
        p->threads = cx_calloc((size_t)n_threads - 1, sizeof(pthread_t));
        p->args = cx_calloc((size_t)n_threads - 1, sizeof(worker_arg));
        if (!p->threads || !p->args) {
            p->n_threads = 1;   /* no worker was started: nothing to join */
            cx_pool_free(p);
            return cx_error_set(err, CX_ERR_NOMEM, "pool", "out of memory");
        }
        for (int i = 0; i < n_threads - 1; i++) {
            p->args[i] = (worker_arg){p, i + 1};
            if (pthread_create(&p->threads[i], NULL, worker, &p->args[i]) != 0) {
                p->n_threads = i + 1;
                cx_pool_free(p);
                return cx_error_set(err, CX_ERR_NOMEM, "pool", "cannot start thread %d of %d", i + 1,
                                    n_threads - 1);
            }
        }
    }
    *out = p;
    return CX_OK;
}

void cx_pool_free(cx_pool *p)
{
    if (!p)
        return;
    if (p->threads) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_broadcast(&p->cv_job);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->n_threads - 1; i++)
            pthread_join(p->threads[i], NULL);
        cx_free(p->threads);
    }
    cx_free(p->args);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_job);
    pthread_cond_destroy(&p->cv_done);
    cx_free(p);
}

int cx_pool_threads(const cx_pool *p)
{
    return p ? p->n_threads : 1;
}

void cx_pool_run(cx_pool *p, int n_tasks, cx_pool_fn fn, void *ctx)
{
    if (n_tasks <= 0)
        return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int i = 0; i < n_tasks; i++)
            fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    p->done = 0;
    p->generation++;
    atomic_store(&p->next, (unsigned long long)(p->generation & 0xffffffffu) << 32);
    pthread_cond_broadcast(&p->cv_job);
    unsigned long gen = p->generation;
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, gen, fn, ctx, n_tasks);
    pthread_mutex_lock(&p->mu);
    while (p->done < n_tasks)
        pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
