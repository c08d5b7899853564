"""Data in: the Kaggle CSV readers, the SQL database, validated ingest and synthetic data."""
