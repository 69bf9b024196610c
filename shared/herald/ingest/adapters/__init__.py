"""Ingest's AWS adapters: each implements one of its ports with a boto3 client it is handed."""
