// Secondary Capture for legacy viewers: the caller's windowed 8-bit image as RGB with every
// finding burned in (tinted fill + outline in its display colour) and a legend drawn with a
// built-in 5x7 font. An extra series, marked as derived and not for diagnosis.
#include "write_internal.hh"

#include <algorithm>
#include <cstring>

namespace cxdw {

namespace {

// 5x7 glyphs, one byte per row, bit 4 = leftmost column. Designed for this legend only.
struct Glyph {
    char c;
    uint8_t rows[7];
};
const Glyph FONT[] = {
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}}, {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}}, {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}}, {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}}, {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
    {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}}, {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}}, {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
};

struct Canvas {
    int w, h;
    std::vector<uint8_t> px; // RGB
    void set(int x, int y, const uint8_t c[3])
    {
        if (x < 0 || y < 0 || x >= w || y >= h)
            return;
        uint8_t *p = &px[((size_t)y * w + x) * 3];
        p[0] = c[0]; p[1] = c[1]; p[2] = c[2];
    }
    void rect(int x0, int y0, int x1, int y1, const uint8_t c[3])
    {
        for (int y = std::max(0, y0); y < std::min(h, y1); y++)
            for (int x = std::max(0, x0); x < std::min(w, x1); x++)
                set(x, y, c);
    }
    // Returns the width drawn.
    int text(int x, int y, const std::string &s, int scale, const uint8_t c[3])
    {
        int cx = x;
        for (char ch : s) {
            char u = (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
            const Glyph *g = nullptr;
            for (const Glyph &k : FONT)
                if (k.c == u)
                    g = &k;
            if (!g && u != ' ')
                g = &FONT[sizeof FONT / sizeof FONT[0] - 1]; // '?'
            if (g)
                for (int r = 0; r < 7; r++)
                    for (int b = 0; b < 5; b++)
                        if (g->rows[r] & (0x10 >> b))
                            rect(cx + b * scale, y + r * scale, cx + (b + 1) * scale, y + (r + 1) * scale, c);
            cx += 6 * scale;
        }
        return cx - x;
    }
};

} // namespace

