"""The forms that carry files: which paths, how large their bodies may be, the files posted."""

import re
from typing import Any

from starlette.datastructures import UploadFile

from hotline.filing import MAX_PHOTOS

# Files an agent may log with a new ticket at once, and what a form adds to its files.
MAX_INTAKE_FILES = 3
FORM_ENVELOPE_BYTES = 256 * 1024


def upload_limits(max_file_bytes: int) -> list[tuple[re.Pattern[str], int]]:
    """The paths whose bodies carry files, each with its largest body: streamed, counted (see
    hotline.main.BodySizeLimit)."""
    one = max_file_bytes + FORM_ENVELOPE_BYTES
    return [
        (re.compile(r"/api/v1/tickets/[0-9]+/attachments"), one),
        (re.compile(r"/tickets/[0-9]+/attachments"), one),
        (re.compile(r"/agent/intake"), MAX_INTAKE_FILES * max_file_bytes + FORM_ENVELOPE_BYTES),
        (re.compile(r"/file"), MAX_PHOTOS * max_file_bytes + FORM_ENVELOPE_BYTES),
    ]


def posted_files(form: Any, name: str) -> list[UploadFile]:
    """The files a form's field carries (a file input left empty sends a nameless part)."""
    return only_files(form.getlist(name))


def only_files(values: list[Any]) -> list[UploadFile]:
    """The files among a field's values: a file input left empty sends a nameless part, or
    an empty text field."""
    return [f for f in values if isinstance(f, UploadFile) and f.filename]
