/* RLE Lossless (1.2.840.10008.1.2.5, PS3.5 Annex G) for the decode path. DCMTK 3.6.7's RLE
 * decoder reads past its buffers on corrupt segment data (found by the mutation test), so
 * greyscale RLE is decoded here, with every offset, run and length checked. */
#include "read_internal.h"

#include <cstring>

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* PackBits: a header byte n in 0..127 copies the next n+1 bytes; -127..-1 repeats the next byte
 * 1-n times; -128 is a no-op. Decoding stops once `want` bytes have been produced (encoders may
 * pad a segment to even length). Returns the number of bytes produced. */
static size_t unpack(const unsigned char *in, size_t len, unsigned char *out, size_t want)
{
    size_t i = 0, o = 0;
    while (i < len && o < want) {
        int n = (signed char)in[i++];
        if (n >= 0) {
            size_t k = (size_t)n + 1;
            if (k > len - i)
                k = len - i;
            if (k > want - o)
                k = want - o;
            memcpy(out + o, in + i, k);
            i += (size_t)n + 1;
            o += k;
        } else if (n != -128) {
            if (i >= len)
                break;
            size_t k = (size_t)(1 - n);
            if (k > want - o)
                k = want - o;
            memset(out + o, in[i++], k);
            o += k;
        }
    }
    return o;
}

cxd_status cxd_rle_decode(const unsigned char *data, size_t len, const cxd_geometry &g, int32_t *out,
                          cxd_error *err)
{
    if (len < 64)
        return cxd_set_error(err, CXD_ERR_MALFORMED, "decode: RLE data of %zu bytes is shorter than its 64-byte header",
                             len);
    uint32_t nseg = le32(data);
    uint32_t want_seg = (uint32_t)g.bits_allocated / 8;
    if (nseg != want_seg)
        return cxd_set_error(err, CXD_ERR_MALFORMED,
                             "decode: RLE header has %u segments, a %d-bit greyscale image needs %u", nseg,
                             g.bits_allocated, want_seg);
    size_t npix = (size_t)g.rows * g.cols;
    unsigned char *planes = (unsigned char *)cxd_alloc(npix * nseg);
    if (!planes)
        return cxd_set_error(err, CXD_ERR_NOMEM, "decode: out of memory for %u RLE segments of %zu bytes", nseg, npix);
    for (uint32_t s = 0; s < nseg; s++) {
        uint32_t start = le32(data + 4 + 4 * s);
        uint32_t end = s + 1 < nseg ? le32(data + 8 + 4 * s) : (uint32_t)(len > 0xFFFFFFFFu ? 0xFFFFFFFFu : len);
        if (start < 64 || start > end || end > len) {
            cxd_dealloc(planes);
            return cxd_set_error(err, CXD_ERR_MALFORMED,
                                 "decode: RLE segment %u spans bytes %u..%u of %zu (must lie after the 64-byte header)",
                                 s + 1, start, end, len);
        }
        size_t got = unpack(data + start, end - start, planes + s * npix, npix);
        if (got < npix) {
            cxd_dealloc(planes);
            return cxd_set_error(err, CXD_ERR_MALFORMED, "decode: RLE segment %u yields %zu of %zu bytes (%ux%u)",
                                 s + 1, got, npix, g.cols, g.rows);
        }
    }
    /* Segments hold the most significant byte first. */
    uint32_t mask = (1u << g.bits_stored) - 1u;
    int shift = g.high_bit + 1 - g.bits_stored;
    for (size_t i = 0; i < npix; i++) {
        uint32_t raw = nseg == 1 ? planes[i] : ((uint32_t)planes[i] << 8) | planes[npix + i];
        uint32_t v = (raw >> shift) & mask;
        if (g.pixel_representation == 1 && (v >> (g.bits_stored - 1)) & 1u)
            v |= ~mask;
        out[i] = (int32_t)v;
    }
    cxd_dealloc(planes);
    return CXD_OK;
}
