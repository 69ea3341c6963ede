/*
 * JPEG decoding through libjpeg(-turbo), with its errors turned into return
 * values: libjpeg reports a corrupt file by calling an error handler that
 * must not return, which only C (setjmp/longjmp) can provide.
 */
#ifndef CIMAGEIO_H
#define CIMAGEIO_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the JPEG file at `path` into newly allocated 8-bit RGB rows
 * (*pixels, width * height * 3 bytes; free() it). Returns 0, or -1 with a
 * one-line reason in `error`. */
int bk_jpeg_decode(const char *path, uint8_t **pixels, int *width, int *height,
                   char *error, size_t error_size);

#endif
