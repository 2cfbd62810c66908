/* cx_bench_wino: 3x3 stride-1 pad-1 convolution, cx_conv2d (im2col + sgemm) against
 * cx_conv2d_wino m = 2 and m = 4, on the shapes of the Mask R-CNN backbone, FPN and mask head.
 * Variants, alternated call by call (one warm-up call each), median of RUNS:
 *   im2col/pool2  cx_conv2d, 2-thread pool, OpenBLAS 1 thread (the engine's setting)
 *   wino2/pool2   cx_conv2d_wino m = 2, same
 *   wino4/pool2   cx_conv2d_wino m = 4, same
 *   im2col/blas2  cx_conv2d, pool NULL, OpenBLAS 2 threads (the engine before the thread team)
 * Prints ms per call and the effective GFLOP/s 2*cin*cout*9*n*h*w / time, and the Winograd outputs'
 * max|wino - im2col| / max|im2col|.
 * Usage: cx_bench_wino [RUNS] [--chunk TC,...] [--shape CIN,N,HW]...
 *   --chunk runs only the two Winograd variants once per chunk size (cx_wino_set_chunk), alternating.
 * Unset OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in the command to get OpenBLAS's own kernel choice. */
#include <config.h>

#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cx_nn.h"
#include "cx_winograd.h"

#define MAXV 16

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static unsigned long long rs = 0x9E3779B97F4A7C15ull;

static float nrand(void)
{
    double u[2];
    for (int i = 0; i < 2; i++) {
        rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
        u[i] = ((rs >> 11) + 0.5) / 9007199254740992.0;
    }
    return (float)(sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]));
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct variant {
    char name[32];
    int m;          /* 0 = im2col */
    int blas2;      /* pool NULL + OpenBLAS 2 threads */
    int chunk;      /* cx_wino_set_chunk */
    float *out, *scratch;
    double t[64];
} variant;

static void run_one(variant *v, cx_pool *pool, const cx_conv *c, const float *U2, const float *U4, const float *in,
                    int n, int h, int w)
{
    if (v->m == 0)
        cx_conv2d(v->blas2 ? NULL : pool, c, in, n, h, w, v->out, NULL, 1, v->scratch);
    else
        cx_conv2d_wino(pool, v->m, c, v->m == 2 ? U2 : U4, in, n, h, w, v->out, NULL, 1, v->scratch);
}

static void prepare(const variant *v)
{
    openblas_set_num_threads(v->blas2 ? 2 : 1);
    cx_wino_set_chunk(v->chunk);
}

