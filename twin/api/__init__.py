"""The HTTP service (OGC API - Features and twin's extensions); the only package that imports FastAPI."""
