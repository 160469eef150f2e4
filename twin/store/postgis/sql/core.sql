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
     ELSE ST_Distance({s}.twin_local(g, lon0, lat0), ST_MakePoint(0, 0)) END $$;
