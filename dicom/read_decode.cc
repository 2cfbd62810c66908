/* Pixel decoding of a source image: validates the image pixel module against hard limits, then
 * takes the stored values out of native pixel data, DCMTK's codecs (JPEG, JPEG-LS), our RLE
 * decoder (rle.cc) or OpenJPEG (JPEG 2000, j2k.cc), and hands back one int32 per pixel. */
#include "read_internal.h"

#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>

#include <cstring>
#include <new>

/* Largest accepted image side: twice the biggest detector in use (43 cm at 0.1 mm is ~4300),
 * and small enough that rows*cols*4 cannot overflow 32 bits of DCMTK's frame-size arithmetic. */
#define CXD_MAX_SIDE 32768u

extern "C" void cxd_pixels_clear(cxd_pixels *px)
{
    if (!px)
        return;
    cxd_dealloc(px->data);
    px->data = nullptr;
}

enum class path { native, dcmtk, j2k, rle };

static bool syntax_path(E_TransferSyntax x, path *p)
{
    switch (x) {
    case EXS_LittleEndianImplicit:
    case EXS_LittleEndianExplicit:
    case EXS_BigEndianExplicit:
    case EXS_DeflatedLittleEndianExplicit:
        *p = path::native;
        return true;
    case EXS_JPEGProcess1:
    case EXS_JPEGProcess2_4:
    case EXS_JPEGProcess14:
    case EXS_JPEGProcess14SV1:
    case EXS_JPEGLSLossless:
    case EXS_JPEGLSLossy:
        *p = path::dcmtk;
        return true;
    case EXS_RLELossless:
        *p = path::rle;
        return true;
    case EXS_JPEG2000LosslessOnly:
    case EXS_JPEG2000:
        *p = path::j2k;
        return true;
    default:
        return false;
    }
}

/* Reads a required US attribute of the Image Pixel module. */
static cxd_status need_us(DcmItem *ds, const DcmTagKey &tag, const char *name, unsigned *v, cxd_error *err)
{
    if (!ds->tagExistsWithValue(tag))
        return cxd_set_error(err, CXD_ERR_MISSING, "decode: %s (%04X,%04X) is missing or empty", name,
                             tag.getGroup(), tag.getElement());
    DcmElement *e = nullptr;
    Uint16 u;
    /* DCMTK pads an odd-length US and reads on; a pixel-module value of the wrong length means
     * the header cannot be trusted for a buffer size. */
    if (ds->findAndGetElement(tag, e).good() && e && e->getLength() != 2)
        return cxd_set_error(err, CXD_ERR_MALFORMED, "decode: %s (%04X,%04X) has a %u-byte value, US needs 2", name,
                             tag.getGroup(), tag.getElement(), (unsigned)e->getLength());
    if (ds->findAndGetUint16(tag, u).bad())
        return cxd_set_error(err, CXD_ERR_MALFORMED, "decode: %s (%04X,%04X) is not a 2-byte US value", name,
                             tag.getGroup(), tag.getElement());
    *v = u;
    return CXD_OK;
}

/* Stored value bits sit at HighBit..HighBit-BitsStored+1 of each allocated word. */
static inline int32_t stored_value(uint32_t raw, const cxd_geometry &g)
{
    uint32_t mask = g.bits_stored >= 32 ? 0xFFFFFFFFu : ((1u << g.bits_stored) - 1u);
    uint32_t v = (raw >> (g.high_bit + 1 - g.bits_stored)) & mask;
    if (g.pixel_representation == 1 && g.bits_stored < 32 && (v >> (g.bits_stored - 1)) & 1u)
        v |= ~mask;
    return (int32_t)v;
}

static void convert_words(const void *src, const cxd_geometry &g, int32_t *out)
{
    size_t n = (size_t)g.rows * g.cols;
    if (g.bits_allocated == 8) {
        const uint8_t *s = (const uint8_t *)src;
        for (size_t i = 0; i < n; i++)
            out[i] = stored_value(s[i], g);
    } else {
        const uint16_t *s = (const uint16_t *)src;
        for (size_t i = 0; i < n; i++)
            out[i] = stored_value(s[i], g);
    }
}

