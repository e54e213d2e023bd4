"""Interoperability tests fed by public corpora of real-world ActivityPub objects."""
