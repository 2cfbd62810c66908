/* Unit tests of the DICOM reading/decoding layer (dicom/cxdicom.h): the real files in
 * $CX_SHARED/data/dicom (JPEG 2000 checked bit for bit against GDCM), synthetic images written
 * here and converted with the DCMTK and GDCM command-line tools into every supported syntax,
 * the broken-input corpus in tests/corpus, and allocation failures injected through the cxd
 * allocator hook and through a global operator new that throws on the Nth call.
 * CXD_TEST_SELECT=strict|new runs subsets (see main; tests/dicom_valgrind.sh uses them). */
#include "cx_test.h"
#include "cxdicom.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>

#include <atomic>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <new>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <vector>

/* --enable-sanitizers: LeakSanitizer ignores what is allocated while the operator-new injection
 * runs a cycle (t_alloc_operator_new), for the reason tests/dicom_valgrind.sh runs that test with
 * memory errors only: DCMTK leaks the half-built element it was constructing when new throws
 * inside its parser (DcmItem::newDicomElement, DcmByteString::newValueField, ...), which is
 * DCMTK's exception safety, not a leak of this layer. Every other test is leak-checked. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LSAN_IGNORE_BEGIN() __lsan_disable()
#define LSAN_IGNORE_END() __lsan_enable()
#else
#define LSAN_IGNORE_BEGIN() ((void)0)
#define LSAN_IGNORE_END() ((void)0)
#endif

/* ---------------------------------------------------------------- operator new hook */

static std::atomic<long> g_new_calls{0};
static std::atomic<long> g_new_fail_at{0}; /* 0 = never; else the Nth call from arming fails */

static void *counted_new(size_t n)
{
    long c = ++g_new_calls;
    long f = g_new_fail_at.load();
    if (f && c == f)
        throw std::bad_alloc();
    void *p = malloc(n ? n : 1);
    if (!p)
        throw std::bad_alloc();
    return p;
}

void *operator new(size_t n) { return counted_new(n); }
void *operator new[](size_t n) { return counted_new(n); }
void *operator new(size_t n, const std::nothrow_t &) noexcept
{
    try {
        return counted_new(n);
    } catch (...) {
        return nullptr;
    }
}
void *operator new[](size_t n, const std::nothrow_t &) noexcept
{
    try {
        return counted_new(n);
    } catch (...) {
        return nullptr;
    }
}
void operator delete(void *p) noexcept { free(p); }
void operator delete[](void *p) noexcept { free(p); }
void operator delete(void *p, size_t) noexcept { free(p); }
void operator delete[](void *p, size_t) noexcept { free(p); }
void operator delete(void *p, const std::nothrow_t &) noexcept { free(p); }
void operator delete[](void *p, const std::nothrow_t &) noexcept { free(p); }

static void new_arm(long n)
{
    g_new_calls = 0;
    g_new_fail_at = n;
}

/* ---------------------------------------------------------------- cxd allocator hook */

static long g_cxd_calls = 0, g_cxd_fail_at = 0, g_cxd_live = 0;

static void *failing_malloc(size_t n)
{
    if (++g_cxd_calls == g_cxd_fail_at)
        return nullptr;
    void *p = malloc(n);
    if (p)
        g_cxd_live++;
    return p;
}

static void counting_free(void *p)
{
    if (p)
        g_cxd_live--;
    free(p);
}

/* ---------------------------------------------------------------- helpers */

static std::string g_tmp;

static const std::string &tmpdir(void)
{
    if (g_tmp.empty()) {
        char t[] = "/tmp/cxd-test-XXXXXX";
        if (mkdtemp(t))
            g_tmp = t;
    }
    return g_tmp;
}

static void cleanup_tmp(void)
{
    if (!g_tmp.empty() && !getenv("CXD_TEST_KEEP")) {
        std::string cmd = "rm -rf '" + g_tmp + "'";
        if (system(cmd.c_str()) != 0)
            fprintf(stderr, "could not remove %s\n", g_tmp.c_str());
    }
}

static bool have_tool(const char *name)
{
    std::string cmd = std::string("command -v ") + name + " >/dev/null 2>&1";
    return system(cmd.c_str()) == 0;
}

static int run(const std::string &cmd)
{
    std::string c = cmd + " >/dev/null 2>&1";
    return system(c.c_str());
}

static std::string corpus(const char *name) { return std::string(cx_test_srcdir()) + "/tests/corpus/" + name; }

static bool shared_dicom(std::string *dir)
{
    const char *s = cx_test_shared();
    if (!s) {
        cx_test_skip("$CX_SHARED/data absent: the real-file checks did not run");
        return false;
    }
    *dir = std::string(s) + "/dicom";
    return true;
}

/* Opens, reads the attributes and decodes; each step's status is returned in *stage_failed
 * ("open", "info", "decode" or "" on success). */
static cxd_status load(const std::string &path, cxd_info *info, cxd_pixels *px, cxd_error *err,
                       const char **stage_failed)
{
    cxd_file *f = nullptr;
    cxd_status st = cxd_file_open(path.c_str(), &f, err);
    *stage_failed = "open";
    if (st != CXD_OK)
        return st;
    cxd_info tmp;
    st = cxd_file_info(f, &tmp, err);
    *stage_failed = "info";
    if (st == CXD_OK) {
        *stage_failed = "decode";
        st = cxd_file_decode(f, px, err);
        if (st == CXD_OK)
            *stage_failed = "";
        if (info && st == CXD_OK)
            *info = tmp;
        else
            cxd_info_clear(&tmp);
    }
    cxd_file_free(f);
    return st;
}

static bool decode_ok(const std::string &path, cxd_info *info, cxd_pixels *px)
{
    cxd_error err = {};
    const char *stage;
    cxd_status st = load(path, info, px, &err, &stage);
    if (st != CXD_OK)
        printf("\n  %s: %s failed: %s ", path.c_str(), stage, err.msg);
    return st == CXD_OK;
}

static bool same_pixels(const cxd_pixels &a, const cxd_pixels &b)
{
    return a.rows == b.rows && a.columns == b.columns &&
           memcmp(a.data, b.data, sizeof(int32_t) * (size_t)a.rows * a.columns) == 0;
}

/* ---------------------------------------------------------------- synthetic images */

struct synth {
    const char *name;
    int ba, bs, hb, pr;
};

static const synth k_synth[] = {
    {"u8", 8, 8, 7, 0},      {"u12", 16, 12, 11, 0}, {"s12", 16, 12, 11, 1},
    {"u16", 16, 16, 15, 0},  {"s16", 16, 16, 15, 1}, {"u10hb11", 16, 10, 11, 0},
};
enum { SYN_ROWS = 37, SYN_COLS = 53 };

