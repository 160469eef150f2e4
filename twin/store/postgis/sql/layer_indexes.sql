-- Secondary indexes of a layer table; a first import into an empty layer builds them once at the end.
CREATE INDEX "{t}_geom" ON {s}."{t}" USING gist (geom);
CREATE INDEX "{t}_fp" ON {s}."{t}" (fp);
CREATE INDEX "{t}_changeset" ON {s}."{t}" (changeset, fid);
