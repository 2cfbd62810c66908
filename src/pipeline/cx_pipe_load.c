/* cx_pipe_load: first stage of the pipeline. Maps the DICOM attributes (cxd_info) onto the image
 * module's grey-scale parameters, decodes and renders the pixels, and resizes them to the engine's
 * input. PNG/JPEG files (training/evaluation images) take the same path minus the grey-scale chain. */
#include "config.h"
#include "cx_pipe.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *STAGE = "load";

cx_status cx_pipe_status_from_cxd(cxd_status s)
{
    switch (s) {
    case CXD_OK: return CX_OK;
    case CXD_ERR_NOMEM: return CX_ERR_NOMEM;
    case CXD_ERR_IO: return CX_ERR_IO;
    case CXD_ERR_NOT_DICOM:
    case CXD_ERR_MALFORMED:
    case CXD_ERR_MISSING: return CX_ERR_FORMAT;
    case CXD_ERR_UNSUPPORTED: return CX_ERR_UNSUPPORTED;
    case CXD_ERR_INVALID: return CX_ERR_INVALID;
    case CXD_ERR_WRITE: return CX_ERR_DICOM;
    case CXD_ERR_NETWORK: return CX_ERR_NETWORK;
    case CXD_ERR_INTERNAL: return CX_ERR_INTERNAL;
    }
    return CX_ERR_DICOM;
}

cx_status cx_pipe_error_from_cxd(const cxd_error *derr, cxd_status s, cx_error *err)
{
    cx_status c = cx_pipe_status_from_cxd(s);
    if (err) {
        err->code = c;
        if (derr && derr->msg[0])
            snprintf(err->msg, sizeof err->msg, "%s", derr->msg);
        else
            snprintf(err->msg, sizeof err->msg, "dicom: %s", cxd_status_name(s));
    }
    return c;
}

cx_pipe_params cx_pipe_default_params(void)
{
    cx_pipe_params p;
    memset(&p, 0, sizeof p);
    cx_voi_params v = cx_voi_default_params(); /* the automatic window's defaults live there */
    p.voi_mode = CX_PIPE_VOI_FILE;
    p.auto_method = v.auto_method;
    p.auto_low_pct = v.auto_low_pct;
    p.auto_high_pct = v.auto_high_pct;
    return p;
}

cx_fit_params cx_pipe_fit_for(int min_size, int max_size)
{
    cx_fit_params f = {0, 0, 0};
    if (min_size == max_size) {
        f.longest = max_size;
    } else {
        f.min_size = min_size;
        f.max_size = max_size;
    }
    return f;
}

static cx_voi_function parse_function(const char *s, int *known)
{
    *known = 1;
    if (!s[0] || strcmp(s, "LINEAR") == 0)
        return CX_VOI_LINEAR;
    if (strcmp(s, "LINEAR_EXACT") == 0)
        return CX_VOI_LINEAR_EXACT;
    if (strcmp(s, "SIGMOID") == 0)
        return CX_VOI_SIGMOID;
    *known = 0;
    return CX_VOI_LINEAR;
}

static const char *function_name(cx_voi_function f)
{
    return f == CX_VOI_SIGMOID ? "SIGMOID" : f == CX_VOI_LINEAR_EXACT ? "LINEAR_EXACT" : "LINEAR";
}

static int window_usable(cx_voi_function f, double c, double w)
{
    return isfinite(c) && isfinite(w) && (f == CX_VOI_LINEAR ? w >= 1.0 : w > 0.0);
}

static cx_grey_lut lut_of(const cxd_lut *l)
{
    cx_grey_lut g;
    g.entries = l->entries;
    g.first_mapped = l->first_mapped;
    g.bits = l->bits;
    g.data = l->data;
    return g;
}

/* Full possible range of modality values, for VOI NONE (what DCMTK maps when it does no
 * windowing): the LUT's smallest..largest entry, or the stored range through the rescale. */
static void modality_range(const cxd_info *info, const cx_modality_params *m, double *lo, double *hi)
{
    if (m->kind == CX_MODALITY_LUT) {
        unsigned mn = 65535, mx = 0;
        for (uint32_t i = 0; i < m->lut.entries; i++) {
            mn = m->lut.data[i] < mn ? m->lut.data[i] : mn;
            mx = m->lut.data[i] > mx ? m->lut.data[i] : mx;
        }
        *lo = mn;
        *hi = mx;
    } else {
        int bits = info->bits_stored > 0 && info->bits_stored <= 32 ? info->bits_stored : 16;
        double smin = info->pixel_representation ? -ldexp(1.0, bits - 1) : 0.0;
        double smax = info->pixel_representation ? ldexp(1.0, bits - 1) - 1.0 : ldexp(1.0, bits) - 1.0;
        if (m->kind == CX_MODALITY_RESCALE) {
            double a = m->slope * smin + m->intercept, b = m->slope * smax + m->intercept;
            *lo = a < b ? a : b;
            *hi = a < b ? b : a;
        } else {
            *lo = smin;
            *hi = smax;
        }
    }
    if (!(*hi > *lo))
        *hi = *lo + 1.0;
}

