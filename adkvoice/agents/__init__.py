"""Agents bundled with adkvoice."""