/* A smooth ramp with a little deterministic noise over the whole stored range: lossless codecs
 * must reproduce it exactly, lossy ones approximately. */
static std::vector<int32_t> synth_values(const synth &s)
{
    std::vector<int32_t> v((size_t)SYN_ROWS * SYN_COLS);
    long lo = s.pr ? -(1L << (s.bs - 1)) : 0, hi = s.pr ? (1L << (s.bs - 1)) - 1 : (1L << s.bs) - 1;
    unsigned h = 12345;
    for (int r = 0; r < SYN_ROWS; r++)
        for (int c = 0; c < SYN_COLS; c++) {
            h = h * 1103515245u + 12345u;
            double t = 0.55 * r / (SYN_ROWS - 1) + 0.4 * c / (SYN_COLS - 1);
            long x = lo + (long)(t * (double)(hi - lo)) + (long)((h >> 16) % 5);
            v[(size_t)r * SYN_COLS + c] = (int32_t)(x > hi ? hi : x);
        }
    v[0] = (int32_t)lo; /* both extremes present */
    v[1] = (int32_t)hi;
    return v;
}

static bool write_synth(const synth &s, const std::string &path, const char *extra_spacing)
{
    std::vector<int32_t> v = synth_values(s);
    DcmFileFormat ff;
    DcmDataset *ds = ff.getDataset();
    char uid[100];
    ds->putAndInsertString(DCM_SOPClassUID, UID_ComputedRadiographyImageStorage);
    ds->putAndInsertString(DCM_SOPInstanceUID, dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT));
    ds->putAndInsertString(DCM_StudyInstanceUID, dcmGenerateUniqueIdentifier(uid, SITE_STUDY_UID_ROOT));
    ds->putAndInsertString(DCM_SeriesInstanceUID, dcmGenerateUniqueIdentifier(uid, SITE_SERIES_UID_ROOT));
    ds->putAndInsertString(DCM_Modality, "CR");
    ds->putAndInsertString(DCM_PatientName, "Synthetic^Image");
    ds->putAndInsertString(DCM_PatientID, "SYN");
    ds->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
    ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
    ds->putAndInsertUint16(DCM_Rows, SYN_ROWS);
    ds->putAndInsertUint16(DCM_Columns, SYN_COLS);
    ds->putAndInsertUint16(DCM_BitsAllocated, (Uint16)s.ba);
    ds->putAndInsertUint16(DCM_BitsStored, (Uint16)s.bs);
    ds->putAndInsertUint16(DCM_HighBit, (Uint16)s.hb);
    ds->putAndInsertUint16(DCM_PixelRepresentation, (Uint16)s.pr);
    if (extra_spacing) {
        ds->putAndInsertString(DCM_PixelSpacing, "0\\0");
        ds->putAndInsertString(DCM_ImagerPixelSpacing, extra_spacing);
    }
    int shift = s.hb + 1 - s.bs;
    if (s.ba == 8) {
        std::vector<Uint8> b(v.size());
        for (size_t i = 0; i < v.size(); i++)
            b[i] = (Uint8)(v[i] << shift);
        ds->putAndInsertUint8Array(DCM_PixelData, b.data(), (unsigned long)b.size());
    } else {
        std::vector<Uint16> w(v.size());
        for (size_t i = 0; i < v.size(); i++)
            w[i] = (Uint16)((uint32_t)v[i] << shift); /* signed: sign bits kept above BitsStored */
        ds->putAndInsertUint16Array(DCM_PixelData, w.data(), (unsigned long)w.size());
    }
    return ff.saveFile(path.c_str(), EXS_LittleEndianExplicit).good();
}

struct conversion {
    const char *tool;     /* program that must exist */
    const char *args;     /* options before "in out" */
    const char *ts_uid;   /* transfer syntax the output must carry */
    const char *variants; /* which synth names it applies to ("*" = all but u10hb11) */
    /* Accepted error in stored units: 0 = lossless; else max |error| <= max_abs and mean
     * |error| <= max_mean. Lossy limits are about twice what these tools gave on Debian 12
     * (baseline u8 4/0.9, extended u12 6/0.97, JPEG-LS NEAR 3 3/1.7, J2K -r 4 u16 3/0.6). */
    int max_abs;
    double max_mean;
};

static const conversion k_conv[] = {
    {"dcmconv", "+ti", "1.2.840.10008.1.2", "all", 0, 0},
    {"dcmconv", "+te", "1.2.840.10008.1.2.1", "all", 0, 0},
    {"dcmconv", "+tb", "1.2.840.10008.1.2.2", "all", 0, 0},
    {"dcmconv", "+td", "1.2.840.10008.1.2.1.99", "all", 0, 0},
    {"dcmcjpeg", "+e1", "1.2.840.10008.1.2.4.70", "*", 0, 0},
    {"dcmcjpeg", "+el", "1.2.840.10008.1.2.4.57", "*", 0, 0},
    {"dcmcjpeg", "+eb +q 95", "1.2.840.10008.1.2.4.50", "u8", 8, 2.0},
    {"dcmcjpeg", "+ee +q 95", "1.2.840.10008.1.2.4.51", "u8 u12", 12, 2.0},
    {"dcmcjpls", "+el", "1.2.840.10008.1.2.4.80", "*", 0, 0},
    /* NEAR = 3 bounds the error by definition; dcmcjpls refuses near-lossless for signed images */
    {"dcmcjpls", "+en +md 3", "1.2.840.10008.1.2.4.81", "u8 u12 u16", 3, 3.0},
    {"dcmcrle", "", "1.2.840.10008.1.2.5", "*", 0, 0},
    {"gdcmconv", "--j2k", "1.2.840.10008.1.2.4.90", "*", 0, 0},
    {"gdcmconv", "--quiet --j2k --lossy --irreversible -r 4", "1.2.840.10008.1.2.4.91", "u12 u16", 8, 1.5},
};

static bool applies(const conversion &c, const synth &s)
{
    if (!strcmp(c.variants, "all"))
        return true;
    if (!strcmp(c.variants, "*"))
        return strcmp(s.name, "u10hb11") != 0;
    std::string list = std::string(" ") + c.variants + " ", key = std::string(" ") + s.name + " ";
    return list.find(key) != std::string::npos;
}

static int g_synth_checked = 0;