/* The modality transform: the LUT sequence wins over rescale (the standard makes them exclusive). */
static cx_status map_modality(const cxd_info *info, cx_pipe_mapping *m, char *mdesc, size_t mdesc_size, cx_error *err)
{
    cx_status s;
    if (info->modality_lut.present) {
        if (info->has_rescale)
            cx_log(CX_LOG_WARN, "pipeline", NULL,
                   "both Modality LUT Sequence and Rescale Slope/Intercept present: using the LUT");
        m->modality.kind = CX_MODALITY_LUT;
        m->modality.lut = lut_of(&info->modality_lut);
        if ((s = cx_grey_lut_check(&m->modality.lut, "modality LUT", err)) != CX_OK)
            return s;
        snprintf(mdesc, mdesc_size, "modality: LUT %u entries from %d, %d bits",
                 (unsigned)m->modality.lut.entries, (int)m->modality.lut.first_mapped, m->modality.lut.bits);
    } else if (info->has_rescale) {
        m->modality.kind = CX_MODALITY_RESCALE;
        m->modality.slope = info->rescale_slope;
        m->modality.intercept = info->rescale_intercept;
        if (!isfinite(info->rescale_slope) || info->rescale_slope == 0.0 || !isfinite(info->rescale_intercept))
            return cx_error_set(err, CX_ERR_FORMAT, STAGE, "rescale slope %g / intercept %g unusable",
                                info->rescale_slope, info->rescale_intercept);
        snprintf(mdesc, mdesc_size, "modality: rescale %g/%g", info->rescale_slope, info->rescale_intercept);
    } else {
        m->modality.kind = CX_MODALITY_IDENTITY;
        snprintf(mdesc, mdesc_size, "modality: identity");
    }

    return CX_OK;
}

/* VOI from the file: the asked window if usable, else the VOI LUT, else an automatic window. */
static cx_status map_file_voi(const cxd_info *info, const cx_pipe_params *p, cx_voi_function f, const char *auto_name,
                              cx_pipe_mapping *m, char *vdesc, size_t vdesc_size, cx_error *err)
{
    cx_status s;
    int idx = p->window_index, chosen = 0;
    if (idx < 0)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "window index %d is negative", idx);
    if (idx < info->n_windows && idx < CXD_MAX_WINDOWS) {
        double c = info->window_center[idx], w = info->window_width[idx];
        if (window_usable(f, c, w)) {
            m->voi.kind = CX_VOI_WINDOW;
            m->voi.center = c;
            m->voi.width = w;
            m->voi.function = f;
            snprintf(vdesc, vdesc_size, "VOI: window %d of %d, %g/%g %s", idx + 1, info->n_windows, c, w,
                     function_name(f));
            chosen = 1;
        } else {
            cx_log(CX_LOG_WARN, "pipeline", NULL, "window %d (%g/%g) unusable for %s: ignored", idx + 1, c, w,
                   function_name(f));
        }
    } else if (info->n_windows > 0) {
        cx_log(CX_LOG_WARN, "pipeline", NULL, "window %d asked for, the file has %d", idx + 1,
               info->n_windows);
    }
    if (!chosen && info->voi_lut.present) {
        m->voi.kind = CX_VOI_LUT;
        m->voi.lut = lut_of(&info->voi_lut);
        if ((s = cx_grey_lut_check(&m->voi.lut, "VOI LUT", err)) != CX_OK)
            return s;
        snprintf(vdesc, vdesc_size, "VOI: LUT 1 of %d, %u entries from %d, %d bits",
                 info->n_voi_luts > 0 ? info->n_voi_luts : 1, (unsigned)m->voi.lut.entries,
                 (int)m->voi.lut.first_mapped, m->voi.lut.bits);
        chosen = 1;
    }
    if (!chosen) {
        m->voi.kind = CX_VOI_AUTO;
        snprintf(vdesc, vdesc_size, "VOI: automatic window (%s; the file has none)", auto_name);
    }
    return CX_OK;
}

