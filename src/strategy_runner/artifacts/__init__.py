"""Where results go: a protocol (base.py), the local results directory, S3."""
