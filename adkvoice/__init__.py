"""adkvoice: the terminal voice client and host for Google ADK live agents."""

__version__ = "0.1.0"
