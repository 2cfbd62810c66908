/* Tests of the result writers (dicom/write*.cc): SEG, TID 1500 SR, GSPS and secondary capture
 * written from the real chest CR ($CX_SHARED/data/dicom/RG1_J2KI.dcm) and from synthetic sources
 * made here with DCMTK. Every object is validated with `dciodvfy -new` (no errors; only the
 * warnings listed in docs/dciodvfy-warnings.md), the SEG is read back with DcmSegmentation and
 * compared pixel by pixel, and the SR is read back with `dsrdump` and its content checked. */
#include "cxdicom.h"
#include "cx_test.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segment.h>
#include <dcmtk/dcmseg/segutils.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

/* ------------------------------------------------------------------ helpers */

static std::string g_tmp;

static std::string tmpdir(const char *name)
{
    if (g_tmp.empty()) {
        char t[] = "/tmp/cx_test_write.XXXXXX";
        if (!mkdtemp(t))
            return "/tmp";
        g_tmp = t;
    }
    std::string d = g_tmp + "/" + name;
    mkdir(d.c_str(), 0755);
    return d;
}

static std::string run(const std::string &cmd)
{
    std::string out;
    FILE *p = popen(cmd.c_str(), "r");
    if (!p)
        return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        out.append(buf, n);
    pclose(p);
    return out;
}

static bool have_tool(const char *t)
{
    return run(std::string("command -v ") + t + " 2>/dev/null").size() > 0;
}

static size_t count(const std::string &hay, const std::string &needle)
{
    size_t n = 0;
    for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1))
        n++;
    return n;
}

/* Warnings accepted from dciodvfy, each explained in docs/dciodvfy-warnings.md. */
static const char *ALLOWED_WARNINGS[] = {
    "Unrecognized defined term = <99CXRSEG>", /* our private coding scheme (99 prefix) */
    "Retired Person Name form",               /* ReferringPhysicianName copied as-is from the source */
    nullptr};

/* Runs dciodvfy -new; fails on any error and on any warning not in the list. */
static void check_dciodvfy(const std::string &path)
{
    static int have = -1;
    if (have < 0) {
        have = have_tool("dciodvfy");
        if (!have)
            cx_test_skip("dciodvfy not installed (Debian package dicom3tools): IOD checks did not run");
    }
    if (!have)
        return;
    std::string out = run("dciodvfy -new '" + path + "' 2>&1");
    size_t pos = 0;
    int errors = 0, bad_warnings = 0;
    while (pos < out.size()) {
        size_t e = out.find('\n', pos);
        if (e == std::string::npos)
            e = out.size();
        std::string line = out.substr(pos, e - pos);
        pos = e + 1;
        if (line.find("Error") != std::string::npos) {
            fprintf(stderr, "\n  dciodvfy %s: %s", path.c_str(), line.c_str());
            errors++;
        } else if (line.find("Warning") != std::string::npos) {
            bool ok = false;
            for (const char **a = ALLOWED_WARNINGS; *a; a++)
                if (line.find(*a) != std::string::npos)
                    ok = true;
            if (!ok) {
                fprintf(stderr, "\n  dciodvfy %s: unlisted %s", path.c_str(), line.c_str());
                bad_warnings++;
            }
        }
    }
    CU_ASSERT_EQUAL(errors, 0);
    CU_ASSERT_EQUAL(bad_warnings, 0);
}

static bool valid_uid(const char *u)
{
    size_t n = strlen(u);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (u[i] == '.') {
            if (i == 0 || i + 1 == n || u[i + 1] == '.')
                return false;
            continue;
        }
        if (u[i] < '0' || u[i] > '9')
            return false;
        if (u[i] == '0' && (i == 0 || u[i - 1] == '.') && i + 1 < n && u[i + 1] != '.')
            return false;
    }
    return true;
}

/* A synthetic single-frame CR written with DCMTK. */
struct SynthOpts {
    int rows = 256, cols = 320;
    const char *photometric = "MONOCHROME2";
    const char *pixel_spacing = nullptr;  /* e.g. "0.5\\0.25" */
    const char *imager_spacing = nullptr;
    const char *charset = nullptr;        /* e.g. "ISO_IR 100" */
    std::string patient_name = "Test^Patient";
    const char *sop_uid = "1.2.826.0.1.3680043.10.1001.1";
};

static std::string make_source(const std::string &path, const SynthOpts &o)
{
    DcmFileFormat ff;
    DcmDataset *d = ff.getDataset();
    if (o.charset)
        d->putAndInsertString(DCM_SpecificCharacterSet, o.charset);
    d->putAndInsertString(DCM_SOPClassUID, UID_ComputedRadiographyImageStorage);
    d->putAndInsertString(DCM_SOPInstanceUID, o.sop_uid);
    d->putAndInsertString(DCM_StudyInstanceUID, "1.2.826.0.1.3680043.10.1001.2");
    d->putAndInsertString(DCM_SeriesInstanceUID, "1.2.826.0.1.3680043.10.1001.3");
    d->putAndInsertString(DCM_Modality, "CR");
    d->putAndInsertString(DCM_PatientName, o.patient_name.c_str());
    d->putAndInsertString(DCM_PatientID, "SYN001");
    d->putAndInsertString(DCM_PatientBirthDate, "19700101");
    d->putAndInsertString(DCM_PatientSex, "O");
    d->putAndInsertString(DCM_StudyDate, "20240101");
    d->putAndInsertString(DCM_StudyTime, "120000");
    d->putAndInsertString(DCM_StudyID, "1");
    d->putAndInsertString(DCM_AccessionNumber, "A1");
    d->putAndInsertString(DCM_ReferringPhysicianName, "Doe^John");
    d->putAndInsertString(DCM_BodyPartExamined, "CHEST");
    d->putAndInsertString(DCM_PatientOrientation, "L\\F");
    d->putAndInsertString(DCM_ViewPosition, "PA");
    if (o.pixel_spacing)
        d->putAndInsertString(DCM_PixelSpacing, o.pixel_spacing);
    if (o.imager_spacing)
        d->putAndInsertString(DCM_ImagerPixelSpacing, o.imager_spacing);
    d->putAndInsertUint16(DCM_SamplesPerPixel, 1);
    d->putAndInsertString(DCM_PhotometricInterpretation, o.photometric);
    d->putAndInsertUint16(DCM_Rows, (Uint16)o.rows);
    d->putAndInsertUint16(DCM_Columns, (Uint16)o.cols);
    d->putAndInsertUint16(DCM_BitsAllocated, 16);
    d->putAndInsertUint16(DCM_BitsStored, 12);
    d->putAndInsertUint16(DCM_HighBit, 11);
    d->putAndInsertUint16(DCM_PixelRepresentation, 0);
    d->putAndInsertString(DCM_WindowCenter, "2048");
    d->putAndInsertString(DCM_WindowWidth, "4096");
    std::vector<Uint16> px((size_t)o.rows * o.cols);
    for (int y = 0; y < o.rows; y++)
        for (int x = 0; x < o.cols; x++)
            px[(size_t)y * o.cols + x] = (Uint16)((x * 13 + y * 7) % 4096);
    d->putAndInsertUint16Array(DCM_PixelData, px.data(), (unsigned long)px.size());
    OFCondition c = ff.saveFile(path.c_str(), EXS_LittleEndianExplicit);
    CU_ASSERT_FATAL(c.good());
    return path;
}

/* A finding with its own mask storage. */
struct F {
    cxd_finding f;
    std::vector<uint8_t> m;
    F() { memset(&f, 0, sizeof f); }
};

static cxd_code code(const char *v, const char *s, const char *m)
{
    cxd_code c;
    memset(&c, 0, sizeof c);
    snprintf(c.value, sizeof c.value, "%s", v);
    snprintf(c.scheme, sizeof c.scheme, "%s", s);
    snprintf(c.meaning, sizeof c.meaning, "%s", m);
    return c;
}
static const cxd_code RIGHT = code("24028007", "SCT", "Right"), LEFT = code("7771000", "SCT", "Left");

