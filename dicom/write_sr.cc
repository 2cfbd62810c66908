// TID 1500 Imaging Measurement Report for a 2D image: image library, then per finding one TID 1410
// group per connected region, shaped so that OHIF lists it as an editable freehand contour (label,
// area, closed contour), and one group for the finding as a whole (SEG frame, source image, site,
// total area, share of lung, score); all of a finding's groups carry its SEG segment's tracking
// UID. Then a report-level present/absent result (DICOM-NOTES.md).
#include "write_internal.hh"

#include <dcmtk/dcmsr/dsrdoc.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

namespace cxdw {

namespace {

typedef DSRCodedEntryValue Code;

// Our own codes where DICOM has none; the 99 prefix marks a private coding scheme (PS3.3 8.2).
const char *PRIV = "99CXRSEG";

Code code(const cxd_code &c, const Context &ctx)
{
    return Code(c.value, c.scheme, ctx.text(c.meaning));
}

// Appends children in order under a parent, remembering the last child of every parent.
struct Builder {
    DSRDocumentTree &t;
    std::map<size_t, size_t> last;
    explicit Builder(DSRDocumentTree &tree) : t(tree) {}
    size_t add(size_t parent, DSRTypes::E_RelationshipType rel, DSRTypes::E_ValueType vt, const Code &concept)
    {
        size_t id;
        auto it = last.find(parent);
        if (it == last.end()) {
            if (!t.gotoNode(parent))
                fail(CXD_ERR_INTERNAL, "sr", "node %zu vanished", parent);
            id = t.addContentItem(rel, vt, DSRTypes::AM_belowCurrent);
        } else {
            if (!t.gotoNode(it->second))
                fail(CXD_ERR_INTERNAL, "sr", "node %zu vanished", it->second);
            id = t.addContentItem(rel, vt, DSRTypes::AM_afterCurrent);
        }
        if (!id)
            fail(CXD_ERR_WRITE, "sr", "cannot add %s %s under node %zu (%s)", DSRTypes::valueTypeToDefinedTerm(vt),
                 DSRTypes::relationshipTypeToDefinedTerm(rel), parent, concept.getCodeMeaning().c_str());
        last[parent] = id;
        check(t.getCurrentContentItem().setConceptName(concept), "sr",
              std::string("concept ") + concept.getCodeMeaning().c_str());
        return id;
    }
    DSRContentItem &cur() { return t.getCurrentContentItem(); }
    size_t text(size_t parent, DSRTypes::E_RelationshipType rel, const Code &concept, const std::string &v)
    {
        size_t id = add(parent, rel, DSRTypes::VT_Text, concept);
        check(cur().setStringValue(v.c_str()), "sr", "text " + v);
        return id;
    }
    size_t uidref(size_t parent, DSRTypes::E_RelationshipType rel, const Code &concept, const std::string &v)
    {
        size_t id = add(parent, rel, DSRTypes::VT_UIDRef, concept);
        check(cur().setStringValue(v.c_str()), "sr", "uid " + v);
        return id;
    }
    size_t coded(size_t parent, DSRTypes::E_RelationshipType rel, const Code &concept, const Code &v)
    {
        size_t id = add(parent, rel, DSRTypes::VT_Code, concept);
        check(cur().setCodeValue(v), "sr", std::string("code ") + v.getCodeMeaning().c_str());
        return id;
    }
    size_t num(size_t parent, const Code &concept, const std::string &v, const Code &unit)
    {
        size_t id = add(parent, DSRTypes::RT_contains, DSRTypes::VT_Num, concept);
        check(cur().setNumericValue(DSRNumericMeasurementValue(v.c_str(), unit)), "sr",
              std::string("number ") + concept.getCodeMeaning().c_str());
        return id;
    }
    size_t image(size_t parent, DSRTypes::E_RelationshipType rel, const Code *concept, const std::string &cls,
                 const std::string &inst, int frame, int segment)
    {
        size_t id = add(parent, rel, DSRTypes::VT_Image, concept ? *concept : Code());
        DSRImageReferenceValue v(cls.c_str(), inst.c_str());
        if (frame > 0)
            v.getFrameList().addItem((Sint32)frame);
        if (segment > 0)
            v.getSegmentList().addItem((Uint16)segment);
        check(cur().setImageReference(v), "sr", "image reference " + inst);
        return id;
    }
};

const Code C_FINDING("121071", "DCM", "Finding");
const Code C_TRACK_ID("112039", "DCM", "Tracking Identifier");
const Code C_TRACK_UID("112040", "DCM", "Tracking Unique Identifier");
const Code C_SITE("363698007", "SCT", "Finding Site");
const Code C_LATERALITY("272741003", "SCT", "Laterality");
const Code C_AREA("42798000", "SCT", "Area");
const Code U_MM2("mm2", "UCUM", "square millimeter");
const Code U_PCT("%", "UCUM", "Percent");
const Code U_ONE("1", "UCUM", "no units");
const Code C_COMMENT("121106", "DCM", "Comment");
const Code C_PIXELS("PIXELS", PRIV, "Area in pixels");
const Code U_PIXELS("{pixels}", "UCUM", "pixels");
// The Tracking Identifier OHIF 3.13.2 (cornerstone3D's SR adapters) maps to its freehand contour
// tool; a group without a tool it knows is drawn read-only and not listed as a measurement.
const char *const OHIF_FREEHAND = "Cornerstone3DTools@^0.1.0:PlanarFreehandROI";

// "Lung opacity, right lung: 12.3% of the lung": what OHIF shows as the measurement's label. The
// finding's lung in words (its finding site laterality), and its share of each lung it touches.
std::string finding_label(const Prepared &p, const Context &ctx)
{
    const cxd_finding &f = *p.f;
    std::string l = p.label;
    if (f.role == CXD_ROLE_ANATOMY)
        return l;
    auto side = [](const cxd_code &c) -> std::string {
        if (!strcmp(c.value, "24028007"))
            return "right";
        if (!strcmp(c.value, "7771000"))
            return "left";
        return "";
    };
    std::string where;
    if (!strcmp(f.site_laterality.value, "51440002"))
        where = "both lungs";
    else if (!side(f.site_laterality).empty())
        where = side(f.site_laterality) + " lung";
    if (!where.empty())
        l += ", " + where;
    for (int k = 0; k < f.n_shares; k++) {
        // One share: the lung is already named. Two: each says whose it is.
        std::string whose = side(f.shares[k].laterality);
        if (whose.empty())
            whose = ctx.text(f.shares[k].laterality.meaning);
        l += (k ? ", " : ": ") + fmt_ds(f.shares[k].percent, 1) + "% of the " +
             (f.n_shares > 1 || where.empty() ? whose + " lung" : std::string("lung"));
    }
    return l;
}

// The TID 1500 document's parts, in the order they are added.
struct SrParts {
    Context &ctx;
    const Source &s;
    DSRDocumentTree &tree;
    Builder b;
    bool seg_written;
    std::string seg_uid, spacing_txt;
    double px_area;
    size_t meas = 0;
    const Code c_segframe{"121214", "DCM", "Referenced Segmentation Frame"};
    const Code c_srcimg{"121233", "DCM", "Source image for segmentation"};

