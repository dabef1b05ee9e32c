// JPEG through libjpeg-turbo, with errors caught by setjmp/longjmp instead of exit().
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "image_codecs.h"

struct error_manager {
  struct jpeg_error_mgr base;
  jmp_buf escape;
  char *message;
};

static void on_error(j_common_ptr info) {
  struct error_manager *manager = (struct error_manager *)info->err;
  char text[JMSG_LENGTH_MAX];
  manager->base.format_message(info, text);
  snprintf(manager->message, CIC_ERROR_CAPACITY, "%s", text);
  longjmp(manager->escape, 1);
}

// Corrupt-data warnings (e.g. a truncated file padded by the library) are errors for us.
static void on_warning(j_common_ptr info, int level) {
  if (level < 0) on_error(info);
}

static uint16_t read16(const uint8_t *p, int little) { return little ? (uint16_t)(p[0] | p[1] << 8) : (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t read32(const uint8_t *p, int little) {
  return little ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
                : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

// The orientation tag (0x0112) of an APP1 "Exif" marker, or 1.
static int exif_orientation(const uint8_t *data, unsigned length) {
  if (length < 14 || memcmp(data, "Exif\0\0", 6) != 0) return 1;
  const uint8_t *tiff = data + 6;
  unsigned size = length - 6;
  int little = tiff[0] == 'I' && tiff[1] == 'I';
  if (!little && !(tiff[0] == 'M' && tiff[1] == 'M')) return 1;
  uint32_t offset = read32(tiff + 4, little);
  if (offset + 2 > size) return 1;
  unsigned count = read16(tiff + offset, little);
  for (unsigned i = 0; i < count; i++) {
    uint32_t entry = offset + 2 + 12 * i;
    if (entry + 12 > size) return 1;
    if (read16(tiff + entry, little) == 0x0112) {
      unsigned value = read16(tiff + entry + 8, little);
      return value >= 1 && value <= 8 ? (int)value : 1;
    }
  }
  return 1;
}

int cic_decode_jpeg(const uint8_t *data, size_t size, cic_image *out, char error[CIC_ERROR_CAPACITY]) {
  struct jpeg_decompress_struct info;
  struct error_manager manager;
  uint8_t *pixels = NULL;
  uint8_t *row = NULL;
  memset(out, 0, sizeof(*out));
  info.err = jpeg_std_error(&manager.base);
  manager.base.error_exit = on_error;
  manager.base.emit_message = on_warning;
  manager.message = error;
  if (setjmp(manager.escape)) {
    jpeg_destroy_decompress(&info);
    free(pixels);
    free(row);
    return 1;
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, data, (unsigned long)size);
  jpeg_save_markers(&info, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&info, TRUE);
  if (info.image_width == 0 || info.image_height == 0) {
    snprintf(error, CIC_ERROR_CAPACITY, "the image has zero width or height");
    jpeg_destroy_decompress(&info);
    return 1;
  }
  out->orientation = 1;
  for (jpeg_saved_marker_ptr marker = info.marker_list; marker; marker = marker->next) {
    if (marker->marker == JPEG_APP0 + 1) out->orientation = exif_orientation(marker->data, marker->data_length);
  }
  out->source_channels = info.num_components;
  out->source_bit_depth = 8;
  int cmyk = info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK;
  info.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&info);
  size_t width = info.output_width, height = info.output_height;
  pixels = malloc(width * height * 3);
  row = malloc(width * (size_t)info.output_components);
  if (!pixels || !row) {
    snprintf(error, CIC_ERROR_CAPACITY, "out of memory for a %zux%zu image", width, height);
    longjmp(manager.escape, 1);
  }
  while (info.output_scanline < info.output_height) {
    size_t y = info.output_scanline;
    JSAMPROW rows[1] = {row};
    jpeg_read_scanlines(&info, rows, 1);
    uint8_t *target = pixels + y * width * 3;
    if (cmyk) {
      // Adobe writes CMYK inverted (each stored value is 255 - ink). Convert as PIL does, so the
      // pixels equal those of Python pipelines: channel = clip(stored channel + stored K - 255).
      for (size_t x = 0; x < width; x++) {
        int k = row[4 * x + 3];
        for (int c = 0; c < 3; c++) {
          int value = row[4 * x + c] + k - 255;
          target[3 * x + c] = (uint8_t)(value < 0 ? 0 : value);
        }
      }
    } else {
      memcpy(target, row, width * 3);
    }
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  free(row);
  out->pixels = pixels;
  out->width = (int32_t)width;
  out->height = (int32_t)height;
  out->channels = 3;
  return 0;
}

int cic_encode_jpeg(const uint8_t *rgb, int32_t width, int32_t height, int32_t quality, uint8_t **out, size_t *size,
                    char error[CIC_ERROR_CAPACITY]) {
  struct jpeg_compress_struct info;
  struct error_manager manager;
  unsigned char *buffer = NULL;
  unsigned long length = 0;
  info.err = jpeg_std_error(&manager.base);
  manager.base.error_exit = on_error;
  manager.message = error;
  if (setjmp(manager.escape)) {
    jpeg_destroy_compress(&info);
    free(buffer);
    return 1;
  }
  jpeg_create_compress(&info);
  jpeg_mem_dest(&info, &buffer, &length);
  info.image_width = (JDIMENSION)width;
  info.image_height = (JDIMENSION)height;
  info.input_components = 3;
  info.in_color_space = JCS_RGB;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, quality, TRUE);
  jpeg_start_compress(&info, TRUE);
  while (info.next_scanline < info.image_height) {
    JSAMPROW rows[1] = {(JSAMPROW)(rgb + (size_t)info.next_scanline * (size_t)width * 3)};
    jpeg_write_scanlines(&info, rows, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  *out = buffer;
  *size = length;
  return 0;
}

void cic_free(void *pointer) { free(pointer); }
