// PNG through libpng, with errors caught by setjmp/longjmp instead of abort().
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "image_codecs.h"

struct reader {
  const uint8_t *data;
  size_t size;
  size_t offset;
};

static void on_error(png_structp png, png_const_charp message) {
  char *error = png_get_error_ptr(png);
  snprintf(error, CIC_ERROR_CAPACITY, "%s", message);
  png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp message) {
  (void)png;
  (void)message;
}

static void read_bytes(png_structp png, png_bytep target, png_size_t count) {
  struct reader *reader = png_get_io_ptr(png);
  if (reader->offset + count > reader->size) png_error(png, "the file ends early (truncated PNG)");
  memcpy(target, reader->data + reader->offset, count);
  reader->offset += count;
}

int cic_decode_png(const uint8_t *data, size_t size, cic_image *out, char error[CIC_ERROR_CAPACITY]) {
  memset(out, 0, sizeof(*out));
  if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
    snprintf(error, CIC_ERROR_CAPACITY, "not a PNG file (bad signature)");
    return 1;
  }
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, error, on_error, on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!png || !info) {
    snprintf(error, CIC_ERROR_CAPACITY, "libpng could not start");
    png_destroy_read_struct(&png, &info, NULL);
    return 1;
  }
  uint8_t *volatile pixels = NULL;
  png_bytep *volatile rows = NULL;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, NULL);
    free(pixels);
    free(rows);
    return 1;
  }
  struct reader reader = {data, size, 0};
  png_set_read_fn(png, &reader, read_bytes);
  png_set_user_limits(png, 1u << 15, 1u << 15);
  png_read_info(png, info);
  png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
  int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  out->source_channels = png_get_channels(png, info);
  out->source_bit_depth = depth;
  out->orientation = 1;
  // Everything to 8-bit RGB: expand palettes and low depths, strip 16 bits to their high byte,
  // gray to RGB, and drop alpha (as PIL's convert("RGB") does).
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_strip_16(png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  size_t stride = png_get_rowbytes(png, info);
  if (stride != (size_t)width * 3) png_error(png, "unsupported PNG layout after conversion");
  pixels = malloc(stride * height);
  rows = malloc(sizeof(png_bytep) * height);
  if (!pixels || !rows) png_error(png, "out of memory");
  for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + y * stride;
  png_read_image(png, rows);
  png_read_end(png, NULL);
  png_destroy_read_struct(&png, &info, NULL);
  free(rows);
  out->pixels = pixels;
  out->width = (int32_t)width;
  out->height = (int32_t)height;
  out->channels = 3;
  return 0;
}

struct writer {
  uint8_t *data;
  size_t size;
  size_t capacity;
};

static void write_bytes(png_structp png, png_bytep source, png_size_t count) {
  struct writer *writer = png_get_io_ptr(png);
  if (writer->size + count > writer->capacity) {
    size_t capacity = (writer->capacity + count) * 2;
    uint8_t *grown = realloc(writer->data, capacity);
    if (!grown) png_error(png, "out of memory");
    writer->data = grown;
    writer->capacity = capacity;
  }
  memcpy(writer->data + writer->size, source, count);
  writer->size += count;
}

static void flush_bytes(png_structp png) { (void)png; }

int cic_encode_png(const uint8_t *pixels, int32_t width, int32_t height, int32_t channels, uint8_t **out, size_t *size,
                   char error[CIC_ERROR_CAPACITY]) {
  if (channels != 3 && channels != 4) {
    snprintf(error, CIC_ERROR_CAPACITY, "PNG encoding takes 3 or 4 channels, not %d", channels);
    return 1;
  }
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, error, on_error, on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!png || !info) {
    snprintf(error, CIC_ERROR_CAPACITY, "libpng could not start");
    png_destroy_write_struct(&png, &info);
    return 1;
  }
  struct writer writer = {NULL, 0, 0};
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    free(writer.data);
    return 1;
  }
  png_set_write_fn(png, &writer, write_bytes, flush_bytes);
  png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, channels == 4 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int32_t y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + (size_t)y * (size_t)width * (size_t)channels));
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  *out = writer.data;
  *size = writer.size;
  return 0;
}
