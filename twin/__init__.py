"""twin: an open, self-hostable geospatial digital twin of Shanghai."""

__version__ = "0.1.0"
