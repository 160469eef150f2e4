/* twin web map: geodesy for the measure tool and the GCJ-02 offset of Chinese basemaps.

   GCJ-02 is the obfuscated datum that Amap (Gaode) tiles are drawn in: WGS84 plus a smooth offset of a few
   hundred metres. toGcj02 is the published forward formula (the same as twin/crs.py); toWgs84 inverts it by
   fixed-point iteration, also as twin/crs.py does, so both agree to well under a millimetre. */
(function (root) {
  'use strict';

  var A = 6378245.0, EE = 0.00669342162296594323, R = 6371008.8, RAD = Math.PI / 180;

  function inChina(lon, lat) {
    return lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271;
  }

  function delta(lon, lat) {
    var x = lon - 105.0, y = lat - 35.0, PI = Math.PI;
    var dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x)) +
      (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0 +
      (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0 +
      (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    var dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x)) +
      (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0 +
      (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0 +
      (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    var rad = lat / 180.0 * PI, magic = 1 - EE * Math.sin(rad) * Math.sin(rad), sq = Math.sqrt(magic);
    dlat = dlat * 180.0 / ((A * (1 - EE)) / (magic * sq) * PI);
    dlon = dlon * 180.0 / (A / sq * Math.cos(rad) * PI);
    return [dlon, dlat];
  }

  /* [lon, lat] in WGS84 -> [lon, lat] in GCJ-02 (unchanged outside China). */
  function toGcj02(lon, lat) {
    if (!inChina(lon, lat)) { return [lon, lat]; }
    var d = delta(lon, lat);
    return [lon + d[0], lat + d[1]];
  }

  /* [lon, lat] in GCJ-02 -> [lon, lat] in WGS84. */
  function toWgs84(lon, lat) {
    var wlon = lon, wlat = lat;
    for (var i = 0; i < 30; i++) {
      var g = toGcj02(wlon, wlat), elon = g[0] - lon, elat = g[1] - lat;
      wlon -= elon;
      wlat -= elat;
      if (Math.abs(elon) < 1e-10 && Math.abs(elat) < 1e-10) { break; }
    }
    return [wlon, wlat];
  }

  /* Great-circle distance in metres between two L.LatLng-like points (haversine). */
  function distance(a, b) {
    var dlat = (b.lat - a.lat) * RAD, dlon = (b.lng - a.lng) * RAD;
    var h = Math.sin(dlat / 2) * Math.sin(dlat / 2) +
      Math.cos(a.lat * RAD) * Math.cos(b.lat * RAD) * Math.sin(dlon / 2) * Math.sin(dlon / 2);
    return 2 * R * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  function pathLength(points) {
    var total = 0;
    for (var i = 1; i < points.length; i++) { total += distance(points[i - 1], points[i]); }
    return total;
  }

  /* Area in m² of a simple polygon on the sphere (spherical excess summed edge by edge). */
  function polygonArea(points) {
    if (points.length < 3) { return 0; }
    var total = 0;
    for (var i = 0; i < points.length; i++) {
      var p = points[i], q = points[(i + 1) % points.length];
      total += (q.lng - p.lng) * RAD * (2 + Math.sin(p.lat * RAD) + Math.sin(q.lat * RAD));
    }
    return Math.abs(total * R * R / 2);
  }

  root.TwinGeo = {
    inChina: inChina, toGcj02: toGcj02, toWgs84: toWgs84,
    distance: distance, pathLength: pathLength, polygonArea: polygonArea
  };
})(window);
