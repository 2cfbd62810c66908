// Test-only (linked into tests/cxrseg-node-relay, never into cxrseg-node): the transport test
// fixture of the node's delivery tests, NOT a result. Copies src to dst with a new SOP Instance UID
// and Series Instance UID derived deterministically from the source's (2.25.<decimal hash>) and
// Series Description "CXRSEG TRANSPORT TEST (not a result)", so the node's delivery guarantees
// (retry, exactly once, kill -9, load) are tested without a model. out_uid receives the new SOP
// Instance UID.
#include "cxdicom.h"
#include "read_internal.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <new>
#include <string>

extern "C" cxd_status cxd_transport_test_copy(const char *src, const char *dst, char *out_uid, size_t out_len,
                                              cxd_error *err);

namespace {

std::string derived_uid(const std::string &src, const char *salt)
{
    // FNV-1a 64: stable across runs and platforms, so a redo derives the same UID.
    uint64_t h = 1469598103934665603ull;
    std::string in = src + salt;
    for (unsigned char c : in) {
        h ^= c;
        h *= 1099511628211ull;
    }
    char buf[40];
    snprintf(buf, sizeof buf, "2.25.%llu", (unsigned long long)h);
    return buf;
}

} // namespace

extern "C" cxd_status cxd_transport_test_copy(const char *src, const char *dst, char *out_uid, size_t out_len,
                                              cxd_error *err)
{
    try {
        if (!src || !dst || !out_uid || out_len < 65) {
            return cxd_set_error(err, CXD_ERR_INVALID, "transport copy: bad arguments");
        }
        DcmFileFormat ff;
        OFCondition c = ff.loadFile(src);
        if (c.bad()) {
            return cxd_set_error(err, CXD_ERR_MALFORMED, "transport copy: cannot read %s: %s", src, c.text());
        }
        DcmDataset *ds = ff.getDataset();
        OFString sop, series;
        ds->findAndGetOFString(DCM_SOPInstanceUID, sop);
        ds->findAndGetOFString(DCM_SeriesInstanceUID, series);
        if (sop.empty()) {
            return cxd_set_error(err, CXD_ERR_MISSING, "transport copy: %s has no SOP Instance UID", src);
        }
        std::string nsop = derived_uid(sop.c_str(), "#transport-test-instance");
        std::string nser = derived_uid(series.c_str(), "#transport-test-series");
        ds->putAndInsertString(DCM_SOPInstanceUID, nsop.c_str());
        ds->putAndInsertString(DCM_SeriesInstanceUID, nser.c_str());
        ds->putAndInsertString(DCM_SeriesDescription, "CXRSEG TRANSPORT TEST (not a result)");
        ds->putAndInsertString(DCM_SeriesNumber, "9999");
        ff.getMetaInfo()->putAndInsertString(DCM_MediaStorageSOPInstanceUID, nsop.c_str());
        c = ff.saveFile(dst, ds->getOriginalXfer());
        if (c.bad()) {
            return cxd_set_error(err, CXD_ERR_WRITE, "transport copy: cannot write %s: %s", dst, c.text());
        }
        snprintf(out_uid, out_len, "%s", nsop.c_str());
        return CXD_OK;
    } catch (const std::bad_alloc &) {
        return cxd_set_error(err, CXD_ERR_NOMEM, "transport copy: out of memory");
    } catch (...) {
        return cxd_set_error(err, CXD_ERR_INTERNAL, "transport copy: unexpected exception");
    }
}
