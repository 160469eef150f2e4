-- Tile aggregates, kept up to date from the changesets (see tiles/aggregate.py): per layer the changeset they
-- reflect and how they were built, counts per cell, level and status, and generalised shapes per cell.
CREATE TABLE IF NOT EXISTS twin_tiles_state (layer TEXT PRIMARY KEY, changeset INTEGER NOT NULL,
  signature TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS twin_tiles_cells (layer TEXT NOT NULL, level INTEGER NOT NULL, cx INTEGER NOT NULL,
  cy INTEGER NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL, measure REAL NOT NULL, sx REAL NOT NULL,
  sy REAL NOT NULL, PRIMARY KEY (layer, level, cx, cy, status)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS twin_tiles_shapes (layer TEXT NOT NULL, level INTEGER NOT NULL, cx INTEGER NOT NULL,
  cy INTEGER NOT NULL, geom BLOB NOT NULL, PRIMARY KEY (layer, level, cx, cy)) WITHOUT ROWID;
