"""Report tables built only from the counts records the pipeline's jobs wrote."""
