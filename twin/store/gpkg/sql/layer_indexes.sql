-- Secondary indexes of a layer table. A first import into an empty layer drops them and builds
-- them once at the end, which is much faster than updating them row by row.
CREATE INDEX "{t}_fp" ON "{t}"(fp);
CREATE INDEX "{t}_changeset" ON "{t}"(changeset);
