"""Writes small image fixtures in every format the decoder must handle, and PIL's decoded pixels.

Run: "$(Scripts/reference-env.sh)" Scripts/goldens/make_image_fixtures.py   (needs Pillow)
For each fixture NAME.{jpg,png}, NAME.rgb holds PIL's pixels after EXIF transposition and
convert("RGB"): width and height as two little-endian uint16, then row-major RGB bytes.
One deliberate difference: PIL clips 16-bit grayscale to 255 when converting to RGB (a known
Pillow behaviour that whitens such images); we keep the high byte, so gray16.rgb holds that.
"""
import io
import pathlib
import struct

import PIL
from PIL import Image, ImageOps

OUT = pathlib.Path(__file__).resolve().parents[2] / "Tests/COCOTests/Fixtures"
OUT.mkdir(parents=True, exist_ok=True)


def pattern(width, height):
    image = Image.new("RGB", (width, height))
    image.putdata([((x * 37 + y * 11) % 256, (x * 7 + y * 29) % 256, (x * y * 3 + 60) % 256) for y in range(height) for x in range(width)])
    return image


def save(name, image, fmt, **options):
    path = OUT / f"{name}.{'jpg' if fmt == 'JPEG' else 'png'}"
    image.save(path, fmt, **options)
    opened = ImageOps.exif_transpose(Image.open(path))
    if opened.mode in ("I;16", "I"):
        values = opened.getdata()
        pixels = bytes(v >> 8 for v in values for _ in range(3))
    else:
        pixels = opened.convert("RGB").tobytes()
    (OUT / f"{name}.rgb").write_bytes(struct.pack("<HH", *opened.size) + pixels)


base = pattern(24, 16)
save("rgb_jpeg", base, "JPEG", quality=95)
save("gray", base.convert("L"), "JPEG", quality=95)
save("cmyk", base.convert("CMYK"), "JPEG", quality=95)
save("rgb_png", base, "PNG")
save("rgba", base.convert("RGBA"), "PNG")
save("gray16", Image.frombytes("I;16", base.size, b"".join(struct.pack("<H", (i * 2741) % 65536) for i in range(24 * 16))), "PNG")
save("palette", base.quantize(16), "PNG")
for orientation in (3, 6, 8):
    exif = Image.Exif()
    exif[0x0112] = orientation
    save(f"orientation{orientation}", base, "JPEG", quality=95, exif=exif)
(OUT / "VERSION").write_text(f"made by Scripts/goldens/make_image_fixtures.py with Pillow {PIL.__version__}\n")
print("wrote fixtures to", OUT)
