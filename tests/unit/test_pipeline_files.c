/* Pipeline tests on the real files in $CX_SHARED/data/dicom: RG1_J2KI.dcm (MONOCHROME1 chest CR,
 * JPEG 2000) must come out with dark lungs and a bright spine/mediastinum; the other files must
 * match DCMTK (dcmj2pnm: dcm2pnm plus the JPEG decoders), run here, within one grey level with the
 * same VOI choice. Skips (77) when the shared data or the tool is absent. */
#include "config.h"
#include "cx_pipe.h"
#include "cx_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *data_dir;
static char tmpdir[128];

static const char *dcm(const char *name)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/dicom/%s", data_dir, name);
    return buf[k];
}

/* Renders `path` with params, fills a newly allocated 8-bit buffer. */
static uint8_t *render_u8(const char *path, const cx_pipe_params *p, int *w, int *h, char *desc, size_t ndesc)
{
    cx_pipe_image *img = NULL;
    cx_error e = {0};
    cx_status s = cx_pipe_load_file(path, p, &img, NULL, &e);
    if (s != CX_OK) {
        fprintf(stderr, "render %s: %s\n", path, e.msg);
        return NULL;
    }
    const cx_image *o = img->input ? img->input : img->display;
    uint8_t *u = malloc((size_t)o->width * o->height);
    cx_image_to_u8(o, u);
    *w = o->width;
    *h = o->height;
    if (desc)
        snprintf(desc, ndesc, "%s", img->description);
    cx_pipe_image_free(img);
    return u;
}

/* Runs dcm2pnm with `opts` on `path`, returns its 8-bit PNG as bytes. */
static uint8_t *dcmtk_u8(const char *path, const char *opts, int *w, int *h)
{
    char out[256], cmd[2048];
    snprintf(out, sizeof out, "%s/dcmtk.png", tmpdir);
    snprintf(cmd, sizeof cmd, "dcmj2pnm +on %s '%s' '%s'", opts, path, out);
    if (system(cmd) != 0) {
        fprintf(stderr, "failed: %s\n", cmd);
        return NULL;
    }
    cx_image *img = NULL;
    cx_error e = {0};
    if (cx_image_read(out, &img, NULL, &e) != CX_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return NULL;
    }
    uint8_t *u = malloc((size_t)img->width * img->height);
    cx_image_to_u8(img, u);
    *w = img->width;
    *h = img->height;
    cx_image_free(img);
    unlink(out);
    return u;
}

/* Largest absolute difference in grey levels (or 999 on a size mismatch / failure). */
static int compare(const char *name, const uint8_t *a, int aw, int ah, const uint8_t *b, int bw, int bh)
{
    if (!a || !b || aw != bw || ah != bh) {
        fprintf(stderr, "%s: missing image or size mismatch %dx%d vs %dx%d\n", name, aw, ah, bw, bh);
        return 999;
    }
    int maxd = 0;
    size_t ndiff = 0, n = (size_t)aw * ah;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d > maxd)
            maxd = d;
        ndiff += d != 0;
    }
    fprintf(stderr, "  %s: max difference %d grey level(s), %zu of %zu pixels differ\n", name, maxd, ndiff, n);
    return maxd;
}

static void check_against_dcmtk(const char *file, const cx_pipe_params *p, const char *opts, const char *want_desc)
{
    int w1 = 0, h1 = 0, w2 = 0, h2 = 0;
    char desc[400] = "";
    uint8_t *ours = render_u8(dcm(file), p, &w1, &h1, desc, sizeof desc);
    uint8_t *theirs = dcmtk_u8(dcm(file), opts, &w2, &h2);
    char name[256];
    snprintf(name, sizeof name, "%s vs dcm2pnm %s", file, opts[0] ? opts : "(defaults)");
    CU_ASSERT(compare(name, ours, w1, h1, theirs, w2, h2) <= 1);
    if (want_desc) {
        CU_ASSERT_PTR_NOT_NULL(strstr(desc, want_desc));
        if (!strstr(desc, want_desc))
            fprintf(stderr, "  description '%s' lacks '%s'\n", desc, want_desc);
    }
    /* the test can fail: the wrong choice of VOI is far more than one level away */
    free(ours);
    free(theirs);
}

