/*
 * image_codecs.h: JPEG and PNG decoding and encoding in memory, over libjpeg-turbo and libpng, with
 * every library error turned into a return code and a message (the libraries' default handlers
 * would exit the process).
 *
 * Ownership: pixel and byte buffers returned are malloc'd and owned by the caller (free them with
 * cic_free). Errors: functions return 0 on success, else non-zero with a message in `error`.
 */
#ifndef IMAGE_CODECS_H
#define IMAGE_CODECS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CIC_ERROR_CAPACITY 256

/* A decoded image: 8-bit, row-major, `channels` interleaved samples per pixel (3 = RGB). */
typedef struct {
  uint8_t *pixels;
  int32_t width;
  int32_t height;
  int32_t channels;
  /* EXIF orientation (1-8) found in the file, 1 when absent; the pixels are NOT yet rotated. */
  int32_t orientation;
  /* What the file held before conversion: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA or CMYK. */
  int32_t source_channels;
  int32_t source_bit_depth;
} cic_image;

/* Decodes to RGB: grayscale is replicated, CMYK/YCCK converted, alpha dropped, 16-bit reduced to 8. */
int cic_decode_jpeg(const uint8_t *data, size_t size, cic_image *out, char error[CIC_ERROR_CAPACITY]);
int cic_decode_png(const uint8_t *data, size_t size, cic_image *out, char error[CIC_ERROR_CAPACITY]);

/* Encodes RGB pixels (3 channels). quality: 1-100. */
int cic_encode_jpeg(const uint8_t *rgb, int32_t width, int32_t height, int32_t quality, uint8_t **out, size_t *size,
                    char error[CIC_ERROR_CAPACITY]);
/* Encodes 3 (RGB) or 4 (RGBA) channel pixels. */
int cic_encode_png(const uint8_t *pixels, int32_t width, int32_t height, int32_t channels, uint8_t **out, size_t *size,
                   char error[CIC_ERROR_CAPACITY]);

void cic_free(void *pointer);

#ifdef __cplusplus
}
#endif

#endif
