#include "util/image.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "util/fsutil.h"

tf_status tf_image_create(tf_image *im, int w, int h, uint32_t bg) {
    memset(im, 0, sizeof *im);
    if (w < 1 || h < 1 || w > 16384 || h > 16384)
        return tf_err(TF_EINTERNAL, "image: bad size %d x %d", w, h);
    im->px = tf_malloc((size_t)w * (size_t)h * 3, "image pixels");
    if (!im->px) return TF_EINTERNAL;
    im->w = w, im->h = h;
    tf_image_fill(im, 0, 0, w, h, bg);
    return TF_OK;
}

void tf_image_free(tf_image *im) {
    free(im->px);
    memset(im, 0, sizeof *im);
}

void tf_image_set(tf_image *im, int x, int y, uint32_t rgb) {
    if (x < 0 || y < 0 || x >= im->w || y >= im->h) return;
    uint8_t *p = im->px + ((size_t)y * (size_t)im->w + (size_t)x) * 3;
    p[0] = (uint8_t)(rgb >> 16), p[1] = (uint8_t)(rgb >> 8), p[2] = (uint8_t)rgb;
}

void tf_image_fill(tf_image *im, int x0, int y0, int x1, int y1, uint32_t rgb) {
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > im->w) x1 = im->w;
    if (y1 > im->h) y1 = im->h;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) tf_image_set(im, x, y, rgb);
}

/* ---- 5x7 font: 7 rows per glyph, 5 bits per row, bit 4 = leftmost column ---- */

typedef struct {
    char c;
    uint8_t rows[7];
} glyph;

static const glyph FONT[] = {
    {' ', {0, 0, 0, 0, 0, 0, 0}},
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11}},
    {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
    {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
    {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}},
    {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'.', {0, 0, 0, 0, 0, 0x0C, 0x0C}},
    {',', {0, 0, 0, 0, 0x0C, 0x04, 0x08}},
    {'-', {0, 0, 0, 0x1F, 0, 0, 0}},
    {'+', {0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0}},
    {':', {0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'/', {0, 0x01, 0x02, 0x04, 0x08, 0x10, 0}},
    {'_', {0, 0, 0, 0, 0, 0, 0x1F}},
    {'=', {0, 0, 0x1F, 0, 0x1F, 0, 0}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'#', {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A}},
    {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04}},
};

static const uint8_t *glyph_rows(char c) {
    if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
    const uint8_t *q = NULL;
    for (size_t i = 0; i < sizeof FONT / sizeof FONT[0]; i++) {
        if (FONT[i].c == c) return FONT[i].rows;
        if (FONT[i].c == '?') q = FONT[i].rows;
    }
    return q;
}

int tf_text_width(const char *s, int scale) {
    return (int)strlen(s) * TF_FONT_W * scale;
}

int tf_image_text(tf_image *im, int x, int y, const char *s, int scale, uint32_t rgb) {
    int x0 = x;
    for (; *s; s++, x += TF_FONT_W * scale) {
        const uint8_t *g = glyph_rows(*s);
        for (int r = 0; r < 7; r++)
            for (int c = 0; c < 5; c++)
                if (g[r] & (0x10 >> c))
                    tf_image_fill(im, x + c * scale, y + r * scale, x + (c + 1) * scale,
                                  y + (r + 1) * scale, rgb);
    }
    return x - x0;
}

uint32_t tf_viridis(double t) {
    /* viridis at 0, 1/8, ..., 1 (matplotlib's _viridis_data sampled at nine points) */
    static const uint8_t V[9][3] = {{68, 1, 84},    {71, 45, 123},  {59, 82, 139},
                                    {44, 114, 142}, {33, 145, 140}, {40, 174, 128},
                                    {94, 201, 98},  {173, 220, 48}, {253, 231, 37}};
    if (!(t > 0)) t = 0; /* also NaN */
    if (t > 1) t = 1;
    double u = t * 8;
    int i = (int)u;
    if (i > 7) i = 7;
    double f = u - i;
    uint32_t out = 0;
    for (int c = 0; c < 3; c++) {
        double v = V[i][c] + f * (V[i + 1][c] - V[i][c]);
        out = (out << 8) | (uint32_t)lround(v);
    }
    return out;
}

/* ---- PNG ---- */

typedef struct {
    char msg[256];
} png_err_ctx;

static void on_png_error(png_structp p, png_const_charp msg) {
    png_err_ctx *e = png_get_error_ptr(p);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(p, 1);
}

static void on_png_warning(png_structp p, png_const_charp msg) {
    (void)p, (void)msg;
}

/* Everything that setjmp/longjmp crosses is passed in: no local modified after setjmp. */
static int write_rows(FILE *f, const tf_image *im, png_err_ctx *e) {
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, e, on_png_error, on_png_warning);
    if (!png) return snprintf(e->msg, sizeof e->msg, "out of memory"), -1;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return snprintf(e->msg, sizeof e->msg, "out of memory"), -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)im->w, (png_uint_32)im->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < im->h; y++) png_write_row(png, im->px + (size_t)y * (size_t)im->w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

tf_status tf_image_write_png(const tf_image *im, const char *path) {
    tf_atomic_file af;
    TF_TRY(tf_atomic_open(&af, path));
    png_err_ctx e = {""};
    if (write_rows(af.f, im, &e) != 0) {
        tf_atomic_abort(&af);
        return tf_err(TF_EUSER, "%s: cannot write PNG: %s", path, e.msg);
    }
    return tf_atomic_commit(&af);
}
