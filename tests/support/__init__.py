"""Test support: builders of inputs the tests and benchmarks need (WARC files)."""
