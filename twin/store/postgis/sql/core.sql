-- twin's bookkeeping tables in the store's schema ({s}). Layer tables are created from the catalogue (layer.sql).
CREATE TABLE {s}.twin_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE {s}.twin_changesets (
  id bigint PRIMARY KEY,
  time timestamptz NOT NULL,
  author text NOT NULL,
  source text NOT NULL,
  layer text COLLATE "C" NOT NULL,
  kind text NOT NULL,
  inserted bigint NOT NULL,
  updated bigint NOT NULL,
  deleted bigint NOT NULL,
  unchanged bigint NOT NULL,
  source_crs text,
  note text NOT NULL DEFAULT ''
);
CREATE INDEX twin_changesets_layer ON {s}.twin_changesets (layer, id);
CREATE TABLE {s}.twin_layers (
  layer text COLLATE "C" PRIMARY KEY,
  feature_count bigint NOT NULL DEFAULT 0,
  next_fid bigint NOT NULL DEFAULT 1,
  min_x double precision, min_y double precision, max_x double precision, max_y double precision,
  spec text NOT NULL
);
-- Distances in metres exactly as twin.geodesy measures them: great circle (haversine, mean Earth radius)
-- for points; for other geometries the planar distance in an equirectangular frame centred on the point.
CREATE FUNCTION {s}.twin_local(g geometry, lon0 double precision, lat0 double precision) RETURNS geometry
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS
  $$ SELECT ST_Scale(ST_Translate(g, -lon0, -lat0), 6371008.8 * pi() / 180.0 * cos(radians(lat0)),
                     6371008.8 * pi() / 180.0) $$;
CREATE FUNCTION {s}.twin_distance(g geometry, lon0 double precision, lat0 double precision)
  RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS
  $$ SELECT CASE WHEN GeometryType(g) = 'POINT' THEN
       2 * 6371008.8 * asin(sqrt(least(greatest(
         sin((radians(ST_Y(g)) - radians(lat0)) / 2) ^ 2
         + cos(radians(lat0)) * cos(radians(ST_Y(g))) * sin(radians(ST_X(g) - lon0) / 2) ^ 2, 0.0), 1.0)))
     ELSE ST_Distance({s}.twin_local(g, lon0, lat0), ST_SetSRID(ST_MakePoint(0, 0), 4326)) END $$;
-- Users, hashed tokens, browser sessions, one-time sign-in codes and the audit trail (twin/access).
CREATE TABLE {s}.twin_users (name text PRIMARY KEY, role text NOT NULL, area text, created text NOT NULL,
  revoked text);
CREATE TABLE {s}.twin_tokens (id text PRIMARY KEY, "user" text NOT NULL REFERENCES {s}.twin_users (name),
  hash text NOT NULL, created text NOT NULL, expires text NOT NULL, revoked text);
CREATE INDEX twin_tokens_user ON {s}.twin_tokens ("user");
CREATE TABLE {s}.twin_audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, time text NOT NULL, "user" text,
  role text, action text NOT NULL, outcome text NOT NULL, status integer, method text, path text, layer text,
  count bigint, detail text);
CREATE INDEX twin_audit_time ON {s}.twin_audit (time);
CREATE INDEX twin_audit_user ON {s}.twin_audit ("user", time);
CREATE TABLE {s}.twin_sessions (hash text PRIMARY KEY, "user" text NOT NULL, role text NOT NULL, area text,
  via text NOT NULL, token text, created text NOT NULL, expires text NOT NULL);
CREATE INDEX twin_sessions_user ON {s}.twin_sessions ("user");
CREATE TABLE {s}.twin_sign_in_codes (hash text PRIMARY KEY, token text NOT NULL, created text NOT NULL,
  expires text NOT NULL);
-- Tile aggregates, kept up to date from the changesets (tiles/aggregate.py).
CREATE TABLE {s}.twin_tiles_state (layer text COLLATE "C" PRIMARY KEY, changeset bigint NOT NULL,
  signature text NOT NULL);
CREATE TABLE {s}.twin_tiles_cells (layer text COLLATE "C" NOT NULL, level integer NOT NULL, cx bigint NOT NULL,
  cy bigint NOT NULL, status text COLLATE "C" NOT NULL, n bigint NOT NULL, measure double precision NOT NULL,
  sx double precision NOT NULL, sy double precision NOT NULL, PRIMARY KEY (layer, level, cx, cy, status));
CREATE TABLE {s}.twin_tiles_shapes (layer text COLLATE "C" NOT NULL, level integer NOT NULL, cx bigint NOT NULL,
  cy bigint NOT NULL, geom bytea NOT NULL, PRIMARY KEY (layer, level, cx, cy));
-- Status reports as received: when it happened (observed_at) and when twin recorded it (recorded_at), each kept,
-- applied to its component only when newer than the last one applied (times are UTC text to the microsecond).
CREATE TABLE {s}.twin_reports (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  layer text COLLATE "C" NOT NULL,
  "key" text COLLATE "C" NOT NULL,
  status text,
  measured jsonb NOT NULL DEFAULT '{}',
  observed_at text COLLATE "C" NOT NULL,
  recorded_at text NOT NULL,
  source text NOT NULL,
  author text NOT NULL,
  changeset bigint NOT NULL,
  applied boolean NOT NULL
);
CREATE INDEX twin_reports_key ON {s}.twin_reports ("key", observed_at);