static void t_synthetic_syntaxes(void)
{
    const std::string &dir = tmpdir();
    CU_ASSERT_FATAL(!dir.empty());
    for (const synth &s : k_synth) {
        std::string src = dir + "/synth_" + s.name + ".dcm";
        CU_ASSERT_FATAL(write_synth(s, src, nullptr));
        std::vector<int32_t> want = synth_values(s);
        for (const conversion &c : k_conv) {
            if (!applies(c, s))
                continue;
            if (!have_tool(c.tool)) {
                cx_test_skip("%s not installed: %s %s did not run", c.tool, c.tool, c.args);
                continue;
            }
            std::string out = dir + "/synth_" + s.name + "_" + c.ts_uid + ".dcm";
            std::string cmd = std::string(c.tool) + " " + c.args + " '" + src + "' '" + out + "'";
            int rc = run(cmd);
            if (rc != 0) {
                printf("\n  conversion failed (%d): %s ", rc, cmd.c_str());
                CU_FAIL("conversion tool failed");
                continue;
            }
            cxd_info info;
            cxd_pixels px;
            if (!decode_ok(out, &info, &px)) {
                CU_FAIL("synthetic file did not decode");
                continue;
            }
            CU_ASSERT_STRING_EQUAL(info.transfer_syntax_uid, c.ts_uid);
            CU_ASSERT_EQUAL(px.rows, SYN_ROWS);
            CU_ASSERT_EQUAL(px.columns, SYN_COLS);
            CU_ASSERT_EQUAL(px.is_signed, s.pr);
            long max_err = 0;
            double sum_err = 0;
            for (size_t i = 0; i < want.size(); i++) {
                long d = labs((long)px.data[i] - want[i]);
                max_err = d > max_err ? d : max_err;
                sum_err += (double)d;
            }
            double mean = sum_err / (double)want.size();
            bool lossy = c.max_abs > 0;
            bool ok = !lossy ? max_err == 0 : (max_err <= c.max_abs && mean <= c.max_mean);
            if (!ok || lossy)
                printf("\n  %s via %s %s: max |error| %ld, mean %.2f ", s.name, c.tool, c.args, max_err, mean);
            CU_ASSERT(ok);
            g_synth_checked++;
            cxd_pixels_clear(&px);
            cxd_info_clear(&info);
        }
    }
    printf("\n  %d synthetic (variant, syntax) pairs decoded ", g_synth_checked);
}

/* ---------------------------------------------------------------- basic API */

static void t_status_names(void)
{
    for (int s = CXD_OK; s <= CXD_ERR_INTERNAL; s++)
        CU_ASSERT_STRING_NOT_EQUAL(cxd_status_name((cxd_status)s), "unknown");
    CU_ASSERT_STRING_EQUAL(cxd_status_name((cxd_status)999), "unknown");
}

static void t_init_and_args(void)
{
    cxd_error err = {};
    CU_ASSERT_EQUAL(cxd_init(&err), CXD_OK);
    CU_ASSERT_EQUAL(cxd_init(nullptr), CXD_OK);
    cxd_file *f = (cxd_file *)0x1;
    CU_ASSERT_EQUAL(cxd_file_open(nullptr, &f, &err), CXD_ERR_INVALID);
    CU_ASSERT_PTR_EQUAL(f, (cxd_file *)0x1); /* out untouched on failure */
    CU_ASSERT_EQUAL(cxd_file_open("/nonexistent/x.dcm", &f, &err), CXD_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "open: cannot open '/nonexistent/x.dcm'"));
    CU_ASSERT_EQUAL(cxd_file_open_memory(nullptr, 10, &f, &err), CXD_ERR_INVALID);
    CU_ASSERT_EQUAL(cxd_file_info(nullptr, nullptr, &err), CXD_ERR_INVALID);
    CU_ASSERT_EQUAL(cxd_file_decode(nullptr, nullptr, &err), CXD_ERR_INVALID);
    cxd_file_free(nullptr);
    cxd_info_clear(nullptr);
    cxd_pixels_clear(nullptr);
    double sp[2] = {-1, -1};
    const char *which = nullptr;
    CU_ASSERT_EQUAL(cxd_info_spacing(nullptr, sp, &which), 0);
    CU_ASSERT_STRING_EQUAL(which, "none");
}

/* ---------------------------------------------------------------- real files */

static void t_real_files_decode(void)
{
    std::string dir;
    if (!shared_dicom(&dir))
        return;
    DIR *d = opendir(dir.c_str());
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int n = 0;
    while (struct dirent *e = readdir(d)) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".dcm") != 0)
            continue;
        cxd_info info;
        cxd_pixels px;
        bool ok = decode_ok(dir + "/" + e->d_name, &info, &px);
        CU_ASSERT(ok);
        if (!ok)
            continue;
        n++;
        CU_ASSERT_EQUAL(px.rows, info.rows);
        CU_ASSERT_EQUAL(px.columns, info.columns);
        /* every value inside the stored range */
        long lo = info.pixel_representation ? -(1L << (info.bits_stored - 1)) : 0;
        long hi = info.pixel_representation ? (1L << (info.bits_stored - 1)) - 1 : (1L << info.bits_stored) - 1;
        size_t bad = 0;
        for (size_t i = 0; i < (size_t)px.rows * px.columns; i++)
            bad += px.data[i] < lo || px.data[i] > hi;
        CU_ASSERT_EQUAL(bad, 0);
        cxd_pixels_clear(&px);
        cxd_info_clear(&info);
    }
    closedir(d);
    CU_ASSERT(n >= 5);
    printf("\n  %d real files decoded ", n);
}

