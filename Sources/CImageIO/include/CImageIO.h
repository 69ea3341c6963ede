/*
 * PNG and JPEG decoding through libpng and libjpeg(-turbo), with their
 * errors turned into return values: both report a corrupt file by calling
 * an error handler that must not return, which only C (setjmp/longjmp) can
 * provide.
 */
#ifndef CIMAGEIO_H
#define CIMAGEIO_H

#include <stddef.h>
#include <stdint.h>

/* Returned when the image (after any scaling) has more than max_pixels
 * pixels; *width and *height then hold that size and nothing is decoded. */
#define BK_IMAGE_TOO_LARGE (-2)

/* Decodes the JPEG file at `path` into newly allocated 8-bit RGB rows
 * (*pixels, width * height * 3 bytes; free() it). When both sides are at
 * least twice `min_side` it is decoded at 1/2, 1/4 or 1/8 of its size (the
 * smallest that keeps the short side at least 2 * min_side; 0 decodes at
 * full size). Corrupt or truncated data is an error, not a grey image.
 * Returns 0, BK_IMAGE_TOO_LARGE, or -1 with a one-line reason in `error`. */
int bk_jpeg_decode(const char *path, int min_side, int64_t max_pixels, uint8_t **pixels,
                   int *width, int *height, char *error, size_t error_size);

/* Decodes the PNG file at `path` into newly allocated 8-bit RGB rows as
 * Pillow's convert("RGB") does: no gamma correction, 16-bit samples to
 * their high byte, palettes and greys expanded, alpha dropped. Returns 0,
 * BK_IMAGE_TOO_LARGE, or -1 with a one-line reason in `error`. */
int bk_png_decode(const char *path, int64_t max_pixels, uint8_t **pixels, int *width,
                  int *height, char *error, size_t error_size);

#endif
