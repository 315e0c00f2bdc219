"""Report stage: figures, tables, captions and the self-contained viewer page."""