static void t_rg1_info(void)
{
    std::string dir;
    if (!shared_dicom(&dir))
        return;
    cxd_file *f = nullptr;
    cxd_error err = {};
    CU_ASSERT_EQUAL_FATAL(cxd_file_open((dir + "/RG1_J2KI.dcm").c_str(), &f, &err), CXD_OK);
    cxd_info in;
    CU_ASSERT_EQUAL_FATAL(cxd_file_info(f, &in, &err), CXD_OK);
    CU_ASSERT_EQUAL(in.rows, 1955);
    CU_ASSERT_EQUAL(in.columns, 1841);
    CU_ASSERT_STRING_EQUAL(in.photometric, "MONOCHROME1");
    CU_ASSERT_EQUAL(in.bits_allocated, 16);
    CU_ASSERT_EQUAL(in.bits_stored, 15);
    CU_ASSERT_EQUAL(in.high_bit, 14);
    CU_ASSERT_EQUAL(in.pixel_representation, 0);
    CU_ASSERT_EQUAL(in.samples_per_pixel, 1);
    CU_ASSERT_EQUAL(in.number_of_frames, 1);
    CU_ASSERT_STRING_EQUAL(in.transfer_syntax_uid, "1.2.840.10008.1.2.4.91");
    CU_ASSERT_STRING_EQUAL(in.modality, "CR");
    CU_ASSERT_STRING_EQUAL(in.body_part_examined, "CHEST");
    CU_ASSERT_STRING_EQUAL(in.view_position, "PA");
    CU_ASSERT_STRING_EQUAL(in.patient_orientation, "L\\F");
    CU_ASSERT_STRING_EQUAL(in.patient_id, "9RG1");
    CU_ASSERT_STRING_EQUAL(in.specific_character_set, "ISO_IR 100");
    CU_ASSERT_STRING_EQUAL(in.sop_class_uid, "1.2.840.10008.5.1.4.1.1.1");
    CU_ASSERT_EQUAL(in.n_windows, 1);
    CU_ASSERT_DOUBLE_EQUAL(in.window_center[0], 15000, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(in.window_width[0], 30000, 1e-9);
    CU_ASSERT_EQUAL(in.has_pixel_spacing, 0); /* 0\0 is "absent" */
    CU_ASSERT_EQUAL(in.has_imager_pixel_spacing, 0);
    CU_ASSERT_EQUAL(in.modality_lut.present, 0);
    CU_ASSERT_EQUAL(in.voi_lut.present, 0);
    double sp[2];
    const char *which = nullptr;
    CU_ASSERT_EQUAL(cxd_info_spacing(&in, sp, &which), 0);
    CU_ASSERT_STRING_EQUAL(which, "none");
    cxd_info_clear(&in);
    cxd_file_free(f);
}

static void t_spacing_rule(void)
{
    const std::string &dir = tmpdir();
    std::string p = dir + "/spacing.dcm";
    CU_ASSERT_FATAL(write_synth(k_synth[1], p, "0.139\\0.143"));
    cxd_file *f = nullptr;
    cxd_error err = {};
    CU_ASSERT_EQUAL_FATAL(cxd_file_open(p.c_str(), &f, &err), CXD_OK);
    cxd_info in;
    CU_ASSERT_EQUAL_FATAL(cxd_file_info(f, &in, &err), CXD_OK);
    CU_ASSERT_EQUAL(in.has_pixel_spacing, 0);
    CU_ASSERT_EQUAL(in.has_imager_pixel_spacing, 1);
    double sp[2];
    const char *which = nullptr;
    CU_ASSERT_EQUAL(cxd_info_spacing(&in, sp, &which), 1);
    CU_ASSERT_STRING_EQUAL(which, "ImagerPixelSpacing");
    CU_ASSERT_DOUBLE_EQUAL(sp[0], 0.139, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sp[1], 0.143, 1e-12);
    /* Both present: PixelSpacing wins. */
    in.has_pixel_spacing = 1;
    in.pixel_spacing[0] = 0.2, in.pixel_spacing[1] = 0.25;
    CU_ASSERT_EQUAL(cxd_info_spacing(&in, sp, &which), 1);
    CU_ASSERT_STRING_EQUAL(which, "PixelSpacing");
    CU_ASSERT_DOUBLE_EQUAL(sp[1], 0.25, 1e-12);
    cxd_info_clear(&in);
    cxd_file_free(f);
}

static void t_luts(void)
{
    std::string dir;
    if (!shared_dicom(&dir))
        return;
    cxd_error err = {};
    cxd_file *f = nullptr;
    cxd_info in;
    CU_ASSERT_EQUAL_FATAL(cxd_file_open((dir + "/mlut_18.dcm").c_str(), &f, &err), CXD_OK);
    CU_ASSERT_EQUAL_FATAL(cxd_file_info(f, &in, &err), CXD_OK);
    CU_ASSERT_EQUAL(in.modality_lut.present, 1);
    CU_ASSERT_EQUAL(in.modality_lut.entries, 4096);
    CU_ASSERT_EQUAL(in.modality_lut.first_mapped, -2048); /* SS descriptor, PixelRepresentation 1 */
    CU_ASSERT_EQUAL(in.modality_lut.bits, 16);
    CU_ASSERT_STRING_EQUAL(in.modality_lut.lut_type, "US");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in.modality_lut.data);
    CU_ASSERT_EQUAL(in.modality_lut.data[0], 0);
    CU_ASSERT_EQUAL(in.modality_lut.data[1], 16);
    CU_ASSERT_EQUAL(in.voi_lut.present, 0);
    CU_ASSERT_EQUAL(in.has_rescale, 0);
    cxd_info_clear(&in);
    CU_ASSERT_PTR_NULL(in.modality_lut.data);
    cxd_file_free(f);

    CU_ASSERT_EQUAL_FATAL(cxd_file_open((dir + "/vlut_04.dcm").c_str(), &f, &err), CXD_OK);
    CU_ASSERT_EQUAL_FATAL(cxd_file_info(f, &in, &err), CXD_OK);
    CU_ASSERT_EQUAL(in.voi_lut.present, 1);
    CU_ASSERT_EQUAL(in.n_voi_luts, 1);
    CU_ASSERT_EQUAL(in.voi_lut.entries, 256);
    CU_ASSERT_EQUAL(in.voi_lut.first_mapped, 0);
    CU_ASSERT_EQUAL(in.voi_lut.bits, 16);
    CU_ASSERT_EQUAL(in.voi_lut.data[1], 257);
    CU_ASSERT_EQUAL(in.voi_lut.data[255], 65535);
    CU_ASSERT_EQUAL(in.modality_lut.present, 0);
    cxd_info_clear(&in);
    cxd_file_free(f);
}

/* A LUT descriptor with 0 entries means 65536, and a US first-mapped value is signed when
 * PixelRepresentation is 1. */
