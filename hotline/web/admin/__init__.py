"""The administrator's pages: departments, users, categories, routing rules, time limits, holidays,
workflows, the district's settings, integration, the security audit trail.

Every page is for the admin role only, and every form post is CSRF-checked. A post that
succeeds redirects back to its page (post/redirect/get) with a one-time notice; one that
fails renders the page again with the message and what was typed.

The pages are split by subject (common, people, routing, limits, holidays, workflows, district, audit);
importing each module registers its routes on the one router.
"""

from hotline.web.admin import audit, district, holidays, integration, limits, people, routing, workflows  # noqa: F401  (each registers its routes)
from hotline.web.admin.common import router
from hotline.web.admin.holidays import csv_error, parse_year_csv
from hotline.web.admin.limits import limit_text

__all__ = ["csv_error", "limit_text", "parse_year_csv", "router"]
