/* JPEG 2000 (1.2.840.10008.1.2.4.90/.91) for the decode path: free DCMTK has no J2K codec, so the
 * concatenated fragments are decoded here with OpenJPEG from memory, and the result is checked
 * against the image pixel module before a single value is copied. OpenJPEG never prints: its
 * messages are collected and the last error goes into the cxd_error. */
#include "read_internal.h"

#include <openjpeg.h>

#include <cstdio>
#include <cstring>

namespace {

struct mem_stream {
    const unsigned char *data;
    size_t len, pos;
};

OPJ_SIZE_T mem_read(void *buf, OPJ_SIZE_T n, void *user)
{
    mem_stream *m = (mem_stream *)user;
    if (m->pos >= m->len)
        return (OPJ_SIZE_T)-1; /* OpenJPEG's end-of-stream convention */
    size_t k = m->len - m->pos < n ? m->len - m->pos : n;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return k;
}

OPJ_OFF_T mem_skip(OPJ_OFF_T n, void *user)
{
    mem_stream *m = (mem_stream *)user;
    if (n < 0) {
        if ((size_t)(-n) > m->pos)
            return -1;
        m->pos -= (size_t)(-n);
        return n;
    }
    size_t room = m->len - m->pos;
    size_t k = (size_t)n < room ? (size_t)n : room; /* skipping past the end lands at the end */
    m->pos += k;
    return (OPJ_OFF_T)k;
}

OPJ_BOOL mem_seek(OPJ_OFF_T off, void *user)
{
    mem_stream *m = (mem_stream *)user;
    if (off < 0 || (size_t)off > m->len)
        return OPJ_FALSE;
    m->pos = (size_t)off;
    return OPJ_TRUE;
}

struct messages {
    char error[200];
};

void on_error(const char *msg, void *user)
{
    messages *m = (messages *)user;
    if (m->error[0]) /* keep the first: later ones are usually consequences */
        return;
    snprintf(m->error, sizeof m->error, "%s", msg);
    size_t n = strlen(m->error);
    while (n && (m->error[n - 1] == '\n' || m->error[n - 1] == '\r'))
        m->error[--n] = 0;
}

void on_quiet(const char *, void *) {}

struct opj_guard {
    opj_codec_t *codec = nullptr;
    opj_stream_t *stream = nullptr;
    opj_image_t *image = nullptr;
    ~opj_guard()
    {
        if (image)
            opj_image_destroy(image);
        if (stream)
            opj_stream_destroy(stream);
        if (codec)
            opj_destroy_codec(codec);
    }
};

} // namespace

