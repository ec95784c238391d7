"""Checks on a finished deliverable and the reports (JSON, HTML) that show them."""
