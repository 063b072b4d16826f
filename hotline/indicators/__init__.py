"""Performance management and analysis: metric definitions, running totals, indicators, analysis, reports."""