/* An elliptic lung field inside the box. */
static F lung(bool right, int x0, int y0, int w, int h)
{
    F l;
    l.f.role = CXD_ROLE_ANATOMY;
    snprintf(l.f.label, sizeof l.f.label, "%s lung", right ? "Right" : "Left");
    l.f.category = code("123037004", "SCT", "Anatomical Structure");
    l.f.type = code("39607008", "SCT", "Lung");
    l.f.type_modifier = right ? RIGHT : LEFT;
    l.f.finding_site = code("39607008", "SCT", "Lung");
    l.f.site_laterality = right ? RIGHT : LEFT;
    l.f.score = 0.97;
    l.f.x0 = x0; l.f.y0 = y0; l.f.w = w; l.f.h = h;
    l.m.resize((size_t)w * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double dx = (x + 0.5 - w / 2.0) / (w / 2.0), dy = (y + 0.5 - h / 2.0) / (h / 2.0);
            l.m[(size_t)y * w + x] = dx * dx + dy * dy <= 1.0;
        }
    l.f.rgb[0] = 40; l.f.rgb[1] = 120; l.f.rgb[2] = 255;
    return l;
}

/* A GGO finding: discs given as (cx, cy, r) in box coordinates. */
static F ggo(int x0, int y0, int w, int h, std::vector<std::array<int, 3>> discs, bool right, double pct)
{
    F g;
    g.f.role = CXD_ROLE_FINDING;
    snprintf(g.f.label, sizeof g.f.label, "GGO");
    snprintf(g.f.description, sizeof g.f.description, "Ground-glass opacity");
    g.f.category = code("49755003", "SCT", "Morphologically Abnormal Structure");
    g.f.type = code("112120", "DCM", "Ground glass opacity");
    g.f.finding_site = code("39607008", "SCT", "Lung");
    g.f.site_laterality = right ? RIGHT : LEFT;
    g.f.score = 0.81;
    g.f.x0 = x0; g.f.y0 = y0; g.f.w = w; g.f.h = h;
    g.m.assign((size_t)w * h, 0);
    for (auto &d : discs)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if ((x - d[0]) * (x - d[0]) + (y - d[1]) * (y - d[1]) <= d[2] * d[2])
                    g.m[(size_t)y * w + x] = 1;
    g.f.rgb[0] = 255; g.f.rgb[1] = 60; g.f.rgb[2] = 0;
    g.f.n_shares = 1;
    g.f.shares[0].laterality = right ? RIGHT : LEFT;
    g.f.shares[0].percent = pct;
    return g;
}

static std::vector<cxd_finding> view(std::vector<F> &v)
{
    std::vector<cxd_finding> r;
    for (auto &x : v) {
        x.f.mask = x.m.data();
        r.push_back(x.f);
    }
    return r;
}

static cxd_algorithm algorithm(const char *seed = "model-a")
{
    cxd_algorithm a;
    memset(&a, 0, sizeof a);
    snprintf(a.name, sizeof a.name, "cxrseg Mask R-CNN");
    snprintf(a.version, sizeof a.version, "test-1");
    cxd_sha256_hex(seed, strlen(seed), a.model_sha256);
    return a;
}

static std::string dsrdump(const std::string &path)
{
    return run("dsrdump +Pl +Pc +Pu '" + path + "' 2>&1");
}

/* The masks of the findings that have pixels, as full frames (0/1), in SEG frame order. */
static std::vector<uint8_t> expected_frames(const std::vector<cxd_finding> &fs, int rows, int cols, size_t *n)
{
    std::vector<uint8_t> all;
    *n = 0;
    for (auto &f : fs) {
        size_t px = 0;
        for (size_t i = 0; i < (size_t)f.w * f.h; i++)
            px += f.mask[i] != 0;
        if (!px)
            continue;
        std::vector<uint8_t> fr((size_t)rows * cols, 0);
        for (int y = 0; y < f.h; y++)
            for (int x = 0; x < f.w; x++)
                fr[(size_t)(f.y0 + y) * cols + f.x0 + x] = f.mask[(size_t)y * f.w + x] ? 1 : 0;
        all.insert(all.end(), fr.begin(), fr.end());
        (*n)++;
    }
    return all;
}

/* Reads the SEG back with pydicom (an independent reader) and compares every frame with the
 * findings: 1-bit frames unpacked across byte boundaries, 8-bit ones holding only 0 and
 * MaximumFractionalValue. Skipped when Debian's python3-pydicom is not installed. */
static void check_seg_pydicom(const std::string &path, const std::vector<cxd_finding> &fs, int rows, int cols)
{
    static int have = -1;
    if (have < 0) {
        have = run("/usr/bin/python3 -c 'import pydicom, numpy' 2>/dev/null && echo yes").find("yes") == 0;
        if (!have)
            cx_test_skip("python3-pydicom not installed: the pydicom read-back did not run");
    }
    if (!have)
        return;
    size_t n = 0;
    std::vector<uint8_t> want = expected_frames(fs, rows, cols, &n);
    std::string raw = path + ".expected";
    FILE *fp = fopen(raw.c_str(), "wb");
    CU_ASSERT_FATAL(fp != nullptr);
    CU_ASSERT_EQUAL(fwrite(want.data(), 1, want.size(), fp), want.size());
    fclose(fp);
    std::string py =
        "import sys, numpy, pydicom\n"
        "d = pydicom.dcmread(sys.argv[1])\n"
        "a = d.pixel_array.reshape(int(d.NumberOfFrames), d.Rows, d.Columns)\n"
        "w = numpy.fromfile(sys.argv[2], numpy.uint8).reshape(a.shape)\n"
        "top = 1 if d.SegmentationType == 'BINARY' else int(d.MaximumFractionalValue)\n"
        "bad = int(numpy.count_nonzero((a != 0) & (a != top)))\n"
        "print('frames', a.shape[0], 'diff', int(numpy.count_nonzero((a != 0) != (w != 0))), 'bad', bad)\n";
    std::string out = run("/usr/bin/python3 -c \"" + py + "\" '" + path + "' '" + raw + "' 2>&1");
    char want_line[64];
    snprintf(want_line, sizeof want_line, "frames %zu diff 0 bad 0", n);
    if (out.find(want_line) != 0)
        fprintf(stderr, "\n  pydicom %s: %s (wanted %s)", path.c_str(), out.c_str(), want_line);
    CU_ASSERT(out.find(want_line) == 0);
    unlink(raw.c_str());
}

/* Reads the SEG back with DCMTK and compares every segment's frame with the source finding. */
static void check_seg_masks(const std::string &path, const std::vector<cxd_finding> &fs, int rows, int cols)
{
    check_seg_pydicom(path, fs, rows, cols);
    DcmSegmentation *seg = nullptr;
    OFCondition c = DcmSegmentation::loadFile(path.c_str(), seg);
    CU_ASSERT_FATAL(c.good() && seg);
    DcmFileFormat ff;
    CU_ASSERT_FATAL(ff.loadFile(path.c_str()).good());
    std::unique_ptr<DcmSegmentation> own(seg);
    size_t expect = 0;
    for (auto &f : fs) {
        size_t px = 0;
        for (size_t i = 0; i < (size_t)f.w * f.h; i++)
            px += f.mask[i] != 0;
        if (px)
            expect++;
    }
    CU_ASSERT_EQUAL(seg->getNumberOfSegments(), expect);
    CU_ASSERT_EQUAL(seg->getNumberOfFrames(), expect);
    size_t sn = 1;
    for (auto &f : fs) {
        size_t px = 0;
        for (size_t i = 0; i < (size_t)f.w * f.h; i++)
            px += f.mask[i] != 0;
        if (!px)
            continue;
        DcmSegment *s = seg->getSegment(sn);
        CU_ASSERT_FATAL(s != nullptr);
        OFString label;
        s->getSegmentLabel(label);
        CU_ASSERT_STRING_EQUAL(label.c_str(), f.label);
        OFVector<size_t> frames;
        seg->getFramesForSegment(sn, frames);
        CU_ASSERT_EQUAL_FATAL(frames.size(), 1u);
        const DcmIODTypes::Frame *fr = seg->getFrame(frames[0]);
        CU_ASSERT_FATAL(fr != nullptr);
        const bool binary = seg->getSegmentationType() == DcmSegTypes::ST_BINARY;
        const size_t per = (size_t)rows * cols;
        /* FRACTIONAL: DcmSegmentation's frame, one byte per pixel. BINARY: DCMTK 3.6.7's frame
         * extraction shifts frames that start inside a byte by whole bytes (it mirrors its packer's
         * bug, see dicom/write_seg.cc), so the frame is taken from the PixelData element as PS3.5
         * 8.1.1 packs it: bits continuous across frames, least significant first. */
        std::vector<Uint8> unpacked;
        if (binary) {
            const Uint8 *bits = nullptr;
            unsigned long nbytes = 0;
            CU_ASSERT_FATAL(ff.getDataset()->findAndGetUint8Array(DCM_PixelData, bits, &nbytes).good());
            CU_ASSERT_FATAL(nbytes == (per * expect + 7) / 8 + ((per * expect + 7) / 8) % 2);
            unpacked.resize(per);
            for (size_t i = 0; i < per; i++) {
                size_t b = (sn - 1) * per + i;
                unpacked[i] = (bits[b >> 3] >> (b & 7)) & 1;
            }
        } else {
            CU_ASSERT_FATAL(fr->length == per);
        }
        const Uint8 *pix = binary ? unpacked.data() : fr->pixData;
        size_t diff = 0, not_max = 0;
        const Uint8 top = binary ? 1 : 255;
        for (int y = 0; y < rows; y++)
            for (int x = 0; x < cols; x++) {
                bool want = x >= f.x0 && y >= f.y0 && x < f.x0 + f.w && y < f.y0 + f.h &&
                            f.mask[(size_t)(y - f.y0) * f.w + (x - f.x0)];
                Uint8 v = pix[(size_t)y * cols + x];
                diff += want != (v != 0);
                not_max += v != 0 && v != top;
            }
        CU_ASSERT_EQUAL(diff, 0u);
        CU_ASSERT_EQUAL(not_max, 0u); /* OHIF takes a FRACTIONAL SEG as binary only with 0 and the maximum */
        sn++;
    }
}

