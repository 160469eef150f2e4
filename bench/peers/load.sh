#!/usr/bin/env bash
# Load a twin GeoPackage store into the peers (run bench/peers/setup.sh first).
#
#   bash bench/peers/load.sh STORE.gpkg [--with-sqlite]
#
# - PostGIS (database `twin` on 127.0.0.1:$PGPORT): one table per twin layer, same name, copied by ogr2ogr
#   with twin's fids kept (-preserve_fid, FID=fid), geometry `geom` with a GiST index, and the columns twin's
#   API returns (key, status, updated_at, the layer's fields; see store_layers.py), then ANALYZE. ogr2ogr carries
#   the GeoPackage's UNIQUE constraint on `key` over (tipg serves `key` as the feature id, like twin).
#   `*_history` tables are skipped.
# - pygeoapi: $PEERS/pygeoapi-ogr.yml (OGR provider, reading STORE itself) and, with --with-sqlite,
#   $PEERS/pygeoapi-sqlite.yml (SQLiteGPKG provider, reading a copy, $PEERS/pygeoapi-sqlite.gpkg, because it
#   writes vgpkg_* tables into the file it reads), with their OpenAPI documents; the server port is
#   $PYGEOAPI_PORT (default 55002).
# - $PEERS/loaded-store.txt: STORE's path and last changeset id, so benchmarks know what the peers hold.
set -euo pipefail
USAGE="usage: load.sh STORE.gpkg [--with-sqlite]"
STORE=$(realpath "${1:?$USAGE}")
providers=(ogr)
case "${2:-}" in
  "") ;;
  --with-sqlite) providers+=(sqlite) ;;
  *) echo "$USAGE" >&2; exit 2 ;;
esac
[ -f "$STORE" ] || { echo "load.sh: no such store: $STORE" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)
PEERS=${PEERS:-$HOME/.cache/twin/peers}
PGPORT=${PGPORT:-55432}
PYGEOAPI_PORT=${PYGEOAPI_PORT:-55002}
PG="PG:host=127.0.0.1 port=$PGPORT dbname=twin user=postgres"
PY="$PEERS/pygeoapi/bin/python"
psql_twin() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d twin "$@"; }

psql_twin -c "SELECT 1" >/dev/null || { echo "load.sh: PostGIS is not up; run bench/peers/setup.sh" >&2; exit 1; }
changeset=$("$PY" "$HERE/store_layers.py" "$STORE" --changeset)  # taken first: a later change means reload

while IFS=$'\t' read -r layer columns; do
  t0=$(date +%s%N)
  ogr2ogr -f PostgreSQL "$PG" "$STORE" "$layer" -nln "$layer" -overwrite -preserve_fid -select "$columns" \
    -lco GEOMETRY_NAME=geom -lco FID=fid -lco SPATIAL_INDEX=GIST -gt 100000 --config PG_USE_COPY YES
  psql_twin -c "ANALYZE \"$layer\""
  n=$(psql_twin -tAc "SELECT count(*) FROM \"$layer\"")
  printf '%-22s %10s rows  %6d ms\n' "$layer" "$n" $(( ($(date +%s%N) - t0) / 1000000 ))
done < <("$PY" "$HERE/store_layers.py" "$STORE")

rm -f "$PEERS"/pygeoapi-sqlite*
for provider in "${providers[@]}"; do
  cfg="$PEERS/pygeoapi-$provider.yml"
  data=()
  [ "$provider" = ogr ] || data=(--data "$PEERS/pygeoapi-sqlite.gpkg")
  "$PY" "$HERE/pygeoapi_config.py" "$STORE" "$cfg" --provider "$provider" --port "$PYGEOAPI_PORT" "${data[@]}"
  PYGEOAPI_CONFIG="$cfg" "$PEERS/pygeoapi/bin/pygeoapi" openapi generate "$cfg" \
    --output-file "$PEERS/pygeoapi-$provider-openapi.yml" 2> >(grep -v "^WARNING" >&2) >/dev/null
  echo "pygeoapi ($provider provider): $cfg"
done
printf '%s\n%s\n' "$STORE" "$changeset" >"$PEERS/loaded-store.txt"
