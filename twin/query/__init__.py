"""Spatial and attribute queries over the store, without HTTP: value objects, CQL2, lean reads, encoders."""
