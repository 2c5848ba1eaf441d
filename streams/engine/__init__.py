"""Engines: thin adapters that move batches between Kafka and the scoring core."""
