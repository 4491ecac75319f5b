"""Guards around the worker: memory limit discovery, the pre-flight estimate, the runtime sampler."""
