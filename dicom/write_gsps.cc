// Grayscale Softcopy Presentation State: the source's own display settings (from DCMTK's
// createFromImage) plus one graphic layer per finding holding its closed contours and a text
// label, for PACS viewers and Weasis that draw GSPS but not SEG.
#include "write_internal.hh"

#include <dcmtk/dcmpstat/dcmpstat.h>

namespace cxdw {

namespace {

DcmItem *new_item(DcmItem &parent, const DcmTagKey &seq)
{
    DcmItem *it = nullptr;
    if (parent.findOrCreateSequenceItem(seq, it, -2).bad() || !it)
        fail(CXD_ERR_WRITE, "gsps", "cannot append an item to (%04x,%04x)", seq.getGroup(), seq.getElement());
    return it;
}

// "GGO 3" -> "GGO_3": a layer name is a Code String (upper case, digits, space, underscore).
std::string layer_name(const std::string &s, size_t i)
{
    std::string r;
    for (char c : s) {
        if (c >= 'a' && c <= 'z')
            r += (char)(c - 32);
        else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')
            r += c;
        else
            r += '_';
        if (r.size() >= 12)
            break;
    }
    return r + "_" + std::to_string(i + 1);
}

} // namespace

void write_gsps(Context &ctx, const std::string &path, std::string &sop_uid)
{
    const Source &s = ctx.src;
    DcmPresentationState ps;
    // Copies the source's VOI window / LUT and presentation LUT shape (MONOCHROME1 -> INVERSE).
    check(ps.createFromImage(*s.ds, DVPSO_ignoreOverlays, DVPSV_preferVOILUT, OFFalse, OFFalse, OFTrue,
                             DVPSG_oneLayer),
          "gsps", "createFromImage");
    check(ps.setPresentationLabel("CXRSEG"), "gsps", "ContentLabel");
    check(ps.setPresentationDescription(ctx.text(std::string(ctx.alg->name) + " findings").c_str()), "gsps",
          "ContentDescription");

    DcmFileFormat ff;
    DcmDataset &ds = *ff.getDataset();
    check(ps.write(ds, OFFalse), "gsps", "write dataset");
    sop_uid = ctx.uid("gsps");
    put(ds, DCM_SOPInstanceUID, sop_uid);
    put(ds, DCM_SeriesInstanceUID, ctx.uid("gsps-series"));
    put(ds, DCM_SeriesNumber, ctx.series_number(2));
    put(ds, DCM_InstanceNumber, "1");
    put(ds, DCM_SeriesDescription, ctx.series_description(2, "annotations"));
    put(ds, DCM_Manufacturer, ctx.text(ctx.opt.manufacturer));
    copy_patient_study(s, ds);
    // With BodyPartExamined present dciodvfy does not ask for the 2C Laterality (as in the SEG).
    if (!s.body_part.empty())
        put(ds, DCM_BodyPartExamined, s.body_part);
    if (s.laterality == "R" || s.laterality == "L")
        put(ds, DCM_Laterality, s.laterality);

    delete ds.remove(DCM_GraphicLayerSequence);
    delete ds.remove(DCM_GraphicAnnotationSequence);
    size_t li = 0;
    for (const Prepared &p : ctx.items) {
        const cxd_finding &f = *p.f;
        std::string layer = layer_name(p.label, li);
        DcmItem *L = new_item(ds, DCM_GraphicLayerSequence);
        put(*L, DCM_GraphicLayer, layer);
        put(*L, DCM_GraphicLayerOrder, std::to_string(li + 1));
        uint16_t lab[3];
        cxd_rgb_to_dicom_lab(f.rgb, lab);
        const Uint16 labv[3] = {lab[0], lab[1], lab[2]};
        check(L->putAndInsertUint16Array(DCM_GraphicLayerRecommendedDisplayCIELabValue, labv, 3), "gsps",
              "layer colour");
        put(*L, DCM_GraphicLayerDescription, p.label);

        DcmItem *A = new_item(ds, DCM_GraphicAnnotationSequence);
        DcmItem *R = new_item(*A, DCM_ReferencedImageSequence);
        put(*R, DCM_ReferencedSOPClassUID, s.sop_class);
        put(*R, DCM_ReferencedSOPInstanceUID, s.sop_uid);
        put(*A, DCM_GraphicLayer, layer);
        const cxd_contours &c = p.contours;
        float minx = 1e30f, miny = 1e30f;
        for (size_t r = 0; r < c.n_contours; r++) {
            size_t n = c.starts[r + 1] - c.starts[r];
            std::vector<Float32> pts;
            for (size_t k = c.starts[r]; k < c.starts[r + 1]; k++) {
                pts.push_back(c.points[2 * k]);
                pts.push_back(c.points[2 * k + 1]);
                minx = std::min(minx, c.points[2 * k]);
                miny = std::min(miny, c.points[2 * k + 1]);
            }
            pts.push_back(pts[0]); // closed polyline: last point = first point
            pts.push_back(pts[1]);
            DcmItem *G = new_item(*A, DCM_GraphicObjectSequence);
            put(*G, DCM_GraphicAnnotationUnits, "PIXEL");
            check(G->putAndInsertUint16(DCM_GraphicDimensions, 2), "gsps", "GraphicDimensions");
            check(G->putAndInsertUint16(DCM_NumberOfGraphicPoints, (Uint16)std::min<size_t>(n + 1, 65535)), "gsps",
                  "NumberOfGraphicPoints");
            if (n + 1 > 65535)
                fail(CXD_ERR_UNSUPPORTED, "gsps", "contour of %s has %zu points (at most 65534)", p.label.c_str(), n);
            check(G->putAndInsertFloat32Array(DCM_GraphicData, pts.data(), (unsigned long)pts.size()), "gsps",
                  "GraphicData");
            put(*G, DCM_GraphicType, "POLYLINE");
            put(*G, DCM_GraphicFilled, "N");
        }
        // A label next to the first region.
        DcmItem *T = new_item(*A, DCM_TextObjectSequence);
        std::string txt = p.label;
        if (f.score >= 0)
            txt += " " + fmt_ds(f.score, 2);
        put(*T, DCM_UnformattedTextValue, txt);
        put(*T, DCM_AnchorPointAnnotationUnits, "PIXEL");
        Float32 anchor[2] = {std::max(0.f, minx), std::max(0.f, miny - 4)};
        check(T->putAndInsertFloat32Array(DCM_AnchorPoint, anchor, 2), "gsps", "AnchorPoint");
        put(*T, DCM_AnchorPointVisibility, "N");
        li++;
    }
    save_atomic(ff, path);
}

} // namespace cxdw