cxd_status cxd_j2k_decode(const unsigned char *data, size_t len, const cxd_geometry &g, int32_t *out,
                          cxd_error *err)
{
    static const unsigned char j2k_magic[4] = {0xFF, 0x4F, 0xFF, 0x51};
    static const unsigned char jp2_magic[12] = {0, 0, 0, 0x0C, 'j', 'P', ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A};
    OPJ_CODEC_FORMAT fmt;
    if (len >= 4 && memcmp(data, j2k_magic, 4) == 0)
        fmt = OPJ_CODEC_J2K;
    else if (len >= 12 && memcmp(data, jp2_magic, 12) == 0)
        fmt = OPJ_CODEC_JP2;
    else
        return cxd_set_error(err, CXD_ERR_MALFORMED,
                             "decode: JPEG 2000 data (%zu bytes) starts with %02x %02x %02x %02x, neither a J2K "
                             "codestream (ff 4f ff 51) nor a JP2 file",
                             len, len > 0 ? data[0] : 0, len > 1 ? data[1] : 0, len > 2 ? data[2] : 0,
                             len > 3 ? data[3] : 0);

    messages msgs;
    msgs.error[0] = 0;
    mem_stream ms = {data, len, 0};
    opj_guard o;
    opj_dparameters_t params;
    opj_set_default_decoder_parameters(&params);
    if (!(o.codec = opj_create_decompress(fmt)))
        return cxd_set_error(err, CXD_ERR_NOMEM, "decode: OpenJPEG could not create a decoder");
    opj_set_error_handler(o.codec, on_error, &msgs);
    opj_set_warning_handler(o.codec, on_quiet, nullptr);
    opj_set_info_handler(o.codec, on_quiet, nullptr);
    if (!opj_setup_decoder(o.codec, &params))
        return cxd_set_error(err, CXD_ERR_INTERNAL, "decode: OpenJPEG decoder set-up failed: %s", msgs.error);
    /* Strict: a truncated codestream is an error, not a silently blurred image. */
    opj_decoder_set_strict_mode(o.codec, OPJ_TRUE);
    /* Code-blocks decode in parallel (the result does not depend on the thread count): one thread
     * per CPU, at most 4. A failure only leaves the decode single-threaded. */
    int cpus = opj_get_num_cpus();
    opj_codec_set_threads(o.codec, cpus < 1 ? 1 : cpus > 4 ? 4 : cpus);
    if (!(o.stream = opj_stream_create(64 * 1024, OPJ_TRUE)))
        return cxd_set_error(err, CXD_ERR_NOMEM, "decode: OpenJPEG could not create a stream");
    opj_stream_set_user_data(o.stream, &ms, nullptr);
    opj_stream_set_user_data_length(o.stream, (OPJ_UINT64)len);
    opj_stream_set_read_function(o.stream, mem_read);
    opj_stream_set_skip_function(o.stream, mem_skip);
    opj_stream_set_seek_function(o.stream, mem_seek);

    if (!opj_read_header(o.stream, o.codec, &o.image) || !o.image)
        return cxd_set_error(err, CXD_ERR_MALFORMED, "decode: JPEG 2000 header of %zu bytes is invalid: %s", len,
                             msgs.error[0] ? msgs.error : "(no detail)");
    /* Check what the header promises before paying for the decode. */
    if (o.image->numcomps != 1)
        return cxd_set_error(err, CXD_ERR_MALFORMED,
                             "decode: JPEG 2000 image has %u components, the DICOM header says 1 sample per pixel",
                             o.image->numcomps);
    unsigned w = o.image->x1 - o.image->x0, h = o.image->y1 - o.image->y0;
    if (w != g.cols || h != g.rows)
        return cxd_set_error(err, CXD_ERR_MALFORMED,
                             "decode: JPEG 2000 image is %ux%u, the DICOM header says %ux%u (columns x rows)", w, h,
                             g.cols, g.rows);
    opj_image_comp_t *c0 = &o.image->comps[0];
    if ((int)c0->prec > g.bits_allocated || c0->prec == 0)
        return cxd_set_error(err, CXD_ERR_MALFORMED,
                             "decode: JPEG 2000 precision %u bits does not fit BitsAllocated %d", c0->prec,
                             g.bits_allocated);
    if (!opj_decode(o.codec, o.stream, o.image) || !opj_end_decompress(o.codec, o.stream))
        return cxd_set_error(err, CXD_ERR_MALFORMED, "decode: OpenJPEG failed on a %ux%u, %u-bit codestream: %s", w,
                             h, c0->prec, msgs.error[0] ? msgs.error : "(no detail)");
    c0 = &o.image->comps[0];
    if (c0->w != g.cols || c0->h != g.rows || c0->dx != 1 || c0->dy != 1 || !c0->data)
        return cxd_set_error(err, CXD_ERR_MALFORMED,
                             "decode: JPEG 2000 component is %ux%u with subsampling %ux%u, expected %ux%u at 1x1",
                             c0->w, c0->h, c0->dx, c0->dy, g.cols, g.rows);

    /* Values must fit the stored range. An unsigned codestream may carry two's complement data
     * for a signed image (some encoders do this): reinterpret it at BitsStored. */
    int bs = g.bits_stored;
    int64_t lo = g.pixel_representation ? -((int64_t)1 << (bs - 1)) : 0;
    int64_t hi = g.pixel_representation ? ((int64_t)1 << (bs - 1)) - 1 : ((int64_t)1 << bs) - 1;
    bool reinterpret = g.pixel_representation == 1 && !c0->sgnd;
    size_t n = (size_t)g.rows * g.cols;
    for (size_t i = 0; i < n; i++) {
        int64_t v = c0->data[i];
        if (reinterpret && v >= 0 && v < ((int64_t)1 << bs) && v > hi)
            v -= (int64_t)1 << bs;
        if (v < lo || v > hi)
            return cxd_set_error(err, CXD_ERR_MALFORMED,
                                 "decode: JPEG 2000 sample %lld at pixel %zu is outside the %d-bit %s range "
                                 "(%lld..%lld)",
                                 (long long)c0->data[i], i, bs, g.pixel_representation ? "signed" : "unsigned",
                                 (long long)lo, (long long)hi);
        out[i] = (int32_t)v;
    }
    return CXD_OK;
}
