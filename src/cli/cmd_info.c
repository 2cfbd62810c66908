/* cxrseg info: what the pipeline will read from a file, for IT staff checking what a modality
 * sends: every attribute of cxd_info, human-readable or JSON, and which pixel spacing areas will
 * be computed with (PixelSpacing 0\0 counts as absent). PNG/JPEG files get their size only. */
#include "config.h"
#include "cli.h"
#include "cx_json.h"
#include "cx_image.h"
#include "cx_pipe.h"

#include <errno.h>
#include <string.h>

static const char *CMD = "info";

static void usage(FILE *out)
{
    fputs("Usage: cxrseg info FILE [--json]\n"
          "Shows the attributes cxrseg reads from a DICOM file: identification, pixel description,\n"
          "rescale, windows, LUTs, presentation LUT shape, pixel spacing and the spacing that areas\n"
          "will be computed with, and the patient/study attributes derived objects copy.\n"
          "For a PNG or JPEG file, shows its format and size.\n"
          "  --json   one JSON object on stdout instead of text\n"
          "Exit codes: 0 ok, 1 usage, 2 unreadable or malformed file, 3 unsupported, 6 internal.\n",
          out);
}

typedef struct str_field {
    const char *label, *key;
    size_t offset;
} str_field;

#define SF(label, key, member) {label, key, offsetof(cxd_info, member)}
static const str_field str_fields[] = {
    SF("SOP Class UID", "sop_class_uid", sop_class_uid),
    SF("SOP Instance UID", "sop_instance_uid", sop_instance_uid),
    SF("Study Instance UID", "study_instance_uid", study_instance_uid),
    SF("Series Instance UID", "series_instance_uid", series_instance_uid),
    SF("Transfer Syntax UID", "transfer_syntax_uid", transfer_syntax_uid),
    SF("Transfer Syntax", "transfer_syntax_name", transfer_syntax_name),
    SF("Modality", "modality", modality),
    SF("Body Part Examined", "body_part_examined", body_part_examined),
    SF("View Position", "view_position", view_position),
    SF("Laterality", "laterality", laterality),
    SF("Patient Orientation", "patient_orientation", patient_orientation),
    SF("Series Description", "series_description", series_description),
    SF("Photometric Interpretation", "photometric", photometric),
};
static const str_field patient_fields[] = {
    SF("Patient Name", "patient_name", patient_name),
    SF("Patient ID", "patient_id", patient_id),
    SF("Patient Birth Date", "patient_birth_date", patient_birth_date),
    SF("Patient Sex", "patient_sex", patient_sex),
    SF("Study Date", "study_date", study_date),
    SF("Study Time", "study_time", study_time),
    SF("Study ID", "study_id", study_id),
    SF("Accession Number", "accession_number", accession_number),
    SF("Referring Physician", "referring_physician_name", referring_physician_name),
    SF("Study Description", "study_description", study_description),
    SF("Specific Character Set", "specific_character_set", specific_character_set),
    SF("Series Number", "series_number", series_number),
    SF("Instance Number", "instance_number", instance_number),
    SF("Manufacturer", "manufacturer", manufacturer),
};
#define N_OF(a) (sizeof a / sizeof a[0])

static const char *field(const cxd_info *i, const str_field *f)
{
    return (const char *)i + f->offset;
}

static void text_line(const char *label, const char *value)
{
    printf("%-28s %s\n", label, value && *value ? value : "(absent)");
}

static void text_lut(const char *label, const cxd_lut *l)
{
    char buf[CXD_LSTR + CXD_STR + 100];
    if (!l->present) {
        text_line(label, "");
        return;
    }
    snprintf(buf, sizeof buf, "%u entries, first mapped %d, %d bits%s%s%s%s", (unsigned)l->entries,
             (int)l->first_mapped, l->bits, l->lut_type[0] ? ", type " : "", l->lut_type,
             l->explanation[0] ? ", " : "", l->explanation);
    text_line(label, buf);
}

