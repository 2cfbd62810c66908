// C entry point of the result writers over an opened cxd_file: takes the file's lock (DCMTK
// mutates elements on access) and hands its dataset to the writers in write_util.cc.
#include "read_internal.h"
#include "write_internal.hh"

extern "C" cxd_status cxd_results_write(const cxd_file *src, const cxd_finding *findings, size_t n_findings,
                                        const cxd_algorithm *alg, const cxd_write_options *opt,
                                        const char *out_dir, cxd_write_result *out, cxd_error *err)
{
    if (!src)
        return cxd_set_error(err, CXD_ERR_INVALID, "write: no source file");
    try {
        cxd_file *f = const_cast<cxd_file *>(src);
        std::lock_guard<std::mutex> lock(f->mu);
        DcmDataset *ds = f->ff.getDataset();
        if (!ds)
            return cxd_set_error(err, CXD_ERR_INTERNAL, "write: source file has no dataset");
        return cxdw::results_write_dataset(*ds, findings, n_findings, alg, opt, out_dir, out, err);
    } catch (...) {
        return cxd_set_error(err, CXD_ERR_INTERNAL, "write: unexpected exception");
    }
}
