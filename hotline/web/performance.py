"""The performance board, the analysis page, exports and reports."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