static cxd_status decode_native(DcmPixelData *pd, const cxd_geometry &g, size_t frame_bytes, int32_t *out,
                                cxd_error *err)
{
    E_TransferSyntax rep;
    const DcmRepresentationParameter *param = nullptr;
    pd->getOriginalRepresentationKey(rep, param);
    if (DcmXfer(rep).isEncapsulated())
        return cxd_set_error(err, CXD_ERR_MALFORMED,
                             "decode: the transfer syntax is native but Pixel Data is encapsulated");
    Uint32 len = pd->getLength();
    if ((size_t)len < frame_bytes)
        return cxd_set_error(err, CXD_ERR_MALFORMED,
                             "decode: Pixel Data has %u bytes, %ux%u pixels at %d bits need %zu", (unsigned)len,
                             g.cols, g.rows, g.bits_allocated, frame_bytes);
    OFCondition c;
    if (g.bits_allocated == 8) {
        Uint8 *b = nullptr;
        c = pd->getUint8Array(b);
        if (c.good() && b)
            convert_words(b, g, out);
    } else {
        Uint16 *w = nullptr;
        c = pd->getUint16Array(w);
        if (c.good() && w)
            convert_words(w, g, out);
    }
    if (c.bad())
        return cxd_set_error(err, cxd_status_from_dcmtk(c, CXD_ERR_MALFORMED),
                             "decode: cannot read native Pixel Data: %s", c.text());
    return CXD_OK;
}

static cxd_status decode_dcmtk(DcmDataset *ds, DcmPixelData *pd, const cxd_geometry &g, size_t frame_bytes,
                               const char *ts_name, int32_t *out, cxd_error *err)
{
    /* DCMTK's decoders refuse a buffer of odd size (an 8-bit image with an odd pixel count):
     * give them the frame rounded up to even. */
    Uint32 want = (Uint32)(frame_bytes + (frame_bytes & 1));
    void *buf = cxd_alloc(want);
    if (!buf)
        return cxd_set_error(err, CXD_ERR_NOMEM, "decode: out of memory for a %u-byte frame", (unsigned)want);
    Uint32 start = 0;
    OFString model;
    OFCondition c;
    try {
        c = pd->getUncompressedFrame(ds, 0, start, buf, want, model, nullptr);
    } catch (...) {
        cxd_dealloc(buf);
        throw;
    }
    if (c.bad()) {
        cxd_dealloc(buf);
        if (c == EC_MemoryExhausted)
            return cxd_set_error(err, CXD_ERR_NOMEM, "decode: out of memory in the %s decoder", ts_name);
        return cxd_set_error(err, CXD_ERR_MALFORMED, "decode: the %s decoder failed on a %ux%u, %d-bit image: %s",
                             ts_name, g.cols, g.rows, g.bits_stored, c.text());
    }
    convert_words(buf, g, out);
    cxd_dealloc(buf);
    return CXD_OK;
}

/* DCMTK 3.6.7's JPEG decoder (dcmjpeg) first walks the frame's first fragment from marker to
 * marker for the SOF's precision (DJCodecDecoder::scanJpegDataForBitDepth), and does not move on
 * past a TEM marker (FF01): such a stream hangs the decoding thread forever (found by tests/fuzz).
 * This follows the same walk and answers whether it would reach a TEM before a frame header, an
 * invalid marker or the end. */
static bool jpeg_scan_hangs(const Uint8 *d, Uint32 n)
{
    Uint32 at = 0;
    while (n >= 5 && at < n - 4) {
        if (d[at] != 0xFF)
            return false; /* DCMTK stops: invalid marker */
        unsigned m = d[at + 1];
        Uint32 seglen = (Uint32)d[at + 2] << 8 | d[at + 3];
        if (m == 0x01)
            return true;
        if ((m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC))
            return false; /* a frame header: DCMTK has its precision */
        if (m == 0xC4 || m == 0xC8 || m == 0xCC || (m >= 0xDA && m <= 0xDF) || (m >= 0xE0 && m <= 0xFE))
            at += seglen + 2; /* a marker segment with a length */
        else if ((m >= 0xD0 && m <= 0xD9) || (m > 0x02 && m <= 0xBF))
            at += 2; /* RSTn, SOI, EOI, reserved: no length */
        else if (m == 0xFF)
            at += 1; /* fill byte */
        else
            return false; /* DCMTK stops: invalid marker */
    }
    return false;
}

