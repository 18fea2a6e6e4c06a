"""Filter logic of the DanQing curation workflow: pure functions over Polars frames and arrays."""

__version__ = "0.1.0"
