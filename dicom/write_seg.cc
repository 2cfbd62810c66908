// DICOM Segmentation writer: one segment (= one full-size frame) per finding or lung that has
// pixels, built with DCMTK's DcmSegmentation and shaped for a projection radiograph as
// DICOM-NOTES.md describes (no Frame of Reference, 2D plane macros that OHIF reads). The masks are
// stored FRACTIONAL (8-bit, 0 or 255) by default, or BINARY (1-bit packed): see cxd_write_options.
#include "write_internal.hh"

#include <dcmtk/dcmfg/fgderimg.h>
#include <dcmtk/dcmfg/fgfracon.h>
#include <dcmtk/dcmfg/fgpixmsr.h>
#include <dcmtk/dcmfg/fgplanor.h>
#include <dcmtk/dcmfg/fgplanpo.h>
#include <dcmtk/dcmiod/iodreferences.h>
#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segment.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>

#include <cstring>
#include <memory>

namespace cxdw {

static std::string ascii(const std::string &s)
{
    std::string r = s;
    for (auto &c : r)
        if ((unsigned char)c >= 0x80)
            c = '?';
    return r;
}

// BINARY Pixel Data as PS3.5 8.1.1 packs it: every frame's bits follow the previous frame's
// without padding, least significant bit first; only the whole element ends on a byte. DCMTK
// 3.6.7's packer drops a byte at some boundaries of frames whose size is not a multiple of 8 bits
// (frame 3 of a 333 x 401 SEG started 8 bits early; pydicom read it shifted), so the element is
// rebuilt here from the masks, in segment (= frame) order.
static void repack_binary(const Context &ctx, DcmDataset &ds)
{
    const size_t per = (size_t)ctx.src.rows * ctx.src.cols;
    const size_t nbits = per * ctx.items.size();
    std::vector<Uint8> packed((nbits + 7) / 8, 0);
    size_t bit = 0;
    for (const Prepared &p : ctx.items) {
        const cxd_finding &f = *p.f;
        for (int y = 0; y < ctx.src.rows; y++)
            for (int x = 0; x < ctx.src.cols; x++, bit++) {
                int bx = x - f.x0, by = y - f.y0;
                if (bx >= 0 && by >= 0 && bx < f.w && by < f.h && f.mask[(size_t)by * f.w + bx])
                    packed[bit >> 3] |= (Uint8)(1u << (bit & 7));
            }
    }
    // An odd length gets DICOM's pad byte (zero) when DCMTK writes the element.
    check(ds.putAndInsertUint8Array(DCM_PixelData, packed.data(), (unsigned long)packed.size()), "seg",
          "PixelData (binary, " + std::to_string(packed.size()) + " bytes)");
}

// RLE Lossless (PS3.5 Annex G) of one FRACTIONAL frame straight from a box-local mask: one
// segment (8-bit pixels, 0 or `inside`), rows encoded one by one with PackBits (a run never
// crosses a row, as G.3.1 asks). A row outside the box is the same all-zero run every time.
class RleFrame {
public:
    explicit RleFrame(int cols) : cols_(cols) { row_.resize((size_t)cols); }

