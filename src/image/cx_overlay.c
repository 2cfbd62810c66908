/* cx_overlay: the picture a person looks at without a DICOM viewer (the CLI's overlay.png and the
 * secondary capture): the display image with every mask tinted and outlined in its colour, and a
 * legend drawn with a built-in 5x7 font. Knows nothing of findings or DICOM: the pipeline says
 * what the layers and the legend lines are. */
#include "config.h"
#include "cx_image.h"

#include <string.h>

#define STAGE "overlay"

/* 5x7 glyphs, one byte per row, bit 4 = leftmost column; upper case only (text is drawn in
 * upper case), made for this legend. */
typedef struct glyph {
    char c;
    uint8_t rows[7];
} glyph;

static const glyph FONT[] = {
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}}, {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}}, {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}}, {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}}, {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
    {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}}, {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}}, {';', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08}},
    {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}}, {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
    {'\'', {0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}}, {'!', {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04}},
    {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
};
#define N_GLYPHS (sizeof FONT / sizeof FONT[0])

typedef struct canvas {
    int w, h;
    uint8_t *px; /* RGB */
} canvas;

static void fill_rect(canvas *cv, int x0, int y0, int x1, int y1, const uint8_t c[3])
{
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > cv->w) x1 = cv->w;
    if (y1 > cv->h) y1 = cv->h;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            memcpy(cv->px + ((size_t)y * cv->w + x) * 3, c, 3);
}

