/* twin web map: the catalogue layers on the map.

   Big layers come from twin's vector tiles (/tiles/{layers}/{z}/{x}/{y}.mvt, one combined request per tile for
   every visible tiled layer): raw components at and above a layer's min_zoom, grid cells with counts by status
   below it. Small layers are fetched whole, once, as GeoJSON from the items endpoint. Without a tile service,
   big layers fall back to GeoJSON of the current view above their min_zoom.

   With a GCJ-02 basemap (Amap) every overlay is shifted to GCJ-02: GeoJSON coordinate by coordinate, vector
   tiles tile by tile (the offset changes by well under a pixel across one tile at any zoom), loading the tiles
   whose data falls in view once shifted. */
(function (root) {
  'use strict';
  var T = root.TwinMap = root.TwinMap || {};
  var I = root.TwinI18n, G = root.TwinGeo;

  T.esc = function (v) {
    return String(v === null || v === undefined ? '' : v).replace(/[&<>"']/g, function (c) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c];
    });
  };

  /* Data (WGS84 lon, lat) to display coordinates, and back. */
  T.toDisplay = function (lon, lat) {
    if (T.gcj) { var g = G.toGcj02(lon, lat); return L.latLng(g[1], g[0]); }
    return L.latLng(lat, lon);
  };
  T.toData = function (latlng) {
    return T.gcj ? G.toWgs84(latlng.lng, latlng.lat) : [latlng.lng, latlng.lat];
  };

  T.spec = function (id) { return T.config.layers.filter(function (l) { return l.id === id; })[0]; };
  T.specOfKey = function (key) {
    var code = String(key).slice(0, 2).toUpperCase();
    return T.config.layers.filter(function (l) { return l.code === code; })[0];
  };

  function statusStyle(spec, status) {
    var s = spec.statuses.filter(function (x) { return x.id === status; })[0];
    return L.extend({}, s ? s.style : spec.style);
  }
  T.styleOf = statusStyle;

  function markDrawn(n) {
    if (n > 0 && T.firstDrawnAt === undefined) { T.firstDrawnAt = performance.now(); }
  }

  /* Style of one vector-tile feature: a component by its status, or an aggregate cell by its counts. */
  function tileStyle(spec) {
    return function (props) {
      props.__layer = spec.id;
      if (props.key !== undefined) {
        var st = statusStyle(spec, props.status);
        st.className = 'twin-f twin-f-' + spec.id + ' twin-s-' + props.status;
        st.fill = spec.geometry !== 'line';
        return st;
      }
      var count = props.count || 0, alert = (props.count_faulty || 0) + (props.count_suspended || 0);
      var strength = Math.min(1, Math.log(count + 1) / Math.log(200));
      var cell = {className: 'twin-cell twin-cell-' + spec.id, color: spec.color, weight: 1, opacity: 0.8,
        fill: spec.geometry !== 'line', fillColor: spec.color, fillOpacity: 0.3 + 0.55 * strength, radius: 2};
      if (spec.geometry === 'point' || spec.geometry === 'point_or_polygon') {
        cell.color = '#ffffff';
        cell.weight = 0.5;
      }
      if (alert > 0) {
        var bad = spec.statuses.filter(function (s) { return s.id === 'faulty' || s.id === 'suspended'; })[0];
        cell.color = bad ? bad.color : '#e31a1c';
        cell.weight = 2;
      }
      return cell;
    };
  }

  /* The vector-tile layer of the tiled layers in `ids`, shifted to GCJ-02 when that basemap is on. */
  var ShiftingGrid = L.VectorGrid.Protobuf.extend({
    createTile: function (coords, done) {
      var el = L.VectorGrid.Protobuf.prototype.createTile.call(this, coords, done);
      if (T.gcj) {
        var size = this.getTileSize(), z = coords.z;
        var centre = L.point((coords.x + 0.5) * size.x, (coords.y + 0.5) * size.y);
        var ll = this._map.unproject(centre, z), g = G.toGcj02(ll.lng, ll.lat);
        var off = this._map.project(L.latLng(g[1], g[0]), z).subtract(centre);
        el.style.overflow = 'visible';
        el.querySelector('g').setAttribute('transform', 'translate(' + off.x + ',' + off.y + ')');
      }
      return el;
    },
    /* Point symbolizers of tiles inherit getLatLng from L.CircleMarker but have no lat/lng (they live in tile
       pixels), which breaks Leaflet's click handling: let Leaflet use the mouse position instead. */
    _createLayer: function (feat, pxPerExtent, layerStyle) {
      var layer = L.VectorGrid.Protobuf.prototype._createLayer.call(this, feat, pxPerExtent, layerStyle);
      layer.getLatLng = null;
      return layer;
    },
    _getTiledPixelBounds: function (center) {
      var bounds = L.VectorGrid.Protobuf.prototype._getTiledPixelBounds.call(this, center);
      if (!T.gcj) { return bounds; }
      var z = this._tileZoom, g = G.toGcj02(center.lng, center.lat);
      var off = this._map.project(L.latLng(g[1], g[0]), z).subtract(this._map.project(center, z));
      return L.bounds(bounds.min.subtract(off), bounds.max.subtract(off));
    }
  });

  function buildGrid(ids) {
    var styles = {};
    ids.forEach(function (id) { styles[id] = tileStyle(T.spec(id)); });
    var url = T.config.tiles.replace('{layers}', ids.join(',')) + (T.asOfParam ? T.asOfParam() : '');
    var grid = new ShiftingGrid(url, {
      vectorTileLayerStyles: styles, interactive: true, maxNativeZoom: 20, maxZoom: 22, pane: 'overlayPane',
      getFeatureId: function (f) { return f.properties.key; },
      fetchOptions: {credentials: 'same-origin'}  // the session cookie: tiles hold only what the user may see
    });
    grid.on('click', function (e) {
      var props = e.layer.properties || {};
      if (props.key !== undefined) { T.openFeature(props.__layer, props.key, e.latlng); }
      else { T.openCell(props.__layer, props, e.latlng); }
    });
    grid.on('tileload', function (e) { markDrawn(e.tile.querySelectorAll('path').length); });
    return grid;
  }

  function featureStyle(spec, f) {
    var st = statusStyle(spec, f.properties.status);
    st.className = 'twin-f twin-f-' + spec.id + ' twin-s-' + f.properties.status;
    return st;
  }

  function geojsonLayer(spec, data) {
    return L.geoJSON(data, {
      coordsToLatLng: function (c) { return T.toDisplay(c[0], c[1]); },
      style: function (f) { return featureStyle(spec, f); },
      pointToLayer: function (f, latlng) { return L.circleMarker(latlng, featureStyle(spec, f)); },
      onEachFeature: function (f, layer) {
        layer.on('click', function (e) {
          if (T.mode) { return; }  // the click belongs to the measure or nearby tool
          L.DomEvent.stopPropagation(e);
          T.openFeature(spec.id, f.id, e.latlng);
        });
      }
    });
  }

  T.itemsUrl = function (id, params) {
    var q = Object.keys(params).map(function (k) { return k + '=' + encodeURIComponent(params[k]); }).join('&');
    return T.config.api + '/collections/' + id + '/items?' + q;
  };

  /* GET JSON with the session cookie; a signed-in user whose session has ended is sent to sign in again. */
  T.getJSON = function (url) {
    var opts = {credentials: 'same-origin', headers: {Accept: 'application/geo+json, application/json'}};
    return fetch(url, opts).then(function (r) {
      if (r.status === 401 && !T.config.user.anonymous) { T.signIn(true); }
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.description || r.statusText); }
        return body;
      });
    });
  };

  /* The parameters of a layer's drawing, as of the time bar's moment when one is chosen. */
  function pastOrNow(params) { return T.asOf ? L.extend({as_of: T.asOf}, params) : params; }

  /* Small layers: every component, fetched once and kept. */
  function loadWhole(spec) {
    var entry = T.overlays[spec.id];
    if (!entry.data) {
      entry.data = T.getJSON(T.itemsUrl(spec.id, pastOrNow({limit: Math.max(1, spec.count)})));
    }
    return entry.data;
  }

  /* Big layers without a tile service: the components in view, above the layer's min_zoom. */
  function loadView(spec) {
    if (T.map.getZoom() < spec.min_zoom) { return Promise.resolve({type: 'FeatureCollection', features: []}); }
    var b = T.map.getBounds(), sw = T.toData(b.getSouthWest()), ne = T.toData(b.getNorthEast());
    return T.getJSON(T.itemsUrl(spec.id, pastOrNow({bbox: [sw[0], sw[1], ne[0], ne[1]].join(','), limit: 5000})));
  }

  function drawGeojson(spec) {
    var entry = T.overlays[spec.id];
    var load = spec.mode === 'geojson' ? loadWhole(spec) : loadView(spec);
    var ticket = entry.ticket = (entry.ticket || 0) + 1;
    load.then(function (data) {
      if (ticket !== entry.ticket || !entry.visible) { return; }
      if (entry.layer) { T.map.removeLayer(entry.layer); }
      entry.layer = geojsonLayer(spec, data).addTo(T.map);
      markDrawn(data.features.length);
    }).catch(function (err) { T.notify(I.t('error') + ': ' + err.message); });
  }

  /* Bring the map in line with the visible layers (called on toggles, on basemap changes, and on moves). */
  T.refreshOverlays = function (moved) {
    var tiled = T.config.layers.filter(function (l) {
      return l.mode === 'tiles' && T.overlays[l.id].visible;
    }).sort(function (a, b) {  // areas under lines under points; big layers under small ones
      return a.order[0] - b.order[0] || a.order[1] - b.order[1];
    }).map(function (l) { return l.id; });
    var want = tiled.join(',') + (T.gcj ? '@gcj' : '') + (T.asOf ? '@' + T.asOf : '');
    if (want !== T.gridKey) {
      if (T.grid) { T.map.removeLayer(T.grid); T.grid = null; }
      if (tiled.length) { T.grid = buildGrid(tiled).addTo(T.map); }
      T.gridKey = want;
    }
    T.config.layers.forEach(function (spec) {
      var entry = T.overlays[spec.id];
      if (spec.mode === 'tiles') { return; }
      var stale = entry.gcj !== T.gcj || entry.asOf !== T.asOf || (spec.mode === 'view' && moved);
      if (entry.visible && (!entry.layer || stale)) { entry.gcj = T.gcj; entry.asOf = T.asOf; drawGeojson(spec); }
      if (!entry.visible && entry.layer) { T.map.removeLayer(entry.layer); entry.layer = null; }
    });
  };

  /* The keys of the components of each layer drawn now, from GeoJSON and from the loaded vector tiles. */
  T.drawnKeys = function () {
    var out = {};
    T.config.layers.forEach(function (l) {
      out[l.id] = [];
      if (T.overlays[l.id].layer) { T.overlays[l.id].layer.eachLayer(function (f) { out[l.id].push(f.feature.id); }); }
    });
    Object.keys(T.grid ? T.grid._vectorTiles : {}).forEach(function (tile) {
      var feats = T.grid._vectorTiles[tile]._features || {};
      Object.keys(feats).forEach(function (id) {
        var f = feats[id], key = f.feature.properties.key;
        if (key !== undefined && out[f.layerName]) { out[f.layerName].push(key); }
      });
    });
    return out;
  };

  /* How many components and cells of each layer are drawn now (for the legend and the tests). */
  T.drawn = function () {
    var out = {};
    T.config.layers.forEach(function (l) {
      out[l.id] = {features: document.querySelectorAll('.twin-f-' + l.id).length,
        cells: document.querySelectorAll('.twin-cell-' + l.id).length};
    });
    return out;
  };
})(window);
