"""Value objects every part of twin shares, with no I/O: queries, checked filters, areas, rows and changes.

The store engines take these as their input and give them back as their output, so nothing above the store
ever sees an engine's SQL or its bytes.
"""