    SrParts(Context &c, DSRDocumentTree &t, bool seg)
        : ctx(c), s(c.src), tree(t), b(t), seg_written(seg), seg_uid(seg ? c.uid("seg") : std::string()),
          px_area(c.src.spacing[0] * c.src.spacing[1])
    {
        if (s.has_spacing) {
            spacing_txt = std::string(s.spacing_which) + " " + fmt_ds(s.spacing[0], 6) + "\\" + fmt_ds(s.spacing[1], 6) + " mm";
            if (std::string(s.spacing_which) == "ImagerPixelSpacing")
                spacing_txt += " (at the detector plane: includes geometric magnification)";
        }
    }

    // Root container (TID 1500), language, observer (the device), procedure, image library.
    size_t header()
    {
        size_t root = tree.addContentItem(DSRTypes::RT_isRoot, DSRTypes::VT_Container);
        if (!root)
            fail(CXD_ERR_WRITE, "sr", "cannot create the root container");
        check(tree.getCurrentContentItem().setConceptName(Code("126000", "DCM", "Imaging Measurement Report")), "sr",
              "root concept");
        check(tree.getCurrentContentItem().setTemplateIdentification("1500", "DCMR"), "sr", "template id");
        b.coded(root, DSRTypes::RT_hasConceptMod, Code("121049", "DCM", "Language of Content Item and Descendants"),
                Code("en-US", "RFC5646", "English (United States)"));
        b.coded(root, DSRTypes::RT_hasObsContext, Code("121005", "DCM", "Observer Type"), Code("121007", "DCM", "Device"));
        b.uidref(root, DSRTypes::RT_hasObsContext, Code("121012", "DCM", "Device Observer UID"), ctx.uid("device"));
        b.text(root, DSRTypes::RT_hasObsContext, Code("121013", "DCM", "Device Observer Name"), ctx.text(ctx.alg->name));
        b.text(root, DSRTypes::RT_hasObsContext, Code("121015", "DCM", "Device Observer Model Name"),
               ctx.text(std::string(ctx.alg->name) + " " + ctx.alg->version));
        b.coded(root, DSRTypes::RT_hasConceptMod, Code("121058", "DCM", "Procedure reported"),
                Code("363679005", "SCT", "Imaging procedure"));
        size_t lib = b.add(root, DSRTypes::RT_contains, DSRTypes::VT_Container, Code("111028", "DCM", "Image Library"));
        size_t grp = b.add(lib, DSRTypes::RT_contains, DSRTypes::VT_Container, Code("126200", "DCM", "Image Library Group"));
        b.image(grp, DSRTypes::RT_contains, nullptr, s.sop_class, s.sop_uid, 0, 0);
        meas = b.add(root, DSRTypes::RT_contains, DSRTypes::VT_Container, Code("126010", "DCM", "Imaging Measurements"));
        return root;
    }

