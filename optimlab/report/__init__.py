"""Figures and HTML reports, drawn from stored Traces (never by training). Import from the submodules."""