static const glyph *glyph_for(char ch)
{
    char u = (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
    for (size_t i = 0; i < N_GLYPHS; i++)
        if (FONT[i].c == u)
            return &FONT[i];
    return u == ' ' ? NULL : &FONT[N_GLYPHS - 1]; /* '?' for what the font lacks */
}

static void draw_text(canvas *cv, int x, int y, const char *s, size_t n, int scale, const uint8_t c[3])
{
    for (size_t i = 0; i < n; i++, x += 6 * scale) {
        const glyph *g = glyph_for(s[i]);
        if (!g)
            continue;
        for (int r = 0; r < 7; r++)
            for (int b = 0; b < 5; b++)
                if (g->rows[r] & (0x10 >> b))
                    fill_rect(cv, x + b * scale, y + r * scale, x + (b + 1) * scale, y + (r + 1) * scale, c);
    }
}

/* A layer's rectangle (t px wide, inside its edges) and its label on dark backing, one text line
 * above the rectangle or, where the image has no room above, just inside it. */
static void draw_box(canvas *cv, const cx_overlay_layer *l, int t, int scale, const uint8_t dark[3])
{
    int x1 = l->box[0], y1 = l->box[1], x2 = l->box[2], y2 = l->box[3];
    fill_rect(cv, x1, y1, x2 + 1, y1 + t, l->rgb);
    fill_rect(cv, x1, y2 + 1 - t, x2 + 1, y2 + 1, l->rgb);
    fill_rect(cv, x1, y1, x1 + t, y2 + 1, l->rgb);
    fill_rect(cv, x2 + 1 - t, y1, x2 + 1, y2 + 1, l->rgb);
    size_t n = strnlen(l->label, sizeof l->label);
    if (!n)
        return;
    int ty = y1 - 9 * scale;
    if (ty < 0)
        ty = y1 + t + scale;
    int tx = x1 + t;
    fill_rect(cv, tx - scale, ty - scale, tx + (int)n * 6 * scale, ty + 8 * scale, dark);
    draw_text(cv, tx, ty, l->label, n, scale, l->rgb);
}

/* Splits text into pieces of at most max_chars, at spaces where it can. Returns the number of
 * pieces; starts/lens receive at most cap of them. */
static int wrap(const char *s, int max_chars, int cap, size_t *starts, size_t *lens)
{
    size_t n = strlen(s), at = 0;
    int k = 0;
    if (max_chars < 1)
        max_chars = 1;
    while (at < n && k < cap) {
        while (at < n && s[at] == ' ')
            at++;
        if (at >= n)
            break;
        size_t len = n - at;
        if (len > (size_t)max_chars) {
            len = (size_t)max_chars;
            size_t sp = len;
            while (sp > 0 && s[at + sp] != ' ')
                sp--;
            if (sp > 0)
                len = sp;
        }
        starts[k] = at;
        lens[k] = len;
        k++;
        at += len;
    }
    return k;
}

cx_status cx_overlay_render(const cx_image *display, const cx_overlay_layer *layers, size_t n_layers,
                            const cx_legend_line *lines, size_t n_lines, uint8_t **out, cx_error *err)
{
    if (!display || !display->data || !out || (n_layers && !layers) || (n_lines && !lines))
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "NULL argument");
    const int w = display->width, h = display->height;
    if (w < 1 || h < 1 || w > CX_IMAGE_MAX_SIDE || h > CX_IMAGE_MAX_SIDE)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "image %dx%d outside 1..%d", w, h, CX_IMAGE_MAX_SIDE);
    for (size_t i = 0; i < n_layers; i++) {
        const cx_overlay_layer *l = &layers[i];
        if (l->w < 0 || l->h < 0 || l->x0 < 0 || l->y0 < 0 || l->x0 + (long)l->w > w || l->y0 + (long)l->h > h ||
            (l->w && l->h && !l->mask))
            return cx_error_set(err, CX_ERR_INVALID, STAGE, "layer %zu: box x0=%d y0=%d %dx%d outside the %dx%d image",
                                i, l->x0, l->y0, l->w, l->h, w, h);
    }
    canvas cv = {w, h, cx_malloc((size_t)w * h * 3)};
    if (!cv.px)
        return cx_error_set(err, CX_ERR_NOMEM, STAGE, "RGB image of %d x %d", w, h);
    for (size_t i = 0; i < (size_t)w * h; i++) {
        float v = display->data[i];
        uint8_t g = (uint8_t)(v > 0 ? (v >= 1 ? 255 : v * 255.0f + 0.5f) : 0); /* NaN -> 0 */
        cv.px[3 * i] = cv.px[3 * i + 1] = cv.px[3 * i + 2] = g;
    }

    /* Tint (65 % image, 35 % colour: the anatomy stays visible) and a solid outline, in order:
     * a later layer (a finding) lies over an earlier one (its lung). */
    const int t = (w < h ? w : h) / 600 + 1;
    for (size_t i = 0; i < n_layers; i++) {
        const cx_overlay_layer *l = &layers[i];
#define IN(x, y) ((x) >= 0 && (y) >= 0 && (x) < l->w && (y) < l->h && l->mask[(size_t)(y) * l->w + (x)])
        for (int y = 0; y < l->h; y++)
            for (int x = 0; x < l->w; x++) {
                if (!IN(x, y))
                    continue;
                int gx = l->x0 + x, gy = l->y0 + y;
                uint8_t *q = cv.px + ((size_t)gy * w + gx) * 3;
                for (int k = 0; k < 3; k++)
                    q[k] = (uint8_t)((q[k] * 65 + l->rgb[k] * 35) / 100);
                if (!IN(x - 1, y) || !IN(x + 1, y) || !IN(x, y - 1) || !IN(x, y + 1))
                    fill_rect(&cv, gx - t / 2, gy - t / 2, gx - t / 2 + t, gy - t / 2 + t, l->rgb);
            }
#undef IN
    }

    const int scale = (w < h ? w : h) / 400 > 1 ? (w < h ? w : h) / 400 : 1;
    const uint8_t dark[3] = {0, 0, 0}, white[3] = {255, 255, 255};
    for (size_t i = 0; i < n_layers; i++)
        if (layers[i].has_box)
            draw_box(&cv, &layers[i], t, scale, dark);

    /* Legend, top left, on a dark box sized to its (wrapped) lines. */
    if (n_lines) {
        const int lh = 9 * scale, pad = 4 * scale, indent = 10 * scale;
        const int max_chars = (w - 2 * pad - indent) / (6 * scale);
        enum { MAXP = 4 };
        int total = 0, widest = 0;
        for (size_t i = 0; i < n_lines; i++) {
            size_t st[MAXP], ln[MAXP];
            int k = wrap(lines[i].text, max_chars, MAXP, st, ln);
            total += k ? k : 1;
            for (int j = 0; j < k; j++)
                if ((int)ln[j] > widest)
                    widest = (int)ln[j];
        }
        fill_rect(&cv, 0, 0, pad * 2 + indent + widest * 6 * scale, pad * 2 + total * lh, dark);
        int row = 0;
        for (size_t i = 0; i < n_lines; i++) {
            size_t st[MAXP], ln[MAXP];
            int k = wrap(lines[i].text, max_chars, MAXP, st, ln);
            const uint8_t *c = lines[i].has_color ? lines[i].rgb : white;
            int y = pad + row * lh;
            if (lines[i].swatch)
                fill_rect(&cv, pad, y, pad + 7 * scale, y + 7 * scale, c);
            for (int j = 0; j < k; j++)
                draw_text(&cv, pad + indent, pad + (row + j) * lh, lines[i].text + st[j], ln[j], scale, c);
            row += k ? k : 1;
        }
    }
    *out = cv.px;
    return CX_OK;
}
