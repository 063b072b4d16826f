"""What a file is, judged by its first bytes (and, for a zip, by the names inside it), never
by the name or the type its sender gave: the types an attachment may be."""

import zipfile
from typing import BinaryIO

# Bytes read from the start of a file to judge it.
HEAD_BYTES = 64
# Brands of the ISO base media file format (the `ftyp` box at offset 4).
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"mp42", b"isom", b"3gp4", b"3gp5", b"3gp6"}
# An Office Open XML package names its kind by the folder of its main part.
_OOXML = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
# Images a thumbnail is drawn of.
IMAGES = {"image/jpeg", "image/png", "image/webp", "image/heic"}
# The extension a download is named with, by type (the sender's own extension is not trusted).
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/x-ole-storage": ".doc",
    "audio/mpeg": ".mp3",
    "audio/wav": ".wav",
    "audio/amr": ".amr",
    "audio/ogg": ".ogg",
    "audio/mp4": ".m4a",
}
ALLOWED = "JPEG, PNG, WebP, HEIC, PDF, Word/Excel/PowerPoint, MP3, WAV, AMR, Ogg, M4A"


def _by_head(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return "image/heic"
        if brand in _AUDIO_BRANDS:
            return "audio/mp4"
        return None
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "application/x-ole-storage"  # .doc, .xls, .ppt of Office 97-2003
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06):
        return "audio/mpeg"
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    return None


def _ooxml(file: BinaryIO) -> str | None:
    """The kind of an Office Open XML package; None for any other zip (or a broken one)."""
    try:
        with zipfile.ZipFile(file) as package:
            names = package.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    return next((kind for folder, kind in _OOXML.items() if any(n.startswith(folder) for n in names)), None)


def content_type(file: BinaryIO) -> str | None:
    """The file's type as its content shows it, if it is one an attachment may be; the file
    is read from its start and left there."""
    file.seek(0)
    head = file.read(HEAD_BYTES)
    file.seek(0)
    if head.startswith(b"PK\x03\x04"):
        found = _ooxml(file)
        file.seek(0)
        return found
    return _by_head(head)
