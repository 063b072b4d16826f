"""The knowledge base's pages (知识库): the list and the search, one article with its
versions and flags, the forms that write articles, the spreadsheet import, the review
queue, the knowledge gaps and the flagged articles.

Every staff role reads the published articles; a department's leader also its own
department's, and writes its drafts; the editors (知识库管理员) and administrators write
everything and deal with the gaps and flags. What may be done is the services' to decide
(hotline.knowledge); a page only leaves out the buttons its user may not press.

Importing each module registers its routes on the one router, in an order that matters:
the fixed addresses (/knowledge/new, /knowledge/import…) before /knowledge/{id}.
"""

from hotline.web.knowledge import listing, workbench, writing  # noqa: I001, F401  (fixed addresses first)
from hotline.web.knowledge import article  # noqa: F401  (/knowledge/{id} and its actions last)
from hotline.web.knowledge.common import MAX_UPLOAD_BYTES, router, zh_message

__all__ = ["MAX_UPLOAD_BYTES", "router", "zh_message"]
