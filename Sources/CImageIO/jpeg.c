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

/* Warnings (e.g. extraneous bytes) are not worth a line per image, but data
 * that ends early is an error: libjpeg would decode the missing rows as
 * grey, so a few hundred bytes claiming a huge image would cost the time and
 * memory of the whole image (and PIL, which the FID tools use, refuses such
 * files too). */
static void on_message(j_common_ptr info, int level)
{
    if (level == -1 && info->err->msg_code == JWRN_JPEG_EOF)
        on_error(info);
}

int bk_jpeg_decode(const char *path, uint8_t **pixels, int *width, int *height,
                   char *error, size_t error_size)
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
    /* Before jpeg_start_decompress, which for a progressive file allocates
     * coefficients for the whole image the header claims. */
    if ((size_t)info.image_width * info.image_height * 3 > ((size_t)1 << 30)) {
        snprintf(error, error_size, "unsupported JPEG size %ux%u (over 1 GiB of pixels)",
                 info.image_width, info.image_height);
        jpeg_destroy_decompress(&info);
        fclose(file);
        return -1;
    }
    info.out_color_space = JCS_RGB;
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
