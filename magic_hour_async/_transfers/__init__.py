"""Transfers: streaming downloads, uploads, their shared parts and output file names."""
