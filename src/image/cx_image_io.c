/* cx_image_io: PNG out (rendered images, overlays) and PNG/JPEG in (the training and evaluation
 * images are ordinary JPEG/PNG files). libpng's and libjpeg's default error handlers abort or
 * exit; both are replaced here by longjmp handlers that turn every decoder complaint into a
 * cx_error, so a corrupt file is a message, never a crash. */
#include "config.h"
#include "cx_image.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which needs FILE */
#include <string.h>
#include <jpeglib.h>
#include <png.h>

static const char *STAGE = "png";
static const char *JSTAGE = "jpeg";

/* ---------------------------------------------------------------- PNG error plumbing */

typedef struct png_ctx {
    jmp_buf jb;
    char msg[200];
} png_ctx;

static void png_err_fn(png_structp png, png_const_charp msg)
{
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "libpng error");
    longjmp(c->jb, 1);
}

static void png_warn_fn(png_structp png, png_const_charp msg)
{
    (void)png;
    cx_log(CX_LOG_DEBUG, "png", NULL, "libpng warning: %s", msg ? msg : "");
}

/* ---------------------------------------------------------------- writing */

/* rows: `height` pointers to rows of `width` samples of `channels` x `bits`. */
static cx_status write_png_rows(const char *path, int width, int height, int color_type, int bits,
                                png_bytep *rows, cx_error *err)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return cx_error_set(err, CX_ERR_IO, STAGE, "cannot create %s: %s", path, strerror(errno));
    png_ctx ctx;
    ctx.msg[0] = 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_err_fn, png_warn_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        fclose(fp);
        return cx_error_set(err, CX_ERR_NOMEM, STAGE, "cannot create a libpng writer for %s", path);
    }
    if (setjmp(ctx.jb)) {
        png_destroy_write_struct(&png, &info);
        fclose(fp);
        remove(path);
        return cx_error_set(err, CX_ERR_IO, STAGE, "writing %s failed: %s", path, ctx.msg);
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, bits, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    /* libpng's defaults (adaptive filter choice, zlib level 6) spent ~1e9 instructions on a
     * 1841x1955 radiograph. One fixed UP filter (rows of an X-ray are highly correlated) with zlib's
     * run-length strategy took 0.4e9 and gave a smaller file (1.26 MB against 1.4-1.9 MB for the
     * other filter/level pairs measured). */
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_UP);
    png_set_compression_strategy(png, 3 /* Z_RLE */);
    png_set_compression_level(png, 1);
    png_write_info(png, info);
    if (bits == 16)
        png_set_swap(png); /* our samples are host (little-endian) order; PNG is big-endian */
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(fp) != 0) {
        remove(path);
        return cx_error_set(err, CX_ERR_IO, STAGE, "closing %s failed: %s", path, strerror(errno));
    }
    return CX_OK;
}

static cx_status check_size(const char *stage, int width, int height, cx_error *err)
{
    if (width <= 0 || height <= 0 || width > CX_IMAGE_MAX_SIDE || height > CX_IMAGE_MAX_SIDE)
        return cx_error_set(err, CX_ERR_INVALID, stage, "image size %dx%d outside 1..%d", width, height,
                            CX_IMAGE_MAX_SIDE);
    return CX_OK;
}

cx_status cx_image_write_png(const char *path, const cx_image *img, int bits, cx_error *err)
{
    if (!path || !img || !img->data)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "write: NULL argument");
    if (bits != 8 && bits != 16)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "write %s: %d bits per sample, expected 8 or 16", path,
                            bits);
    cx_status s = check_size(STAGE, img->width, img->height, err);
    if (s != CX_OK)
        return s;
    size_t n = (size_t)img->width * (size_t)img->height, rowbytes = (size_t)img->width * (size_t)(bits / 8);
    uint8_t *buf = cx_malloc(n * (size_t)(bits / 8));
    png_bytep *rows = cx_malloc((size_t)img->height * sizeof *rows);
    if (!buf || !rows) {
        cx_free(buf);
        cx_free(rows);
        return cx_error_set(err, CX_ERR_NOMEM, STAGE, "no memory to write a %dx%d PNG", img->width, img->height);
    }
    if (bits == 8)
        cx_image_to_u8(img, buf);
    else
        cx_image_to_u16(img, (uint16_t *)(void *)buf);
    for (int y = 0; y < img->height; y++)
        rows[y] = buf + (size_t)y * rowbytes;
    s = write_png_rows(path, img->width, img->height, PNG_COLOR_TYPE_GRAY, bits, rows, err);
    cx_free(rows);
    cx_free(buf);
    return s;
}

cx_status cx_image_write_png_rgb(const char *path, const uint8_t *rgb, int width, int height, cx_error *err)
{
    if (!path || !rgb)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "write: NULL argument");
    cx_status s = check_size(STAGE, width, height, err);
    if (s != CX_OK)
        return s;
    png_bytep *rows = cx_malloc((size_t)height * sizeof *rows);
    if (!rows)
        return cx_error_set(err, CX_ERR_NOMEM, STAGE, "no memory to write a %dx%d PNG", width, height);
    for (int y = 0; y < height; y++)
        rows[y] = (png_bytep)(rgb + (size_t)y * (size_t)width * 3);
    s = write_png_rows(path, width, height, PNG_COLOR_TYPE_RGB, 8, rows, err);
    cx_free(rows);
    return s;
}