/* The frame's first fragment (after the Basic Offset Table) through jpeg_scan_hangs. */
static cxd_status jpeg_guard(DcmPixelData *pd, cxd_error *err)
{
    E_TransferSyntax rep;
    const DcmRepresentationParameter *param = nullptr;
    pd->getOriginalRepresentationKey(rep, param);
    DcmPixelSequence *seq = nullptr;
    DcmPixelItem *item = nullptr;
    Uint8 *bytes = nullptr;
    if (!DcmXfer(rep).isEncapsulated() || pd->getEncapsulatedRepresentation(rep, param, seq).bad() || !seq ||
        seq->card() < 2 || seq->getItem(item, 1).bad() || !item || item->getUint8Array(bytes).bad() || !bytes)
        return CXD_OK; /* DCMTK's decoder reports these itself */
    if (jpeg_scan_hangs(bytes, item->getLength()))
        return cxd_set_error(err, CXD_ERR_MALFORMED,
                             "decode: the JPEG stream has a TEM marker (FF01) before its frame header "
                             "(refused: DCMTK's JPEG decoder would never return)");
    return CXD_OK;
}

/* The single frame's compressed bytes: all fragments after the Basic Offset Table, joined. */
static cxd_status concat_fragments(DcmPixelData *pd, const char *what, unsigned char **out, size_t *out_len,
                                   cxd_error *err)
{
    E_TransferSyntax rep;
    const DcmRepresentationParameter *param = nullptr;
    pd->getOriginalRepresentationKey(rep, param);
    DcmPixelSequence *seq = nullptr;
    if (!DcmXfer(rep).isEncapsulated() || pd->getEncapsulatedRepresentation(rep, param, seq).bad() || !seq)
        return cxd_set_error(err, CXD_ERR_MALFORMED,
                             "decode: the transfer syntax is %s but Pixel Data is not encapsulated", what);
    unsigned long items = seq->card();
    if (items < 2)
        return cxd_set_error(err, CXD_ERR_MALFORMED,
                             "decode: %s Pixel Data has no fragments (%lu items incl. the offset table)", what, items);
    size_t total = 0;
    for (unsigned long i = 1; i < items; i++) {
        DcmPixelItem *it = nullptr;
        if (seq->getItem(it, i).bad() || !it)
            return cxd_set_error(err, CXD_ERR_MALFORMED, "decode: %s fragment %lu cannot be read", what, i);
        total += it->getLength();
    }
    if (total == 0)
        return cxd_set_error(err, CXD_ERR_MALFORMED, "decode: %s fragments are empty (%lu items)", what, items);
    unsigned char *cs = (unsigned char *)cxd_alloc(total);
    if (!cs)
        return cxd_set_error(err, CXD_ERR_NOMEM, "decode: out of memory for %zu bytes of %s data", total, what);
    size_t pos = 0;
    for (unsigned long i = 1; i < items; i++) {
        DcmPixelItem *it = nullptr;
        Uint8 *b = nullptr;
        seq->getItem(it, i);
        Uint32 n = it->getLength();
        if (n == 0)
            continue;
        OFCondition c = it->getUint8Array(b);
        if (c.bad() || !b) {
            cxd_dealloc(cs);
            return cxd_set_error(err, cxd_status_from_dcmtk(c, CXD_ERR_MALFORMED),
                                 "decode: %s fragment %lu (%u bytes) cannot be read: %s", what, i, (unsigned)n,
                                 c.text());
        }
        memcpy(cs + pos, b, n);
        pos += n;
    }
    *out = cs;
    *out_len = total;
    return CXD_OK;
}

