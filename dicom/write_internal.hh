// Internal helpers shared by the result writers (SEG, SR, GSPS, SC): errors as exceptions that
// the C entry points turn into cxd_error, deterministic UIDs, copying patient/study attributes
// from the source, and the per-finding geometry (full-frame masks, contours). Not installed.
#ifndef CXD_WRITE_INTERNAL_HH
#define CXD_WRITE_INTERNAL_HH

#include "cxdicom.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace cxdw {

// Thrown inside the writers; the C entry point converts it to cxd_error.
struct Error : std::runtime_error {
    cxd_status code;
    Error(cxd_status c, const std::string &m) : std::runtime_error(m), code(c) {}
};
[[noreturn]] void fail(cxd_status code, const char *stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
// Throws CXD_ERR_WRITE "stage: what: <DCMTK text>" when cond is bad.
void check(const OFCondition &cond, const char *stage, const std::string &what);

// Everything the writers need from the source image, read once.
struct Source {
    DcmItem *ds = nullptr;
    std::string sop_class, sop_uid, study_uid, series_uid, patient_id;
    std::string charset;          // SpecificCharacterSet as found ("" = ASCII)
    bool utf8 = false;            // ISO_IR 192: our own strings may stay UTF-8
    int rows = 0, cols = 0;
    std::string photometric, body_part, patient_orientation, laterality, modality;
    bool has_spacing = false;
    double spacing[2] = {0, 0};   // row, column (mm)
    const char *spacing_which = "none";
};
// Reads and checks the source dataset (single-frame greyscale image with the UIDs we reference).
void read_source(DcmItem &ds, Source &src);

// A finding prepared for writing: checked, with its pixel count and derived tracking.
struct Prepared {
    const cxd_finding *f = nullptr;
    size_t index = 0;             // index in the caller's array
    size_t pixels = 0;            // non-zero mask pixels
    std::string label, description, tracking_id, tracking_uid;
    int segment_number = 0;       // in the SEG (1-based); 0 = not in the SEG
    cxd_contours contours{};      // outer contours in source pixel coordinates
};

struct Context {
    Source src;
    const cxd_algorithm *alg = nullptr;
    cxd_write_options opt{};
    std::vector<Prepared> items;  // findings with at least one pixel, in caller order
    bool any_finding = false;      // a CXD_ROLE_FINDING with pixels (decides the SEG rule)
    bool finding_present = false;  // one of them has the qualitative concept's code
    std::string uid_root;
    // The report-level answer: the caller's (opt.presence), else finding_present.
    bool present() const
    {
        return opt.presence == CXD_PRESENCE_FROM_FINDINGS ? finding_present : opt.presence == CXD_PRESENCE_PRESENT;
    }
    // Derived UIDs (deterministic).
    std::string uid(const std::string &kind) const;
    // Series number and description of output k (0 SEG, 1 SR, 2 GSPS, 3 SC).
    std::string series_number(int k) const;
    std::string series_description(int k, const char *suffix) const;
    // Our own text (labels, descriptions) made safe for the source's character set.
    std::string text(const std::string &s) const;
};

// Validates the findings and fills ctx.items (contours included). Throws on bad input.
void prepare_findings(Context &ctx, const cxd_finding *f, size_t n);

// Copies patient and study attributes (raw bytes, with the SpecificCharacterSet) from the
// source into an output dataset; type-2 attributes absent in the source are written empty.
void copy_patient_study(const Source &src, DcmItem &out);
// Puts a string attribute, replacing any existing one; throws on failure.
void put(DcmItem &out, const DcmTagKey &tag, const std::string &value);
// Current date and time as DA / TM.
void now_da_tm(std::string &da, std::string &tm);
std::string fmt_ds(double v, int decimals);
// Writes the file format to path via a temporary name + rename.
// Writes ff to path.tmp in xfer, then renames it over path.
void save_atomic(DcmFileFormat &ff, const std::string &path, E_TransferSyntax xfer = EXS_LittleEndianExplicit);

// The writers (each throws cxdw::Error).
void write_seg(Context &ctx, const std::string &path, std::string &sop_uid, int &n_segments);
void write_sr(Context &ctx, bool seg_written, const std::string &path, std::string &sop_uid);
void write_gsps(Context &ctx, const std::string &path, std::string &sop_uid);
void write_sc(Context &ctx, const std::string &path, std::string &sop_uid);

// Entry used by the C function and by tests that hold a DCMTK dataset.
cxd_status results_write_dataset(DcmItem &src, const cxd_finding *findings, size_t n_findings,
                                 const cxd_algorithm *alg, const cxd_write_options *opt,
                                 const char *out_dir, cxd_write_result *out, cxd_error *err);

} // namespace cxdw

#endif
