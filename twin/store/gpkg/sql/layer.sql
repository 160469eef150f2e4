-- One layer: its features table, its history table, and an R-tree index (gpkg_rtree_index).
-- Placeholders (layer id, geometry type, attribute columns) are filled from the catalogue.
CREATE TABLE "{t}" (
  fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  geom {geomtype},
  "key" TEXT NOT NULL UNIQUE,
  fp INTEGER NOT NULL,
  version INTEGER NOT NULL,
  changeset INTEGER NOT NULL,
  valid_from TEXT NOT NULL,
  status TEXT NOT NULL,
  updated_at DATETIME NOT NULL{columns}
);
CREATE TABLE "{t}_history" (
  hid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  geom GEOMETRY,
  fid INTEGER NOT NULL,
  "key" TEXT NOT NULL,
  fp INTEGER NOT NULL,
  version INTEGER NOT NULL,
  changeset INTEGER NOT NULL,
  valid_from TEXT NOT NULL,
  status TEXT NOT NULL,
  updated_at DATETIME NOT NULL{columns},
  valid_to TEXT NOT NULL,
  changeset_to INTEGER NOT NULL,
  op TEXT NOT NULL
);
CREATE INDEX "{t}_history_key" ON "{t}_history"("key", version);
CREATE INDEX "{t}_history_changeset" ON "{t}_history"(changeset, fid);
CREATE INDEX "{t}_history_changeset_to" ON "{t}_history"(changeset_to, fid);
CREATE VIRTUAL TABLE "rtree_{t}_geom" USING rtree(id, minx, maxx, miny, maxy);
-- The history's own spatial index (by hid), kept by a trigger whoever archives a version: as-of reads by box.
CREATE VIRTUAL TABLE "rtree_{t}_history_geom" USING rtree(id, minx, maxx, miny, maxy);
CREATE TRIGGER "rtree_{t}_history_geom_insert" AFTER INSERT ON "{t}_history"
WHEN (NEW.geom NOT NULL AND NOT ST_IsEmpty(NEW.geom))
BEGIN
  INSERT OR REPLACE INTO "rtree_{t}_history_geom" VALUES
    (NEW.hid, ST_MinX(NEW.geom), ST_MaxX(NEW.geom), ST_MinY(NEW.geom), ST_MaxY(NEW.geom));
END;
