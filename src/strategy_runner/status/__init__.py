"""Where a run's status item lives: a protocol (base.py), a local file store, DynamoDB."""