static void t_lut_descriptor_rules(void)
{
    const std::string &dir = tmpdir();
    std::string p = dir + "/lut65536.dcm";
    CU_ASSERT_FATAL(write_synth(k_synth[2], p, nullptr)); /* s12: PixelRepresentation 1 */
    DcmFileFormat ff;
    CU_ASSERT_FATAL(ff.loadFile(p.c_str()).good());
    DcmItem *item = nullptr;
    CU_ASSERT_FATAL(ff.getDataset()->findOrCreateSequenceItem(DCM_ModalityLUTSequence, item, 0).good());
    const Uint16 desc[3] = {0, 0xF800 /* -2048 */, 16};
    DcmUnsignedShort *e = new DcmUnsignedShort(DcmTag(DCM_LUTDescriptor, EVR_US));
    e->putUint16Array(desc, 3);
    item->insert(e, true);
    std::vector<Uint16> data(65536);
    for (size_t i = 0; i < data.size(); i++)
        data[i] = (Uint16)(65535 - i);
    item->putAndInsertUint16Array(DCM_LUTData, data.data(), (unsigned long)data.size());
    item->putAndInsertString(DCM_ModalityLUTType, "HU");
    CU_ASSERT_FATAL(ff.saveFile(p.c_str(), EXS_LittleEndianExplicit).good());

    cxd_error err = {};
    cxd_file *f = nullptr;
    cxd_info in;
    CU_ASSERT_EQUAL_FATAL(cxd_file_open(p.c_str(), &f, &err), CXD_OK);
    CU_ASSERT_EQUAL_FATAL(cxd_file_info(f, &in, &err), CXD_OK);
    CU_ASSERT_EQUAL(in.modality_lut.present, 1);
    CU_ASSERT_EQUAL(in.modality_lut.entries, 65536);
    CU_ASSERT_EQUAL(in.modality_lut.first_mapped, -2048);
    CU_ASSERT_STRING_EQUAL(in.modality_lut.lut_type, "HU");
    CU_ASSERT_EQUAL(in.modality_lut.data[65535], 0);
    CU_ASSERT_EQUAL(in.modality_lut.data[1], 65534);
    cxd_info_clear(&in);
    cxd_file_free(f);

    /* An 8-bit VOI LUT of 256 entries packed into 128 words, first entry in the low byte. */
    CU_ASSERT_FATAL(ff.loadFile(p.c_str()).good());
    ff.getDataset()->findAndDeleteElement(DCM_ModalityLUTSequence);
    CU_ASSERT_FATAL(ff.getDataset()->findOrCreateSequenceItem(DCM_VOILUTSequence, item, 0).good());
    const Uint16 desc8[3] = {256, 0, 8};
    DcmUnsignedShort *e8 = new DcmUnsignedShort(DcmTag(DCM_LUTDescriptor, EVR_US));
    e8->putUint16Array(desc8, 3);
    item->insert(e8, true);
    std::vector<Uint16> packed(128);
    for (int i = 0; i < 128; i++)
        packed[i] = (Uint16)((2 * i) | ((255 - 2 * i - 1) << 8)); /* entry 2i = 2i, entry 2i+1 = 254-2i */
    item->putAndInsertUint16Array(DCM_LUTData, packed.data(), 128);
    CU_ASSERT_FATAL(ff.saveFile(p.c_str(), EXS_LittleEndianExplicit).good());
    CU_ASSERT_EQUAL_FATAL(cxd_file_open(p.c_str(), &f, &err), CXD_OK);
    CU_ASSERT_EQUAL_FATAL(cxd_file_info(f, &in, &err), CXD_OK);
    CU_ASSERT_EQUAL(in.voi_lut.present, 1);
    CU_ASSERT_EQUAL(in.voi_lut.entries, 256);
    CU_ASSERT_EQUAL(in.voi_lut.bits, 8);
    CU_ASSERT_EQUAL(in.voi_lut.data[0], 0);
    CU_ASSERT_EQUAL(in.voi_lut.data[1], 254);
    CU_ASSERT_EQUAL(in.voi_lut.data[10], 10);
    CU_ASSERT_EQUAL(in.voi_lut.data[255], 0);
    CU_ASSERT_EQUAL(in.modality_lut.present, 0);
    cxd_info_clear(&in);
    cxd_file_free(f);
}

static void compare_with_gdcm(const char *name)
{
    std::string dir;
    if (!shared_dicom(&dir))
        return;
    if (!have_tool("gdcmconv")) {
        cx_test_skip("gdcmconv not installed (Debian package libgdcm-tools): the GDCM comparison did not run");
        return;
    }
    std::string raw = tmpdir() + "/" + name + ".raw.dcm";
    CU_ASSERT_EQUAL_FATAL(run("gdcmconv --raw '" + dir + "/" + name + "' '" + raw + "'"), 0);
    cxd_pixels a, b;
    cxd_info ia, ib;
    CU_ASSERT_FATAL(decode_ok(dir + "/" + name, &ia, &a));
    CU_ASSERT_FATAL(decode_ok(raw, &ib, &b));
    CU_ASSERT_STRING_EQUAL(ib.transfer_syntax_uid, "1.2.840.10008.1.2.1");
    CU_ASSERT(same_pixels(a, b));
    size_t diff = 0;
    for (size_t i = 0; i < (size_t)a.rows * a.columns && a.rows == b.rows && a.columns == b.columns; i++)
        diff += a.data[i] != b.data[i];
    printf("\n  %s: %dx%d, %zu pixels differ from GDCM ", name, a.columns, a.rows, diff);
    cxd_pixels_clear(&a);
    cxd_pixels_clear(&b);
    cxd_info_clear(&ia);
    cxd_info_clear(&ib);
}

static void t_j2k_lossy_equals_gdcm(void) { compare_with_gdcm("RG1_J2KI.dcm"); }
static void t_j2k_lossless_equals_gdcm(void) { compare_with_gdcm("RG3_J2KR.dcm"); }

/* ---------------------------------------------------------------- memory input */

static bool read_file(const std::string &path, std::vector<unsigned char> *buf)
{
    FILE *fp = fopen(path.c_str(), "rb");
    if (!fp)
        return false;
    unsigned char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, fp)) > 0)
        buf->insert(buf->end(), tmp, tmp + n);
    fclose(fp);
    return true;
}

/* 1 under valgrind (its preload is mapped), where an address-space limit would stop valgrind itself. */
static bool under_valgrind(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    bool vg = false;
    while (f && !vg && fgets(line, sizeof line, f))
        vg = strstr(line, "vgpreload") != nullptr;
    if (f)
        fclose(f);
    return vg;
}

/* A buffer whose last element declares 0xF0000000 bytes with 16 present, at the top level and
 * inside an undefined-length sequence item: the memory path must refuse it as malformed without
 * allocating the declared length. Run in a child limited to 512 MB more address space than it has,
 * where a 3.75 GB allocation fails (which would show as CXD_ERR_NOMEM). */