    void encode(const cxd_finding &f, int rows, Uint8 inside, std::vector<Uint8> &out)
    {
        out.assign(64, 0); // header: 1 segment, its offset 64, the other 14 offsets 0
        out[0] = 1;
        out[4] = 64;
        std::vector<Uint8> zero;
        zeros(cols_, zero);
        for (int y = 0; y < rows; y++) {
            int by = y - f.y0;
            if (by < 0 || by >= f.h) {
                out.insert(out.end(), zero.begin(), zero.end());
                continue;
            }
            std::fill(row_.begin(), row_.end(), 0);
            const uint8_t *m = f.mask + (size_t)by * f.w;
            for (int x = 0; x < f.w; x++)
                row_[(size_t)f.x0 + x] = m[x] ? inside : 0;
            packbits(row_.data(), cols_, out);
        }
        if (out.size() & 1)
            out.push_back(0); // the segment (and so the fragment) ends on an even length
    }

private:
    // PackBits of n bytes: runs of 2..128 equal bytes as (1 - n, byte), the rest as literals of
    // up to 128 bytes (n - 1, bytes).
    static void packbits(const Uint8 *p, int n, std::vector<Uint8> &out)
    {
        int i = 0;
        while (i < n) {
            int run = 1;
            while (i + run < n && run < 128 && p[i + run] == p[i])
                run++;
            if (run >= 2) {
                out.push_back((Uint8)(1 - run));
                out.push_back(p[i]);
                i += run;
                continue;
            }
            int lit = 1; // up to the next pair of equal bytes
            while (i + lit < n && lit < 128 && !(i + lit + 1 < n && p[i + lit] == p[i + lit + 1]))
                lit++;
            out.push_back((Uint8)(lit - 1));
            out.insert(out.end(), p + i, p + i + lit);
            i += lit;
        }
    }
    static void zeros(int n, std::vector<Uint8> &out)
    {
        for (; n > 0; n -= 128) {
            int run = n < 128 ? n : 128;
            if (run == 1) {
                out.push_back(0);
                out.push_back(0);
            } else {
                out.push_back((Uint8)(1 - run));
                out.push_back(0);
            }
        }
    }
    int cols_;
    std::vector<Uint8> row_;
};

// The SEG written by DcmSegmentation as BINARY (its frames are then 1/8 of the size to build and
// copy) turned into the FRACTIONAL OCCUPANCY object it stands for, with RLE Lossless frames made
// from the masks: the attributes that differ between the two (Segmentation Type and Fractional
// Type, Maximum Fractional Value, the 8-bit pixel cell) and the encapsulated Pixel Data, one
// fragment per frame in segment order after an empty Basic Offset Table.
static void fractional_rle(const Context &ctx, DcmDataset &ds, Uint8 inside)
{
    put(ds, DCM_SegmentationType, "FRACTIONAL");
    put(ds, DCM_SegmentationFractionalType, "OCCUPANCY");
    check(ds.putAndInsertUint16(DCM_MaximumFractionalValue, inside), "seg", "MaximumFractionalValue");
    check(ds.putAndInsertUint16(DCM_BitsAllocated, 8), "seg", "BitsAllocated");
    check(ds.putAndInsertUint16(DCM_BitsStored, 8), "seg", "BitsStored");
    check(ds.putAndInsertUint16(DCM_HighBit, 7), "seg", "HighBit");
    std::unique_ptr<DcmPixelSequence> seq(new DcmPixelSequence(DCM_PixelSequenceTag));
    check(seq->insert(new DcmPixelItem(DCM_PixelItemTag)), "seg", "Basic Offset Table");
    RleFrame rle(ctx.src.cols);
    std::vector<Uint8> frame;
    for (const Prepared &p : ctx.items) {
        rle.encode(*p.f, ctx.src.rows, inside, frame);
        std::unique_ptr<DcmPixelItem> it(new DcmPixelItem(DCM_PixelItemTag));
        check(it->putUint8Array(frame.data(), (Uint32)frame.size()), "seg", "RLE fragment of " + p.label);
        check(seq->insert(it.release()), "seg", "RLE fragment of " + p.label);
    }
    std::unique_ptr<DcmPixelData> pd(new DcmPixelData(DCM_PixelData));
    pd->putOriginalRepresentation(EXS_RLELossless, nullptr, seq.release());
    check(ds.insert(pd.release(), OFTrue), "seg", "PixelData (RLE)");
}

// The empty SEG for the source's size: BINARY or FRACTIONAL (OCCUPANCY), its identity deterministic
// (redoing the same image with the same model replaces the object), patient and study from the
// source, and the relaxed rules of a projection radiograph without a Frame of Reference.
static std::unique_ptr<DcmSegmentation> create_seg(Context &ctx, bool binary, Uint8 inside, std::string &sop_uid)
{
    const Source &s = ctx.src;
    IODGeneralEquipmentModule::EquipmentInfo eq(ctx.text(ctx.opt.manufacturer), ctx.text(ctx.alg->name), "0",
                                                ctx.text(ctx.opt.software_version));
    ContentIdentificationMacro ci("1", "CXRSEG", ctx.text(std::string(ctx.alg->name) + " segmentation"),
                                  ""); // ContentCreatorName (type 2): a device, not a person
    DcmSegmentation *raw = nullptr;
    // FRACTIONAL with only 0 and the maximum is still a hard mask: OCCUPANCY says "this share of
    // the pixel belongs to the segment", which for 255/255 is all of it (not a probability).
    if (binary)
        check(DcmSegmentation::createBinarySegmentation(raw, (Uint16)s.rows, (Uint16)s.cols, eq, ci), "seg",
              "createBinarySegmentation");
    else
        check(DcmSegmentation::createFractionalSegmentation(raw, (Uint16)s.rows, (Uint16)s.cols,
                                                            DcmSegTypes::SFT_OCCUPANCY, inside, eq, ci),
              "seg", "createFractionalSegmentation");
    std::unique_ptr<DcmSegmentation> seg(raw);

    // A CR/DX has no Frame of Reference: relax the rule DCMTK would otherwise enforce on write.
    OFshared_ptr<IODRules> rules = seg->getRules();
    if (IODRule *r = rules->getByTag(DCM_FrameOfReferenceUID))
        r->setType("1C");
    if (IODRule *r = rules->getByTag(DCM_PositionReferenceIndicator))
        r->setType("2C");

    check(seg->importFromSourceImage(*s.ds, OFTrue), "seg", "import patient/study from the source");
    sop_uid = ctx.uid("seg");
    check(seg->getSOPCommon().setSOPInstanceUID(sop_uid.c_str()), "seg", "SOPInstanceUID");
    check(seg->getSeries().setSeriesInstanceUID(ctx.uid("seg-series").c_str()), "seg", "SeriesInstanceUID");
    check(seg->getSeries().setSeriesNumber(ctx.series_number(0).c_str()), "seg", "SeriesNumber");
    check(seg->getSeries().setSeriesDescription(ascii(ctx.series_description(0, "segmentation")).c_str()), "seg",
          "SeriesDescription");
    return seg;
}

// The functional groups every frame shares: the 2D plane orientation and the pixel measures.
static void add_shared_groups(const Context &ctx, DcmSegmentation &seg)
{
    const Source &s = ctx.src;
    // OHIF reads ImageOrientationPatient without a guard.
    std::unique_ptr<FGPlaneOrientationPatient> orient(FGPlaneOrientationPatient::createMinimal("1", "0", "0", "0", "1", "0"));
    if (!orient)
        fail(CXD_ERR_WRITE, "seg", "cannot create the plane orientation group");
    check(seg.addForAllFrames(*orient), "seg", "shared PlaneOrientationSequence");
    // Shared Pixel Measures: OHIF 3.13.2 destructures it unguarded (the viewer test showed
    // "Cannot destructure property 'SpacingBetweenSlices' of 'PixelMeasures'"). The spacing is
    // the one the viewer uses for the source (PixelSpacing, else ImagerPixelSpacing), else 1\1,
    // which is what viewers assume for an image without spacing, so the overlay stays aligned.
    FGPixelMeasures measures;
    std::string ps = s.has_spacing ? fmt_ds(s.spacing[0], 6) + "\\" + fmt_ds(s.spacing[1], 6) : "1\\1";
    check(measures.setPixelSpacing(ps.c_str()), "seg", "PixelSpacing " + ps);
    check(measures.setSliceThickness("1"), "seg", "SliceThickness");
    check(seg.addForAllFrames(measures), "seg", "shared PixelMeasuresSequence");
}

// The per-frame groups and the algorithm identification every segment carries.
struct FrameGroups {
    std::unique_ptr<FGDerivationImage> deriv;
    std::unique_ptr<FGPlanePosPatient> pos;
    FGFrameContent content;
    AlgorithmIdentificationMacro algo;
};

static void make_frame_groups(const Context &ctx, FrameGroups &g)
{
    const Source &s = ctx.src;
    // Derivation reference per frame (Weasis and older OHIF read it only there).
    OFVector<ImageSOPInstanceReferenceMacro> srcref(1);
    check(srcref[0].setReferencedSOPClassUID(s.sop_class.c_str()), "seg", "ReferencedSOPClassUID");
    check(srcref[0].setReferencedSOPInstanceUID(s.sop_uid.c_str()), "seg", "ReferencedSOPInstanceUID");
    g.deriv.reset(DcmSegmentation::createDerivationImageFG(
        srcref, ctx.text(std::string("Segmented by ") + ctx.alg->name + " " + ctx.alg->version)));
    if (!g.deriv)
        fail(CXD_ERR_WRITE, "seg", "cannot create the derivation image group");
    g.pos.reset(FGPlanePosPatient::createMinimal("0", "0", "0"));
    if (!g.pos)
        fail(CXD_ERR_WRITE, "seg", "cannot create the plane position group");
    g.algo.getAlgorithmFamilyCode().set("123110", "DCM", "Artificial Intelligence");
    check(g.algo.setAlgorithmName(ctx.text(ctx.alg->name).c_str()), "seg", "AlgorithmName");
    check(g.algo.setAlgorithmVersion(ctx.text(ctx.alg->version).c_str()), "seg", "AlgorithmVersion");
    check(g.algo.setAlgorithmParameters((std::string("model_sha256=") + ctx.alg->model_sha256).c_str()), "seg",
          "AlgorithmParameters");
    check(g.algo.setAlgorithmSource("cxrseg"), "seg", "AlgorithmSource");
}

// One finding or lung as a segment and its full-size frame (frame: scratch of rows x cols).
static void add_segment(const Context &ctx, DcmSegmentation &seg, Prepared &p, FrameGroups &g,
                        std::vector<Uint8> &frame, Uint8 inside)
{
    const Source &s = ctx.src;
    const cxd_finding &f = *p.f;
    DcmSegment *sg = nullptr;
    CodeSequenceMacro cat(f.category.value, f.category.scheme, ctx.text(f.category.meaning));
    CodeSequenceMacro typ(f.type.value, f.type.scheme, ctx.text(f.type.meaning));
    // DCMTK's value check on write only knows ASCII: the segment gets ASCII stand-ins here and
    // the real strings (already safe for the source's character set) are patched in after.
    check(DcmSegment::create(sg, ascii(p.label), cat, typ, DcmSegTypes::SAT_AUTOMATIC, ctx.text(ctx.alg->name)),
          "seg", "segment " + p.label);
    std::unique_ptr<DcmSegment> own(sg);
    if (!p.description.empty())
        check(sg->setSegmentDescription(ascii(p.description).c_str()), "seg", "SegmentDescription of " + p.label);
    if (f.type_modifier.value[0]) {
        CodeSequenceMacro *m = new CodeSequenceMacro(f.type_modifier.value, f.type_modifier.scheme,
                                                     ctx.text(f.type_modifier.meaning));
        sg->getSegmentedPropertyTypeModifierCode().push_back(m);
    }
    check(sg->setSegmentationAlgorithmIdentification(g.algo), "seg", "algorithm identification of " + p.label);
    uint16_t lab[3];
    cxd_rgb_to_dicom_lab(f.rgb, lab);
    check(sg->setRecommendedDisplayCIELabValue(lab[0], lab[1], lab[2]), "seg", "display colour of " + p.label);
    check(sg->setTrackingID(ascii(p.tracking_id).c_str()), "seg", "TrackingID of " + p.label);
    check(sg->setTrackingUID(p.tracking_uid.c_str()), "seg", "TrackingUID of " + p.label);
    Uint16 num = 0;
    check(seg.addSegment(sg, num), "seg", "add segment " + p.label);
    own.release();
    p.segment_number = num;

    std::fill(frame.begin(), frame.end(), 0);
    for (int y = 0; y < f.h; y++) {
        const uint8_t *row = f.mask + (size_t)y * f.w;
        Uint8 *dst = frame.data() + (size_t)(f.y0 + y) * s.cols + f.x0;
        for (int x = 0; x < f.w; x++)
            dst[x] = row[x] ? inside : 0;
    }
    check(g.content.setDimensionIndexValues(num, 0), "seg", "DimensionIndexValues");
    OFVector<FGBase *> perframe;
    perframe.push_back(&g.content);
    perframe.push_back(g.deriv.get());
    perframe.push_back(g.pos.get());
    check(seg.addFrame(frame.data(), num, perframe), "seg", "frame of segment " + p.label);
}

// ReferencedSeriesSequence: OHIF and Weasis find the source through it.
static void add_source_reference(const Context &ctx, DcmSegmentation &seg)
{
    const Source &s = ctx.src;
    IODReferences refs;
    IODImageReference *ir = new IODImageReference(s.patient_id.c_str(), s.study_uid.c_str(), s.series_uid.c_str(),
                                                  s.sop_uid.c_str(), s.sop_class.c_str());
    if (!refs.add(ir)) {
        delete ir;
        fail(CXD_ERR_WRITE, "seg", "cannot build the reference to the source image");
    }
    if (seg.getCommonInstanceReference().addReferences(refs, s.study_uid.c_str()) != 1)
        fail(CXD_ERR_WRITE, "seg", "cannot add the ReferencedSeriesSequence");
}

// What DCMTK's writer cannot say: the real (non-ASCII) labels and descriptions, the source's
// patient/study attributes as they were, dates, orientation, body part.
static void patch_dataset(const Context &ctx, DcmDataset &ds, const std::string &da, const std::string &tm)
{
    const Source &s = ctx.src;
    copy_patient_study(s, ds);
    for (const Prepared &p : ctx.items) {
        DcmItem *it = nullptr;
        if (ds.findAndGetSequenceItem(DCM_SegmentSequence, it, p.segment_number - 1).bad() || !it)
            fail(CXD_ERR_INTERNAL, "seg", "segment %d missing in the written SegmentSequence", p.segment_number);
        put(*it, DCM_SegmentLabel, p.label);
        put(*it, DCM_TrackingID, p.tracking_id);
        if (!p.description.empty())
            put(*it, DCM_SegmentDescription, p.description);
    }
    put(ds, DCM_SeriesDescription, ctx.series_description(0, "segmentation"));
    put(ds, DCM_ContentDate, da);
    put(ds, DCM_ContentTime, tm);
    put(ds, DCM_InstanceNumber, "1");
    if (!s.patient_orientation.empty())
        put(ds, DCM_PatientOrientation, s.patient_orientation);
    if (!s.body_part.empty())
        put(ds, DCM_BodyPartExamined, s.body_part);
    // An empty Laterality is invalid for CHEST: write it only when the source has a value.
    delete ds.remove(DCM_Laterality);
}

void write_seg(Context &ctx, const std::string &path, std::string &sop_uid, int &n_segments)
{
    const Source &s = ctx.src;
    if (s.rows > 65535 || s.cols > 65535)
        fail(CXD_ERR_UNSUPPORTED, "seg", "image %dx%d too large", s.cols, s.rows);
    const bool binary = ctx.opt.seg_encoding == CXD_SEG_BINARY;
    const Uint8 inside = binary ? 1 : 255; // a pixel in the segment: BINARY 1, FRACTIONAL its maximum
    // FRACTIONAL + RLE: DCMTK builds a BINARY object, fractional_rle() converts it (see there)
    const bool rle = !binary && ctx.opt.seg_compression == CXD_SEG_RLE;
    std::unique_ptr<DcmSegmentation> seg = create_seg(ctx, binary || rle, rle ? 1 : inside, sop_uid);
    add_shared_groups(ctx, *seg);
    FrameGroups groups;
    make_frame_groups(ctx, groups);
    // One dimension, the segment number: each frame is one segment of one 2D image.
    check(seg->getDimensions().addDimensionIndex(DCM_ReferencedSegmentNumber, ctx.uid("seg-dimension").c_str(),
                                                 DCM_SegmentIdentificationSequence, "Segment Number"),
          "seg", "dimension index");
    std::vector<Uint8> frame((size_t)s.rows * s.cols);
    n_segments = 0;
    for (Prepared &p : ctx.items) {
        add_segment(ctx, *seg, p, groups, frame, rle ? 1 : inside);
        n_segments++;
    }
    if (!n_segments)
        fail(CXD_ERR_INVALID, "seg", "no segment has any pixel: nothing to write");
    add_source_reference(ctx, *seg);

    std::string da, tm;
    now_da_tm(da, tm);
    seg->getContentIdentification().setContentLabel("CXRSEG");
    seg->getSeries().setSeriesDate(da.c_str());
    seg->getSeries().setSeriesTime(tm.c_str());
    DcmFileFormat ff;
    DcmDataset &ds = *ff.getDataset();
    check(seg->writeDataset(ds), "seg", "write dataset");
    seg.reset(); // its frames are in ds now (or replaced below)
    E_TransferSyntax xfer = EXS_LittleEndianExplicit;
    if (binary) {
        repack_binary(ctx, ds);
    } else if (rle) {
        // One RLE fragment per frame, no offset table needed by the readers we serve (OHIF,
        // DCMTK, pydicom take the fragments in order); lossless, so nothing else changes.
        fractional_rle(ctx, ds, inside);
        if (!ds.canWriteXfer(EXS_RLELossless))
            fail(CXD_ERR_WRITE, "seg", "the SEG's RLE pixel data cannot be written");
        xfer = EXS_RLELossless;
    }
    patch_dataset(ctx, ds, da, tm);
    save_atomic(ff, path, xfer);
}

} // namespace cxdw