    // The TID 1410 rows every group of a finding has: its identity and what it is.
    size_t group(const Prepared &p, const std::string &tracking_id)
    {
        size_t g = b.add(meas, DSRTypes::RT_contains, DSRTypes::VT_Container, Code("125007", "DCM", "Measurement Group"));
        check(tree.getCurrentContentItem().setTemplateIdentification("1410", "DCMR"), "sr", "TID 1410");
        b.text(g, DSRTypes::RT_hasObsContext, C_TRACK_ID, tracking_id);
        b.uidref(g, DSRTypes::RT_hasObsContext, C_TRACK_UID, p.tracking_uid);
        b.coded(g, DSRTypes::RT_contains, C_FINDING, code(p.f->type, ctx));
        return g;
    }

    // Where the finding is in the SEG and on the source image, and its finding site.
    void references(size_t g, const Prepared &p)
    {
        const cxd_finding &f = *p.f;
        if (seg_written && p.segment_number > 0)
            b.image(g, DSRTypes::RT_contains, &c_segframe, UID_SegmentationStorage, seg_uid, 0, p.segment_number);
        b.image(g, DSRTypes::RT_contains, &c_srcimg, s.sop_class, s.sop_uid, 0, 0);
        if (f.finding_site.value[0]) {
            size_t site = b.coded(g, DSRTypes::RT_hasConceptMod, C_SITE, code(f.finding_site, ctx));
            if (f.site_laterality.value[0])
                b.coded(site, DSRTypes::RT_hasConceptMod, C_LATERALITY, code(f.site_laterality, ctx));
        }
    }

    // One editable contour group per connected region, largest first (OHIF lists them in this
    // order). Each is what OHIF 3.13.2 re-hydrates into a PlanarFreehandROI measurement
    // (DICOM-NOTES.md): its Tracking Identifier names the tool, a Comment gives the label, and its
    // first NUM, the region's area, holds the closed contour (INFERRED FROM SCOORD, SELECTED FROM
    // the source image). The Referenced Segmentation Frame stands in for the Image Region row,
    // which TID 1410 allows only without it.
    void region_groups(const Prepared &p)
    {
        const cxd_contours &c = p.contours;
        std::vector<size_t> order(c.n_contours);
        for (size_t r = 0; r < c.n_contours; r++)
            order[r] = r;
        std::stable_sort(order.begin(), order.end(), [&c](size_t x, size_t y) { return c.areas[x] > c.areas[y]; });
        const std::string label = ctx.text(finding_label(p, ctx));
        for (size_t k = 0; k < order.size(); k++) {
            const size_t r = order[k];
            size_t g = group(p, OHIF_FREEHAND);
            b.text(g, DSRTypes::RT_contains, C_COMMENT,
                   order.size() > 1 ? label + " (region " + std::to_string(k + 1) + " of " + std::to_string(order.size()) + ")"
                                    : label);
            references(g, p);
            size_t a = s.has_spacing ? b.num(g, C_AREA, fmt_ds((double)c.areas[r] * px_area, 1), U_MM2)
                                     : b.num(g, C_PIXELS, std::to_string(c.areas[r]), U_PIXELS);
            size_t sc = b.add(a, DSRTypes::RT_inferredFrom, DSRTypes::VT_SCoord, Code());
            DSRSpatialCoordinatesValue v(DSRTypes::GT_Polyline);
            DSRGraphicDataList &gl = v.getGraphicDataList();
            for (size_t q = c.starts[r]; q < c.starts[r + 1]; q++)
                gl.addItem(c.points[2 * q], c.points[2 * q + 1]);
            gl.addItem(c.points[2 * c.starts[r]], c.points[2 * c.starts[r] + 1]); // closed: first = last
            check(tree.getCurrentContentItem().setSpatialCoordinates(v), "sr", "contour of " + p.label);
            b.image(sc, DSRTypes::RT_selectedFrom, nullptr, s.sop_class, s.sop_uid, 0, 0);
        }
    }

