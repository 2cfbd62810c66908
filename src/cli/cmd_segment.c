/* cmd_segment: `cxrseg segment FILE|DIR -o DIR`, the node's work done by hand: each DICOM image
 * goes through src/pipeline/segment.c and leaves seg.dcm, sr.dcm (and gsps.dcm, sc.dcm when
 * asked) plus overlay.png. A folder gets one sub-folder per image, a progress bar on a terminal
 * and a summary table at the end. */
#include "config.h"
#include "cli.h"
#include "cx_config.h"
#include "segment.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMD "segment"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cxrseg segment FILE|DIR -o OUTDIR [options]\n"
            "Runs the model on DICOM chest radiographs and writes the DICOM results:\n"
            "seg.dcm (Segmentation), sr.dcm (TID 1500 report), optionally gsps.dcm and sc.dcm,\n"
            "and overlay.png. For a folder, each file gets OUTDIR/<file name>/ and a summary table.\n"
            "  -o, --output DIR     output folder (created if missing)\n"
            "  --model M            model file (default: the conf file's <model file>, else\n"
            "                       $CXRSEG_MODEL, else " CX_DATADIR "/models/cxrseg.cxm,\n"
            "                       else ../models/cxrseg.cxm next to this program: an\n"
            "                       uninstalled build in the source tree's build/ folder)\n"
            "  --conf C             configuration file: outputs, series, UID root, thresholds, and\n"
            "                       its filters (an image they do not accept is skipped)\n"
            "  --outputs LIST       comma list of seg,sr,gsps,sc (default seg,sr, or the conf file's)\n"
            "  --uid-root R         UID root of the results (default 2.25, or the conf file's)\n"
            "  --score X            one reporting threshold for every class (default: per class)\n"
            "  --threads N          engine threads (default 2)\n"
            "  --no-overlay         do not write overlay.png\n"
            "  -q, --quiet          no progress bar\n"
            "Exit codes: 0 all processed, 1 usage, 2 an input failed, 3 unsupported input,\n"
            "4 configuration error, 5 model error, 6 internal error.\n");
}

static int parse_outputs(const char *s, int *out)
{
    int m = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "seg"))
            m |= CXD_OUT_SEG;
        else if (!strcmp(t, "sr"))
            m |= CXD_OUT_SR;
        else if (!strcmp(t, "gsps"))
            m |= CXD_OUT_GSPS;
        else if (!strcmp(t, "sc"))
            m |= CXD_OUT_SC;
        else
            return -1;
    }
    *out = m;
    return m ? 0 : -1;
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    if (mkdir(buf, 0755) && errno != EEXIST)
        return -1;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular files of a folder, sorted, hidden ones skipped. */
static char **list_dir(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    size_t cap = 16, k = 0;
    char **v = malloc(cap * sizeof *v);
    struct dirent *e;
    while (v && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) || !S_ISREG(st.st_mode))
            continue;
        if (k == cap) {
            char **nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        v[k++] = strdup(e->d_name);
    }
    closedir(d);
    if (v)
        qsort(v, k, sizeof *v, cmp_str);
    *n = k;
    return v;
}

static void progress(int on, size_t i, size_t n, const char *name)
{
    if (!on)
        return;
    int width = 30, done = n ? (int)(width * i / n) : width;
    fprintf(stderr, "\r[");
    for (int k = 0; k < width; k++)
        fputc(k < done ? '#' : '.', stderr);
    fprintf(stderr, "] %zu/%zu %-40.40s", i, n, name ? name : "");
    if (i == n)
        fputc('\n', stderr);
    fflush(stderr);
}

typedef struct row {
    char name[64];
    int ok;
    cx_status st;
    cx_segment_result r;
    char msg[600];
} row;

static void pct(char *b, size_t n, double v)
{
    if (v < 0)
        snprintf(b, n, "-");
    else
        snprintf(b, n, "%.1f", v);
}

