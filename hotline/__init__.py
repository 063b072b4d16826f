"""hotline: a ticket workflow engine for a 12345 government-service hotline."""

__version__ = "0.1.0"
