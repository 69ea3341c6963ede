#include "CImageIO.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

typedef struct {
    char *message;
    size_t size;
} error_sink;

static void on_error(png_structp png, png_const_charp message)
{
    error_sink *sink = png_get_error_ptr(png);
    snprintf(sink->message, sink->size, "%s", message);
    png_longjmp(png, 1);
}

/* Warnings (unknown chunks, bad CRCs in ancillary chunks) leave the pixels
 * intact. */
static void on_warning(png_structp png, png_const_charp message) { (void)png; (void)message; }

int bk_png_decode(const char *path, int64_t max_pixels, uint8_t **pixels, int *width,
                  int *height, char *error, size_t error_size)
{
    *pixels = NULL;
    FILE *file = fopen(path, "rb");
    if (!file) {
        snprintf(error, error_size, "%s", strerror(errno));
        return -1;
    }
    error_sink sink = {error, error_size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &sink, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        snprintf(error, error_size, "out of memory");
        png_destroy_read_struct(&png, NULL, NULL);
        fclose(file);
        return -1;
    }
    uint8_t *volatile out = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(file);
        free(out);
        free(rows);
        return -1;
    }
    png_init_io(png, file);
    /* libpng's own limit is 1,000,000 pixels a side; the caller's cap is
     * checked below, before anything the size of the image is allocated. */
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if ((int64_t)w * h > max_pixels) {
        *width = (int)(w > 0x7fffffff ? 0x7fffffff : w);
        *height = (int)(h > 0x7fffffff ? 0x7fffffff : h);
        png_destroy_read_struct(&png, &info, NULL);
        fclose(file);
        return BK_IMAGE_TOO_LARGE;
    }
    int color = png_get_color_type(png, info);
    png_set_strip_16(png);
    png_set_packing(png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) {
        png_set_expand_gray_1_2_4_to_8(png);
        png_set_gray_to_rgb(png);
    }
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8) {
        snprintf(error, error_size, "unsupported PNG layout (%d channels of %d bits)",
                 (int)png_get_channels(png, info), (int)png_get_bit_depth(png, info));
        png_destroy_read_struct(&png, &info, NULL);
        fclose(file);
        return -1;
    }
    size_t stride = (size_t)w * 3;
    out = malloc(stride * h);
    rows = malloc(sizeof(png_bytep) * h);
    if (!out || !rows) {
        snprintf(error, error_size, "out of memory");
        png_destroy_read_struct(&png, &info, NULL);
        fclose(file);
        free(out);
        free(rows);
        return -1;
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = out + stride * y;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(file);
    free(rows);
    *width = (int)w;
    *height = (int)h;
    *pixels = out;
    return 0;
}
