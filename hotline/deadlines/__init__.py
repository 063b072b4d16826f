"""Deadlines in working days: the calendar, the clocks and the escalation ladder, holiday data."""
