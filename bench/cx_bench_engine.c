/* cx_bench_engine: the C side of bench/engine. Loads a model and a raw float32 grey image, then
 * serves commands on stdin so the driver script can alternate it run by run with torchvision:
 *   "run"  -> one cx_mrcnn_detect; prints "ms <latency> dets <n> t <backbone> <rpn> <box> <mask>"
 *   "dets" -> the last run's detections, one per line: "label score x1 y1 x2 y2 mask_pixels", then "end"
 *   "quit" -> prints "rss_kb <peak RSS> kernel <OpenBLAS core>" and exits.
 * Usage: cx_bench_engine MODEL IMAGE.f32 H W THREADS */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cx_mrcnn.h"

static long peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s MODEL IMAGE.f32 H W THREADS\n", argv[0]);
        return 1;
    }
    int h = atoi(argv[3]), w = atoi(argv[4]), threads = atoi(argv[5]);
    if (h < 1 || w < 1 || threads < 1) {
        fprintf(stderr, "bad size or thread count\n");
        return 1;
    }
    float *img = malloc(sizeof(float) * h * w);
    FILE *f = fopen(argv[2], "rb");
    if (!img || !f || fread(img, sizeof(float), (size_t)h * w, f) != (size_t)h * w) {
        fprintf(stderr, "%s: cannot read %d x %d floats\n", argv[2], w, h);
        return 2;
    }
    fclose(f);
    cx_error err = {0};
    cx_model *m = NULL;
    cx_mrcnn *s = NULL;
    if (cx_model_load(argv[1], &m, &err) || cx_mrcnn_new(m, threads, &s, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 5;
    }
    cx_detections d = {0};
    char cmd[64];
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(cmd, sizeof cmd, stdin)) {
        if (!strncmp(cmd, "run", 3)) {
            double t0 = cx_now_ms();
            if (cx_mrcnn_detect(s, img, h, w, h, w, &d, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 6;
            }
            double ms = cx_now_ms() - t0, t[4];
            cx_mrcnn_debug_times(s, t);
            printf("ms %.2f dets %d t %.1f %.1f %.1f %.1f\n", ms, d.count, t[0], t[1], t[2], t[3]);
        } else if (!strncmp(cmd, "dets", 4)) {
            for (int i = 0; i < d.count; i++) {
                const cx_detection *x = &d.items[i];
                long area = 0;
                for (size_t q = 0; q < (size_t)x->mask_w * x->mask_h; q++)
                    area += x->mask[q] != 0;
                printf("%d %.6f %.4f %.4f %.4f %.4f %ld\n", x->label, x->score, x->box[0], x->box[1], x->box[2],
                       x->box[3], area);
            }
            printf("end\n");
        } else if (!strncmp(cmd, "quit", 4)) {
            break;
        }
    }
    printf("rss_kb %ld kernel %s\n", peak_rss_kb(), cx_mrcnn_blas_kernel());
    cx_detections_clear(&d);
    cx_mrcnn_free(s);
    cx_model_free(m);
    free(img);
    return 0;
}