    // The finding as a whole, tied to its SEG segment by the same Tracking ID and UID: total area
    // and how it was measured, share of each lung, model score. It has no contour, so OHIF does not
    // list it; it comes after the regions because OHIF takes a tracking UID's tool from its first
    // group.
    void finding_group(const Prepared &p)
    {
        const cxd_finding &f = *p.f;
        size_t g = group(p, p.tracking_id);
        references(g, p);
        if (s.has_spacing) {
            size_t a = b.num(g, C_AREA, fmt_ds((double)p.pixels * px_area, 1), U_MM2);
            b.text(a, DSRTypes::RT_hasConceptMod, Code("370129005", "SCT", "Measurement Method"),
                   "pixel count x " + spacing_txt);
        } else {
            b.text(g, DSRTypes::RT_contains, C_COMMENT,
                   "Area not measured: no usable pixel spacing in the source (PixelSpacing absent or zero, "
                   "no ImagerPixelSpacing)");
            // the only size there is; with spacing it would only clutter the report
            b.num(g, C_PIXELS, std::to_string(p.pixels), U_PIXELS);
        }
        for (int k = 0; k < f.n_shares; k++) {
            size_t n = b.num(g, Code("LUNGPCT", PRIV, "Percentage of lung affected"), fmt_ds(f.shares[k].percent, 1),
                             U_PCT);
            b.coded(n, DSRTypes::RT_hasConceptMod, C_LATERALITY, code(f.shares[k].laterality, ctx));
        }
        if (f.score >= 0)
            b.num(g, Code("SCORE", PRIV, "Model confidence score"), fmt_ds(f.score, 3), U_ONE);
    }

    // Report-level result, so that a worklist can be sorted on it.
    void qualitative(size_t root)
    {
        size_t q = b.add(root, DSRTypes::RT_contains, DSRTypes::VT_Container,
                         Code("C0034375", "UMLS", "Qualitative Evaluations"));
        b.coded(q, DSRTypes::RT_contains, code(ctx.opt.qualitative, ctx),
                ctx.present() ? Code("52101004", "SCT", "Present") : Code("2667000", "SCT", "Absent"));
        if (ctx.opt.presence_basis[0])
            b.text(q, DSRTypes::RT_contains, Code("121106", "DCM", "Comment"), ctx.text(ctx.opt.presence_basis));
        if (!s.has_spacing)
            b.text(q, DSRTypes::RT_contains, Code("121106", "DCM", "Comment"),
                   "Areas are not reported: the source image has no usable pixel spacing "
                   "(PixelSpacing absent or zero and no ImagerPixelSpacing).");
    }
};

} // namespace

void write_sr(Context &ctx, bool seg_written, const std::string &path, std::string &sop_uid)
{
    const Source &s = ctx.src;
    DSRDocument doc(DSRTypes::DT_ComprehensiveSR);
    check(doc.createNewSeriesInStudy(s.study_uid.c_str()), "sr", "study");
    check(doc.setSeriesNumber(ctx.series_number(1).c_str()), "sr", "SeriesNumber");
    check(doc.setInstanceNumber("1"), "sr", "InstanceNumber");
    check(doc.setManufacturer(ctx.text(ctx.opt.manufacturer).c_str()), "sr", "Manufacturer");
    // Machine output, not signed by a physician.
    check(doc.setPreliminaryFlag(DSRTypes::PF_Preliminary), "sr", "PreliminaryFlag");

    SrParts parts(ctx, doc.getTree(), seg_written);
    size_t root = parts.header();
    for (const Prepared &p : ctx.items) {
        parts.region_groups(p);
        parts.finding_group(p);
    }
    parts.qualitative(root);

    // Evidence: the source image and, when written, the SEG.
    check(doc.getCurrentRequestedProcedureEvidence().addItem(s.study_uid.c_str(), s.series_uid.c_str(),
                                                             s.sop_class.c_str(), s.sop_uid.c_str()),
          "sr", "evidence (source)");
    if (seg_written)
        check(doc.getCurrentRequestedProcedureEvidence().addItem(s.study_uid.c_str(), ctx.uid("seg-series").c_str(),
                                                                 UID_SegmentationStorage, parts.seg_uid.c_str()),
              "sr", "evidence (SEG)");
    DSRCodingSchemeIdentificationList &csi = doc.getCodingSchemeIdentification();
    check(csi.addItem(PRIV), "sr", "coding scheme identification");
    check(csi.setCodingSchemeName("cxrseg private codes"), "sr", "coding scheme name");
    check(csi.setCodingSchemeResponsibleOrganization("cxrseg project"), "sr", "coding scheme organisation");

    DcmFileFormat ff;
    DcmDataset &ds = *ff.getDataset();
    check(doc.write(ds), "sr", "write dataset");
    sop_uid = ctx.uid("sr");
    put(ds, DCM_SOPInstanceUID, sop_uid);
    put(ds, DCM_SeriesInstanceUID, ctx.uid("sr-series"));
    put(ds, DCM_SeriesDescription, ctx.series_description(1, "measurements"));
    copy_patient_study(s, ds);
    save_atomic(ff, path);
}

} // namespace cxdw
