"""Thumbnails of photos (Pillow; HEIC through pillow-heif), small JPEGs without the original's
metadata (no EXIF, so no GPS position), turned upright as the camera meant."""

import warnings
from io import BytesIO
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

register_heif_opener()

# The longest side of a thumbnail, in pixels.
THUMBNAIL_SIDE = 320


class UnreadableImage(Exception):
    """The bytes start as an image but do not decode as one."""


def thumbnail(file: BinaryIO) -> BytesIO:
    """A JPEG thumbnail of the image in `file` (read from its start), or UnreadableImage."""
    file.seek(0)
    try:
        with warnings.catch_warnings():
            # More pixels than Pillow's limit (89 megapixels; a decompression bomb is a few
            # kilobytes that unpack to gigabytes): refused unread, not merely warned about.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                image.draft("RGB", (THUMBNAIL_SIDE * 2, THUMBNAIL_SIDE * 2))  # JPEG: decode at a lower scale
                small = ImageOps.exif_transpose(image).convert("RGB")
                small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise UnreadableImage(str(exc) or exc.__class__.__name__) from exc
    finally:
        file.seek(0)
    out = BytesIO()
    small.save(out, "JPEG", quality=80)
    out.seek(0)
    return out