static void t_memory_length_bomb(void)
{
    std::vector<unsigned char> base;
    CU_ASSERT_FATAL(read_file(corpus("ok_native.dcm"), &base));
    static const unsigned char top[] = {0xE1, 0x7F, 0x10, 0x10, 'O', 'B', 0, 0, 0x00, 0x00, 0x00, 0xF0};
    static const unsigned char nested[] = {0xE1, 0x7F, 0x20, 0x10, 'S', 'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
                                           0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF,
                                           0x09, 0x00, 0x10, 0x10, 'O', 'B', 0, 0, 0x00, 0x00, 0x00, 0xF0};
    const unsigned char *tails[2] = {top, nested};
    size_t lens[2] = {sizeof top, sizeof nested};
    bool limit = !under_valgrind();
    /* The same bomb in a deflated data set (found by tests/fuzz: DCMTK's inflating stream has no
     * end to check a length against, so dicom/read_deflate.cc inflates first). */
    std::vector<unsigned char> defl;
    CU_ASSERT_FATAL(read_file(corpus("ok_deflated.dcm"), &defl));
    CU_ASSERT_FATAL(defl.size() > 144);
    size_t ds = 144 + (defl[140] | defl[141] << 8 | defl[142] << 16 | (size_t)defl[143] << 24);
    CU_ASSERT_FATAL(ds < defl.size());
    std::vector<unsigned char> plain(1 << 20), bomb(defl.begin(), defl.begin() + (long)ds);
    z_stream z = {};
    CU_ASSERT_FATAL(inflateInit2(&z, -15) == Z_OK);
    z.next_in = defl.data() + ds, z.avail_in = (uInt)(defl.size() - ds);
    z.next_out = plain.data(), z.avail_out = (uInt)plain.size();
    CU_ASSERT_FATAL(inflate(&z, Z_FINISH) == Z_STREAM_END);
    plain.resize(z.total_out);
    inflateEnd(&z);
    plain.insert(plain.end(), top, top + sizeof top);
    plain.insert(plain.end(), 16, 0);
    std::vector<unsigned char> packed(plain.size() + 1024);
    z = {};
    CU_ASSERT_FATAL(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    z.next_in = plain.data(), z.avail_in = (uInt)plain.size();
    z.next_out = packed.data(), z.avail_out = (uInt)packed.size();
    CU_ASSERT_FATAL(deflate(&z, Z_FINISH) == Z_STREAM_END);
    bomb.insert(bomb.end(), packed.begin(), packed.begin() + (long)z.total_out);
    deflateEnd(&z);
    /* And a deflated file whose meta header has an invalid VR (tests/fuzz reproducer): refused
     * instead of reaching DCMTK's inflating stream. */
    std::vector<unsigned char> badmeta;
    CU_ASSERT_FATAL(read_file(std::string(cx_test_srcdir()) + "/tests/fuzz/crashes/dicom_memory/oom-deflated-bad-meta-vr",
                              &badmeta));
    for (int k = 0; k < 4; k++) {
        std::vector<unsigned char> buf = base;
        if (k < 2) {
            buf.insert(buf.end(), tails[k], tails[k] + lens[k]);
            buf.insert(buf.end(), 16, 0);
        } else {
            buf = k == 2 ? bomb : badmeta;
        }
        fflush(stdout);
        pid_t pid = fork();
        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0) {
            if (limit) {
                FILE *st = fopen("/proc/self/statm", "r");
                unsigned long pages = 0;
                if (!st || fscanf(st, "%lu", &pages) != 1)
                    _exit(100);
                fclose(st);
                struct rlimit rl;
                rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)512 << 20);
                if (setrlimit(RLIMIT_AS, &rl) != 0)
                    _exit(101);
            }
            cxd_file *f = nullptr;
            cxd_error err = {};
            cxd_status st = cxd_file_open_memory(buf.data(), buf.size(), &f, &err);
            fprintf(stderr, "\n    %s: %s", k == 3 ? "deflated, bad meta" : k == 2 ? "deflated" : k ? "nested" : "top level", err.msg);
            cxd_file_free(f);
            _exit((int)st);
        }
        int status = 0;
        CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
        CU_ASSERT(WIFEXITED(status));
        CU_ASSERT_EQUAL(WEXITSTATUS(status), CXD_ERR_MALFORMED);
    }
}

static void t_open_memory(void)
{
    const char *names[] = {"ok_native.dcm", "ok_j2k.dcm", "ok_jpegls.dcm", "ok_deflated.dcm", "ok_bigendian.dcm"};
    cxd_pixels ref;
    CU_ASSERT_FATAL(decode_ok(corpus("ok_native.dcm"), nullptr, &ref));
    for (const char *n : names) {
        std::vector<unsigned char> buf;
        CU_ASSERT_FATAL(read_file(corpus(n), &buf));
        cxd_file *f = nullptr;
        cxd_error err = {};
        CU_ASSERT_EQUAL_FATAL(cxd_file_open_memory(buf.data(), buf.size(), &f, &err), CXD_OK);
        buf.assign(buf.size(), 0xAA); /* the layer must not keep pointing into the caller's buffer */
        cxd_pixels px;
        CU_ASSERT_EQUAL(cxd_file_decode(f, &px, &err), CXD_OK);
        if (err.code == CXD_OK) {
            CU_ASSERT(same_pixels(px, ref));
            cxd_pixels_clear(&px);
        }
        cxd_file_free(f);
    }
    cxd_pixels_clear(&ref);

    std::vector<unsigned char> buf;
    CU_ASSERT_FATAL(read_file(corpus("ok_native.dcm"), &buf));
    cxd_file *f = nullptr;
    cxd_error err = {};
    CU_ASSERT_EQUAL(cxd_file_open_memory(buf.data(), buf.size() - 301, &f, &err), CXD_ERR_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "the buffer"));
    CU_ASSERT_EQUAL(cxd_file_open_memory(buf.data(), 0, &f, &err), CXD_ERR_NOT_DICOM);
    const char text[] = "hello, this is not a DICOM object at all, just some text that is long enough to "
                        "cover the preamble and the DICM prefix position of a Part 10 file ........";
    CU_ASSERT_EQUAL(cxd_file_open_memory(text, sizeof text, &f, &err), CXD_ERR_NOT_DICOM);
    CU_ASSERT_PTR_NULL(f);
}

/* ---------------------------------------------------------------- corpus */

static int g_log_lines = 0;
static void count_log(int, const char *, void *) { g_log_lines++; }

static void t_corpus(void)
{
    FILE *fp = fopen(corpus("expected.txt").c_str(), "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    /* Libraries never print: stderr is redirected for the replay and must stay empty. */
    std::string errfile = tmpdir() + "/stderr.txt";
    fflush(stderr);
    int saved = dup(2);
    int fd = open(errfile.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    dup2(fd, 2);
    close(fd);
    cxd_set_log(count_log, nullptr);
    g_log_lines = 0;

    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, fp)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = 0;
        char *name = strtok(line, "\t"), *stage = strtok(nullptr, "\t"), *status = strtok(nullptr, "\t"),
             *sub = strtok(nullptr, "");
        CU_ASSERT_PTR_NOT_NULL_FATAL(sub);
        cxd_error err = {};
        cxd_pixels px;
        px.data = (int32_t *)0x1; /* must stay untouched on failure */
        const char *failed = "";
        cxd_status st = load(corpus(name), nullptr, &px, &err, &failed);
        bool ok = st != CXD_OK && !strcmp(failed, stage) && !strcmp(cxd_status_name(st), status) &&
                  strstr(err.msg, sub) && px.data == (int32_t *)0x1 && !strncmp(err.msg, stage, strlen(stage));
        if (!ok)
            printf("\n  %s: expected %s/%s '%s', got %s/%s '%s' ", name, stage, status, sub, failed,
                   cxd_status_name(st), err.msg);
        if (st == CXD_OK)
            cxd_pixels_clear(&px);
        CU_ASSERT(ok);
        n++;
    }
    fclose(fp);
    cxd_set_log(nullptr, nullptr);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    struct stat sb;
    CU_ASSERT_EQUAL(stat(errfile.c_str(), &sb), 0);
    CU_ASSERT_EQUAL(sb.st_size, 0);
    CU_ASSERT(g_log_lines > 0); /* DCMTK's warnings reached the sink instead */
    CU_ASSERT(n >= 25);
    printf("\n  %d corpus files replayed, %d DCMTK log lines routed to the sink ", n, g_log_lines);
}

