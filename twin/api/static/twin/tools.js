/* twin web map tools: search (location key, name, address), measure (distance, area) and nearby components. */
(function (root) {
  'use strict';
  var T = root.TwinMap = root.TwinMap || {};
  var I = root.TwinI18n, G = root.TwinGeo;
  var KEY = /^([A-Za-z]{2})-([0-9a-zA-Z]{8})-(\d+)$/;

  T.formatLength = function (m) {
    return m >= 1000 ? (m / 1000).toFixed(m >= 10000 ? 1 : 2) + ' ' + I.t('km') : Math.round(m) + ' ' + I.t('metres');
  };
  T.formatArea = function (a) {
    if (a >= 1e6) { return (a / 1e6).toFixed(2) + ' ' + I.t('sqkm'); }
    if (a >= 1e4) { return (a / 1e4).toFixed(2) + ' ' + I.t('ha'); }
    return Math.round(a) + ' ' + I.t('sqm');
  };

  /* ---- search ---- */

  function cqlString(text) { return "'%" + text.replace(/'/g, "''") + "%'"; }

  function searchByText(text) {
    var specs = T.config.layers.filter(function (l) { return l.search.length && l.count > 0; });
    return Promise.all(specs.map(function (spec) {
      var filter = spec.search.map(function (f) { return f + ' LIKE ' + cqlString(text); }).join(' OR ');
      return T.getJSON(T.itemsUrl(spec.id, {filter: filter, limit: 8})).then(function (fc) {
        return fc.features.map(function (f) { return {spec: spec, feature: f}; });
      }).catch(function () { return []; });
    })).then(function (lists) { return [].concat.apply([], lists); });
  }

  function searchByKey(text) {
    var m = KEY.exec(text);
    var key = m[1].toUpperCase() + '-' + m[2].toLowerCase() + '-' + m[3];
    return T.getJSON(T.config.api + '/keys/' + encodeURIComponent(key)).then(function (f) {
      return [{spec: T.specOfKey(key), feature: f}];
    }).catch(function () { return []; });
  }

  function showResults(hits, text) {
    var box = document.getElementById('twin-results');
    if (!hits.length) {
      T.panel(I.t('noResult') + ': ' + T.esc(text), '');
      return;
    }
    var items = hits.map(function (h, i) {
      var p = h.feature.properties, label = p.name || p.project_name || h.feature.id;
      return '<li><a href="#" data-hit="' + i + '"><span class="twin-chip" style="background:' + h.spec.color +
        '"></span>' + T.esc(label) + '</a> <span class="twin-muted">' + T.esc(I.name(h.spec)) + ' · ' +
        T.esc(p.address || h.feature.id) + '</span></li>';
    });
    T.panel(I.t('search') + ': ' + T.esc(text), '<ul class="twin-list">' + items.join('') + '</ul>');
    box.querySelectorAll('a[data-hit]').forEach(function (a) {
      a.addEventListener('click', function (e) {
        e.preventDefault();
        var h = hits[Number(a.getAttribute('data-hit'))];
        T.showFeature(h.spec, h.feature);
      });
    });
    if (hits.length === 1) { T.showFeature(hits[0].spec, hits[0].feature); }
  }

  T.search = function (text) {
    text = (text || '').trim();
    if (!text) { return Promise.resolve([]); }
    T.panel(I.t('searching'), '');
    var run = KEY.test(text) ? searchByKey(text) : searchByText(text);
    return run.then(function (hits) { showResults(hits, text); return hits; });
  };

  /* ---- measure ---- */

  var measure = {points: [], shape: null, label: null, kind: null};

  function drawMeasure() {
    var pts = measure.points;
    if (measure.shape) { T.measureLayer.removeLayer(measure.shape); }
    if (!pts.length) { return; }
    var opts = {color: '#d62728', weight: 3, dashArray: '6 6', fillOpacity: 0.15, interactive: false};
    measure.shape = (measure.kind === 'area' && pts.length > 2 ? L.polygon(pts, opts) : L.polyline(pts, opts))
      .addTo(T.measureLayer);
    var text = measure.kind === 'area' ?
      I.t('area') + ' ' + T.formatArea(G.polygonArea(pts)) :
      I.t('length') + ' ' + T.formatLength(G.pathLength(pts));
    if (measure.label) { T.measureLayer.removeLayer(measure.label); }
    measure.label = L.tooltip({permanent: true, direction: 'right', className: 'twin-measure-label'})
      .setLatLng(pts[pts.length - 1]).setContent(text).addTo(T.measureLayer);
    T.measureResult = text;
  }

  T.startMeasure = function (kind) {
    T.clearMeasure();
    measure.kind = kind;
    T.mode = 'measure';
    T.map.doubleClickZoom.disable();
    T.map.getContainer().classList.add('twin-crosshair');
    T.notify(I.t('measureHint'));
  };

  T.finishMeasure = function () {
    T.mode = null;
    T.map.doubleClickZoom.enable();
    T.map.getContainer().classList.remove('twin-crosshair');
  };

  T.clearMeasure = function () {
    T.finishMeasure();
    measure.points = [];
    measure.kind = null;
    T.measureLayer.clearLayers();
    measure.shape = measure.label = null;
    T.measureResult = '';
  };

  function onMeasureClick(e) {
    measure.points.push(e.latlng);
    L.circleMarker(e.latlng, {radius: 3, color: '#d62728', interactive: false}).addTo(T.measureLayer);
    drawMeasure();
  }

  /* ---- nearby ---- */

  T.nearby = function (latlng) {
    var at = T.toData(latlng);
    T.nearbyLayer.clearLayers();
    L.circleMarker(latlng, {radius: 7, color: '#111', weight: 2, fillColor: '#fff', fillOpacity: 1})
      .addTo(T.nearbyLayer);
    var specs = T.config.layers.filter(function (l) { return l.group !== 'administrative' && l.count > 0; });
    T.panel(I.t('nearbyTitle'), I.t('loading'));
    return Promise.all(specs.map(function (spec) {
      var url = T.config.api + '/collections/' + spec.id + '/nearest?point=' + at[0].toFixed(7) + ',' +
        at[1].toFixed(7) + '&k=3';
      return T.getJSON(url).then(function (fc) { return {spec: spec, features: fc.features}; })
        .catch(function () { return {spec: spec, features: []}; });
    })).then(function (groups) {
      var hits = [], html = ['<div class="twin-muted">' + I.t('nearbyAt') + ' ' + at[0].toFixed(6) + ', ' +
        at[1].toFixed(6) + '</div>'];
      groups.forEach(function (g) {
        if (!g.features.length) { return; }
        html.push('<h4><span class="twin-chip" style="background:' + g.spec.color + '"></span>' +
          T.esc(I.name(g.spec)) + '</h4><ul class="twin-list">');
        g.features.forEach(function (f) {
          hits.push({spec: g.spec, feature: f});
          var p = f.properties;
          html.push('<li><a href="#" data-hit="' + (hits.length - 1) + '"><code>' + T.esc(f.id) + '</code></a> ' +
            '<b class="twin-distance">' + T.formatLength(p.distance_m) + '</b> <span class="twin-muted">' +
            T.esc(p.name || p.project_name || p.road || '') + '</span></li>');
        });
        html.push('</ul>');
      });
      T.panel(I.t('nearbyTitle'), html.join(''));
      document.getElementById('twin-results').querySelectorAll('a[data-hit]').forEach(function (a) {
        a.addEventListener('click', function (e) {
          e.preventDefault();
          var h = hits[Number(a.getAttribute('data-hit'))];
          T.showFeature(h.spec, h.feature);
        });
      });
      return groups;
    });
  };

  /* Map clicks belong to the active tool, if any. */
  T.installTools = function () {
    T.measureLayer = L.layerGroup().addTo(T.map);
    T.nearbyLayer = L.layerGroup().addTo(T.map);
    T.map.on('click', function (e) {
      if (T.mode === 'measure') { onMeasureClick(e); }
      if (T.mode === 'nearby') { T.mode = null; T.map.getContainer().classList.remove('twin-crosshair'); T.nearby(e.latlng); }
    });
    T.map.on('dblclick', function () { if (T.mode === 'measure') { T.finishMeasure(); } });
    T.map.on('contextmenu', function (e) { T.nearby(e.latlng); });
  };
})(window);
