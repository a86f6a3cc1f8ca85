#ifndef HUME_CPNG_SHIM_H
#define HUME_CPNG_SHIM_H
// libpng 1.6 for Swift.
//
// Use the simplified `png_image` API (png_image_write_to_memory, png_image_begin_read_from_memory,
// png_image_finish_read, png_image_free). It catches libpng's errors internally and reports them in
// `image.message`. The classic png_struct API reports errors by longjmp, which must never cross a
// Swift frame, so Swift code should not call it.
#include <png.h>
#include <stddef.h>

/// The `version` value a `png_image` must carry (the PNG_IMAGE_VERSION macro).
static inline png_uint_32 hume_png_image_version(void) { return PNG_IMAGE_VERSION; }

/// Pixel formats (the PNG_FORMAT_* macros) for 8-bit RGB, RGBA and gray.
static inline png_uint_32 hume_png_format_rgb(void) { return PNG_FORMAT_RGB; }
static inline png_uint_32 hume_png_format_rgba(void) { return PNG_FORMAT_RGBA; }
static inline png_uint_32 hume_png_format_gray(void) { return PNG_FORMAT_GRAY; }

/// Bytes per row for `image` with no padding (the PNG_IMAGE_ROW_STRIDE macro, in components:
/// for 8-bit formats a component is one byte).
static inline size_t hume_png_image_row_stride(const png_image *image) {
    return (size_t)PNG_IMAGE_ROW_STRIDE(*image);
}

/// Bytes a pixel buffer for `image` needs (the PNG_IMAGE_SIZE macro, 8-bit formats).
static inline size_t hume_png_image_buffer_size(const png_image *image) {
    return (size_t)PNG_IMAGE_SIZE(*image);
}

/// Whether the last simplified-API call on `image` failed (the PNG_IMAGE_FAILED macro); the reason
/// is in `image->message`. Warnings alone do not count.
static inline int hume_png_image_failed(const png_image *image) {
    return PNG_IMAGE_FAILED(*image) ? 1 : 0;
}
#endif