/* ---------------------------------------------------------------- reading */

/* Pillow's ITU-R 601-2 luma for 8-bit RGB ("L" conversion), so that training and run time agree. */
static inline float luma8(unsigned r, unsigned g, unsigned b)
{
    return (float)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16) / 255.0f;
}

int cx_image_sniff(const void *head, size_t len)
{
    const unsigned char *h = head;
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 8 && memcmp(h, png_sig, 8) == 0)
        return 1;
    if (len >= 3 && h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF)
        return 1;
    return 0;
}

/* State that must survive a longjmp lives in this struct, not in automatic variables. */
typedef struct png_read_state {
    png_ctx ctx;
    uint8_t *buf;
    png_bytep *rows;
    cx_image *img;
} png_read_state;

static cx_status read_png(const char *path, FILE *fp, cx_image **out, int *bit_depth, cx_error *err)
{
    png_read_state st;
    memset(&st, 0, sizeof st);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st.ctx, png_err_fn, png_warn_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return cx_error_set(err, CX_ERR_NOMEM, STAGE, "cannot create a libpng reader for %s", path);
    }
    cx_status s = CX_OK;
    if (setjmp(st.ctx.jb)) {
        s = cx_error_set(err, CX_ERR_FORMAT, STAGE, "%s: %s", path, st.ctx.msg);
        goto done;
    }
    png_set_user_limits(png, CX_IMAGE_MAX_SIDE, CX_IMAGE_MAX_SIDE);
    png_init_io(png, fp);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int ct = png_get_color_type(png, info), bits = png_get_bit_depth(png, info);
    /* normalise to 8- or 16-bit GRAY or RGB, alpha stripped */
    if (ct == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && bits < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (ct & PNG_COLOR_MASK_ALPHA)
        png_set_strip_alpha(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(png), png_set_strip_alpha(png);
    if (bits == 16)
        png_set_swap(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info), obits = png_get_bit_depth(png, info);
    if ((channels != 1 && channels != 3) || (obits != 8 && obits != 16)) {
        s = cx_error_set(err, CX_ERR_UNSUPPORTED, STAGE, "%s: %d channels of %d bits after expansion", path,
                         channels, obits);
        goto done;
    }
    if ((s = cx_image_new((int)w, (int)h, &st.img, err)) != CX_OK)
        goto done;
    size_t rowbytes = png_get_rowbytes(png, info);
    st.buf = cx_malloc(rowbytes * h);
    st.rows = cx_malloc(h * sizeof *st.rows);
    if (!st.buf || !st.rows) {
        s = cx_error_set(err, CX_ERR_NOMEM, STAGE, "%s: no memory for %ux%u pixels", path, (unsigned)w,
                         (unsigned)h);
        goto done;
    }
    for (png_uint_32 y = 0; y < h; y++)
        st.rows[y] = st.buf + y * rowbytes;
    png_read_image(png, st.rows);
    png_read_end(png, NULL);
    for (png_uint_32 y = 0; y < h; y++) {
        float *d = st.img->data + (size_t)y * w;
        if (obits == 8) {
            const uint8_t *r = st.rows[y];
            if (channels == 1)
                for (png_uint_32 x = 0; x < w; x++)
                    d[x] = r[x] / 255.0f;
            else
                for (png_uint_32 x = 0; x < w; x++)
                    d[x] = luma8(r[3 * x], r[3 * x + 1], r[3 * x + 2]);
        } else {
            const uint16_t *r = (const uint16_t *)(void *)st.rows[y];
            if (channels == 1)
                for (png_uint_32 x = 0; x < w; x++)
                    d[x] = (float)(r[x] / 65535.0);
            else
                for (png_uint_32 x = 0; x < w; x++)
                    d[x] = (float)((0.299 * r[3 * x] + 0.587 * r[3 * x + 1] + 0.114 * r[3 * x + 2]) / 65535.0);
        }
    }
    if (bit_depth)
        *bit_depth = obits;
    *out = st.img;
    st.img = NULL;
done:
    png_destroy_read_struct(&png, &info, NULL);
    cx_free(st.buf);
    cx_free(st.rows);
    cx_image_free(st.img);
    return s;
}

typedef struct jpeg_err_ctx {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err_ctx;

static void jpeg_error_exit_fn(j_common_ptr cinfo)
{
    jpeg_err_ctx *c = (jpeg_err_ctx *)(void *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, c->msg);
    longjmp(c->jb, 1);
}

static void jpeg_output_fn(j_common_ptr cinfo)
{
    char buf[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buf);
    cx_log(CX_LOG_DEBUG, "jpeg", NULL, "libjpeg: %s", buf);
}

typedef struct jpeg_read_state {
    struct jpeg_decompress_struct cinfo;
    jpeg_err_ctx jerr;
    uint8_t *row;
    cx_image *img;
} jpeg_read_state;

static cx_status read_jpeg(const char *path, FILE *fp, cx_image **out, int *bit_depth, cx_error *err)
{
    jpeg_read_state *st = cx_calloc(1, sizeof *st);
    if (!st)
        return cx_error_set(err, CX_ERR_NOMEM, JSTAGE, "no memory for a JPEG reader");
    cx_status s = CX_OK;
    st->cinfo.err = jpeg_std_error(&st->jerr.pub);
    st->jerr.pub.error_exit = jpeg_error_exit_fn;
    st->jerr.pub.output_message = jpeg_output_fn;
    if (setjmp(st->jerr.jb)) {
        s = cx_error_set(err, CX_ERR_FORMAT, JSTAGE, "%s: %s", path, st->jerr.msg);
        goto done;
    }
    jpeg_create_decompress(&st->cinfo);
    jpeg_stdio_src(&st->cinfo, fp);
    jpeg_read_header(&st->cinfo, TRUE);
    int nc = st->cinfo.num_components;
    if (nc == 1) {
        st->cinfo.out_color_space = JCS_GRAYSCALE;
    } else if (nc == 3) {
        /* decode to RGB then take luma, as Pillow does; libjpeg's own YCbCr->grey would use Y
         * directly and differ by up to one grey level */
        st->cinfo.out_color_space = JCS_RGB;
    } else {
        s = cx_error_set(err, CX_ERR_UNSUPPORTED, JSTAGE, "%s: %d colour components (CMYK?), expected 1 or 3",
                         path, nc);
        goto done;
    }
    if (st->cinfo.image_width > CX_IMAGE_MAX_SIDE || st->cinfo.image_height > CX_IMAGE_MAX_SIDE) {
        s = cx_error_set(err, CX_ERR_FORMAT, JSTAGE, "%s: size %ux%u exceeds %d", path,
                         (unsigned)st->cinfo.image_width, (unsigned)st->cinfo.image_height, CX_IMAGE_MAX_SIDE);
        goto done;
    }
    jpeg_start_decompress(&st->cinfo);
    int w = (int)st->cinfo.output_width, h = (int)st->cinfo.output_height, oc = st->cinfo.output_components;
    if ((s = cx_image_new(w, h, &st->img, err)) != CX_OK)
        goto done;
    st->row = cx_malloc((size_t)w * (size_t)oc);
    if (!st->row) {
        s = cx_error_set(err, CX_ERR_NOMEM, JSTAGE, "%s: no memory for a row of %d pixels", path, w);
        goto done;
    }
    while (st->cinfo.output_scanline < st->cinfo.output_height) {
        int y = (int)st->cinfo.output_scanline;
        JSAMPROW rp = st->row;
        if (jpeg_read_scanlines(&st->cinfo, &rp, 1) != 1) {
            s = cx_error_set(err, CX_ERR_FORMAT, JSTAGE, "%s: truncated at row %d of %d", path, y, h);
            goto done;
        }
        float *d = st->img->data + (size_t)y * (size_t)w;
        if (oc == 1)
            for (int x = 0; x < w; x++)
                d[x] = st->row[x] / 255.0f;
        else
            for (int x = 0; x < w; x++)
                d[x] = luma8(st->row[3 * x], st->row[3 * x + 1], st->row[3 * x + 2]);
    }
    if (st->jerr.pub.num_warnings > 0) {
        /* libjpeg pads a truncated file with grey and only warns: refuse it */
        s = cx_error_set(err, CX_ERR_FORMAT, JSTAGE, "%s: corrupt or truncated data (%ld warnings)", path,
                         st->jerr.pub.num_warnings);
        goto done;
    }
    jpeg_finish_decompress(&st->cinfo);
    if (bit_depth)
        *bit_depth = 8;
    *out = st->img;
    st->img = NULL;
done:
    jpeg_destroy_decompress(&st->cinfo);
    cx_free(st->row);
    cx_image_free(st->img);
    cx_free(st);
    return s;
}

cx_status cx_image_read(const char *path, cx_image **out, int *bit_depth, cx_error *err)
{
    if (!path || !out)
        return cx_error_set(err, CX_ERR_INVALID, "image", "read: NULL argument");
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return cx_error_set(err, CX_ERR_IO, "image", "cannot open %s: %s", path, strerror(errno));
    unsigned char head[8];
    size_t got = fread(head, 1, sizeof head, fp);
    rewind(fp);
    cx_status s;
    if (got >= 8 && head[0] == 0x89 && memcmp(head + 1, "PNG", 3) == 0)
        s = read_png(path, fp, out, bit_depth, err);
    else if (got >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF)
        s = read_jpeg(path, fp, out, bit_depth, err);
    else
        s = cx_error_set(err, CX_ERR_UNSUPPORTED, "image", "%s: neither PNG nor JPEG (%zu bytes read)", path,
                         got);
    fclose(fp);
    return s;
}
