// Shared machinery of the result writers: SHA-256 and the deterministic UIDs built on it,
// sRGB -> DICOM CIELab, the source attributes every output copies, finding validation with
// contour tracing, and the atomic save. Writers throw cxdw::Error; only entry points catch.
#include "read_internal.h"
#include "write_internal.hh"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <type_traits>
#include <unistd.h>

#include <openssl/evp.h>

namespace cxdw {

void fail(cxd_status code, const char *stage, const char *fmt, ...)
{
    char buf[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    throw Error(code, std::string(stage) + ": " + buf);
}

void check(const OFCondition &cond, const char *stage, const std::string &what)
{
    if (cond.bad())
        fail(CXD_ERR_WRITE, stage, "%s: %s", what.c_str(), cond.text());
}

} // namespace cxdw

/* ---- SHA-256: libcrypto's, for the deterministic UIDs ---- */
namespace {

struct Sha256 {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    Sha256() = default;
    Sha256(const Sha256 &) = delete;
    Sha256 &operator=(const Sha256 &) = delete;
    ~Sha256() { EVP_MD_CTX_free(ctx); }
    void update(const void *data, size_t len) { ok = ok && EVP_DigestUpdate(ctx, data, len); }
    /* all zero when libcrypto failed (allocation): callers then see an invalid digest, never a partial one */
    void final(uint8_t out[32])
    {
        ok = ok && EVP_DigestFinal_ex(ctx, out, nullptr);
        if (!ok)
            memset(out, 0, 32);
    }
};

bool valid_root(const char *r)
{
    // Components of digits separated by single dots, no leading zero unless the component is "0".
    if (!*r)
        return false;
    const char *p = r;
    while (*p) {
        const char *s = p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == s || (p - s > 1 && *s == '0'))
            return false;
        if (*p == '.') {
            p++;
            if (!*p)
                return false;
        } else if (*p) {
            return false;
        }
    }
    return true;
}

} // namespace