static void settle(const variant *v)
{
    if (v->blas2) {
        /* let OpenBLAS's threads stop spinning before the pool's turn */
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
}

typedef struct bench_args {
    int runs, nchunks, chunks[16], nshapes, shapes[32][3];
} bench_args;

/* [RUNS] [--chunk C1,C2,...] [--shape CIN,N,HW]...; -1 on a usage error. */
static int parse_args(int argc, char **argv, bench_args *a)
{
    static const struct option longopts[] = {{"chunk", required_argument, NULL, 'c'},
                                              {"shape", required_argument, NULL, 's'},
                                              {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    a->runs = 9;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == 'c') {
            for (char *s = strtok(optarg, ","); s && a->nchunks < 16; s = strtok(NULL, ","))
                a->chunks[a->nchunks++] = atoi(s);
        } else if (ch == 's' && a->nshapes < 32) {
            int *sh = a->shapes[a->nshapes];
            if (sscanf(optarg, "%d,%d,%d", &sh[0], &sh[1], &sh[2]) != 3) {
                fprintf(stderr, "cx_bench_wino: --shape '%s': expected CIN,N,HW\n", optarg);
                return -1;
            }
            a->nshapes++;
        } else {
            fprintf(stderr, "usage: cx_bench_wino [RUNS] [--chunk C1,C2,...] [--shape CIN,N,HW]...\n");
            return -1;
        }
    }
    if (optind < argc)
        a->runs = atoi(argv[optind]);
    if (a->runs < 1 || a->runs > 64)
        a->runs = 9;
    static const int defaults[7][3] = {{64, 1, 128}, {128, 1, 64}, {256, 1, 128}, {256, 1, 64},
                                       {256, 1, 32}, {256, 32, 14}, {256, 1, 200}};
    if (!a->nshapes) {
        memcpy(a->shapes, defaults, sizeof defaults);
        a->nshapes = 7;
    }
    return 0;
}

/* The variants compared: the Winograd tile chunks asked for, else im2col and Winograd on the pool
 * and im2col on OpenBLAS's own threads. */
static int make_variants(const bench_args *a, variant *vs)
{
    int nv = 0;
    memset(vs, 0, sizeof *vs * MAXV);
    if (a->nchunks) {
        for (int m = 2; m <= 4; m += 2)
            for (int k = 0; k < a->nchunks; k++) {
                snprintf(vs[nv].name, sizeof vs[nv].name, "wino%d/tc%d", m, a->chunks[k]);
                vs[nv].m = m, vs[nv].chunk = a->chunks[k];
                nv++;
            }
    } else {
        vs[nv++] = (variant){"im2col/pool2", 0, 0, 0, NULL, NULL, {0}};
        vs[nv++] = (variant){"wino2/pool2", 2, 0, 0, NULL, NULL, {0}};
        vs[nv++] = (variant){"wino4/pool2", 4, 0, 0, NULL, NULL, {0}};
        vs[nv++] = (variant){"im2col/blas2", 0, 1, 0, NULL, NULL, {0}};
    }
    return nv;
}

/* Largest difference of each Winograd m's output from im2col's, relative to im2col's largest value. */
static void print_errors(const variant *vs, int nv, size_t in_n)
{
    int ref = -1;
    for (int v = 0; v < nv; v++)
        if (vs[v].m == 0)
            ref = v;
    for (int m = 2; m <= 4; m += 2) {
        int wv = -1;
        for (int v = 0; v < nv && wv < 0; v++)
            if (vs[v].m == m)
                wv = v;
        if (ref < 0 || wv < 0) {
            printf("          -");
            continue;
        }
        double d = 0, mx = 0;
        for (size_t i = 0; i < in_n; i++) {
            d = fmax(d, fabs((double)vs[wv].out[i] - vs[ref].out[i]));
            mx = fmax(mx, fabs((double)vs[ref].out[i]));
        }
        printf("  %9.2g", d / mx);
    }
}

/* One shape: random input and weights, every variant warmed up, then `runs` alternating rounds;
 * prints the medians and the errors. */
static void bench_shape(cx_pool *pool, variant *vs, int nv, int runs, int ch, int n, int h)
{
    int w = h;
    size_t in_n = (size_t)ch * n * h * w, wn = (size_t)ch * ch * 9;
    float *in = malloc(in_n * sizeof(float)), *wt = malloc(wn * sizeof(float)), *b = malloc(ch * sizeof(float));
    for (size_t i = 0; i < in_n; i++)
        in[i] = nrand();
    for (size_t i = 0; i < wn; i++)
        wt[i] = nrand() * (float)sqrt(2.0 / (9.0 * ch));
    for (int i = 0; i < ch; i++)
        b[i] = 0.1f * nrand();
    cx_conv c = {.cin = ch, .cout = ch, .kh = 3, .kw = 3, .stride = 1, .pad = 1, .dil = 1, .w = wt, .b = b};
    float *U2 = malloc(cx_wino_weights_floats(2, ch, ch) * sizeof(float));
    float *U4 = malloc(cx_wino_weights_floats(4, ch, ch) * sizeof(float));
    cx_wino_transform_weights(2, &c, U2);
    cx_wino_transform_weights(4, &c, U4);
    for (int v = 0; v < nv; v++) {
        size_t sf;
        cx_wino_set_chunk(vs[v].chunk);
        if (vs[v].m == 0)
            sf = cx_conv_scratch_floats(vs[v].blas2 ? NULL : pool, &c, n, h, w);
        else
            sf = cx_wino_scratch_floats(pool, vs[v].m, &c, n, h, w);
        vs[v].scratch = malloc((sf ? sf : 1) * sizeof(float));
        vs[v].out = malloc(in_n * sizeof(float));
        prepare(&vs[v]);
        run_one(&vs[v], pool, &c, U2, U4, in, n, h, w);   /* warm-up */
        settle(&vs[v]);
    }
    for (int r = 0; r < runs; r++)
        for (int v = 0; v < nv; v++) {
            prepare(&vs[v]);
            double t0 = now_ms();
            run_one(&vs[v], pool, &c, U2, U4, in, n, h, w);
            vs[v].t[r] = now_ms() - t0;
            settle(&vs[v]);
        }
    char lab[32];
    snprintf(lab, sizeof lab, "%d,%d,%d", ch, n, h);
    printf("%-14s", lab);
    double flop = 2.0 * ch * ch * 9.0 * n * h * w;
    for (int v = 0; v < nv; v++) {
        qsort(vs[v].t, runs, sizeof(double), cmp_d);
        double med = vs[v].t[runs / 2];
        printf(" %10.2f (%6.1f)", med, flop / med / 1e6);
    }
    print_errors(vs, nv, in_n);
    printf("\n");
    fflush(stdout);
    for (int v = 0; v < nv; v++)
        free(vs[v].out), free(vs[v].scratch);
    free(in), free(wt), free(b), free(U2), free(U4);
}

int main(int argc, char **argv)
{
    bench_args a;
    if (parse_args(argc, argv, &a) != 0)
        return 2;
    cx_pool *pool = NULL;
    cx_error err;
    if (cx_pool_new(2, &pool, &err) != CX_OK)
        return 1;
    openblas_set_num_threads(1);
    printf("OpenBLAS %s, core %s; OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s; pool 2 threads; %d runs, "
           "median ms (effective GFLOP/s)\n",
           openblas_get_config(), openblas_get_corename(), getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "-",
           getenv("OPENBLAS_L2_SIZE") ? getenv("OPENBLAS_L2_SIZE") : "-", a.runs);
    variant vs[MAXV];
    int nv = make_variants(&a, vs);
    printf("%-14s", "cin,n,hw");
    for (int v = 0; v < nv; v++)
        printf(" %20s", vs[v].name);
    printf("   err(m=2)  err(m=4)\n");
    for (int si = 0; si < a.nshapes; si++)
        bench_shape(pool, vs, nv, a.runs, a.shapes[si][0], a.shapes[si][1], a.shapes[si][2]);
    cx_pool_free(pool);
    return 0;
}