cx_status cx_pipe_map(const cxd_info *info, const cx_pipe_params *params, cx_pipe_mapping *out,
                      cx_error *err)
{
    if (!info || !out)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "map: NULL argument");
    cx_pipe_params defp = cx_pipe_default_params();
    const cx_pipe_params *p = params ? params : &defp;
    int mono1 = strcmp(info->photometric, "MONOCHROME1") == 0;
    if (!mono1 && strcmp(info->photometric, "MONOCHROME2") != 0)
        return cx_error_set(err, CX_ERR_UNSUPPORTED, STAGE,
                            "photometric interpretation '%s' is not greyscale (MONOCHROME1/2 expected)",
                            info->photometric);
    if (info->samples_per_pixel != 1)
        return cx_error_set(err, CX_ERR_UNSUPPORTED, STAGE, "%d samples per pixel, expected 1",
                            info->samples_per_pixel);
    cx_pipe_mapping m;
    memset(&m, 0, sizeof m);
    char mdesc[120], vdesc[160], pdesc[100];
    cx_status s;

    if ((s = map_modality(info, &m, mdesc, sizeof mdesc, err)) != CX_OK)
        return s;

    /* VOI */
    m.voi = cx_voi_default_params();
    m.voi.auto_method = p->auto_method;
    m.voi.auto_low_pct = p->auto_low_pct;
    m.voi.auto_high_pct = p->auto_high_pct;
    int known;
    cx_voi_function f = parse_function(info->voi_lut_function, &known);
    if (!known)
        cx_log(CX_LOG_WARN, "pipeline", NULL, "unknown VOI LUT Function '%s': using LINEAR",
               info->voi_lut_function);
    const char *auto_name = p->auto_method == CX_AUTO_MINMAX ? "min..max" : "percentile";
    switch (p->voi_mode) {
    case CX_PIPE_VOI_WINDOW:
        if (!window_usable(f, p->center, p->width))
            return cx_error_set(err, CX_ERR_INVALID, STAGE, "window %g/%g unusable for %s", p->center, p->width,
                                function_name(f));
        m.voi.kind = CX_VOI_WINDOW;
        m.voi.center = p->center;
        m.voi.width = p->width;
        m.voi.function = f;
        snprintf(vdesc, sizeof vdesc, "VOI: window %g/%g %s (given)", p->center, p->width, function_name(f));
        break;
    case CX_PIPE_VOI_NONE:
        m.voi.kind = CX_VOI_NONE;
        modality_range(info, &m.modality, &m.voi.range_min, &m.voi.range_max);
        snprintf(vdesc, sizeof vdesc, "VOI: none, full range %g..%g", m.voi.range_min, m.voi.range_max);
        break;
    case CX_PIPE_VOI_AUTO:
        m.voi.kind = CX_VOI_AUTO;
        snprintf(vdesc, sizeof vdesc, "VOI: automatic window (%s, asked for)", auto_name);
        break;
    case CX_PIPE_VOI_FILE:
        if ((s = map_file_voi(info, p, f, auto_name, &m, vdesc, sizeof vdesc, err)) != CX_OK)
            return s;
        break;
    default:
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "unknown VOI mode %d", (int)p->voi_mode);
    }

    /* polarity */
    int inverse = strcmp(info->presentation_lut_shape, "INVERSE") == 0;
    if (info->presentation_lut_shape[0] && !inverse && strcmp(info->presentation_lut_shape, "IDENTITY") != 0)
        cx_log(CX_LOG_WARN, "pipeline", NULL, "Presentation LUT Shape '%s' not handled: treated as IDENTITY",
               info->presentation_lut_shape);
    m.voi.invert = mono1 || inverse;
    snprintf(pdesc, sizeof pdesc, "polarity: %s", m.voi.invert ? (mono1 && inverse ? "inverted (MONOCHROME1, INVERSE)"
                                                                  : mono1 ? "inverted (MONOCHROME1)"
                                                                          : "inverted (Presentation LUT Shape INVERSE)")
                                                               : "normal");
    snprintf(m.description, sizeof m.description, "%s; %s; %s", mdesc, vdesc, pdesc);
    *out = m;
    return CX_OK;
}

void cx_pipe_image_free(cx_pipe_image *img)
{
    if (!img)
        return;
    cx_image_free(img->display);
    cx_image_free(img->input);
    cx_free(img);
}

static int fit_requested(const cx_fit_params *f)
{
    return f->longest > 0 || f->min_size > 0;
}