extern "C" void cxd_sha256_hex(const void *data, size_t len, char out[65])
{
    Sha256 s;
    s.update(data, len);
    uint8_t d[32];
    s.final(d);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

extern "C" cxd_status cxd_derive_uid(const char *root, const char *source_uid, const char *kind,
                                     const char *model_sha256, char out[65], cxd_error *err)
{
    if (!root || !*root)
        root = "2.25";
    if (!source_uid || !*source_uid || !kind || !*kind || !model_sha256 || !out) {
        return cxd_set_error(err, CXD_ERR_INVALID, "uid: source UID, kind and model hash are required");
    }
    if (!valid_root(root)) {
        return cxd_set_error(err, CXD_ERR_INVALID,
                             "uid: root \"%.200s\" is not a valid UID prefix (digits and dots, no leading zeros)", root);
    }
    size_t rl = strlen(root);
    // At least 20 digits (~66 bits) must remain so that distinct sources never collide in practice.
    if (rl + 1 + 20 > 64) {
        return cxd_set_error(err, CXD_ERR_INVALID,
                             "uid: root \"%.200s\" is %zu characters; at most 43 leave room for the 20-digit suffix",
                             root, rl);
    }
    Sha256 s;
    // NUL separators keep ("a","bc") and ("ab","c") apart.
    s.update(source_uid, strlen(source_uid) + 1);
    s.update(kind, strlen(kind) + 1);
    s.update(model_sha256, strlen(model_sha256) + 1);
    uint8_t d[32];
    s.final(d);
    bool uuid = strcmp(root, "2.25") == 0;
    if (uuid) {
        // Under 2.25 the integer must be a UUID: mark it as an RFC 9562 version-8 (custom) UUID.
        d[6] = (uint8_t)((d[6] & 0x0f) | 0x80);
        d[8] = (uint8_t)((d[8] & 0x3f) | 0x80);
    }
    unsigned __int128 v = 0;
    for (int i = 0; i < 16; i++)
        v = (v << 8) | d[i];
    char digits[48];
    int n = 0;
    if (v == 0)
        digits[n++] = '0';
    while (v) {
        digits[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    }
    std::reverse(digits, digits + n);
    size_t room = 64 - rl - 1;
    if (!uuid && (size_t)n > room)
        n = (int)room; // a prefix of a decimal without leading zero has none either
    snprintf(out, 65, "%s.%.*s", root, n, digits);
    return CXD_OK;
}

extern "C" void cxd_rgb_to_dicom_lab(const uint8_t rgb[3], uint16_t lab[3])
{
    // DICOM PS3.3 C.10.7.1.1: CIELab in the ICC Profile Connection Space, i.e. relative to the
    // D50 white. sRGB is defined for D65, so use the Bradford-adapted sRGB -> XYZ(D50) matrix.
    double c[3];
    for (int i = 0; i < 3; i++) {
        double v = rgb[i] / 255.0;
        c[i] = v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
    }
    double X = 0.4360747 * c[0] + 0.3850649 * c[1] + 0.1430804 * c[2];
    double Y = 0.2225045 * c[0] + 0.7168786 * c[1] + 0.0606169 * c[2];
    double Z = 0.0139322 * c[0] + 0.0971045 * c[1] + 0.7141733 * c[2];
    const double Xn = 0.9642, Yn = 1.0, Zn = 0.8249;
    auto f = [](double t) {
        const double e = 216.0 / 24389.0, k = 24389.0 / 27.0;
        return t > e ? cbrt(t) : (k * t + 16.0) / 116.0;
    };
    double fx = f(X / Xn), fy = f(Y / Yn), fz = f(Z / Zn);
    double L = 116.0 * fy - 16.0, a = 500.0 * (fx - fy), b = 200.0 * (fy - fz);
    double s[3] = {L / 100.0 * 65535.0, (a + 128.0) / 255.0 * 65535.0, (b + 128.0) / 255.0 * 65535.0};
    for (int i = 0; i < 3; i++) {
        double v = floor(s[i] + 0.5);
        lab[i] = (uint16_t)(v < 0 ? 0 : v > 65535 ? 65535 : v);
    }
}

/* ---- connected regions and their outer contours ---- */
namespace {

// Directions clockwise on screen (y down): E, SE, S, SW, W, NW, N, NE.
const int DX[8] = {1, 1, 0, -1, -1, -1, 0, 1};
const int DY[8] = {0, 1, 1, 1, 0, -1, -1, -1};

struct Tracer {
    int w, h;
    const std::vector<int> &lab; // component label per pixel, 0 = background
    int id;
    bool in(int x, int y) const { return x >= 0 && y >= 0 && x < w && y < h && lab[(size_t)y * w + x] == id; }
    // From p arriving in direction d, the next boundary pixel clockwise; returns false if isolated.
    bool next(int x, int y, int d, int &nx, int &ny, int &nd) const
    {
        int start = (d % 2 == 0) ? (d + 7) % 8 : (d + 6) % 8;
        for (int i = 0; i < 8; i++) {
            int k = (start + i) % 8;
            if (in(x + DX[k], y + DY[k])) {
                nx = x + DX[k]; ny = y + DY[k]; nd = k;
                return true;
            }
        }
        return false;
    }
};

} // namespace

extern "C" void cxd_contours_clear(cxd_contours *c)
{
    if (!c)
        return;
    free(c->starts);
    free(c->points);
    free(c->areas);
    memset(c, 0, sizeof *c);
}

namespace {

// 8-connected regions of a w x h mask, labelled 1..n in raster order (lab: 0 = background), with
// each region's area and raster-first pixel. A scanline fill: each seed labels its whole run of the
// row, then seeds one pixel per unlabelled run of the rows above and below within the run's span
// widened by one (8-connectivity), so a pixel is looked at a few times, not once per neighbour.
int label_components(const uint8_t *mask, int w, int h, std::vector<int> &lab, std::vector<size_t> &areas,
                     std::vector<std::pair<int, int>> &firsts)
{
    std::vector<std::pair<int, int>> stack;
    auto todo = [&](int y, int x) { return mask[(size_t)y * w + x] && !lab[(size_t)y * w + x]; };
    int ncomp = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            if (!todo(y, x))
                continue;
            ++ncomp;
            size_t area = 0;
            stack.push_back({x, y});
            while (!stack.empty()) {
                auto [sx, sy] = stack.back();
                stack.pop_back();
                if (!todo(sy, sx))
                    continue;
                int l = sx, r = sx;
                while (l > 0 && todo(sy, l - 1))
                    l--;
                while (r + 1 < w && todo(sy, r + 1))
                    r++;
                int *row = &lab[(size_t)sy * w];
                for (int q = l; q <= r; q++)
                    row[q] = ncomp;
                area += (size_t)(r - l + 1);
                int a = l > 0 ? l - 1 : 0, b = r + 1 < w ? r + 1 : w - 1;
                for (int ny = sy - 1; ny <= sy + 1; ny += 2) {
                    if (ny < 0 || ny >= h)
                        continue;
                    for (int q = a; q <= b; q++)
                        if (todo(ny, q) && (q == a || !todo(ny, q - 1)))
                            stack.push_back({q, ny}); // one seed per run
                }
            }
            areas.push_back(area);
            firsts.push_back({x, y});
        }
    return ncomp;
}

// The outer boundary of region t.id from its raster-first pixel (x0, y0), appended to pts through
// push: pixel centres; a single pixel or a line of pixels (no interior) as its pixel-corner box.
template <typename Push> void trace_region(const Tracer &t, int x0, int y0, size_t area, Push push)
{
    int x1, y1, d1;
    if (!t.next(x0, y0, 7, x1, y1, d1)) {
        // A single pixel: its square, so that the polyline encloses an area.
        push(x0, y0); push(x0 + 1, y0); push(x0 + 1, y0 + 1); push(x0, y0 + 1);
        return;
    }
    std::vector<std::pair<int, int>> ring;
    ring.push_back({x0, y0});
    int x = x1, y = y1, d = d1;
    size_t guard = 4 * area + 16;
    while (guard--) {
        int nx = x, ny = y, nd = d;
        t.next(x, y, d, nx, ny, nd); // cannot fail: the region has >= 2 pixels
        if (x == x0 && y == y0 && nx == x1 && ny == y1)
            break; // Jacob's criterion: back at the start about to repeat the first step
        ring.push_back({x, y});
        x = nx; y = ny; d = nd;
    }
    bool thin = true; // a line of pixels has no interior: use its pixel-corner box
    for (size_t i = 2; i < ring.size() && thin; i++)
        if ((ring[i].first - ring[0].first) * (ring[1].second - ring[0].second) !=
            (ring[i].second - ring[0].second) * (ring[1].first - ring[0].first))
            thin = false;
    if (thin) {
        int mnx = x0, mxx = x0, mny = y0, mxy = y0;
        for (auto &p : ring) {
            mnx = std::min(mnx, p.first); mxx = std::max(mxx, p.first);
            mny = std::min(mny, p.second); mxy = std::max(mxy, p.second);
        }
        push(mnx, mny); push(mxx + 1, mny); push(mxx + 1, mxy + 1); push(mnx, mxy + 1);
        return;
    }
    for (auto &p : ring)
        push(p.first + 0.5, p.second + 0.5);
}

} // namespace

extern "C" cxd_status cxd_mask_contours(const cxd_finding *f, cxd_contours *out, cxd_error *err)
{
    if (!f || !out || !f->mask || f->w <= 0 || f->h <= 0) {
        return cxd_set_error(err, CXD_ERR_INVALID, "contours: finding with a mask and a positive box size is required");
    }
    try {
        const int w = f->w, h = f->h;
        std::vector<int> lab((size_t)w * h, 0);
        std::vector<size_t> areas;
        std::vector<std::pair<int, int>> firsts; // raster-first pixel of each region
        int ncomp = label_components(f->mask, w, h, lab, areas, firsts);
        std::vector<size_t> starts;
        std::vector<float> pts;
        auto push = [&](double x, double y) {
            pts.push_back((float)(x + f->x0));
            pts.push_back((float)(y + f->y0));
        };
        for (int c = 0; c < ncomp; c++) {
            starts.push_back(pts.size() / 2);
            trace_region(Tracer{w, h, lab, c + 1}, firsts[c].first, firsts[c].second, areas[c], push);
        }
        size_t np = pts.size() / 2;
        cxd_contours r{};
        r.n_contours = (size_t)ncomp;
        r.n_points = np;
        r.starts = (size_t *)malloc((ncomp + 1) * sizeof(size_t));
        r.points = (float *)malloc((np ? np : 1) * 2 * sizeof(float));
        r.areas = (size_t *)malloc((ncomp ? ncomp : 1) * sizeof(size_t));
        if (!r.starts || !r.points || !r.areas) {
            cxd_contours_clear(&r);
            return cxd_set_error(err, CXD_ERR_NOMEM, "contours: out of memory");
        }
        for (int c = 0; c < ncomp; c++) {
            r.starts[c] = starts[c];
            r.areas[c] = areas[c];
        }
        r.starts[ncomp] = np;
        if (np)
            memcpy(r.points, pts.data(), np * 2 * sizeof(float));
        *out = r;
        return CXD_OK;
    } catch (const std::bad_alloc &) {
        return cxd_set_error(err, CXD_ERR_NOMEM, "contours: out of memory");
    } catch (...) {
        return cxd_set_error(err, CXD_ERR_INTERNAL, "contours: unexpected exception");
    }
}

extern "C" void cxd_write_options_default(cxd_write_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    snprintf(o->uid_root, sizeof o->uid_root, "2.25");
    o->series_number = 900;
    snprintf(o->series_description, sizeof o->series_description, "cxrseg");
    snprintf(o->manufacturer, sizeof o->manufacturer, "cxrseg project");
    snprintf(o->software_version, sizeof o->software_version, "unknown");
    o->outputs = CXD_OUT_SEG | CXD_OUT_SR;
    o->seg_without_findings = 1;
    o->seg_encoding = CXD_SEG_FRACTIONAL;
    o->seg_compression = CXD_SEG_RLE;
}

namespace cxdw {

static std::string get_str(DcmItem &ds, const DcmTagKey &tag)
{
    OFString v;
    if (ds.findAndGetOFStringArray(tag, v).good())
        return std::string(v.c_str());
    return std::string();
}

void read_source(DcmItem &ds, Source &s)
{
    s.ds = &ds;
    s.sop_class = get_str(ds, DCM_SOPClassUID);
    s.sop_uid = get_str(ds, DCM_SOPInstanceUID);
    s.study_uid = get_str(ds, DCM_StudyInstanceUID);
    s.series_uid = get_str(ds, DCM_SeriesInstanceUID);
    s.patient_id = get_str(ds, DCM_PatientID);
    if (s.sop_class.empty() || s.sop_uid.empty() || s.study_uid.empty() || s.series_uid.empty())
        fail(CXD_ERR_MISSING, "source",
             "SOPClassUID/SOPInstanceUID/StudyInstanceUID/SeriesInstanceUID must all be present "
             "(found \"%s\", \"%s\", \"%s\", \"%s\")",
             s.sop_class.c_str(), s.sop_uid.c_str(), s.study_uid.c_str(), s.series_uid.c_str());
    Uint16 r = 0, c = 0;
    if (ds.findAndGetUint16(DCM_Rows, r).bad() || ds.findAndGetUint16(DCM_Columns, c).bad() || !r || !c)
        fail(CXD_ERR_MISSING, "source", "Rows/Columns missing or zero (%u x %u)", r, c);
    s.rows = r;
    s.cols = c;
    s.charset = get_str(ds, DCM_SpecificCharacterSet);
    s.utf8 = s.charset.find("ISO_IR 192") != std::string::npos;
    s.photometric = get_str(ds, DCM_PhotometricInterpretation);
    s.body_part = get_str(ds, DCM_BodyPartExamined);
    s.patient_orientation = get_str(ds, DCM_PatientOrientation);
    s.laterality = get_str(ds, DCM_Laterality);
    if (s.laterality.empty())
        s.laterality = get_str(ds, DCM_ImageLaterality);
    s.modality = get_str(ds, DCM_Modality);
    // Spacing rule (DICOM-NOTES.md): PixelSpacing if present and non-zero, else ImagerPixelSpacing.
    const DcmTagKey tags[2] = {DCM_PixelSpacing, DCM_ImagerPixelSpacing};
    const char *names[2] = {"PixelSpacing", "ImagerPixelSpacing"};
    for (int t = 0; t < 2 && !s.has_spacing; t++) {
        Float64 a = 0, b = 0;
        if (ds.findAndGetFloat64(tags[t], a, 0).good() && ds.findAndGetFloat64(tags[t], b, 1).good() &&
            a > 0 && b > 0 && std::isfinite(a) && std::isfinite(b)) {
            s.has_spacing = true;
            s.spacing[0] = a;
            s.spacing[1] = b;
            s.spacing_which = names[t];
        }
    }
}

std::string Context::uid(const std::string &kind) const
{
    char out[65];
    cxd_error e;
    if (cxd_derive_uid(uid_root.c_str(), src.sop_uid.c_str(), kind.c_str(), alg->model_sha256, out, &e) != CXD_OK)
        throw Error(e.code, e.msg);
    return out;
}

std::string Context::series_number(int k) const
{
    int n = opt.series_numbers[k] > 0 ? opt.series_numbers[k] : opt.series_number + k;
    return std::to_string(n);
}

std::string Context::series_description(int k, const char *suffix) const
{
    if (opt.series_descriptions[k][0])
        return text(opt.series_descriptions[k]);
    return text(std::string(opt.series_description) + " " + suffix);
}

std::string Context::text(const std::string &s) const
{
    std::string r = s;
    for (auto &ch : r)
        if ((!src.utf8 && (unsigned char)ch >= 0x80) || (unsigned char)ch < 0x20)
            ch = '?';
        else if (ch == '\\')
            ch = '/'; // the value separator
    return r;
}

static bool code_set(const cxd_code &c) { return c.value[0] != 0; }

static void check_code(const cxd_code &c, const char *what, size_t i, bool required)
{
    if (!code_set(c)) {
        if (required)
            fail(CXD_ERR_INVALID, "findings", "finding %zu: %s code is required", i, what);
        return;
    }
    if (!c.scheme[0] || !c.meaning[0])
        fail(CXD_ERR_INVALID, "findings", "finding %zu: %s code \"%s\" needs a scheme and a meaning", i, what,
             c.value);
}

void prepare_findings(Context &ctx, const cxd_finding *f, size_t n)
{
    if (n && !f)
        fail(CXD_ERR_INVALID, "findings", "%zu findings announced but the array is NULL", n);
    if (n > 1000)
        fail(CXD_ERR_INVALID, "findings", "%zu findings; at most 1000 segments are supported", n);
    for (size_t i = 0; i < n; i++) {
        const cxd_finding &x = f[i];
        /* A C caller may store any int in the role; in C++ loading an enum object whose value is
         * outside its enumerators' range is undefined, so it is checked as its integer. */
        std::underlying_type_t<cxd_finding_role> role;
        static_assert(sizeof role == sizeof x.role, "enum and its underlying type");
        memcpy(&role, &x.role, sizeof role);
        if (role != CXD_ROLE_ANATOMY && role != CXD_ROLE_FINDING)
            fail(CXD_ERR_INVALID, "findings", "finding %zu: role %d is neither anatomy nor finding", i, (int)role);
        if (!x.label[0])
            fail(CXD_ERR_INVALID, "findings", "finding %zu: empty label", i);
        check_code(x.category, "category", i, true);
        check_code(x.type, "type", i, true);
        check_code(x.type_modifier, "type modifier", i, false);
        check_code(x.finding_site, "finding site", i, false);
        check_code(x.site_laterality, "site laterality", i, false);
        if (x.w < 0 || x.h < 0 || (x.w > 0 && x.h > 0 && !x.mask))
            fail(CXD_ERR_INVALID, "findings", "finding %zu (%s): box %dx%d without a mask", i, x.label, x.w, x.h);
        if (x.x0 < 0 || x.y0 < 0 || x.x0 + (long)x.w > ctx.src.cols || x.y0 + (long)x.h > ctx.src.rows)
            fail(CXD_ERR_INVALID, "findings", "finding %zu (%s): box x0=%d y0=%d w=%d h=%d outside the %dx%d image",
                 i, x.label, x.x0, x.y0, x.w, x.h, ctx.src.cols, ctx.src.rows);
        if (!(x.score <= 1.0)) // also catches NaN
            fail(CXD_ERR_INVALID, "findings", "finding %zu (%s): score %g is not in [0,1] (negative = none)", i,
                 x.label, x.score);
        if (x.n_shares < 0 || x.n_shares > CXD_MAX_SHARES)
            fail(CXD_ERR_INVALID, "findings", "finding %zu (%s): %d lung shares (0..%d)", i, x.label, x.n_shares,
                 CXD_MAX_SHARES);
        for (int s = 0; s < x.n_shares; s++) {
            check_code(x.shares[s].laterality, "lung share laterality", i, true);
            if (!(x.shares[s].percent >= 0 && x.shares[s].percent <= 100))
                fail(CXD_ERR_INVALID, "findings", "finding %zu (%s): lung share %g%% outside 0..100", i, x.label,
                     x.shares[s].percent);
        }
        size_t px = 0;
        for (size_t k = 0; k < (size_t)x.w * x.h; k++)
            px += x.mask[k] != 0;
        if (x.role == CXD_ROLE_FINDING && px) {
            ctx.any_finding = true;
            if (!strcmp(x.type.value, ctx.opt.qualitative.value) && !strcmp(x.type.scheme, ctx.opt.qualitative.scheme))
                ctx.finding_present = true;
        }
        if (!px)
            continue; // no empty frames, no empty SR groups
        Prepared p;
        p.f = &x;
        p.index = i;
        p.pixels = px;
        p.label = ctx.text(x.label);
        p.description = ctx.text(x.description);
        p.tracking_id = x.tracking_id[0] ? ctx.text(x.tracking_id) : p.label + " " + std::to_string(i + 1);
        p.tracking_uid = x.tracking_uid[0] ? std::string(x.tracking_uid) : ctx.uid("track/" + std::to_string(i));
        cxd_error e;
        if (cxd_mask_contours(&x, &p.contours, &e) != CXD_OK)
            throw Error(e.code, e.msg);
        ctx.items.push_back(p);
    }
}

// Patient and study attributes: copied as raw elements so that names keep the source's
// character set byte for byte. Type-2 attributes absent in the source are written empty.
void copy_patient_study(const Source &src, DcmItem &out)
{
    struct T { DcmTagKey tag; bool type2; };
    static const T tags[] = {
        {DCM_SpecificCharacterSet, false}, {DCM_PatientName, true}, {DCM_PatientID, true},
        {DCM_IssuerOfPatientID, false}, {DCM_PatientBirthDate, true}, {DCM_PatientSex, true},
        {DCM_PatientAge, false}, {DCM_PatientSize, false}, {DCM_PatientWeight, false},
        {DCM_StudyInstanceUID, false}, {DCM_StudyDate, true}, {DCM_StudyTime, true},
        {DCM_StudyID, true}, {DCM_AccessionNumber, true}, {DCM_ReferringPhysicianName, true},
        {DCM_StudyDescription, false}, {DCM_IssuerOfAccessionNumberSequence, false},
    };
    for (const T &t : tags) {
        delete out.remove(t.tag);
        DcmElement *e = nullptr;
        if (src.ds->findAndGetElement(t.tag, e).good() && e) {
            DcmElement *copy = OFstatic_cast(DcmElement *, e->clone());
            if (out.insert(copy, true).bad()) {
                delete copy;
                fail(CXD_ERR_WRITE, "copy", "cannot insert (%04x,%04x)", t.tag.getGroup(), t.tag.getElement());
            }
        } else if (t.type2) {
            out.insertEmptyElement(t.tag);
        }
    }
}

void put(DcmItem &out, const DcmTagKey &tag, const std::string &value)
{
    OFCondition c = out.putAndInsertOFStringArray(tag, value.c_str());
    if (c.bad())
        fail(CXD_ERR_WRITE, "put", "(%04x,%04x) = \"%s\": %s", tag.getGroup(), tag.getElement(), value.c_str(),
             c.text());
}

void now_da_tm(std::string &da, std::string &tm)
{
    time_t t = time(nullptr);
    struct tm g;
    localtime_r(&t, &g);
    char b[32];
    strftime(b, sizeof b, "%Y%m%d", &g);
    da = b;
    strftime(b, sizeof b, "%H%M%S", &g);
    tm = b;
}

std::string fmt_ds(double v, int decimals)
{
    char b[32];
    snprintf(b, sizeof b, "%.*f", decimals, v);
    // DS is at most 16 characters.
    if (strlen(b) > 16)
        snprintf(b, sizeof b, "%.10g", v);
    return b;
}

void save_atomic(DcmFileFormat &ff, const std::string &path, E_TransferSyntax xfer)
{
    std::string tmp = path + ".tmp";
    OFCondition c = ff.saveFile(tmp.c_str(), xfer);
    if (c.bad()) {
        unlink(tmp.c_str());
        fail(CXD_ERR_IO, "save", "%s: %s", tmp.c_str(), c.text());
    }
    if (rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        unlink(tmp.c_str());
        fail(CXD_ERR_IO, "save", "rename %s -> %s: %s", tmp.c_str(), path.c_str(), strerror(e));
    }
}

namespace {

// The caller's algorithm and options checked, the defaults of what was left empty filled in.
void setup_context(Context &ctx, const cxd_algorithm *alg, const cxd_write_options *opt, const char *out_dir)
{
    if (!alg || !opt || !out_dir || !*out_dir)
        fail(CXD_ERR_INVALID, "write", "algorithm, options and output directory are required");
    if (strlen(alg->model_sha256) != 64)
        fail(CXD_ERR_INVALID, "write", "model hash must be 64 hex digits (got %zu characters)",
             strlen(alg->model_sha256));
    if (!alg->name[0] || !alg->version[0])
        fail(CXD_ERR_INVALID, "write", "algorithm name and version are required");
    ctx.alg = alg;
    ctx.opt = *opt;
    ctx.uid_root = opt->uid_root[0] ? opt->uid_root : "2.25";
    if (!ctx.opt.series_number)
        ctx.opt.series_number = 900;
    if (!ctx.opt.series_description[0])
        snprintf(ctx.opt.series_description, sizeof ctx.opt.series_description, "cxrseg");
    if (!ctx.opt.manufacturer[0])
        snprintf(ctx.opt.manufacturer, sizeof ctx.opt.manufacturer, "cxrseg project");
    if (!ctx.opt.software_version[0])
        snprintf(ctx.opt.software_version, sizeof ctx.opt.software_version, "unknown");
    if (!code_set(ctx.opt.qualitative))
        ctx.opt.qualitative = cxd_code{"112120", "DCM", "Ground glass opacity"};
    else if (!ctx.opt.qualitative.scheme[0] || !ctx.opt.qualitative.meaning[0])
        fail(CXD_ERR_INVALID, "options", "qualitative concept \"%s\" needs a scheme and a meaning",
             ctx.opt.qualitative.value);
    if (opt->seg_encoding != CXD_SEG_FRACTIONAL && opt->seg_encoding != CXD_SEG_BINARY)
        fail(CXD_ERR_INVALID, "options", "SEG encoding %d (0 fractional, 1 binary)", opt->seg_encoding);
    if (opt->seg_compression != CXD_SEG_UNCOMPRESSED && opt->seg_compression != CXD_SEG_RLE)
        fail(CXD_ERR_INVALID, "options", "SEG compression %d (0 uncompressed, 1 RLE)", opt->seg_compression);
    if (opt->presence < CXD_PRESENCE_FROM_FINDINGS || opt->presence > CXD_PRESENCE_PRESENT)
        fail(CXD_ERR_INVALID, "options", "presence %d (0 from the findings, 1 absent, 2 present)", opt->presence);
    ctx.opt.presence_basis[sizeof ctx.opt.presence_basis - 1] = 0;
}

// Each requested output written into dir, its path and SOP Instance UID recorded in r.
void write_outputs(Context &ctx, const std::string &dir, cxd_write_result &r)
{
    const cxd_write_options *opt = &ctx.opt;
    int want = opt->outputs;
    bool seg = (want & CXD_OUT_SEG) && !ctx.items.empty() && (ctx.any_finding || opt->seg_without_findings);
    auto note = [&](int bit, const std::string &p, const std::string &uid, char *path, size_t pc, char *sop,
                    size_t sc) {
        r.written |= bit;
        snprintf(path, pc, "%s", p.c_str());
        snprintf(sop, sc, "%s", uid.c_str());
    };
    std::string uid; // each writer sets it
    if (seg) {
        write_seg(ctx, dir + "/seg.dcm", uid, r.n_segments);
        note(CXD_OUT_SEG, dir + "/seg.dcm", uid, r.seg_path, sizeof r.seg_path, r.seg_sop_uid, sizeof r.seg_sop_uid);
    }
    if (want & CXD_OUT_SR) {
        write_sr(ctx, seg, dir + "/sr.dcm", uid);
        note(CXD_OUT_SR, dir + "/sr.dcm", uid, r.sr_path, sizeof r.sr_path, r.sr_sop_uid, sizeof r.sr_sop_uid);
    }
    if (want & CXD_OUT_GSPS) {
        write_gsps(ctx, dir + "/gsps.dcm", uid);
        note(CXD_OUT_GSPS, dir + "/gsps.dcm", uid, r.gsps_path, sizeof r.gsps_path, r.gsps_sop_uid,
             sizeof r.gsps_sop_uid);
    }
    if ((want & CXD_OUT_SC) && opt->display_rgb) {
        write_sc(ctx, dir + "/sc.dcm", uid);
        note(CXD_OUT_SC, dir + "/sc.dcm", uid, r.sc_path, sizeof r.sc_path, r.sc_sop_uid, sizeof r.sc_sop_uid);
    }
}

// Frees the findings' contours however results_write_dataset leaves.
struct ContoursGuard {
    Context &ctx;
    ~ContoursGuard()
    {
        for (auto &p : ctx.items)
            cxd_contours_clear(&p.contours);
    }
};

} // namespace

cxd_status results_write_dataset(DcmItem &srcds, const cxd_finding *findings, size_t n_findings,
                                 const cxd_algorithm *alg, const cxd_write_options *opt, const char *out_dir,
                                 cxd_write_result *out, cxd_error *err)
{
    Context ctx;
    ContoursGuard guard{ctx};
    try {
        // Registers codecs and routes DCMTK's logger to the caller's sink (libraries never print).
        cxd_status ist = cxd_init(err);
        if (ist != CXD_OK)
            return ist;
        setup_context(ctx, alg, opt, out_dir);
        read_source(srcds, ctx.src);
        ctx.uid("probe"); // validates the root before anything is written
        prepare_findings(ctx, findings, n_findings);

        cxd_write_result r;
        memset(&r, 0, sizeof r);
        write_outputs(ctx, out_dir, r);
        for (auto &p : ctx.items)
            r.n_regions += (int)p.contours.n_contours;
        r.finding_present = ctx.present();
        r.spacing_used = ctx.src.spacing_which;
        r.spacing_mm[0] = ctx.src.spacing[0];
        r.spacing_mm[1] = ctx.src.spacing[1];
        if (out)
            *out = r;
        return CXD_OK;
    } catch (const Error &e) {
        return cxd_set_error(err, e.code, "%s", e.what());
    } catch (const std::bad_alloc &) {
        return cxd_set_error(err, CXD_ERR_NOMEM, "write: out of memory");
    } catch (const std::exception &e) {
        return cxd_set_error(err, CXD_ERR_INTERNAL, "write: unexpected exception: %s", e.what());
    } catch (...) {
        return cxd_set_error(err, CXD_ERR_INTERNAL, "write: unexpected exception");
    }
}

} // namespace cxdw
