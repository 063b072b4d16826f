"""Performance management and analysis: metric definitions, periods, running totals, indicators, analysis, reports."""