/* "PixelSpacing 0.139\0.139 mm" style texts for both spacing attributes and the choice. */
static void spacing_texts(const cxd_info *in, char *ps, size_t nps, char *ips, size_t nips, char *use,
                          size_t nuse)
{
    if (in->has_pixel_spacing)
        snprintf(ps, nps, "%g\\%g mm (row\\column)", in->pixel_spacing[0], in->pixel_spacing[1]);
    else if (in->pixel_spacing_unusable)
        snprintf(ps, nps, "present but 0\\0 or not two positive numbers (not calibrated): treated as absent");
    else
        snprintf(ps, nps, "absent");
    if (in->has_imager_pixel_spacing)
        snprintf(ips, nips, "%g\\%g mm (row\\column, at the detector)", in->imager_pixel_spacing[0],
                 in->imager_pixel_spacing[1]);
    else if (in->imager_pixel_spacing_unusable)
        snprintf(ips, nips, "present but 0\\0 or not two positive numbers: treated as absent");
    else
        snprintf(ips, nips, "absent");
    double sp[2];
    const char *which = "none";
    if (cx_pipe_spacing(in, sp, &which))
        snprintf(use, nuse, "%s %g x %g mm%s", which, sp[0], sp[1],
                 strcmp(which, "ImagerPixelSpacing") == 0 ? " (at the detector: includes magnification)" : "");
    else
        snprintf(use, nuse, "none: no usable spacing, areas are reported in pixels only");
}

static void print_text(const char *path, const cxd_info *in)
{
    text_line("File", path);
    text_line("Format", "DICOM");
    for (size_t k = 0; k < N_OF(str_fields); k++)
        text_line(str_fields[k].label, field(in, &str_fields[k]));
    char buf[512];
    snprintf(buf, sizeof buf, "%d x %d (columns x rows)", in->columns, in->rows);
    text_line("Size", buf);
    snprintf(buf, sizeof buf, "%d", in->samples_per_pixel);
    text_line("Samples per Pixel", buf);
    snprintf(buf, sizeof buf, "%d", in->number_of_frames);
    text_line("Number of Frames", buf);
    snprintf(buf, sizeof buf, "allocated %d, stored %d, high bit %d", in->bits_allocated, in->bits_stored,
             in->high_bit);
    text_line("Bits", buf);
    text_line("Pixel Representation", in->pixel_representation ? "1 (signed)" : "0 (unsigned)");
    if (in->has_rescale)
        snprintf(buf, sizeof buf, "slope %g, intercept %g%s%s", in->rescale_slope, in->rescale_intercept,
                 in->rescale_type[0] ? ", type " : "", in->rescale_type);
    else
        buf[0] = 0;
    text_line("Rescale", buf);
    if (in->n_windows == 0)
        text_line("Window", "");
    for (int w = 0; w < in->n_windows && w < CXD_MAX_WINDOWS; w++) {
        char label[32];
        snprintf(label, sizeof label, "Window %d (centre/width)", w + 1);
        snprintf(buf, sizeof buf, "%g/%g%s%s", in->window_center[w], in->window_width[w],
                 in->window_explanation[w][0] ? " " : "", in->window_explanation[w]);
        text_line(label, buf);
    }
    text_line("VOI LUT Function", in->voi_lut_function[0] ? in->voi_lut_function : "(absent: LINEAR)");
    text_lut("Modality LUT", &in->modality_lut);
    text_lut("VOI LUT", &in->voi_lut);
    if (in->n_voi_luts > 1) {
        snprintf(buf, sizeof buf, "%d (the first is used)", in->n_voi_luts);
        text_line("VOI LUTs", buf);
    }
    text_line("Presentation LUT Shape", in->presentation_lut_shape);
    char ps[160], ips[160], use[200];
    spacing_texts(in, ps, sizeof ps, ips, sizeof ips, use, sizeof use);
    text_line("Pixel Spacing", ps);
    text_line("Imager Pixel Spacing", ips);
    text_line("Spacing for areas", use);
    cx_pipe_mapping m;
    cx_error e = {0};
    if (cx_pipe_map(in, NULL, &m, &e) == CX_OK)
        text_line("Rendering", m.description);
    else
        text_line("Rendering", e.msg);
    for (size_t k = 0; k < N_OF(patient_fields); k++)
        text_line(patient_fields[k].label, field(in, &patient_fields[k]));
}