/* Takes ownership of `display`; adds the resized input when asked. */
static cx_status finish(cx_image *display, const cx_pipe_params *p, const char *kind, const char *desc,
                        cx_pipe_image **out, cx_error *err)
{
    cx_pipe_image *pi = cx_calloc(1, sizeof *pi);
    if (!pi) {
        cx_image_free(display);
        return cx_error_set(err, CX_ERR_NOMEM, STAGE, "no memory for the loaded image");
    }
    pi->display = display;
    pi->source_width = display->width;
    pi->source_height = display->height;
    snprintf(pi->source_kind, sizeof pi->source_kind, "%s", kind);
    snprintf(pi->description, sizeof pi->description, "%s", desc);
    if (fit_requested(&p->fit)) {
        int w, h;
        cx_status s = cx_image_fit_size(display->width, display->height, &p->fit, &w, &h, err);
        if (s == CX_OK)
            s = cx_image_resize_area(display, w, h, &pi->input, err);
        if (s != CX_OK) {
            cx_pipe_image_free(pi);
            return s;
        }
    }
    *out = pi;
    return CX_OK;
}

cx_status cx_pipe_render_dicom(const cxd_file *f, const cxd_info *info, const cx_pipe_params *params,
                               cx_pipe_image **out, cx_error *err)
{
    if (!f || !info || !out)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "render: NULL argument");
    cx_pipe_params defp = cx_pipe_default_params();
    const cx_pipe_params *p = params ? params : &defp;
    cx_pipe_mapping m;
    cx_status s = cx_pipe_map(info, p, &m, err);
    if (s != CX_OK)
        return s;
    cxd_pixels px;
    cxd_error derr;
    memset(&derr, 0, sizeof derr);
    double t0 = cx_now_ms();
    cxd_status ds = cxd_file_decode(f, &px, &derr);
    if (ds != CXD_OK)
        return cx_pipe_error_from_cxd(&derr, ds, err);
    double t1 = cx_now_ms();
    cx_image *display = NULL;
    s = cx_grey_render(px.data, px.columns, px.rows, &m.modality, &m.voi, &display, err);
    cxd_pixels_clear(&px);
    if (s != CX_OK)
        return s;
    cx_log(CX_LOG_DEBUG, "pipeline", NULL, "rendered %dx%d: %s", display->width, display->height, m.description);
    s = finish(display, p, "dicom", m.description, out, err);
    if (s == CX_OK) {
        (*out)->ms_decode = t1 - t0;
        (*out)->ms_window = cx_now_ms() - t1;
    }
    return s;
}

cx_status cx_pipe_load_file(const char *path, const cx_pipe_params *params, cx_pipe_image **out,
                            cxd_info *info, cx_error *err)
{
    if (!path || !out)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "NULL argument");
    cx_pipe_params defp = cx_pipe_default_params();
    const cx_pipe_params *p = params ? params : &defp;
    unsigned char head[8] = {0};
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return cx_error_set(err, CX_ERR_IO, STAGE, "cannot open %s: %s", path, strerror(errno));
    size_t got = fread(head, 1, sizeof head, fp);
    fclose(fp);
    if (info)
        memset(info, 0, sizeof *info);
    if (cx_image_sniff(head, got)) {
        cx_image *img = NULL;
        int bits = 8;
        cx_status s = cx_image_read(path, &img, &bits, err);
        if (s != CX_OK)
            return s;
        const char *kind = head[0] == 0x89 ? "png" : "jpeg";
        char desc[100];
        snprintf(desc, sizeof desc, "%s, %d-bit greyscale (colour converted to luma), no windowing", kind, bits);
        return finish(img, p, kind, desc, out, err);
    }
    cxd_file *f = NULL;
    cxd_error derr;
    memset(&derr, 0, sizeof derr);
    cxd_status ds = cxd_file_open(path, &f, &derr);
    if (ds != CXD_OK)
        return cx_pipe_error_from_cxd(&derr, ds, err);
    cxd_info local;
    memset(&local, 0, sizeof local);
    ds = cxd_file_info(f, &local, &derr);
    if (ds != CXD_OK) {
        cxd_file_free(f);
        return cx_pipe_error_from_cxd(&derr, ds, err);
    }
    cx_status s = cx_pipe_render_dicom(f, &local, p, out, err);
    cxd_file_free(f);
    if (s == CX_OK && info)
        *info = local; /* ownership of the LUT data passes to the caller */
    else
        cxd_info_clear(&local);
    return s;
}

int cx_pipe_spacing(const cxd_info *info, double spacing[2], const char **which)
{
    return cxd_info_spacing(info, spacing, which);
}
