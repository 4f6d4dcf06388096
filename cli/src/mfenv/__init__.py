"""mfenv: the teammate's command line for a private Metaflow back end (create, use, run, delete)."""

__version__ = "0.1.0"
