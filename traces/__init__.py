"""The trace catalogue, raw-format readers and bundled data files."""
