/* Private helpers of the dicom/ reading layer (not part of the C API): the cxd_file object,
 * error formatting and the allocator hook, shared by read.cc, read_decode.cc and j2k.cc.
 * Writers and network code may include it for cxd_set_error and cxd_alloc. */
#ifndef CXD_READ_INTERNAL_H
#define CXD_READ_INTERNAL_H

#include "cxdicom.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>

#include <mutex>
#include <string>

struct cxd_file {
    DcmFileFormat ff;
    std::string ts_uid;   /* from the meta header, or the detected encoding of a bare dataset */
    std::mutex mu;        /* DCMTK mutates elements on access (byte swapping, VR changes) */
};

/* Fills err (when non-NULL) with code and the printf-formatted message; returns code. The
 * format starts with the stage: "decode: rows = %d". */
cxd_status cxd_set_error(cxd_error *err, cxd_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The hooked allocator for buffers handed to the caller (and large internal ones). */
void *cxd_alloc(size_t n);
void cxd_dealloc(void *p);

/* Maps a DCMTK condition to a status: EC_MemoryExhausted -> NOMEM, everything else -> `other`. */
cxd_status cxd_status_from_dcmtk(const OFCondition &c, cxd_status other);

/* JPEG 2000 (.90/.91): decodes one frame from the concatenated fragments with OpenJPEG into
 * rows*cols int32 stored values, validated against the header. Defined in j2k.cc. */
struct cxd_geometry {
    unsigned rows, cols;
    int bits_allocated, bits_stored, high_bit, pixel_representation;
};
cxd_status cxd_j2k_decode(const unsigned char *data, size_t len, const cxd_geometry &g,
                          int32_t *out, cxd_error *err);

/* RLE Lossless, one greyscale frame from the concatenated fragments. Defined in rle.cc. */
cxd_status cxd_rle_decode(const unsigned char *data, size_t len, const cxd_geometry &g, int32_t *out,
                          cxd_error *err);

/* Deflated Explicit VR Little Endian (read_deflate.cc): when the Part 10 bytes b[0..n) say so,
 * *fd is a new anonymous file (close it) holding the same object with the data set inflated and
 * the meta header's TransferSyntaxUID set to Explicit VR Little Endian; otherwise *fd = -1.
 * Errors: corrupt deflate data (MALFORMED), more than 4 GiB inflated (UNSUPPORTED), IO, NOMEM. */
cxd_status cxd_deflated_rewrite(const unsigned char *b, size_t n, const char *what, int *fd, cxd_error *err);
const char *cxd_deflated_uid(void); /* "1.2.840.10008.1.2.1.99" */

#endif