static std::string seg_tracking_uids(const std::string &path)
{
    return run("dcmdump +P 0062,0021 '" + path + "' 2>&1");
}

/* Writes outputs for a source path; returns status. */
static cxd_status write_for(const std::string &src, std::vector<cxd_finding> &fs, const cxd_write_options &o,
                            const std::string &out, cxd_write_result *r, cxd_error *e,
                            const cxd_algorithm *alg_in = nullptr)
{
    cxd_file *f = nullptr;
    cxd_error oe;
    if (cxd_file_open(src.c_str(), &f, &oe) != CXD_OK) {
        fprintf(stderr, "\n  open %s: %s", src.c_str(), oe.msg);
        return oe.code;
    }
    cxd_algorithm alg = alg_in ? *alg_in : algorithm();
    cxd_status st = cxd_results_write(f, fs.data(), fs.size(), &alg, &o, out.c_str(), r, e);
    if (st != CXD_OK)
        fprintf(stderr, "\n  write: %s", e->msg);
    cxd_file_free(f);
    return st;
}

static std::string raw_string(const std::string &path, const DcmTagKey &tag)
{
    DcmFileFormat ff;
    if (ff.loadFile(path.c_str()).bad())
        return "<unreadable>";
    OFString v;
    if (ff.getDataset()->findAndGetOFStringArray(tag, v).bad())
        return "<absent>";
    return v.c_str();
}

/* ------------------------------------------------------------------ tests: helpers */

