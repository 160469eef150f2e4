-- One layer: its table, its history table and their indexes; {t} is the layer id, {s} the schema.
CREATE TABLE {s}."{t}" (
  fid bigint PRIMARY KEY,
  geom geometry({geomtype}, 4326) NOT NULL,
  "key" text COLLATE "C" NOT NULL UNIQUE,
  fp bigint NOT NULL,
  version integer NOT NULL,
  changeset bigint NOT NULL,
  valid_from timestamptz NOT NULL,
  status text COLLATE "C" NOT NULL,
  updated_at timestamptz NOT NULL{columns}
);
CREATE TABLE {s}."{t}_history" (
  hid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  geom geometry(Geometry, 4326),
  fid bigint NOT NULL,
  "key" text COLLATE "C" NOT NULL,
  fp bigint NOT NULL,
  version integer NOT NULL,
  changeset bigint NOT NULL,
  valid_from timestamptz NOT NULL,
  status text COLLATE "C" NOT NULL,
  updated_at timestamptz NOT NULL{columns},
  valid_to timestamptz NOT NULL,
  changeset_to bigint NOT NULL,
  op text NOT NULL
);
CREATE INDEX "{t}_history_key" ON {s}."{t}_history" ("key", version);
CREATE INDEX "{t}_history_changeset" ON {s}."{t}_history" (changeset, fid);
CREATE INDEX "{t}_history_changeset_to" ON {s}."{t}_history" (changeset_to, fid);
CREATE INDEX "{t}_history_geom" ON {s}."{t}_history" USING gist (geom);