static void test_vlut_04(void)
{
    /* our default for a file with a VOI LUT and no window is that LUT; DCMTK's default is no
     * VOI at all, so ask it for its first VOI LUT (+Wl 1), the same choice */
    cx_pipe_params p = cx_pipe_default_params();
    check_against_dcmtk("vlut_04.dcm", &p, "+Wl 1", "VOI: LUT 1 of 1, 256 entries from 0, 16 bits");
    /* vlut_04's LUT is the identity (i * 257), which cannot tell a VOI LUT from none: replace it
     * (dcmodify) by a square law, 65535 * (i/255)^2, and compare again */
    char path[256], cmd[4096], *q;
    snprintf(path, sizeof path, "%s/vlut_sq.dcm", tmpdir);
    q = cmd + snprintf(cmd, sizeof cmd, "cp '%s' '%s' && dcmodify -nb -m '(0028,3010)[0].(0028,3006)=", dcm("vlut_04.dcm"), path);
    for (int i = 0; i < 256; i++)
        q += snprintf(q, 16, "%s%ld", i ? "\\" : "", lround(65535.0 * (i / 255.0) * (i / 255.0)));
    snprintf(q, cmd + sizeof cmd - q, "' '%s'", path);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    int w1, h1, w2, h2;
    uint8_t *ours = render_u8(path, &p, &w1, &h1, NULL, 0);
    uint8_t *theirs = dcmtk_u8(path, "+Wl 1", &w2, &h2);
    CU_ASSERT(compare("vlut_04 with a square-law VOI LUT vs dcmj2pnm +Wl 1", ours, w1, h1, theirs, w2, h2) <= 1);
    free(theirs);
    theirs = dcmtk_u8(path, "", &w2, &h2); /* no VOI: must differ, or the comparison proves nothing */
    CU_ASSERT(compare("  (control: same file without VOI)", ours, w1, h1, theirs, w2, h2) > 10);
    free(ours);
    free(theirs);
    unlink(path);
}

static void test_mlut_18(void)
{
    /* signed 12-bit stored values through a 4096-entry modality LUT (first mapped -2048) */
    cx_pipe_params p = cx_pipe_default_params();
    p.voi_mode = CX_PIPE_VOI_NONE; /* DCMTK's default: no VOI, the full modality range */
    check_against_dcmtk("mlut_18.dcm", &p, "", "modality: LUT 4096 entries from -2048, 16 bits; VOI: none");
    p.voi_mode = CX_PIPE_VOI_AUTO;
    p.auto_method = CX_AUTO_MINMAX;
    check_against_dcmtk("mlut_18.dcm", &p, "+Wm", "VOI: automatic window (min..max");
    /* an explicit LINEAR window in modality-LUT output units */
    p.voi_mode = CX_PIPE_VOI_WINDOW;
    p.center = 30000;
    p.width = 20000;
    check_against_dcmtk("mlut_18.dcm", &p, "+Ww 30000 20000", "VOI: window 30000/20000 LINEAR");
    p.center = 1000.5;
    p.width = 1;
    check_against_dcmtk("mlut_18.dcm", &p, "+Ww 1000.5 1", "window 1000.5/1 LINEAR");
}

static void test_sigmoid_vs_dcmtk(void)
{
    /* SIGMOID: map the file, switch the function, render through the image module directly */
    cxd_file *f = NULL;
    cxd_error de;
    memset(&de, 0, sizeof de);
    CU_ASSERT_EQUAL_FATAL(cxd_file_open(dcm("mlut_18.dcm"), &f, &de), CXD_OK);
    cxd_info info;
    memset(&info, 0, sizeof info);
    CU_ASSERT_EQUAL_FATAL(cxd_file_info(f, &info, &de), CXD_OK);
    cxd_pixels px;
    CU_ASSERT_EQUAL_FATAL(cxd_file_decode(f, &px, &de), CXD_OK);
    cx_pipe_params p = cx_pipe_default_params();
    p.voi_mode = CX_PIPE_VOI_WINDOW;
    p.center = 30000;
    p.width = 20000;
    cx_pipe_mapping m;
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_pipe_map(&info, &p, &m, &e), CX_OK);
    m.voi.function = CX_VOI_SIGMOID;
    cx_image *img = NULL;
    CU_ASSERT_EQUAL_FATAL(cx_grey_render(px.data, px.columns, px.rows, &m.modality, &m.voi, &img, &e), CX_OK);
    uint8_t *ours = malloc((size_t)img->width * img->height);
    cx_image_to_u8(img, ours);
    int w = 0, h = 0;
    uint8_t *theirs = dcmtk_u8(dcm("mlut_18.dcm"), "+Ww 30000 20000 +Wfs", &w, &h);
    CU_ASSERT(compare("mlut_18 SIGMOID 30000/20000 vs dcm2pnm +Wfs", ours, img->width, img->height, theirs, w, h) <= 1);
    free(ours);
    free(theirs);
    cx_image_free(img);
    cxd_pixels_clear(&px);
    cxd_info_clear(&info);
    cxd_file_free(f);
}

