/* RGB images for the evaluation figures: a pixel canvas, filled rectangles, a built-in
 * 5x7 bitmap font (digits, letters shown upper case, a little punctuation), the viridis
 * colormap, and PNG output through libpng (written atomically: temporary, fsync, rename).
 *
 *   tf_image im;
 *   TF_TRY(tf_image_create(&im, 320, 200, TF_RGB(255, 255, 255)));
 *   tf_image_fill(&im, 10, 10, 60, 40, tf_viridis(0.5));
 *   tf_image_text(&im, 10, 50, "vocals 5.2 dB", 1, TF_RGB(0, 0, 0));
 *   tf_status st = tf_image_write_png(&im, "out.png");
 *   tf_image_free(&im);
 */
#ifndef TFSWA_IMAGE_H
#define TFSWA_IMAGE_H
#include <stdint.h>

#include "util/err.h"

#define TF_RGB(r, g, b) (((uint32_t)(r) << 16) | ((uint32_t)(g) << 8) | (uint32_t)(b))

typedef struct {
    int w, h;
    uint8_t *px; /* (h, w, 3) row-major RGB, 8 bits per channel */
} tf_image;

/* A w x h image filled with `bg` (1 <= w, h <= 16384). */
tf_status tf_image_create(tf_image *im, int w, int h, uint32_t bg);
void tf_image_free(tf_image *im);

/* Pixel (x, y) (clipped: outside the image nothing happens). */
void tf_image_set(tf_image *im, int x, int y, uint32_t rgb);
/* Fill [x0, x1) x [y0, y1), clipped to the image; empty when x1 <= x0 or y1 <= y0. */
void tf_image_fill(tf_image *im, int x0, int y0, int x1, int y1, uint32_t rgb);

/* Glyph cell of the font: 5x7 pixels plus one column of spacing, times `scale`. */
#define TF_FONT_W 6
#define TF_FONT_H 7
/* Draw s with its top-left corner at (x, y); lower case is drawn as upper case, characters
 * without a glyph as '?'. Returns the width drawn in pixels (= tf_text_width). */
int tf_image_text(tf_image *im, int x, int y, const char *s, int scale, uint32_t rgb);
int tf_text_width(const char *s, int scale);

/* matplotlib's viridis at t in [0, 1] (clamped; NaN -> 0): piecewise linear between nine
 * samples of the colormap. */
uint32_t tf_viridis(double t);

/* 8-bit RGB PNG, written atomically. TF_EUSER naming the path when it cannot be written. */
tf_status tf_image_write_png(const tf_image *im, const char *path);

#endif
