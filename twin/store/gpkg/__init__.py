"""The GeoPackage engine: a twin store in one GeoPackage file (SQLite) that QGIS and GDAL open as it is."""
