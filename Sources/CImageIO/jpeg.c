#include "CImageIO.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf escape;
    char message[JMSG_LENGTH_MAX];
} error_manager;

static void on_error(j_common_ptr info)
{
    error_manager *e = (error_manager *)info->err;
    e->base.format_message(info, e->message);
    longjmp(e->escape, 1);
}

/* libjpeg only warns about a truncated or damaged entropy-coded segment and
 * fills the rest with grey; those warnings are errors here. Others (e.g.
 * extraneous bytes between markers, which leave the pixels intact) are not
 * worth a line per image. */
static void on_message(j_common_ptr info, int level)
{
    if (level >= 0) return;
    switch (info->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_MUST_RESYNC:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_PROGRESSION:
        on_error(info);
        break;
    default:
        break;
    }
}

int bk_jpeg_decode(const char *path, int min_side, int64_t max_pixels, uint8_t **pixels,
                   int *width, int *height, char *error, size_t error_size)
{
    *pixels = NULL;
    FILE *file = fopen(path, "rb");
    if (!file) {
        snprintf(error, error_size, "%s", strerror(errno));
        return -1;
    }
    struct jpeg_decompress_struct info;
    error_manager e;
    uint8_t *volatile out = NULL;
    info.err = jpeg_std_error(&e.base);
    e.base.error_exit = on_error;
    e.base.emit_message = on_message;
    if (setjmp(e.escape)) {
        snprintf(error, error_size, "%s", e.message);
        jpeg_destroy_decompress(&info);
        fclose(file);
        free(out);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_stdio_src(&info, file);
    jpeg_read_header(&info, TRUE);
    info.out_color_space = JCS_RGB;
    unsigned side = info.image_width < info.image_height ? info.image_width : info.image_height;
    unsigned denominator = 1;
    while (min_side > 0 && denominator < 8 && side / (denominator * 2) >= 2 * (unsigned)min_side)
        denominator *= 2;
    info.scale_num = 1;
    info.scale_denom = denominator;
    jpeg_calc_output_dimensions(&info);
    if ((int64_t)info.output_width * info.output_height > max_pixels) {
        *width = (int)info.output_width;
        *height = (int)info.output_height;
        jpeg_destroy_decompress(&info);
        fclose(file);
        return BK_IMAGE_TOO_LARGE;
    }
    jpeg_start_decompress(&info);
    size_t stride = (size_t)info.output_width * 3;
    if (info.output_components != 3) {
        snprintf(error, error_size, "unsupported JPEG (%u components)", (unsigned)info.output_components);
        jpeg_destroy_decompress(&info);
        fclose(file);
        return -1;
    }
    out = malloc(stride * info.output_height);
    if (!out) {
        snprintf(error, error_size, "out of memory");
        jpeg_destroy_decompress(&info);
        fclose(file);
        return -1;
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = out + stride * info.output_scanline;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    *width = (int)info.output_width;
    *height = (int)info.output_height;
    *pixels = out;
    jpeg_destroy_decompress(&info);
    fclose(file);
    return 0;
}