static void t_corpus_valid(void)
{
    const char *unsigned_files[] = {"ok_native.dcm", "ok_implicit.dcm", "ok_bigendian.dcm", "ok_deflated.dcm",
                                    "ok_jpeg_sv1.dcm", "ok_jpegls.dcm", "ok_rle.dcm", "ok_j2k.dcm"};
    const char *signed_files[] = {"ok_signed.dcm", "ok_j2k_signed.dcm"};
    cxd_pixels ref, sref;
    CU_ASSERT_FATAL(decode_ok(corpus("ok_native.dcm"), nullptr, &ref));
    CU_ASSERT_FATAL(decode_ok(corpus("ok_signed.dcm"), nullptr, &sref));
    CU_ASSERT_EQUAL(ref.rows, 20);
    CU_ASSERT_EQUAL(ref.columns, 24);
    CU_ASSERT_EQUAL(ref.data[0 * 24 + 1], 753); /* the generator's formula: r*97 + k*53 (+700 if k > r) */
    CU_ASSERT_EQUAL(ref.data[1 * 24 + 0], 97);
    CU_ASSERT_EQUAL(ref.data[2 * 24 + 5], 2 * 97 + 5 * 53 + 700);
    CU_ASSERT_EQUAL(ref.data[5 * 24 + 2], 5 * 97 + 2 * 53);
    for (const char *n : unsigned_files) {
        cxd_pixels px;
        CU_ASSERT(decode_ok(corpus(n), nullptr, &px) && same_pixels(px, ref));
        cxd_pixels_clear(&px);
    }
    for (const char *n : signed_files) {
        cxd_pixels px;
        CU_ASSERT(decode_ok(corpus(n), nullptr, &px) && same_pixels(px, sref));
        cxd_pixels_clear(&px);
    }
    int neg = 0;
    for (int i = 0; i < sref.rows * sref.columns; i++)
        neg += sref.data[i] < 0;
    CU_ASSERT(neg > 0);
    cxd_pixels_clear(&ref);
    cxd_pixels_clear(&sref);
}

/* ---------------------------------------------------------------- mutations */

/* Deterministic byte mutations and truncations of the valid corpus files, parsed from memory:
 * each must give OK or an error with a "stage: " message, never a crash (run under ASan or
 * valgrind to also catch silent memory errors). */
static void t_mutations(void)
{
    const char *files[] = {"ok_native.dcm", "ok_bigendian.dcm", "ok_deflated.dcm", "ok_jpeg_sv1.dcm",
                           "ok_jpegls.dcm", "ok_rle.dcm", "ok_j2k.dcm", "ok_implicit.dcm"};
    unsigned h = 2463534242u;
    int runs = 0, errors = 0, bad_msgs = 0;
    const char *env = getenv("CXD_MUTATIONS"); /* per file; the valgrind pass uses fewer */
    int per_file = env && atoi(env) > 0 ? atoi(env) : 250;
    for (const char *n : files) {
        std::vector<unsigned char> orig;
        CU_ASSERT_FATAL(read_file(corpus(n), &orig));
        for (int k = 0; k < per_file; k++) {
            std::vector<unsigned char> buf = orig;
            h ^= h << 13, h ^= h >> 17, h ^= h << 5;
            size_t len = buf.size();
            if (k % 5 == 4) {
                len = 132 + h % (buf.size() - 132); /* truncation */
            } else {
                int flips = 1 + (int)(h % 4);
                for (int i = 0; i < flips; i++) {
                    h ^= h << 13, h ^= h >> 17, h ^= h << 5;
                    size_t pos = 132 + h % (buf.size() - 132);
                    buf[pos] = (unsigned char)(k % 3 == 0 ? 0xFF : h >> 24);
                }
            }
            cxd_file *f = nullptr;
            cxd_error err = {};
            cxd_status st = cxd_file_open_memory(buf.data(), len, &f, &err);
            const char *stage = "open";
            if (st == CXD_OK) {
                cxd_info in;
                stage = "info";
                st = cxd_file_info(f, &in, &err);
                if (st == CXD_OK) {
                    cxd_info_clear(&in);
                    cxd_pixels px;
                    stage = "decode";
                    st = cxd_file_decode(f, &px, &err);
                    if (st == CXD_OK)
                        cxd_pixels_clear(&px);
                }
                cxd_file_free(f);
            }
            runs++;
            if (st != CXD_OK) {
                errors++;
                if (strncmp(err.msg, stage, strlen(stage)) != 0 || err.code != st) {
                    bad_msgs++;
                    printf("\n  %s mutation %d: status %s, message '%s' ", n, k, cxd_status_name(st), err.msg);
                }
            }
        }
    }
    CU_ASSERT_EQUAL(bad_msgs, 0);
    CU_ASSERT(errors > 0);
    printf("\n  %d mutated inputs, %d rejected with a message, %d accepted ", runs, errors, runs - errors);
}

/* ---------------------------------------------------------------- threads */

/* The node decodes on several workers at once: separate files in parallel, and one shared
 * cxd_file decoded from two threads, must all give the reference pixels. */
static void t_threads(void)
{
    const char *files[] = {"ok_native.dcm", "ok_j2k.dcm", "ok_jpegls.dcm", "ok_jpeg_sv1.dcm", "ok_rle.dcm",
                           "ok_deflated.dcm"};
    cxd_pixels ref;
    CU_ASSERT_FATAL(decode_ok(corpus("ok_native.dcm"), nullptr, &ref));
    cxd_file *shared = nullptr;
    cxd_error err = {};
    CU_ASSERT_EQUAL_FATAL(cxd_file_open(corpus("ok_j2k.dcm").c_str(), &shared, &err), CXD_OK);
    std::atomic<int> bad{0}, done{0};
    std::vector<std::thread> th;
    for (int t = 0; t < 4; t++)
        th.emplace_back([&, t]() {
            for (int i = 0; i < 30; i++) {
                cxd_pixels px;
                cxd_error e = {};
                const char *stage;
                cxd_status st = (i % 3 == 0) ? cxd_file_decode(shared, &px, &e)
                                             : load(corpus(files[(t + i) % 6]), nullptr, &px, &e, &stage);
                if (st != CXD_OK || !same_pixels(px, ref))
                    bad++;
                if (st == CXD_OK)
                    cxd_pixels_clear(&px);
                done++;
            }
        });
    for (auto &x : th)
        x.join();
    CU_ASSERT_EQUAL(bad.load(), 0);
    CU_ASSERT_EQUAL(done.load(), 120);
    cxd_file_free(shared);
    cxd_pixels_clear(&ref);
}