static void json_kv(const char *key, const char *value, int *first)
{
    printf("%s\n  \"%s\": ", *first ? "" : ",", key);
    cx_json_fput_text(stdout, value);
    *first = 0;
}

static void json_num(const char *key, double v, int *first)
{
    printf("%s\n  \"%s\": %.17g", *first ? "" : ",", key, v);
    *first = 0;
}

static void json_lut(const char *key, const cxd_lut *l, int *first)
{
    printf("%s\n  \"%s\": ", *first ? "" : ",", key);
    *first = 0;
    if (!l->present) {
        fputs("null", stdout);
        return;
    }
    printf("{\"entries\": %u, \"first_mapped\": %d, \"bits\": %d, \"lut_type\": ", (unsigned)l->entries,
           (int)l->first_mapped, l->bits);
    cx_json_fput_text(stdout, l->lut_type);
    fputs(", \"explanation\": ", stdout);
    cx_json_fput_text(stdout, l->explanation);
    fputs("}", stdout);
}

static void print_json(const char *path, const cxd_info *in)
{
    int first = 1;
    fputs("{", stdout);
    json_kv("file", path, &first);
    json_kv("format", "dicom", &first);
    for (size_t k = 0; k < N_OF(str_fields); k++)
        json_kv(str_fields[k].key, field(in, &str_fields[k]), &first);
    json_num("rows", in->rows, &first);
    json_num("columns", in->columns, &first);
    json_num("samples_per_pixel", in->samples_per_pixel, &first);
    json_num("number_of_frames", in->number_of_frames, &first);
    json_num("bits_allocated", in->bits_allocated, &first);
    json_num("bits_stored", in->bits_stored, &first);
    json_num("high_bit", in->high_bit, &first);
    json_num("pixel_representation", in->pixel_representation, &first);
    if (in->has_rescale) {
        printf(",\n  \"rescale\": {\"slope\": %.17g, \"intercept\": %.17g, \"type\": ", in->rescale_slope,
               in->rescale_intercept);
        cx_json_fput_text(stdout, in->rescale_type);
        fputs("}", stdout);
    } else {
        fputs(",\n  \"rescale\": null", stdout);
    }
    fputs(",\n  \"windows\": [", stdout);
    for (int w = 0; w < in->n_windows && w < CXD_MAX_WINDOWS; w++) {
        printf("%s{\"center\": %.17g, \"width\": %.17g, \"explanation\": ", w ? ", " : "", in->window_center[w],
               in->window_width[w]);
        cx_json_fput_text(stdout, in->window_explanation[w]);
        fputs("}", stdout);
    }
    fputs("]", stdout);
    json_kv("voi_lut_function", in->voi_lut_function, &first);
    json_lut("modality_lut", &in->modality_lut, &first);
    json_lut("voi_lut", &in->voi_lut, &first);
    json_num("n_voi_luts", in->n_voi_luts, &first);
    json_kv("presentation_lut_shape", in->presentation_lut_shape, &first);
    if (in->has_pixel_spacing)
        printf(",\n  \"pixel_spacing\": [%.17g, %.17g]", in->pixel_spacing[0], in->pixel_spacing[1]);
    else
        fputs(",\n  \"pixel_spacing\": null", stdout);
    printf(",\n  \"pixel_spacing_unusable\": %s", in->pixel_spacing_unusable ? "true" : "false");
    if (in->has_imager_pixel_spacing)
        printf(",\n  \"imager_pixel_spacing\": [%.17g, %.17g]", in->imager_pixel_spacing[0],
               in->imager_pixel_spacing[1]);
    else
        fputs(",\n  \"imager_pixel_spacing\": null", stdout);
    double sp[2];
    const char *which = "none";
    if (cx_pipe_spacing(in, sp, &which))
        printf(",\n  \"spacing_for_areas\": {\"source\": \"%s\", \"row_mm\": %.17g, \"column_mm\": %.17g}", which,
               sp[0], sp[1]);
    else
        fputs(",\n  \"spacing_for_areas\": {\"source\": \"none\"}", stdout);
    cx_pipe_mapping m;
    cx_error e = {0};
    json_kv("rendering", cx_pipe_map(in, NULL, &m, &e) == CX_OK ? m.description : e.msg, &first);
    for (size_t k = 0; k < N_OF(patient_fields); k++)
        json_kv(patient_fields[k].key, field(in, &patient_fields[k]), &first);
    fputs("\n}\n", stdout);
}