static void print_result(const cx_model *m, const char *path, const char *dir, const cx_segment_result *r)
{
    char rs[16], ls[16];
    pct(rs, sizeof rs, r->lung_share_pct[0]);
    pct(ls, sizeof ls, r->lung_share_pct[1]);
    printf("%s: %dx%d, %d detection%s, lungs %d, findings %d (max score %.2f)\n", path, r->width, r->height,
           r->n_detections, r->n_detections == 1 ? "" : "s", r->n_lungs, r->n_findings, r->max_finding_score);
    printf("  share of lung affected: right %s%%, left %s%%; area ", rs, ls);
    if (r->finding_area_mm2 >= 0)
        printf("%.0f mm2 (%s)\n", r->finding_area_mm2, r->spacing_used);
    else
        printf("not measured (no usable pixel spacing), %ld px\n", r->finding_pixels);
    char verdict[400];
    cx_segment_verdict_text(m, &r->rule, r->image_score, r->finding_present, 1, verdict, sizeof verdict);
    printf("  %s\n", verdict);
    printf("  wrote to %s:", dir);
    if (r->written.written & CXD_OUT_SEG)
        printf(" seg.dcm (%d segment%s)", r->written.n_segments, r->written.n_segments == 1 ? "" : "s");
    if (r->written.written & CXD_OUT_SR)
        printf(" sr.dcm");
    if (r->written.written & CXD_OUT_GSPS)
        printf(" gsps.dcm");
    if (r->written.written & CXD_OUT_SC)
        printf(" sc.dcm");
    printf("\n  time: render %.0f ms, engine %.0f ms, DICOM outputs %.0f ms, overlay %.0f ms\n", r->ms_render,
           r->ms_infer, r->ms_write, r->ms_overlay);
}

/* The conf file's filters (modality, body part, view, size, series description). */
static int conf_accept(const cxd_info *info, void *user, char *why, size_t why_size)
{
    const cx_config *cfg = user;
    cx_config_object o = {info->modality, info->body_part_examined, info->view_position, info->series_description,
                          info->rows, info->columns};
    return cx_config_filter(&cfg->filters, &o, why, why_size) == CX_ACTION_PROCESS;
}

enum { OPT_MODEL = 256, OPT_CONF, OPT_OUTPUTS, OPT_UID_ROOT, OPT_SCORE, OPT_THREADS, OPT_NO_OVERLAY };

/* DIR/../models/cxrseg.cxm, DIR being the folder of this program (/proc/self/exe): the source
   tree's model for a build in its build/ folder. 0 when that file is readable. */
static int tree_model(char *out, size_t size)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    *slash = 0;
    int w = snprintf(out, size, "%s/../models/cxrseg.cxm", exe);
    return w > 0 && (size_t)w < size && access(out, R_OK) == 0 ? 0 : -1;
}

typedef struct seg_args {
    const char *input, *outdir, *model_path, *conf_path, *outputs, *uid_root;
    long threads;
    double score;
    int overlay, quiet;
} seg_args;

/* The command line into *a; -1 to go on, otherwise the exit code (help, usage error). */
static int parse_args(int argc, char **argv, seg_args *a)
{
    static const struct option longs[] = {
        {"help", no_argument, NULL, 'h'}, {"output", required_argument, NULL, 'o'},
        {"model", required_argument, NULL, OPT_MODEL}, {"conf", required_argument, NULL, OPT_CONF},
        {"outputs", required_argument, NULL, OPT_OUTPUTS}, {"uid-root", required_argument, NULL, OPT_UID_ROOT},
        {"score", required_argument, NULL, OPT_SCORE}, {"threads", required_argument, NULL, OPT_THREADS},
        {"no-overlay", no_argument, NULL, OPT_NO_OVERLAY}, {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0}};
    *a = (seg_args){.threads = 2, .score = -1, .overlay = 1};
    int c;
    optind = 0;
    while ((c = cx_cli_getopt(CMD, argc, argv, "ho:q", longs)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return CX_EXIT_OK;
        case 'o': a->outdir = optarg; break;
        case OPT_MODEL: a->model_path = optarg; break;
        case OPT_CONF: a->conf_path = optarg; break;
        case OPT_OUTPUTS: a->outputs = optarg; break;
        case OPT_UID_ROOT: a->uid_root = optarg; break;
        case OPT_SCORE:
            if (cx_cli_parse_double(optarg, &a->score) || a->score < 0 || a->score > 1)
                return cx_cli_usage(CMD, "--score '%s': expected 0..1", optarg);
            break;
        case OPT_THREADS:
            if (cx_cli_parse_int(optarg, 1, 64, &a->threads))
                return cx_cli_usage(CMD, "--threads '%s': expected 1..64", optarg);
            break;
        case OPT_NO_OVERLAY: a->overlay = 0; break;
        case 'q': a->quiet = 1; break;
        case 1:
            if (a->input)
                return cx_cli_usage(CMD, "one FILE or DIR at a time ('%s' and '%s')", a->input, optarg);
            a->input = optarg;
            break;
        default: return CX_EXIT_USAGE;
        }
    }
    if (!a->input)
        return cx_cli_usage(CMD, "FILE or DIR missing");
    if (!a->outdir)
        return cx_cli_usage(CMD, "-o OUTDIR missing");
    return -1;
}

/* The segmentation parameters from --conf (its filters and model too), --score, --outputs and
 * --uid-root; -1 to go on, otherwise the exit code. *cfg is the loaded conf (NULL without one). */