static cxd_status decode_fragments(DcmPixelData *pd, const cxd_geometry &g, bool rle, int32_t *out,
                                   cxd_error *err)
{
    unsigned char *cs = nullptr;
    size_t len = 0;
    cxd_status st = concat_fragments(pd, rle ? "RLE" : "JPEG 2000", &cs, &len, err);
    if (st != CXD_OK)
        return st;
    st = rle ? cxd_rle_decode(cs, len, g, out, err) : cxd_j2k_decode(cs, len, g, out, err);
    cxd_dealloc(cs);
    return st;
}

/* Colour and multi-frame first: those are well-formed objects we decline, and saying so is more
 * useful than a complaint about some other attribute. */
static cxd_status check_greyscale_single(DcmDataset *ds, cxd_error *err)
{
    OFString pi;
    ds->findAndGetOFString(DCM_PhotometricInterpretation, pi);
    Uint16 spp = 1;
    if (ds->tagExists(DCM_SamplesPerPixel) && ds->findAndGetUint16(DCM_SamplesPerPixel, spp).bad())
        return cxd_set_error(err, CXD_ERR_MALFORMED, "decode: SamplesPerPixel (0028,0002) is not a US value");
    if (spp != 1 || (pi != "MONOCHROME1" && pi != "MONOCHROME2"))
        return cxd_set_error(err, CXD_ERR_UNSUPPORTED,
                             "decode: only greyscale is supported; found PhotometricInterpretation '%s' with "
                             "%u samples per pixel",
                             pi.c_str(), (unsigned)spp);
    if (ds->tagExists(DCM_NumberOfFrames)) {
        Sint32 nf = 0;
        OFString nfs;
        ds->findAndGetOFString(DCM_NumberOfFrames, nfs);
        if (ds->findAndGetSint32(DCM_NumberOfFrames, nf).bad() || nf < 0)
            return cxd_set_error(err, CXD_ERR_MALFORMED, "decode: NumberOfFrames (0028,0008) '%s' is not a count",
                                 nfs.c_str());
        if (nf > 1)
            return cxd_set_error(err, CXD_ERR_UNSUPPORTED,
                                 "decode: multi-frame images are not supported (NumberOfFrames %d)", (int)nf);
    }

    return CXD_OK;
}

/* Rows, Columns and the pixel cell (BitsAllocated/Stored, HighBit, PixelRepresentation), present
 * and consistent. */
static cxd_status read_geometry(DcmDataset *ds, cxd_geometry *g, cxd_error *err)
{
    cxd_status st;
    unsigned rows, cols, ba, bs, hb, pr;
    if ((st = need_us(ds, DCM_Rows, "Rows", &rows, err)) != CXD_OK ||
        (st = need_us(ds, DCM_Columns, "Columns", &cols, err)) != CXD_OK ||
        (st = need_us(ds, DCM_BitsAllocated, "BitsAllocated", &ba, err)) != CXD_OK ||
        (st = need_us(ds, DCM_BitsStored, "BitsStored", &bs, err)) != CXD_OK ||
        (st = need_us(ds, DCM_HighBit, "HighBit", &hb, err)) != CXD_OK ||
        (st = need_us(ds, DCM_PixelRepresentation, "PixelRepresentation", &pr, err)) != CXD_OK)
        return st;
    if (rows == 0 || cols == 0)
        return cxd_set_error(err, CXD_ERR_MALFORMED, "decode: empty image (Rows %u, Columns %u)", rows, cols);
    if (rows > CXD_MAX_SIDE || cols > CXD_MAX_SIDE)
        return cxd_set_error(err, CXD_ERR_MALFORMED,
                             "decode: image of %u rows x %u columns exceeds the %ux%u limit", rows, cols,
                             CXD_MAX_SIDE, CXD_MAX_SIDE);
    if (bs == 0)
        return cxd_set_error(err, CXD_ERR_MALFORMED, "decode: BitsStored is 0");
    if (bs > ba)
        return cxd_set_error(err, CXD_ERR_MALFORMED, "decode: BitsStored %u > BitsAllocated %u", bs, ba);
    if (hb >= ba || hb + 1 < bs)
        return cxd_set_error(err, CXD_ERR_MALFORMED,
                             "decode: HighBit %u is inconsistent with BitsStored %u and BitsAllocated %u "
                             "(expected %u..%u)",
                             hb, bs, ba, bs - 1, ba - 1);
    if (pr > 1)
        return cxd_set_error(err, CXD_ERR_MALFORMED, "decode: PixelRepresentation %u (0 or 1)", pr);
    if (ba != 8 && ba != 16)
        return cxd_set_error(err, CXD_ERR_UNSUPPORTED, "decode: BitsAllocated %u is not supported (8 or 16)", ba);

    *g = {rows, cols, (int)ba, (int)bs, (int)hb, (int)pr};
    return CXD_OK;
}

