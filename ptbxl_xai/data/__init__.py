"""Data stage: acquiring PTB-XL, reading WFDB, conditioning, labels, Parquet, synthetic data."""