static int setup_params(seg_args *a, cx_segment_params *p, cx_config **cfg)
{
    cx_segment_default_params(p);
    *cfg = NULL;
    if (a->conf_path) {
        cx_config_errors errs;
        memset(&errs, 0, sizeof errs);
        cx_status cst = cx_config_load(a->conf_path, NULL, cfg, &errs);
        if (cst != CX_OK) {
            for (size_t i = 0; i < errs.count; i++)
                fprintf(stderr, "cxrseg %s: %s\n", CMD, errs.items[i].text);
            cx_config_errors_clear(&errs);
            return cx_cli_exit_code(cst);
        }
        cx_error e = {0};
        if (cx_segment_params_from_config(*cfg, NULL, p, &e) != CX_OK)
            return cx_cli_fail(CMD, &e);
        p->accept = conf_accept;
        p->accept_user = *cfg;
        if (!a->model_path && (*cfg)->model.file)
            a->model_path = (*cfg)->model.file;
    }
    p->score = a->score;
    if (a->outputs && parse_outputs(a->outputs, &p->write.outputs))
        return cx_cli_usage(CMD, "--outputs '%s': expected a comma list of seg, sr, gsps, sc", a->outputs);
    if (a->uid_root)
        snprintf(p->write.uid_root, sizeof p->write.uid_root, "%s", a->uid_root);
    return -1;
}

/* One file of a folder run into rows[i]; the result folder is OUTDIR/<name without extension>. */
static void segment_entry(const cx_model *m, cx_mrcnn *s, cx_segment_params *p, const seg_args *a,
                          const char *name, row *rw)
{
    char src[4200], dir[4200], png[4300];
    snprintf(src, sizeof src, "%s/%s", a->input, name);
    snprintf(dir, sizeof dir, "%s/%s", a->outdir, name);
    char *base = dir + strlen(a->outdir) + 1, *dot = strrchr(base, '.');
    if (dot && dot != base)
        *dot = 0;
    snprintf(png, sizeof png, "%s/overlay.png", dir);
    snprintf(rw->name, sizeof rw->name, "%s", name);
    if (mkdir_p(dir)) {
        rw->st = CX_ERR_IO;
        snprintf(rw->msg, sizeof rw->msg, "cannot create %.500s", dir);
        return;
    }
    p->overlay_png = a->overlay ? png : NULL;
    cx_error fe = {0};
    rw->st = cx_segment_file(m, s, src, dir, p, &rw->r, &fe);
    rw->ok = rw->st == CX_OK;
    if (!rw->ok) {
        snprintf(rw->msg, sizeof rw->msg, "%s", fe.msg);
        rmdir(dir); /* leave no empty result folder behind */
    }
}

/* The folder run's table: one line per file, then the counts. */
static void print_summary(const row *rows, size_t n, size_t failed, size_t skipped, double seconds)
{
    printf("%-28s %-6s %-11s %5s %5s %7s %7s %10s %7s  %s\n", "file", "status", "size", "lungs", "finds", "R %",
           "L %", "area mm2", "ms", "outputs / error");
    for (size_t i = 0; i < n; i++) {
        const cx_segment_result *r = &rows[i].r;
        if (!rows[i].ok) {
            printf("%-28.28s %-6s %-11s %5s %5s %7s %7s %10s %7s  %s\n", rows[i].name,
                   rows[i].st == CX_ERR_UNSUPPORTED ? "skip" : "FAIL", "-", "-", "-", "-", "-", "-", "-", rows[i].msg);
            continue;
        }
        char size[24], rs[16], ls[16], area[24];
        snprintf(size, sizeof size, "%dx%d", r->width, r->height);
        pct(rs, sizeof rs, r->lung_share_pct[0]);
        pct(ls, sizeof ls, r->lung_share_pct[1]);
        if (r->finding_area_mm2 >= 0)
            snprintf(area, sizeof area, "%.0f", r->finding_area_mm2);
        else
            snprintf(area, sizeof area, "n/a");
        printf("%-28.28s %-6s %-11s %5d %5d %7s %7s %10s %7.0f  %s%s%s%s\n", rows[i].name, "ok", size, r->n_lungs,
               r->n_findings, rs, ls, area, r->ms_render + r->ms_infer + r->ms_write + r->ms_overlay,
               r->written.written & CXD_OUT_SEG ? "seg " : "", r->written.written & CXD_OUT_SR ? "sr " : "",
               r->written.written & CXD_OUT_GSPS ? "gsps " : "", r->written.written & CXD_OUT_SC ? "sc" : "");
    }
    printf("%zu file%s: %zu processed, %zu skipped, %zu failed, %.1f s\n", n, n == 1 ? "" : "s",
           n - failed - skipped, skipped, failed, seconds);
}

