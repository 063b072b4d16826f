"""Interconnection (互联互通): events for other systems, webhook subscriptions and their delivery."""