static void test_sha256_vectors(void)
{
    char h[65];
    cxd_sha256_hex("abc", 3, h);
    CU_ASSERT_STRING_EQUAL(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cxd_sha256_hex("", 0, h);
    CU_ASSERT_STRING_EQUAL(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 2 blocks */
    cxd_sha256_hex(two, strlen(two), h);
    CU_ASSERT_STRING_EQUAL(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_derive_uid(void)
{
    char a[65], b[65], c[65];
    cxd_error e;
    const char *m = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    CU_ASSERT_EQUAL(cxd_derive_uid("1.2.826.0.1.3680043.10.999", "1.2.3.4", "seg", m, a, &e), CXD_OK);
    CU_ASSERT_EQUAL(cxd_derive_uid("1.2.826.0.1.3680043.10.999", "1.2.3.4", "seg", m, b, &e), CXD_OK);
    CU_ASSERT_STRING_EQUAL(a, b);
    CU_ASSERT(valid_uid(a));
    CU_ASSERT(strncmp(a, "1.2.826.0.1.3680043.10.999.", 27) == 0);
    CU_ASSERT_EQUAL(cxd_derive_uid("1.2.826.0.1.3680043.10.999", "1.2.3.4", "sr", m, c, &e), CXD_OK);
    CU_ASSERT_STRING_NOT_EQUAL(a, c);
    CU_ASSERT_EQUAL(cxd_derive_uid("", "1.2.3.4", "seg", m, c, &e), CXD_OK);
    CU_ASSERT(strncmp(c, "2.25.", 5) == 0 && valid_uid(c));
    /* A 43-character root still fits; 44 does not. */
    std::string r43 = "1.2";
    while (r43.size() < 43)
        r43 += ".1";
    r43.resize(43);
    if (r43.back() == '.')
        r43.back() = '1';
    CU_ASSERT_EQUAL(cxd_derive_uid(r43.c_str(), "1.2.3", "seg", m, c, &e), CXD_OK);
    CU_ASSERT(strlen(c) <= 64 && valid_uid(c));
    CU_ASSERT_EQUAL(cxd_derive_uid((r43 + "1").c_str(), "1.2.3", "seg", m, c, &e), CXD_ERR_INVALID);
    CU_ASSERT(strstr(e.msg, "characters") != nullptr);
    CU_ASSERT_EQUAL(cxd_derive_uid("1.02.3", "1.2.3", "seg", m, c, &e), CXD_ERR_INVALID);
    CU_ASSERT(strstr(e.msg, "not a valid UID prefix") != nullptr);
    CU_ASSERT_EQUAL(cxd_derive_uid("1.2.", "1.2.3", "seg", m, c, &e), CXD_ERR_INVALID);
}

static void test_cielab(void)
{
    uint16_t lab[3];
    const uint8_t white[3] = {255, 255, 255}, black[3] = {0, 0, 0}, red[3] = {255, 0, 0};
    cxd_rgb_to_dicom_lab(white, lab);
    CU_ASSERT(lab[0] >= 65500);                               /* L = 100 */
    CU_ASSERT(abs((int)lab[1] - 32896) < 40 && abs((int)lab[2] - 32896) < 40); /* a = b = 0 */
    cxd_rgb_to_dicom_lab(black, lab);
    CU_ASSERT_EQUAL(lab[0], 0);
    /* sRGB red in D50 Lab (ICC PCS) is about (54.29, 80.80, 69.89). */
    cxd_rgb_to_dicom_lab(red, lab);
    double L = lab[0] * 100.0 / 65535, a = lab[1] * 255.0 / 65535 - 128, b = lab[2] * 255.0 / 65535 - 128;
    CU_ASSERT_DOUBLE_EQUAL(L, 54.29, 0.3);
    CU_ASSERT_DOUBLE_EQUAL(a, 80.80, 0.5);
    CU_ASSERT_DOUBLE_EQUAL(b, 69.89, 0.5);
}

static void test_contours(void)
{
    /* Two regions in a 10x8 box at (5,7): a 3x2 block and a single pixel; plus a diagonal pair. */
    std::vector<uint8_t> m(10 * 8, 0);
    for (int y = 1; y < 3; y++)
        for (int x = 1; x < 4; x++)
            m[y * 10 + x] = 1;
    m[6 * 10 + 8] = 1;
    cxd_finding f;
    memset(&f, 0, sizeof f);
    f.x0 = 5; f.y0 = 7; f.w = 10; f.h = 8; f.mask = m.data();
    cxd_contours c;
    cxd_error e;
    CU_ASSERT_EQUAL_FATAL(cxd_mask_contours(&f, &c, &e), CXD_OK);
    CU_ASSERT_EQUAL(c.n_contours, 2u);
    CU_ASSERT_EQUAL(c.areas[0], 6u);
    CU_ASSERT_EQUAL(c.areas[1], 1u);
    /* Block: boundary pixel centres, clockwise from the top-left pixel (6,8). */
    CU_ASSERT_EQUAL(c.starts[1] - c.starts[0], 6u);
    CU_ASSERT_DOUBLE_EQUAL(c.points[0], 6.5, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(c.points[1], 8.5, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(c.points[2], 7.5, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(c.points[3], 8.5, 1e-6);
    /* The single pixel becomes its square (4 corners) so the polyline has an area. */
    CU_ASSERT_EQUAL(c.starts[2] - c.starts[1], 4u);
    CU_ASSERT_DOUBLE_EQUAL(c.points[2 * c.starts[1]], 13.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(c.points[2 * c.starts[1] + 1], 13.0, 1e-6);
    cxd_contours_clear(&c);
    cxd_contours_clear(&c); /* idempotent */

    /* A ring (with a hole) is one region with one outer contour; a U shape traces around. */
    std::vector<uint8_t> r(9 * 9, 0);
    for (int y = 1; y < 8; y++)
        for (int x = 1; x < 8; x++)
            r[y * 9 + x] = !(y >= 3 && y < 6 && x >= 3 && x < 6);
    f.x0 = 0; f.y0 = 0; f.w = 9; f.h = 9; f.mask = r.data();
    CU_ASSERT_EQUAL_FATAL(cxd_mask_contours(&f, &c, &e), CXD_OK);
    CU_ASSERT_EQUAL(c.n_contours, 1u);
    CU_ASSERT_EQUAL(c.areas[0], 49u - 9u);
    CU_ASSERT_EQUAL(c.n_points, 24u); /* perimeter of a 7x7 square of pixel centres */
    cxd_contours_clear(&c);

    f.mask = nullptr;
    CU_ASSERT_EQUAL(cxd_mask_contours(&f, &c, &e), CXD_ERR_INVALID);
}

/* ------------------------------------------------------------------ tests: real CR */

static void test_real_cr(void)
{
    const char *sh = cx_test_shared();
    if (!sh) {
        cx_test_skip("$CX_SHARED data absent: the real CR test did not run");
        return;
    }
    std::string src = std::string(sh) + "/dicom/RG1_J2KI.dcm";
    cxd_file *file = nullptr;
    cxd_error e;
    CU_ASSERT_EQUAL_FATAL(cxd_file_open(src.c_str(), &file, &e), CXD_OK);
    cxd_info info;
    CU_ASSERT_EQUAL_FATAL(cxd_file_info(file, &info, &e), CXD_OK);
    int R = info.rows, C = info.columns;
    cxd_info_clear(&info);
    /* Display image for GSPS/SC: decoded, min-max scaled, inverted (MONOCHROME1). */
    cxd_pixels px;
    CU_ASSERT_EQUAL_FATAL(cxd_file_decode(file, &px, &e), CXD_OK);
    std::vector<uint8_t> disp((size_t)R * C * 3);
    int32_t mn = INT32_MAX, mx = INT32_MIN;
    for (size_t i = 0; i < (size_t)R * C; i++) {
        mn = std::min(mn, px.data[i]);
        mx = std::max(mx, px.data[i]);
    }
    for (size_t i = 0; i < (size_t)R * C; i++)
        disp[3 * i] = disp[3 * i + 1] = disp[3 * i + 2] =
            (uint8_t)(255 - (int64_t)(px.data[i] - mn) * 255 / std::max(1, mx - mn));
    cxd_pixels_clear(&px);

    /* Hand-made findings: two lungs; GGO with two regions in the right lung, one in the left. */
    std::vector<F> v;
    v.push_back(lung(true, C / 8, R / 6, C * 3 / 10, R * 6 / 10));
    v.push_back(lung(false, C * 9 / 16, R / 6, C * 3 / 10, R * 6 / 10));
    v.push_back(ggo(C / 8 + 60, R / 3, 400, 500, {{{120, 150, 90}}, {{280, 380, 70}}}, true, 9.4));
    v.push_back(ggo(C * 9 / 16 + 100, R / 2, 300, 300, {{{150, 150, 100}}}, false, 4.2));
    auto fs = view(v);
    cxd_write_options o;
    cxd_write_options_default(&o);
    o.outputs = CXD_OUT_SEG | CXD_OUT_SR | CXD_OUT_GSPS | CXD_OUT_SC;
    o.display_rgb = disp.data();
    o.display_rows = R;
    o.display_cols = C;
    std::string out = tmpdir("real");
    cxd_write_result r;
    cxd_algorithm alg = algorithm();
    /* Time to encode all outputs for one image (median of 5). */
    std::vector<double> ms;
    cxd_status st = CXD_OK;
    for (int i = 0; i < 5 && st == CXD_OK; i++) {
        auto t0 = std::chrono::steady_clock::now();
        st = cxd_results_write(file, fs.data(), fs.size(), &alg, &o, out.c_str(), &r, &e);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    CU_ASSERT_EQUAL_FATAL(st, CXD_OK);
    std::sort(ms.begin(), ms.end());
    fprintf(stderr, "\n  [encode SEG+SR+GSPS+SC for %dx%d, 4 findings, 5 regions: median %.0f ms (min %.0f, max %.0f)]",
            C, R, ms[2], ms[0], ms[4]);
    /* Where the time goes: each output alone, best of 3 (into a scratch folder). */
    {
        std::string scratch = tmpdir("real-timing");
        const char *names[4] = {"SEG", "SR", "GSPS", "SC"};
        fprintf(stderr, "\n  [each alone, best of 3:");
        for (int k = 0; k < 4; k++) {
            cxd_write_options one = o;
            one.outputs = 1 << k;
            double best = 1e30;
            cxd_write_result rr;
            for (int i = 0; i < 3; i++) {
                auto t0 = std::chrono::steady_clock::now();
                CU_ASSERT_EQUAL(cxd_results_write(file, fs.data(), fs.size(), &alg, &one, scratch.c_str(), &rr, &e),
                                CXD_OK);
                best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
            }
            fprintf(stderr, " %s %.0f ms", names[k], best);
        }
        fprintf(stderr, "]");
    }
    cxd_file_free(file);
    CU_ASSERT_EQUAL(r.written, CXD_OUT_SEG | CXD_OUT_SR | CXD_OUT_GSPS | CXD_OUT_SC);
    CU_ASSERT_EQUAL(r.n_segments, 4);
    CU_ASSERT_EQUAL(r.n_regions, 5);
    CU_ASSERT(r.finding_present);
    CU_ASSERT_STRING_EQUAL(r.spacing_used, "none"); /* PixelSpacing 0\0 counts as absent */
    for (const char *p : {r.seg_path, r.sr_path, r.gsps_path, r.sc_path})
        check_dciodvfy(p);
    check_seg_masks(r.seg_path, fs, R, C);
    /* The radiograph rules of DICOM-NOTES.md. */
    CU_ASSERT_STRING_EQUAL(raw_string(r.seg_path, DCM_PatientOrientation).c_str(), "L\\F");
    CU_ASSERT_STRING_EQUAL(raw_string(r.seg_path, DCM_BodyPartExamined).c_str(), "CHEST");
    CU_ASSERT_STRING_EQUAL(raw_string(r.seg_path, DCM_Laterality).c_str(), "<absent>");
    CU_ASSERT_STRING_EQUAL(raw_string(r.seg_path, DCM_FrameOfReferenceUID).c_str(), "<absent>");
    std::string sd = run("dcmdump '" + std::string(r.seg_path) + "' 2>&1");
    CU_ASSERT_EQUAL(count(sd, "ReferencedSeriesSequence"), 1u);
    CU_ASSERT_EQUAL(count(sd, "DerivationImageSequence"), 4u);       /* per frame */
    CU_ASSERT_EQUAL(count(sd, "PlanePositionSequence"), 4u);         /* per frame, 0\0\0 */
    CU_ASSERT_EQUAL(count(sd, "PlaneOrientationSequence"), 1u);      /* shared */
    CU_ASSERT_EQUAL(count(sd, "[1\\0\\0\\0\\1\\0]"), 1u);
    CU_ASSERT_EQUAL(count(sd, "FrameAnatomySequence"), 0u);
    /* Shared Pixel Measures (OHIF needs it): no usable spacing in RG1, so 1\1 as viewers assume. */
    CU_ASSERT_EQUAL(count(sd, "PixelMeasuresSequence"), 1u);
    CU_ASSERT(sd.find("(0028,0030) DS [1\\1]") != std::string::npos);
    CU_ASSERT_EQUAL(count(sd, "SegmentedPropertyTypeModifierCodeSequence"), 2u); /* the lungs' sides */

    std::string d = dsrdump(r.sr_path);
    CU_ASSERT(d.find("(126000,DCM,\"Imaging Measurement Report\")") != std::string::npos);
    CU_ASSERT(d.find("(111028,DCM,\"Image Library\")") != std::string::npos);
    /* Per finding one group per region (5), shaped for OHIF's freehand tool, and one for the
     * finding as a whole (4); every group references its SEG frame. */
    CU_ASSERT_EQUAL(count(d, "(125007,DCM,\"Measurement Group\")"), 9u);
    CU_ASSERT_EQUAL(count(d, "(112039,DCM,\"Tracking Identifier\")=\"Cornerstone3DTools@^0.1.0:PlanarFreehandROI\""), 5u);
    CU_ASSERT_EQUAL(count(d, "<inferred from SCOORD:=(POLYLINE"), 5u);
    CU_ASSERT_EQUAL(count(d, "<selected from IMAGE:"), 5u);
    CU_ASSERT_EQUAL(count(d, "(111030,DCM,\"Image Region\")"), 0u); /* excluded by the segmentation frame */
    CU_ASSERT_EQUAL(count(d, "(121214,DCM,\"Referenced Segmentation Frame\")"), 9u);
    /* The labels OHIF shows: the finding, its lung and its share of it, in words. */
    CU_ASSERT(d.find("(121106,DCM,\"Comment\")=\"Right lung\"") != std::string::npos);
    CU_ASSERT(d.find("(121106,DCM,\"Comment\")=\"GGO, right lung: 9.4% of the lung (region 1 of 2)\"") != std::string::npos);
    CU_ASSERT(d.find("(121106,DCM,\"Comment\")=\"GGO, right lung: 9.4% of the lung (region 2 of 2)\"") != std::string::npos);
    CU_ASSERT(d.find("(121106,DCM,\"Comment\")=\"GGO, left lung: 4.2% of the lung\"") != std::string::npos);
    /* The finding-level groups carry the SEG segments' own Tracking IDs. */
    CU_ASSERT(d.find("(112039,DCM,\"Tracking Identifier\")=\"GGO 3\"") != std::string::npos);
    CU_ASSERT(d.find("=(52101004,SCT,\"Present\")") != std::string::npos);
    CU_ASSERT(d.find("(42798000,SCT,\"Area\")") == std::string::npos); /* no area without spacing */
    CU_ASSERT(d.find("no usable pixel spacing") != std::string::npos);
    CU_ASSERT(d.find("\"9.4\" (%,UCUM,\"Percent\")") != std::string::npos);
    CU_ASSERT_EQUAL(count(d, "(PIXELS,99CXRSEG,\"Area in pixels\")"), 9u); /* the size without spacing */
    /* Every SEG tracking UID appears in the SR: in each of its regions' groups and its finding's. */
    std::string t = seg_tracking_uids(r.seg_path);
    size_t n_uid = 0;
    for (size_t p = t.find('['); p != std::string::npos; p = t.find('[', p + 1)) {
        std::string uid = t.substr(p + 1, t.find(']', p) - p - 1);
        CU_ASSERT(valid_uid(uid.c_str()));
        size_t k = count(d, "\"" + uid + "\"");
        CU_ASSERT(k == 2u || (k == 3u && n_uid == 2)); /* the right GGO has two regions */
        n_uid++;
    }
    CU_ASSERT_EQUAL(n_uid, 4u);
    /* The GSPS inverts like the MONOCHROME1 source and keeps its window. */
    std::string g = run("dcmdump '" + std::string(r.gsps_path) + "' 2>&1");
    CU_ASSERT(g.find("[INVERSE]") != std::string::npos);
    CU_ASSERT(g.find("WindowWidth") != std::string::npos);
    CU_ASSERT_EQUAL(count(g, "[POLYLINE]"), 5u);
}

/* ------------------------------------------------------------------ tests: synthetic */

static void test_spacing_areas(void)
{
    SynthOpts so;
    so.pixel_spacing = "0.5\\0.25";
    std::string src = make_source(tmpdir("sp") + "/src.dcm", so);
    std::vector<F> v;
    v.push_back(lung(true, 20, 30, 120, 200));
    F sq = ggo(40, 60, 40, 40, {}, true, 12.0);
    std::fill(sq.m.begin(), sq.m.end(), 1); /* 1600 px * 0.125 mm2 = 200.0 mm2 */
    v.push_back(sq);
    auto fs = view(v);
    cxd_write_options o;
    cxd_write_options_default(&o);
    cxd_write_result r;
    cxd_error e;
    CU_ASSERT_EQUAL_FATAL(write_for(src, fs, o, tmpdir("sp"), &r, &e), CXD_OK);
    CU_ASSERT_STRING_EQUAL(r.spacing_used, "PixelSpacing");
    CU_ASSERT(run("dcmdump +P 5200,9229 '" + std::string(r.seg_path) + "'").size() > 0);
    CU_ASSERT(run("dcmdump '" + std::string(r.seg_path) + "'").find("(0028,0030) DS [0.500000\\0.250000]") !=
              std::string::npos); /* the SEG's Pixel Measures carry the source spacing */
    check_dciodvfy(r.seg_path);
    check_dciodvfy(r.sr_path);
    std::string d = dsrdump(r.sr_path);
    CU_ASSERT(d.find("(42798000,SCT,\"Area\")=\"200.0\" (mm2,UCUM,\"square millimeter\")") != std::string::npos);
    CU_ASSERT(d.find("PixelSpacing 0.500000\\0.250000 mm") != std::string::npos);
    CU_ASSERT(d.find("no usable pixel spacing") == std::string::npos);

    /* ImagerPixelSpacing only: used, and the report says it is at the detector. */
    SynthOpts si;
    si.imager_spacing = "0.2\\0.2";
    src = make_source(tmpdir("ips") + "/src.dcm", si);
    CU_ASSERT_EQUAL_FATAL(write_for(src, fs, o, tmpdir("ips"), &r, &e), CXD_OK);
    CU_ASSERT_STRING_EQUAL(r.spacing_used, "ImagerPixelSpacing");
    d = dsrdump(r.sr_path);
    CU_ASSERT(d.find("=\"64.0\" (mm2,UCUM") != std::string::npos); /* 1600 * 0.04 */
    CU_ASSERT(d.find("ImagerPixelSpacing 0.200000\\0.200000 mm (at the detector plane") != std::string::npos);
    check_dciodvfy(r.sr_path);
}

static void test_no_findings(void)
{
    SynthOpts so;
    so.pixel_spacing = "0.3\\0.3";
    std::string dir = tmpdir("none");
    std::string src = make_source(dir + "/src.dcm", so);
    std::vector<F> v;
    v.push_back(lung(true, 20, 30, 120, 200));
    v.push_back(lung(false, 170, 30, 120, 200));
    v.push_back(ggo(40, 60, 30, 30, {}, true, 0)); /* empty mask: no segment, no group */
    auto fs = view(v);
    cxd_write_options o;
    cxd_write_options_default(&o);
    o.outputs = CXD_OUT_SEG | CXD_OUT_SR | CXD_OUT_GSPS;
    cxd_write_result r;
    cxd_error e;
    CU_ASSERT_EQUAL_FATAL(write_for(src, fs, o, dir, &r, &e), CXD_OK);
    CU_ASSERT_FALSE(r.finding_present);
    CU_ASSERT_EQUAL(r.n_segments, 2);
    check_seg_masks(r.seg_path, fs, so.rows, so.cols);
    for (const char *p : {r.seg_path, r.sr_path, r.gsps_path})
        check_dciodvfy(p);
    std::string d = dsrdump(r.sr_path);
    CU_ASSERT(d.find("(112120,DCM,\"Ground glass opacity\")=(2667000,SCT,\"Absent\")") != std::string::npos);
    CU_ASSERT_EQUAL(count(d, "(125007,DCM,\"Measurement Group\")"), 4u);

    /* Configured not to write a SEG without findings: SR only, no reference to a SEG. */
    std::string dir2 = tmpdir("none2");
    o.seg_without_findings = 0;
    CU_ASSERT_EQUAL_FATAL(write_for(src, fs, o, dir2, &r, &e), CXD_OK);
    CU_ASSERT_EQUAL(r.written & CXD_OUT_SEG, 0);
    CU_ASSERT(access((dir2 + "/seg.dcm").c_str(), F_OK) != 0);
    d = dsrdump(r.sr_path);
    CU_ASSERT(d.find("Referenced Segmentation Frame") == std::string::npos);
    CU_ASSERT(d.find("\"Absent\"") != std::string::npos);
    check_dciodvfy(r.sr_path);
}

/* The caller's answer and concept (the pipeline's decision rule): the SR says what it was told, with
 * the caller's concept name and the Comment explaining the rule, whatever the findings' codes. */
static void test_caller_presence(void)
{
    SynthOpts so;
    so.pixel_spacing = "0.3\\0.3";
    std::string dir = tmpdir("pres");
    std::string src = make_source(dir + "/src.dcm", so);
    std::vector<F> v;
    v.push_back(lung(true, 20, 30, 120, 200));
    F op = ggo(40, 60, 40, 40, {{{20, 20, 12}}}, true, 8.0);
    op.f.type = code("409609008", "SCT", "Radiologic infiltrate of lung");
    snprintf(op.f.label, sizeof op.f.label, "Lung opacity (ground-glass opacity or consolidation)");
    v.push_back(op);
    auto fs = view(v);
    cxd_write_options o;
    cxd_write_options_default(&o);
    o.qualitative = code("409609008", "SCT", "Radiologic infiltrate of lung");
    o.presence = CXD_PRESENCE_PRESENT;
    snprintf(o.presence_basis, sizeof o.presence_basis,
             "Image score 0.93; present when a detection scores >= 0.62 and covers >= 0.5%% of the image");
    cxd_write_result r;
    cxd_error e;
    CU_ASSERT_EQUAL_FATAL(write_for(src, fs, o, dir, &r, &e), CXD_OK);
    CU_ASSERT(r.finding_present);
    check_dciodvfy(r.sr_path);
    std::string d = dsrdump(r.sr_path);
    CU_ASSERT(d.find("(409609008,SCT,\"Radiologic infiltrate of lung\")=(52101004,SCT,\"Present\")") !=
              std::string::npos);
    CU_ASSERT(d.find("Ground glass opacity") == std::string::npos);
    CU_ASSERT(d.find("(121106,DCM,\"Comment\")=\"Image score 0.93; present when a detection scores >= 0.62") !=
              std::string::npos);

    /* Absent by the rule although a finding with the concept's code is in the list (the caller
     * decides), and no Comment when no basis is given. */
    std::string dir2 = tmpdir("pres2");
    o.presence = CXD_PRESENCE_ABSENT;
    o.presence_basis[0] = 0;
    CU_ASSERT_EQUAL_FATAL(write_for(src, fs, o, dir2, &r, &e), CXD_OK);
    CU_ASSERT_FALSE(r.finding_present);
    check_dciodvfy(r.sr_path);
    d = dsrdump(r.sr_path);
    CU_ASSERT(d.find("(409609008,SCT,\"Radiologic infiltrate of lung\")=(2667000,SCT,\"Absent\")") !=
              std::string::npos);
    CU_ASSERT(d.find("Image score") == std::string::npos);

    /* Bad options are errors naming what is wrong. */
    o.presence = 7;
    CU_ASSERT_EQUAL(write_for(src, fs, o, tmpdir("pres3"), &r, &e), CXD_ERR_INVALID);
    CU_ASSERT(strstr(e.msg, "presence 7") != nullptr);
    o.presence = CXD_PRESENCE_PRESENT;
    o.qualitative.meaning[0] = 0;
    CU_ASSERT_EQUAL(write_for(src, fs, o, tmpdir("pres3"), &r, &e), CXD_ERR_INVALID);
    CU_ASSERT(strstr(e.msg, "needs a scheme and a meaning") != nullptr);
}

static void test_border_and_many_regions(void)
{
    SynthOpts so;
    so.rows = 200; so.cols = 240;
    so.pixel_spacing = "0.2\\0.2";
    std::string dir = tmpdir("border");
    std::string src = make_source(dir + "/src.dcm", so);
    std::vector<F> v;
    /* A frame along all four image borders (box = whole image). */
    F b = ggo(0, 0, so.cols, so.rows, {}, true, 1.0);
    for (int y = 0; y < so.rows; y++)
        for (int x = 0; x < so.cols; x++)
            b.m[(size_t)y * so.cols + x] = x < 3 || y < 3 || x >= so.cols - 3 || y >= so.rows - 3;
    v.push_back(b);
    /* 150 separate small regions: single pixels and 2x2 blocks on a grid. */
    F s = ggo(20, 20, 200, 160, {}, false, 2.0);
    int n = 0;
    for (int y = 0; y < 160 && n < 150; y += 11)
        for (int x = 0; x < 200 && n < 150; x += 13, n++) {
            s.m[(size_t)y * 200 + x] = 1;
            if (n % 2) {
                s.m[(size_t)y * 200 + x + 1] = 1;
                s.m[(size_t)(y + 1) * 200 + x] = 1;
                s.m[(size_t)(y + 1) * 200 + x + 1] = 1;
            }
        }
    v.push_back(s);
    auto fs = view(v);
    cxd_write_options o;
    cxd_write_options_default(&o);
    o.outputs = CXD_OUT_SEG | CXD_OUT_SR | CXD_OUT_GSPS;
    cxd_write_result r;
    cxd_error e;
    CU_ASSERT_EQUAL_FATAL(write_for(src, fs, o, dir, &r, &e), CXD_OK);
    CU_ASSERT_EQUAL(r.n_regions, 1 + 150);
    check_seg_masks(r.seg_path, fs, so.rows, so.cols);
    for (const char *p : {r.seg_path, r.sr_path, r.gsps_path})
        check_dciodvfy(p);
    std::string d = dsrdump(r.sr_path);
    CU_ASSERT_EQUAL(count(d, "<inferred from SCOORD:=(POLYLINE"), 151u);
    /* Border frame: (240*200 - 234*194) px * 0.04 mm2 = 104.16 mm2; no pixel count with spacing. */
    CU_ASSERT(d.find("(42798000,SCT,\"Area\")=\"104.2\" (mm2") != std::string::npos);
    CU_ASSERT(d.find("{pixels}") == std::string::npos);
}

/* Both SEG encodings at odd image sizes and 1..8 segments (the cases OHIF 3.13.2 failed on as
 * BINARY), FRACTIONAL both RLE Lossless (the default) and uncompressed: every object validates,
 * is in the transfer syntax asked for, and reads back pixel for pixel with DCMTK and pydicom. */
static void test_seg_encodings(void)
{
    const int sizes[][2] = {{37, 29}, {333, 401}, {602, 699}}; /* columns, rows */
    for (auto &sz : sizes) {
        SynthOpts so;
        so.cols = sz[0];
        so.rows = sz[1];
        so.pixel_spacing = "0.2\\0.2";
        std::string dir = tmpdir(("enc-" + std::to_string(so.cols) + "x" + std::to_string(so.rows)).c_str());
        std::string src = make_source(dir + "/src.dcm", so);
        const int kinds[][2] = {{CXD_SEG_FRACTIONAL, CXD_SEG_RLE}, {CXD_SEG_FRACTIONAL, CXD_SEG_UNCOMPRESSED},
                                {CXD_SEG_BINARY, CXD_SEG_RLE}};
        for (auto &kind : kinds) {
            const int enc = kind[0], comp = kind[1];
            for (int n = 1; n <= 8; n++) {
                /* Lungs first, then findings: each a disc at its own place, some on the border. */
                std::vector<F> v;
                for (int k = 0; k < n; k++) {
                    int r = std::max(2, std::min(so.cols, so.rows) / 6);
                    int cx = (k * 7 + 3) % so.cols, cy = (k * 11 + so.rows / 3) % so.rows;
                    F g = ggo(0, 0, so.cols, so.rows, {{{cx, cy, r}}}, k % 2 == 0, 1.0);
                    if (k < 2) {
                        g.f.role = CXD_ROLE_ANATOMY;
                        snprintf(g.f.label, sizeof g.f.label, "%s lung", k ? "Left" : "Right");
                        g.f.n_shares = 0;
                    }
                    v.push_back(g);
                }
                auto fs = view(v);
                cxd_write_options o;
                cxd_write_options_default(&o);
                o.outputs = CXD_OUT_SEG;
                o.seg_encoding = enc;
                o.seg_compression = comp;
                std::string out = dir + "/" + (enc == CXD_SEG_BINARY ? "b" : comp == CXD_SEG_RLE ? "r" : "f") +
                                  std::to_string(n);
                mkdir(out.c_str(), 0755);
                cxd_write_result r;
                cxd_error e;
                CU_ASSERT_EQUAL_FATAL(write_for(src, fs, o, out, &r, &e), CXD_OK);
                CU_ASSERT_EQUAL(r.n_segments, n);
                std::string dump = run("dcmdump +P 0002,0010 +P 0062,0001 +P 0028,0100 +P 0062,000e +P 0062,0010 '" +
                                       std::string(r.seg_path) + "' 2>&1");
                /* RLE for FRACTIONAL when asked; BINARY is always uncompressed */
                const bool rle = enc == CXD_SEG_FRACTIONAL && comp == CXD_SEG_RLE;
                CU_ASSERT(dump.find(rle ? "=RLELossless" : "=LittleEndianExplicit") != std::string::npos);
                if (enc == CXD_SEG_BINARY) {
                    CU_ASSERT(dump.find("[BINARY]") != std::string::npos);
                    CU_ASSERT(dump.find("US 1 ") != std::string::npos);
                } else {
                    CU_ASSERT(dump.find("[FRACTIONAL]") != std::string::npos);
                    CU_ASSERT(dump.find("US 8 ") != std::string::npos);
                    CU_ASSERT(dump.find("US 255 ") != std::string::npos); /* MaximumFractionalValue */
                    CU_ASSERT(dump.find("[OCCUPANCY]") != std::string::npos);
                }
                /* Rows and Columns stay the source's whatever the encoding. */
                std::string rc = run("dcmdump +P 0028,0010 +P 0028,0011 '" + std::string(r.seg_path) + "' 2>&1");
                CU_ASSERT(rc.find("US " + std::to_string(so.rows) + " ") != std::string::npos);
                CU_ASSERT(rc.find("US " + std::to_string(so.cols) + " ") != std::string::npos);
                check_seg_masks(r.seg_path, fs, so.rows, so.cols);
                check_dciodvfy(r.seg_path);
            }
        }
        /* The RLE object is the uncompressed one but for its Pixel Data encoding (the writer builds
         * it another way: DCMTK's BINARY object, converted): every other attribute the same. */
        for (int n = 1; n <= 8; n++) {
            std::string strip = " 2>&1 | grep -v -e PixelData -e 'pixel' -e 'Item' -e 'fffe,e0dd' -e TransferSyntax"
                                " -e '(0008,0031)' -e '(0008,0033)' -e '(0002,0000)'";
            std::string a = run("dcmdump -q '" + dir + "/r" + std::to_string(n) + "/seg.dcm'" + strip);
            std::string b = run("dcmdump -q '" + dir + "/f" + std::to_string(n) + "/seg.dcm'" + strip);
            CU_ASSERT(a.size() > 1000);
            CU_ASSERT(a == b);
        }
    }
    /* An encoding the writer does not know is refused. */
    SynthOpts so;
    std::string dir = tmpdir("enc-bad");
    std::string src = make_source(dir + "/src.dcm", so);
    std::vector<F> v;
    v.push_back(ggo(10, 10, 20, 20, {{{10, 10, 5}}}, true, 1.0));
    auto fs = view(v);
    cxd_write_options o;
    cxd_write_options_default(&o);
    o.seg_encoding = 7;
    cxd_write_result r;
    cxd_error e;
    CU_ASSERT_EQUAL(write_for(src, fs, o, dir, &r, &e), CXD_ERR_INVALID);
    CU_ASSERT(strstr(e.msg, "SEG encoding 7") != nullptr);
    cxd_write_options_default(&o);
    o.seg_compression = 5;
    CU_ASSERT_EQUAL(write_for(src, fs, o, dir, &r, &e), CXD_ERR_INVALID);
    CU_ASSERT(strstr(e.msg, "SEG compression 5") != nullptr);
}

static void test_monochrome1(void)
{
    SynthOpts so;
    so.photometric = "MONOCHROME1";
    std::string dir = tmpdir("mono1");
    std::string src = make_source(dir + "/src.dcm", so);
    std::vector<F> v;
    v.push_back(lung(true, 20, 30, 120, 200));
    v.push_back(ggo(40, 60, 50, 50, {{{25, 25, 20}}}, true, 5.0));
    auto fs = view(v);
    /* The caller's picture: grey with a coloured patch where the pipeline would draw the GGO. */
    std::vector<uint8_t> disp((size_t)so.rows * so.cols * 3, 128);
    for (int y = 60; y < 110; y++)
        for (int x = 40; x < 90; x++) {
            uint8_t *q = &disp[((size_t)y * so.cols + x) * 3];
            q[0] = 255, q[1] = 60, q[2] = 0;
        }
    cxd_write_options o;
    cxd_write_options_default(&o);
    o.outputs = CXD_OUT_SEG | CXD_OUT_SR | CXD_OUT_GSPS | CXD_OUT_SC;
    o.display_rgb = disp.data();
    o.display_rows = so.rows;
    o.display_cols = so.cols;
    cxd_write_result r;
    cxd_error e;
    CU_ASSERT_EQUAL_FATAL(write_for(src, fs, o, dir, &r, &e), CXD_OK);
    for (const char *p : {r.seg_path, r.sr_path, r.gsps_path, r.sc_path})
        check_dciodvfy(p);
    check_seg_masks(r.seg_path, fs, so.rows, so.cols);
    std::string g = run("dcmdump '" + std::string(r.gsps_path) + "' 2>&1");
    CU_ASSERT(g.find("PresentationLUTShape") != std::string::npos && g.find("[INVERSE]") != std::string::npos);
    /* The SC holds the caller's picture byte for byte (the legend and the masks are drawn by
     * src/image's cx_overlay_render, tested in test_image). */
    DcmFileFormat ff;
    CU_ASSERT_FATAL(ff.loadFile(r.sc_path).good());
    const Uint8 *pd = nullptr;
    unsigned long len = 0;
    CU_ASSERT_FATAL(ff.getDataset()->findAndGetUint8Array(DCM_PixelData, pd, &len).good());
    CU_ASSERT_EQUAL_FATAL(len, (unsigned long)so.rows * so.cols * 3);
    CU_ASSERT(memcmp(pd, disp.data(), len) == 0);
    CU_ASSERT(raw_string(r.sc_path, DCM_BurnedInAnnotation) == "YES");
}

static void test_charsets(void)
{
    struct Case {
        const char *name, *charset;
        std::string pn;
        bool keeps_utf8_label;
    } cases[] = {
        {"latin1", "ISO_IR 100", "M\xfcller^J\xfcrgen", false},
        {"utf8", "ISO_IR 192", "M\xc3\xbcller^J\xc3\xbcrgen", true},
    };
    for (auto &c : cases) {
        SynthOpts so;
        so.charset = c.charset;
        so.patient_name = c.pn;
        std::string dir = tmpdir(c.name);
        std::string src = make_source(dir + "/src.dcm", so);
        std::vector<F> v;
        v.push_back(lung(true, 20, 30, 120, 200));
        snprintf(v[0].f.label, sizeof v[0].f.label, "Lunge rechts \xc3\xa4"); /* UTF-8 label */
        auto fs = view(v);
        cxd_write_options o;
        cxd_write_options_default(&o);
        o.outputs = CXD_OUT_SEG | CXD_OUT_SR | CXD_OUT_GSPS;
        cxd_write_result r;
        cxd_error e;
        CU_ASSERT_EQUAL_FATAL(write_for(src, fs, o, dir, &r, &e), CXD_OK);
        for (const char *p : {r.seg_path, r.sr_path, r.gsps_path}) {
            CU_ASSERT_STRING_EQUAL(raw_string(p, DCM_PatientName).c_str(), c.pn.c_str());
            CU_ASSERT_STRING_EQUAL(raw_string(p, DCM_SpecificCharacterSet).c_str(), c.charset);
            check_dciodvfy(p);
        }
        std::string label = raw_string(r.seg_path, DCM_SegmentSequence);
        DcmFileFormat ff;
        CU_ASSERT_FATAL(ff.loadFile(r.seg_path).good());
        DcmItem *it = nullptr;
        OFString lab;
        CU_ASSERT_FATAL(ff.getDataset()->findAndGetSequenceItem(DCM_SegmentSequence, it, 0).good());
        it->findAndGetOFString(DCM_SegmentLabel, lab);
        CU_ASSERT_STRING_EQUAL(lab.c_str(), c.keeps_utf8_label ? "Lunge rechts \xc3\xa4" : "Lunge rechts ??");
    }
}

static void test_deterministic(void)
{
    SynthOpts so;
    std::string src = make_source(tmpdir("det") + "/src.dcm", so);
    std::vector<F> v;
    v.push_back(lung(true, 20, 30, 120, 200));
    auto fs = view(v);
    cxd_write_options o;
    cxd_write_options_default(&o);
    snprintf(o.uid_root, sizeof o.uid_root, "1.2.826.0.1.3680043.10.1234");
    o.series_numbers[1] = 9902;
    snprintf(o.series_descriptions[1], sizeof o.series_descriptions[1], "CXRSEG Report");
    cxd_write_result a, b, c;
    cxd_error e;
    CU_ASSERT_EQUAL_FATAL(write_for(src, fs, o, tmpdir("det1"), &a, &e), CXD_OK);
    CU_ASSERT_STRING_EQUAL(raw_string(a.sr_path, DCM_SeriesNumber).c_str(), "9902");
    CU_ASSERT_STRING_EQUAL(raw_string(a.sr_path, DCM_SeriesDescription).c_str(), "CXRSEG Report");
    CU_ASSERT_STRING_EQUAL(raw_string(a.seg_path, DCM_SeriesNumber).c_str(), "900");
    CU_ASSERT_STRING_EQUAL(raw_string(a.seg_path, DCM_SeriesDescription).c_str(), "cxrseg segmentation");
    CU_ASSERT_EQUAL_FATAL(write_for(src, fs, o, tmpdir("det2"), &b, &e), CXD_OK);
    CU_ASSERT_STRING_EQUAL(a.seg_sop_uid, b.seg_sop_uid);
    CU_ASSERT_STRING_EQUAL(a.sr_sop_uid, b.sr_sop_uid);
    CU_ASSERT_STRING_NOT_EQUAL(a.seg_sop_uid, a.sr_sop_uid);
    CU_ASSERT(valid_uid(a.seg_sop_uid) && valid_uid(a.sr_sop_uid));
    CU_ASSERT(strncmp(a.seg_sop_uid, "1.2.826.0.1.3680043.10.1234.", 28) == 0);
    CU_ASSERT_STRING_EQUAL(raw_string(a.seg_path, DCM_SeriesInstanceUID).c_str(),
                           raw_string(b.seg_path, DCM_SeriesInstanceUID).c_str());
    cxd_algorithm other = algorithm("model-b");
    CU_ASSERT_EQUAL_FATAL(write_for(src, fs, o, tmpdir("det3"), &c, &e, &other), CXD_OK);
    CU_ASSERT_STRING_NOT_EQUAL(a.seg_sop_uid, c.seg_sop_uid);
    /* The SR references the SEG it was written with. */
    CU_ASSERT(dsrdump(a.sr_path).find(a.seg_sop_uid) != std::string::npos);
    /* Model hash in the SEG's algorithm identification. */
    cxd_algorithm alg = algorithm();
    CU_ASSERT(run(std::string("dcmdump +L +P 0066,0032 '") + a.seg_path + "'").find(alg.model_sha256) != std::string::npos);
}

static void test_bad_inputs(void)
{
    SynthOpts so;
    std::string dir = tmpdir("bad");
    std::string src = make_source(dir + "/src.dcm", so);
    cxd_write_options o;
    cxd_write_options_default(&o);
    cxd_write_result r;
    cxd_error e;
    struct Bad {
        const char *expect;
        void (*mutate)(F &);
    } bads[] = {
        {"outside the 320x256 image", [](F &f) { f.f.x0 = 300; }},
        {"empty label", [](F &f) { f.f.label[0] = 0; }},
        {"type code is required", [](F &f) { f.f.type.value[0] = 0; }},
        {"needs a scheme and a meaning", [](F &f) { f.f.category.meaning[0] = 0; }},
        {"lung share 140%", [](F &f) { f.f.n_shares = 1; f.f.shares[0].laterality = RIGHT; f.f.shares[0].percent = 140; }},
        {"role 7", [](F &f) { f.f.role = (cxd_finding_role)7; }},
        {"score nan is not in [0,1]", [](F &f) { f.f.score = NAN; }},
        {"score 1.5 is not in [0,1]", [](F &f) { f.f.score = 1.5; }},
        {"without a mask", [](F &f) { f.m.clear(); }},
    };
    for (auto &b : bads) {
        std::vector<F> v;
        v.push_back(lung(true, 20, 30, 120, 200));
        b.mutate(v[0]);
        auto fs = view(v);
        if (v[0].m.empty())
            fs[0].mask = nullptr;
        memset(&e, 0, sizeof e);
        cxd_status st = write_for(src, fs, o, dir, &r, &e);
        CU_ASSERT_EQUAL(st, CXD_ERR_INVALID);
        if (!strstr(e.msg, b.expect))
            fprintf(stderr, "\n  expected \"%s\" in \"%s\"", b.expect, e.msg);
        CU_ASSERT(strstr(e.msg, b.expect) != nullptr);
    }
    std::vector<F> v;
    v.push_back(lung(true, 20, 30, 120, 200));
    auto fs = view(v);
    /* Bad UID root, short model hash, display size mismatch, missing output folder. */
    snprintf(o.uid_root, sizeof o.uid_root, "1.2.03");
    CU_ASSERT_EQUAL(write_for(src, fs, o, dir, &r, &e), CXD_ERR_INVALID);
    CU_ASSERT(strstr(e.msg, "not a valid UID prefix") != nullptr);
    cxd_write_options_default(&o);
    cxd_algorithm alg = algorithm();
    alg.model_sha256[10] = 0;
    CU_ASSERT_EQUAL(write_for(src, fs, o, dir, &r, &e, &alg), CXD_ERR_INVALID);
    CU_ASSERT(strstr(e.msg, "64 hex digits") != nullptr);
    std::vector<uint8_t> disp(300);
    o.outputs = CXD_OUT_SC;
    o.display_rgb = disp.data();
    o.display_rows = 10;
    o.display_cols = 10;
    CU_ASSERT_EQUAL(write_for(src, fs, o, dir, &r, &e), CXD_ERR_INVALID);
    CU_ASSERT(strstr(e.msg, "picture is 10x10") != nullptr);
    cxd_write_options_default(&o);
    CU_ASSERT_EQUAL(write_for(src, fs, o, dir + "/does/not/exist", &r, &e), CXD_ERR_IO);
    CU_ASSERT(strstr(e.msg, "save:") != nullptr);
    /* NULL arguments. */
    CU_ASSERT_EQUAL(cxd_results_write(nullptr, fs.data(), 1, &alg, &o, dir.c_str(), &r, &e), CXD_ERR_INVALID);
}

static const cx_test_case cases[] = {
    {"sha256 test vectors", test_sha256_vectors},
    {"deterministic UIDs", test_derive_uid},
    {"sRGB to DICOM CIELab (D50)", test_cielab},
    {"connected regions and contours", test_contours},
    {"real chest CR: SEG+SR+GSPS+SC validate and read back", test_real_cr},
    {"areas with PixelSpacing / ImagerPixelSpacing", test_spacing_areas},
    {"no findings: lungs only, SR absent, optional SEG", test_no_findings},
    {"present/absent and its concept from the caller", test_caller_presence},
    {"mask on the border, 150 small regions", test_border_and_many_regions},
    {"SEG encodings at odd sizes, 1..8 segments, read back by DCMTK and pydicom", test_seg_encodings},
    {"MONOCHROME1 source", test_monochrome1},
    {"non-ASCII patient names (ISO_IR 100, ISO_IR 192)", test_charsets},
    {"UIDs derived deterministically", test_deterministic},
    {"bad inputs give specific errors", test_bad_inputs},
    {nullptr, nullptr},
};

int main(void)
{
    int rc = cx_test_run("write", cases);
    if (!g_tmp.empty() && rc == 0)
        run("rm -rf '" + g_tmp + "'");
    else if (!g_tmp.empty())
        fprintf(stderr, "outputs kept in %s\n", g_tmp.c_str());
    return rc;
}