void write_sc(Context &ctx, const std::string &path, std::string &sop_uid)
{
    const Source &s = ctx.src;
    const cxd_write_options &o = ctx.opt;
    if (!o.display)
        fail(CXD_ERR_INVALID, "sc", "no display image given");
    if (o.display_rows != s.rows || o.display_cols != s.cols)
        fail(CXD_ERR_INVALID, "sc", "display image is %dx%d, the source is %dx%d (columns x rows)", o.display_cols,
             o.display_rows, s.cols, s.rows);
    Canvas cv{s.cols, s.rows, std::vector<uint8_t>((size_t)s.rows * s.cols * 3)};
    for (size_t i = 0; i < (size_t)s.rows * s.cols; i++)
        cv.px[3 * i] = cv.px[3 * i + 1] = cv.px[3 * i + 2] = o.display[i];

    const int thick = std::max(1, std::min(s.rows, s.cols) / 600);
    for (const Prepared &p : ctx.items) {
        const cxd_finding &f = *p.f;
        auto in = [&](int x, int y) { return x >= 0 && y >= 0 && x < f.w && y < f.h && f.mask[(size_t)y * f.w + x]; };
        for (int y = 0; y < f.h; y++)
            for (int x = 0; x < f.w; x++) {
                if (!in(x, y))
                    continue;
                uint8_t *q = &cv.px[((size_t)(f.y0 + y) * s.cols + f.x0 + x) * 3];
                // Tint: 70 % image, 30 % colour, so the anatomy stays visible under the finding.
                for (int k = 0; k < 3; k++)
                    q[k] = (uint8_t)((q[k] * 7 + f.rgb[k] * 3) / 10);
                if (!in(x - 1, y) || !in(x + 1, y) || !in(x, y - 1) || !in(x, y + 1))
                    cv.rect(f.x0 + x - thick / 2, f.y0 + y - thick / 2, f.x0 + x - thick / 2 + thick,
                            f.y0 + y - thick / 2 + thick, f.rgb);
            }
    }

    // Legend, top left, on a dark box sized to its lines.
    const int scale = std::max(1, std::min(s.rows, s.cols) / 400);
    const int lh = 9 * scale, pad = 4 * scale;
    std::vector<std::pair<std::string, const uint8_t *>> lines;
    lines.push_back({"CXRSEG - NOT FOR DIAGNOSIS", nullptr});
    lines.push_back({ctx.text(std::string(ctx.alg->name) + " " + ctx.alg->version), nullptr});
    if (ctx.items.empty())
        lines.push_back({"NO FINDINGS", nullptr});
    for (const Prepared &p : ctx.items) {
        std::string t = p.label;
        if (p.f->score >= 0)
            t += " " + fmt_ds(p.f->score, 2);
        for (int k = 0; k < p.f->n_shares; k++)
            t += std::string(" ") + fmt_ds(p.f->shares[k].percent, 1) + "% " +
                 ctx.text(p.f->shares[k].laterality.meaning) + " LUNG";
        lines.push_back({t, p.f->rgb});
    }
    size_t maxc = 0;
    for (auto &l : lines)
        maxc = std::max(maxc, l.first.size());
    const uint8_t dark[3] = {0, 0, 0}, white[3] = {255, 255, 255};
    int bw = pad * 2 + 10 * scale + (int)maxc * 6 * scale, bh = pad * 2 + (int)lines.size() * lh;
    cv.rect(0, 0, bw, bh, dark);
    for (size_t i = 0; i < lines.size(); i++) {
        int y = pad + (int)i * lh, x = pad;
        if (lines[i].second) {
            cv.rect(x, y, x + 7 * scale, y + 7 * scale, lines[i].second);
        }
        cv.text(x + 10 * scale, y, lines[i].first, scale, white);
    }

    DcmFileFormat ff;
    DcmDataset &ds = *ff.getDataset();
    std::string da, tm;
    now_da_tm(da, tm);
    sop_uid = ctx.uid("sc");
    put(ds, DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
    put(ds, DCM_SOPInstanceUID, sop_uid);
    copy_patient_study(s, ds);
    put(ds, DCM_Modality, "OT");
    put(ds, DCM_SeriesInstanceUID, ctx.uid("sc-series"));
    put(ds, DCM_SeriesNumber, ctx.series_number(3));
    put(ds, DCM_SeriesDescription, ctx.series_description(3, "overlay (not for diagnosis)"));
    put(ds, DCM_InstanceNumber, "1");
    put(ds, DCM_ConversionType, "WSD");
    put(ds, DCM_Manufacturer, ctx.text(o.manufacturer));
    put(ds, DCM_SecondaryCaptureDeviceManufacturer, ctx.text(o.manufacturer));
    put(ds, DCM_SecondaryCaptureDeviceManufacturerModelName, ctx.text(ctx.alg->name));
    put(ds, DCM_SecondaryCaptureDeviceSoftwareVersions, ctx.text(o.software_version));
    put(ds, DCM_ContentDate, da);
    put(ds, DCM_ContentTime, tm);
    put(ds, DCM_DateOfSecondaryCapture, da);
    put(ds, DCM_TimeOfSecondaryCapture, tm);
    put(ds, DCM_ImageType, "DERIVED\\SECONDARY");
    put(ds, DCM_DerivationDescription, "Windowed source image with findings burned in");
    ds.insertEmptyElement(DCM_PatientOrientation);
    if (!s.patient_orientation.empty())
        put(ds, DCM_PatientOrientation, s.patient_orientation);
    if (!s.body_part.empty())
        put(ds, DCM_BodyPartExamined, s.body_part);
    put(ds, DCM_BurnedInAnnotation, "YES");
    DcmItem *ref = nullptr;
    check(ds.findOrCreateSequenceItem(DCM_SourceImageSequence, ref, 0), "sc", "SourceImageSequence");
    put(*ref, DCM_ReferencedSOPClassUID, s.sop_class);
    put(*ref, DCM_ReferencedSOPInstanceUID, s.sop_uid);
    check(ds.putAndInsertUint16(DCM_SamplesPerPixel, 3), "sc", "SamplesPerPixel");
    put(ds, DCM_PhotometricInterpretation, "RGB");
    check(ds.putAndInsertUint16(DCM_PlanarConfiguration, 0), "sc", "PlanarConfiguration");
    check(ds.putAndInsertUint16(DCM_Rows, (Uint16)s.rows), "sc", "Rows");
    check(ds.putAndInsertUint16(DCM_Columns, (Uint16)s.cols), "sc", "Columns");
    check(ds.putAndInsertUint16(DCM_BitsAllocated, 8), "sc", "BitsAllocated");
    check(ds.putAndInsertUint16(DCM_BitsStored, 8), "sc", "BitsStored");
    check(ds.putAndInsertUint16(DCM_HighBit, 7), "sc", "HighBit");
    check(ds.putAndInsertUint16(DCM_PixelRepresentation, 0), "sc", "PixelRepresentation");
    check(ds.putAndInsertUint8Array(DCM_PixelData, cv.px.data(), (unsigned long)cv.px.size()), "sc", "PixelData");
    save_atomic(ff, path);
}

} // namespace cxdw