static cxd_status decode_locked(cxd_file *f, cxd_pixels *out, cxd_error *err)
{
    DcmDataset *ds = f->ff.getDataset();
    cxd_status st;
    if ((st = check_greyscale_single(ds, err)) != CXD_OK)
        return st;
    const char *ts = f->ts_uid.c_str();
    DcmXfer xfer(ts);
    path p;
    if (!syntax_path(xfer.getXfer(), &p)) {
        const char *name = xfer.getXfer() == EXS_Unknown ? "unknown to DCMTK" : xfer.getXferName();
        return cxd_set_error(err, CXD_ERR_UNSUPPORTED, "decode: transfer syntax %s (%s) is not supported",
                             ts[0] ? ts : "(none)", name);
    }

    cxd_geometry g;
    if ((st = read_geometry(ds, &g, err)) != CXD_OK)
        return st;
    DcmElement *e = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, e).bad() || !e)
        return cxd_set_error(err, CXD_ERR_MISSING, "decode: no Pixel Data (7FE0,0010)");
    DcmPixelData *pd = dynamic_cast<DcmPixelData *>(e);
    if (!pd)
        return cxd_set_error(err, CXD_ERR_MALFORMED, "decode: Pixel Data (7FE0,0010) has an unexpected VR");

    size_t npix = (size_t)g.rows * g.cols;
    size_t frame_bytes = npix * (g.bits_allocated / 8);
    int32_t *data = (int32_t *)cxd_alloc(npix * sizeof(int32_t));
    if (!data)
        return cxd_set_error(err, CXD_ERR_NOMEM, "decode: out of memory for %ux%u decoded pixels", g.cols, g.rows);
    try {
        switch (p) {
        case path::native: st = decode_native(pd, g, frame_bytes, data, err); break;
        case path::dcmtk:
            if (xfer.getXfer() == EXS_JPEGLSLossless || xfer.getXfer() == EXS_JPEGLSLossy ||
                (st = jpeg_guard(pd, err)) == CXD_OK)
                st = decode_dcmtk(ds, pd, g, frame_bytes, xfer.getXferName(), data, err);
            break;
        case path::j2k: st = decode_fragments(pd, g, false, data, err); break;
        case path::rle: st = decode_fragments(pd, g, true, data, err); break;
        }
    } catch (...) {
        cxd_dealloc(data);
        throw;
    }
    if (st != CXD_OK) {
        cxd_dealloc(data);
        return st;
    }
    out->rows = (int)g.rows;
    out->columns = (int)g.cols;
    out->bits_stored = g.bits_stored;
    out->is_signed = g.pixel_representation;
    out->data = data;
    return CXD_OK;
}

extern "C" cxd_status cxd_file_decode(const cxd_file *cf, cxd_pixels *out, cxd_error *err)
{
    if (!cf || !out)
        return cxd_set_error(err, CXD_ERR_INVALID, "decode: NULL %s", cf ? "out" : "file");
    cxd_file *f = const_cast<cxd_file *>(cf);
    try {
        std::lock_guard<std::mutex> lock(f->mu);
        return decode_locked(f, out, err);
    } catch (const std::bad_alloc &) {
        return cxd_set_error(err, CXD_ERR_NOMEM, "decode: out of memory");
    } catch (const std::exception &e) {
        return cxd_set_error(err, CXD_ERR_INTERNAL, "decode: unexpected exception: %s", e.what());
    } catch (...) {
        return cxd_set_error(err, CXD_ERR_INTERNAL, "decode: unexpected exception");
    }
}