static void test_jpeg_ll(void)
{
    /* JPEG lossless SV1, signed 16-bit NM with no window: min..max against DCMTK's +Wm */
    cx_pipe_params p = cx_pipe_default_params();
    p.voi_mode = CX_PIPE_VOI_AUTO;
    p.auto_method = CX_AUTO_MINMAX;
    check_against_dcmtk("JPEG-LL.dcm", &p, "+Wm", "VOI: automatic window");
}

static double region_mean(const uint8_t *u, int w, int h, double x0, double x1, double y0, double y1)
{
    double s = 0;
    long n = 0;
    for (int y = (int)(y0 * h); y < (int)(y1 * h); y++)
        for (int x = (int)(x0 * w); x < (int)(x1 * w); x++, n++)
            s += u[(size_t)y * w + x];
    return n ? s / n / 255.0 : -1;
}

/* Regions as fractions of width/height of the PA chest (patient's right on the image left):
 * upper right lung x 0.15-0.35, upper left lung x 0.60-0.80, both y 0.15-0.35 (above the hila and
 * the nodules); spine/mediastinum column x 0.44-0.54, y 0.15-0.60. */
static void check_chest_polarity(const uint8_t *u, int w, int h, const char *what)
{
    double rl = region_mean(u, w, h, 0.15, 0.35, 0.15, 0.35);
    double ll = region_mean(u, w, h, 0.60, 0.80, 0.15, 0.35);
    double sp = region_mean(u, w, h, 0.44, 0.54, 0.15, 0.60);
    fprintf(stderr, "  %s: mean right lung %.3f, left lung %.3f, spine/mediastinum %.3f\n", what, rl, ll, sp);
    CU_ASSERT(rl < sp - 0.15);
    CU_ASSERT(ll < sp - 0.15);
    CU_ASSERT(sp > 0.7);
    CU_ASSERT(rl < 0.7 && ll < 0.7);
}

