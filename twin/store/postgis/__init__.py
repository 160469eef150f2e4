"""The PostGIS engine: a twin store in one schema of a PostgreSQL database with PostGIS."""