/* Every file of the folder a->input, in name order; files that are not a usable radiograph (not
 * DICOM, colour, multi-frame) are skipped, not failures. Returns the exit code. */
static int segment_folder(const cx_model *m, cx_mrcnn *s, cx_segment_params *p, const seg_args *a)
{
    cx_error e = {0};
    size_t n = 0;
    char **names = list_dir(a->input, &n);
    if (!names) {
        cx_error_set(&e, CX_ERR_IO, CMD, "cannot list %s", a->input);
        return cx_cli_fail(CMD, &e);
    }
    int rc = CX_EXIT_OK;
    row *rows = calloc(n ? n : 1, sizeof *rows);
    int bar = !a->quiet && isatty(2);
    size_t failed = 0, skipped = 0;
    double t0 = cx_now_ms();
    for (size_t i = 0; rows && i < n; i++) {
        progress(bar, i, n, names[i]);
        segment_entry(m, s, p, a, names[i], &rows[i]);
        if (!rows[i].ok) {
            if (rows[i].st == CX_ERR_UNSUPPORTED)
                skipped++;
            else
                failed++;
            if (!bar && !a->quiet)
                fprintf(stderr, "cxrseg %s: %s\n", CMD, rows[i].msg);
        } else if (!bar && !a->quiet) {
            fprintf(stderr, "cxrseg %s: [%zu/%zu] %s done\n", CMD, i + 1, n, names[i]);
        }
    }
    progress(bar, n, n, "");
    if (rows) {
        print_summary(rows, n, failed, skipped, (cx_now_ms() - t0) / 1000.0);
    } else {
        cx_error_set(&e, CX_ERR_NOMEM, CMD, "out of memory");
        rc = cx_cli_fail(CMD, &e);
    }
    if (failed && rc == CX_EXIT_OK)
        rc = CX_EXIT_INPUT;
    free(rows);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int cx_cli_segment(int argc, char **argv)
{
    seg_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    cx_segment_params p;
    cx_config *cfg = NULL;
    char tree_path[4096];
    rc = setup_params(&a, &p, &cfg);
    if (rc >= 0)
        goto out;
    rc = CX_EXIT_OK;
    if (!a.model_path)
        a.model_path = getenv("CXRSEG_MODEL");
    int model_defaulted = !a.model_path || !*a.model_path;
    if (model_defaulted) {
        /* The installed model; for a build in the source tree (build/cxrseg), the tree's model,
           found from where this program is, not from a path baked in at build time. */
        a.model_path = CX_DATADIR "/models/cxrseg.cxm";
        if (access(a.model_path, R_OK) != 0 && tree_model(tree_path, sizeof tree_path) == 0)
            a.model_path = tree_path;
    }
    cx_error e = {0};
    struct stat sti;
    if (stat(a.input, &sti)) {
        cx_error_set(&e, CX_ERR_IO, CMD, "%s: %s", a.input, strerror(errno));
        rc = cx_cli_fail(CMD, &e);
        goto out;
    }
    if (mkdir_p(a.outdir)) {
        cx_error_set(&e, CX_ERR_IO, CMD, "cannot create %s: %s", a.outdir, strerror(errno));
        rc = cx_cli_fail(CMD, &e);
        goto out;
    }
    cx_model *m = NULL;
    cx_mrcnn *s = NULL;
    cx_status st;
    if ((st = cx_model_load(a.model_path, &m, &e)) != CX_OK ||
        (st = cx_mrcnn_new(m, (int)a.threads, &s, &e)) != CX_OK) {
        rc = cx_cli_fail(CMD, &e);
        if (model_defaulted && st == CX_ERR_IO)
            fprintf(stderr, "cxrseg %s: no model found: give --model M.cxm, set CXRSEG_MODEL, or install the "
                            "shipped model\n", CMD);
        cx_model_free(m);
        goto out;
    }
    if (S_ISDIR(sti.st_mode)) {
        rc = segment_folder(m, s, &p, &a);
    } else {
        char png[4200];
        snprintf(png, sizeof png, "%s/overlay.png", a.outdir);
        p.overlay_png = a.overlay ? png : NULL;
        cx_segment_result r;
        if ((st = cx_segment_file(m, s, a.input, a.outdir, &p, &r, &e)) != CX_OK)
            rc = cx_cli_fail(CMD, &e);
        else
            print_result(m, a.input, a.outdir, &r);
    }
    cx_mrcnn_free(s);
    cx_model_free(m);
out:
    cx_segment_params_release(&p);
    cx_config_free(cfg);
    return rc;
}