static void test_rg1_monochrome1(void)
{
    cx_pipe_params p = cx_pipe_default_params();
    int w = 0, h = 0;
    char desc[400] = "";
    uint8_t *u = render_u8(dcm("RG1_J2KI.dcm"), &p, &w, &h, desc, sizeof desc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    CU_ASSERT_EQUAL(w, 1841);
    CU_ASSERT_EQUAL(h, 1955);
    CU_ASSERT_STRING_EQUAL(desc, "modality: identity; VOI: window 1 of 1, 15000/30000 LINEAR; polarity: inverted (MONOCHROME1)");
    check_chest_polarity(u, w, h, "RG1 full size, file window");
    free(u);
    /* at the engine's size, and with the automatic window */
    p.fit.longest = 512;
    p.voi_mode = CX_PIPE_VOI_AUTO;
    u = render_u8(dcm("RG1_J2KI.dcm"), &p, &w, &h, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    CU_ASSERT_EQUAL(w, 482);
    CU_ASSERT_EQUAL(h, 512);
    check_chest_polarity(u, w, h, "RG1 512, automatic window");
    free(u);
}

static void test_rg3_and_images(void)
{
    cx_pipe_params p = cx_pipe_default_params();
    int w = 0, h = 0;
    char desc[400] = "";
    uint8_t *u = render_u8(dcm("RG3_J2KR.dcm"), &p, &w, &h, desc, sizeof desc);
    CU_ASSERT_PTR_NOT_NULL(u);
    CU_ASSERT_EQUAL(w, 1760);
    CU_ASSERT_PTR_NOT_NULL(strstr(desc, "window 1 of 1, 550/1024 LINEAR; polarity: inverted (MONOCHROME1)"));
    free(u);
    /* a training JPEG and a PNG through the same entry point, resized by the torchvision rule */
    const char *names[] = {"1312A392-67A3-4EBF-9319-810CF6DA5EF6.jpeg", "23E99E2E-447C-46E5-8EB2-D35D12473C39.png"};
    for (int k = 0; k < 2; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/cxr-covid-seg/images/%s", data_dir, names[k]);
        if (access(path, R_OK) != 0)
            continue;
        p.fit.longest = 0;
        p.fit.min_size = 512;
        p.fit.max_size = 1024;
        cx_pipe_image *img = NULL;
        cx_error e = {0};
        CU_ASSERT_EQUAL_FATAL(cx_pipe_load_file(path, &p, &img, NULL, &e), CX_OK);
        CU_ASSERT_PTR_NOT_NULL_FATAL(img->input);
        int shorter = img->input->width < img->input->height ? img->input->width : img->input->height;
        int longer = img->input->width < img->input->height ? img->input->height : img->input->width;
        CU_ASSERT(shorter == 512 || longer == 1024);
        CU_ASSERT_STRING_EQUAL(img->source_kind, k == 0 ? "jpeg" : "png");
        fprintf(stderr, "  %s: %dx%d -> %dx%d\n", names[k], img->source_width, img->source_height,
                img->input->width, img->input->height);
        cx_pipe_image_free(img);
    }
}

/* Every allocation of the load path (the DICOM layer's buffers routed through cx_malloc, the
 * image module's, the pipeline's) fails in turn: each gives an error, never a crash; the run
 * under valgrind reported no leak (see the closing note). */
static void test_alloc_failures(void)
{
    cxd_set_allocator(cx_malloc, cx_free);
    cx_pipe_params p = cx_pipe_default_params();
    p.fit.longest = 100;
    int n, failures = 0;
    for (n = 1; n < 400; n++) {
        cx_pipe_image *img = NULL;
        cxd_info info;
        cx_error e = {0};
        cx_alloc_fail_at((unsigned long)n, 0);
        cx_status s = cx_pipe_load_file(dcm("mlut_18.dcm"), &p, &img, &info, &e);
        unsigned long used = cx_alloc_count();
        cx_alloc_reset();
        if (s == CX_OK) {
            CU_ASSERT(used < (unsigned long)n);
            CU_ASSERT_EQUAL(img->input->width, 100);
            cxd_info_clear(&info);
            cx_pipe_image_free(img);
            break;
        }
        CU_ASSERT_PTR_NULL(img);
        CU_ASSERT_EQUAL(s, CX_ERR_NOMEM);
        if (s != CX_ERR_NOMEM)
            fprintf(stderr, "  allocation %d: %s (%s)\n", n, e.msg, cx_status_name(s));
        failures++;
    }
    cxd_set_allocator(NULL, NULL);
    fprintf(stderr, "  %d allocations failed in turn, each reported\n", failures);
    CU_ASSERT(failures >= 6);
    CU_ASSERT(n < 400);
}

static const cx_test_case cases[] = {
    {"allocation failures on the load path", test_alloc_failures},
    {"RG1_J2KI MONOCHROME1 chest", test_rg1_monochrome1},
    {"vlut_04 vs dcm2pnm", test_vlut_04},
    {"mlut_18 vs dcm2pnm", test_mlut_18},
    {"SIGMOID vs dcm2pnm", test_sigmoid_vs_dcmtk},
    {"JPEG-LL vs dcm2pnm", test_jpeg_ll},
    {"RG3_J2KR and PNG/JPEG images", test_rg3_and_images},
    {NULL, NULL},
};

int main(void)
{
    data_dir = cx_test_shared();
    if (!data_dir) {
        fprintf(stderr, "SKIP: shared data not found (set CX_SHARED)\n");
        return 77;
    }
    if (system("dcmj2pnm --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP: dcmj2pnm (Debian package dcmtk) not installed\n");
        return 77;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cx_test_pipe.XXXXXX");
    if (!mkdtemp(tmpdir))
        return 99;
    int rc = cx_test_run("pipeline_files", cases);
    rmdir(tmpdir);
    return rc;
}