/* ---------------------------------------------------------------- allocation failures */

static const char *k_alloc_files[] = {"ok_native.dcm",   "ok_bigendian.dcm", "ok_deflated.dcm", "ok_jpeg_sv1.dcm",
                                      "ok_jpegls.dcm",   "ok_rle.dcm",       "ok_j2k.dcm",      "lut_ok"};

/* The file with a Modality LUT sequence (info allocates its data) is made here. */
static std::string alloc_file(const char *n)
{
    if (strcmp(n, "lut_ok") != 0)
        return corpus(n);
    std::string dir;
    if (shared_dicom(&dir))
        return dir + "/mlut_18.dcm";
    return corpus("ok_native.dcm");
}

/* One complete open/info/decode; on success compares with the reference decode. */
static cxd_status full_cycle(const std::string &path, const cxd_pixels *ref, cxd_error *err, bool *match)
{
    cxd_info info;
    cxd_pixels px;
    const char *stage;
    cxd_status st = load(path, &info, &px, err, &stage);
    if (st == CXD_OK) {
        *match = same_pixels(px, *ref);
        cxd_pixels_clear(&px);
        cxd_info_clear(&info);
    }
    return st;
}

static void t_alloc_cxd_hook(void)
{
    long total_failures = 0;
    for (const char *n : k_alloc_files) {
        std::string path = alloc_file(n);
        cxd_pixels ref;
        CU_ASSERT_FATAL(decode_ok(path, nullptr, &ref));
        for (long k = 1; k < 1000; k++) {
            g_cxd_calls = 0, g_cxd_fail_at = k, g_cxd_live = 0;
            cxd_set_allocator(failing_malloc, counting_free);
            cxd_error err = {};
            bool match = false;
            cxd_status st = full_cycle(path, &ref, &err, &match);
            long calls = g_cxd_calls;
            cxd_set_allocator(nullptr, nullptr);
            CU_ASSERT_EQUAL(g_cxd_live, 0); /* nothing of ours leaked on either path */
            if (k > calls) {                /* the Nth allocation was never reached: done */
                CU_ASSERT_EQUAL(st, CXD_OK);
                CU_ASSERT(match);
                break;
            }
            total_failures++;
            if (st != CXD_ERR_NOMEM)
                printf("\n  %s: allocation %ld failed -> %s '%s' ", n, k, cxd_status_name(st), err.msg);
            CU_ASSERT_EQUAL(st, CXD_ERR_NOMEM);
        }
        cxd_pixels_clear(&ref);
    }
    printf("\n  %ld injected cxd allocator failures, all reported as nomem ", total_failures);
}

static void t_alloc_operator_new(void)
{
    long injected = 0, nomem = 0, other = 0;
    for (const char *n : k_alloc_files) {
        std::string path = alloc_file(n);
        cxd_pixels ref;
        CU_ASSERT_FATAL(decode_ok(path, nullptr, &ref));
        long k;
        for (k = 1; k < 200000; k++) {
            cxd_error err = {};
            bool match = false;
            LSAN_IGNORE_BEGIN();
            new_arm(k);
            cxd_status st = full_cycle(path, &ref, &err, &match);
            long calls = g_new_calls;
            new_arm(0);
            LSAN_IGNORE_END();
            if (k > calls) {
                CU_ASSERT_EQUAL(st, CXD_OK);
                CU_ASSERT(match);
                break;
            }
            injected++;
            if (st == CXD_ERR_NOMEM) {
                nomem++;
            } else if (st == CXD_OK) {
                CU_ASSERT(match); /* a failure DCMTK absorbed must not change the pixels */
            } else {
                other++;
                if (other <= 5)
                    printf("\n  %s: new #%ld failed -> %s '%s' ", n, k, cxd_status_name(st), err.msg);
            }
        }
        cxd_pixels_clear(&ref);
    }
    printf("\n  %ld injected operator-new failures: %ld nomem, %ld other errors, rest absorbed with correct "
           "pixels ",
           injected, nomem, other);
    CU_ASSERT(injected > 0);
    CU_ASSERT(nomem > injected / 2);
}

static const cx_test_case k_all[] = {
    {"status names", t_status_names},
    {"init and argument checks", t_init_and_args},
    {"every real file decodes", t_real_files_decode},
    {"RG1_J2KI info", t_rg1_info},
    {"spacing rule", t_spacing_rule},
    {"modality and VOI LUT sequences", t_luts},
    {"LUT descriptor rules (65536, signed, packed 8-bit)", t_lut_descriptor_rules},
    {"JPEG 2000 lossy equals GDCM", t_j2k_lossy_equals_gdcm},
    {"JPEG 2000 lossless equals GDCM", t_j2k_lossless_equals_gdcm},
    {"synthetic images in every syntax", t_synthetic_syntaxes},
    {"open from memory", t_open_memory},
    {"memory path: declared lengths past the end are refused before allocation", t_memory_length_bomb},
    {"valid corpus files", t_corpus_valid},
    {"broken-input corpus", t_corpus},
    {"mutated inputs", t_mutations},
    {"four threads decoding", t_threads},
    {"allocation failures (cxd hook)", t_alloc_cxd_hook},
    {"allocation failures (operator new)", t_alloc_operator_new},
    {nullptr, nullptr},
};

/* For tests/dicom_valgrind.sh: "strict" = everything whose leaks are ours to answer for (run
 * with leaks as errors); "new" = the operator-new injection, where DCMTK itself leaks the
 * half-built element it was constructing when new threw (run for memory errors only). */
static const cx_test_case k_strict[] = {
    {"status names", t_status_names},
    {"init and argument checks", t_init_and_args},
    {"open from memory", t_open_memory},
    {"memory path: declared lengths past the end are refused before allocation", t_memory_length_bomb},
    {"valid corpus files", t_corpus_valid},
    {"broken-input corpus", t_corpus},
    {"mutated inputs", t_mutations},
    {"four threads decoding", t_threads},
    {"allocation failures (cxd hook)", t_alloc_cxd_hook},
    {nullptr, nullptr},
};

static const cx_test_case k_new_only[] = {
    {"allocation failures (operator new)", t_alloc_operator_new},
    {nullptr, nullptr},
};

int main(void)
{
    cxd_error err = {};
    if (cxd_init(&err) != CXD_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const char *sel = getenv("CXD_TEST_SELECT");
    const cx_test_case *cases = k_all;
    if (sel && !strcmp(sel, "strict"))
        cases = k_strict;
    else if (sel && !strcmp(sel, "new"))
        cases = k_new_only;
    int rc = cx_test_run("dicom", cases);
    cleanup_tmp();
    cxd_shutdown();
    return rc;
}