static int info_image(const char *path, int json)
{
    cx_image *img = NULL;
    cx_error e = {0};
    int bits = 8;
    cx_status s = cx_image_read(path, &img, &bits, &e);
    if (s != CX_OK)
        return cx_cli_fail(CMD, &e);
    unsigned char h = 0;
    FILE *fp = fopen(path, "rb");
    if (fp) {
        if (fread(&h, 1, 1, fp) != 1)
            h = 0;
        fclose(fp);
    }
    const char *fmt = h == 0x89 ? "png" : "jpeg";
    if (json) {
        fputs("{\"file\": ", stdout);
        cx_json_fput_text(stdout, path);
        printf(", \"format\": \"%s\", \"columns\": %d, \"rows\": %d, \"bits\": %d}\n", fmt, img->width,
               img->height, bits);
    } else {
        text_line("File", path);
        text_line("Format", fmt);
        char buf[120];
        snprintf(buf, sizeof buf, "%d x %d (columns x rows), %d bits, read as greyscale", img->width, img->height,
                 bits);
        text_line("Size", buf);
    }
    cx_image_free(img);
    return CX_EXIT_OK;
}

int cx_cli_info(int argc, char **argv)
{
    static const struct option longs[] = {{"json", no_argument, NULL, 256}, {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    const char *path = NULL;
    int json = 0, c;
    optind = 0;
    while ((c = cx_cli_getopt(CMD, argc, argv, "h", longs)) != -1) {
        switch (c) {
        case 256: json = 1; break;
        case 'h': usage(stdout); return CX_EXIT_OK;
        case 1:
            if (path)
                return cx_cli_usage(CMD, "one FILE expected, got '%s' and '%s'", path, optarg);
            path = optarg;
            break;
        default: return CX_EXIT_USAGE;
        }
    }
    if (!path)
        return cx_cli_usage(CMD, "FILE missing");
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "cxrseg %s: cannot open %s: %s\n", CMD, path, strerror(errno));
        return CX_EXIT_INPUT;
    }
    unsigned char head[8];
    size_t got = fread(head, 1, sizeof head, fp);
    fclose(fp);
    if (cx_image_sniff(head, got))
        return info_image(path, json);

    cxd_file *f = NULL;
    cxd_error de;
    memset(&de, 0, sizeof de);
    cx_error e = {0};
    cxd_status ds = cxd_file_open(path, &f, &de);
    if (ds != CXD_OK) {
        cx_pipe_error_from_cxd(&de, ds, &e);
        return cx_cli_fail(CMD, &e);
    }
    cxd_info in;
    memset(&in, 0, sizeof in);
    ds = cxd_file_info(f, &in, &de);
    cxd_file_free(f);
    if (ds != CXD_OK) {
        cx_pipe_error_from_cxd(&de, ds, &e);
        return cx_cli_fail(CMD, &e);
    }
    if (json)
        print_json(path, &in);
    else
        print_text(path, &in);
    cxd_info_clear(&in);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "cxrseg %s: writing the output failed: %s\n", CMD, strerror(errno));
        return CX_EXIT_INPUT;
    }
    return CX_EXIT_OK;
}
