"""The JSON API under /api/v1 (shared/API.md is the contract)."""
