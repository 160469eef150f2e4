/* twin web map: start-up, the layer panel with its legend, basemaps, language and the shareable URL.

   The URL hash keeps the view and the choices: #map=ZOOM/LAT/LON&layers=hydrant,pipeline&base=twin&lang=zh
   (the centre always in WGS84, whatever the basemap). */
(function (root) {
  'use strict';
  var T = root.TwinMap = root.TwinMap || {};
  var I = root.TwinI18n;
  var ROAD_STYLE = [{color: '#e8a33d', weight: 3, minZoom: 0}, {color: '#f2c86b', weight: 2.2, minZoom: 11},
    {color: '#ffffff', weight: 1.6, minZoom: 12}];

  T.notify = function (text) {
    var el = document.getElementById('twin-toast');
    el.textContent = text;
    el.hidden = false;
    clearTimeout(T._toast);
    T._toast = setTimeout(function () { el.hidden = true; }, 3500);
  };

  /* Show a title and HTML in the results panel (search results, nearby components). */
  T.panel = function (title, html) {
    var box = document.getElementById('twin-results');
    document.getElementById('twin-results-title').innerHTML = title;
    document.getElementById('twin-results-body').innerHTML = html;
    box.hidden = false;
  };

  /* ---- the URL hash ---- */

  function readHash() {
    var out = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (part) {
      var i = part.indexOf('=');
      if (i > 0) { out[part.slice(0, i)] = decodeURIComponent(part.slice(i + 1)); }
    });
    if (out.map) {
      var v = out.map.split('/').map(Number);
      out.view = v.length === 3 && v.every(isFinite) ? v : null;
    }
    return out;
  }

  T.hash = function () {
    var c = T.toData(T.map.getCenter()), z = T.map.getZoom();
    var digits = Math.max(4, Math.ceil(Math.log(Math.pow(2, z)) / Math.LN10) + 1);
    var layers = T.config.layers.filter(function (l) { return T.overlays[l.id].visible; })
      .map(function (l) { return l.id; });
    return '#map=' + z + '/' + c[1].toFixed(digits) + '/' + c[0].toFixed(digits) + '&layers=' + layers.join(',') +
      '&base=' + T.base + '&lang=' + I.lang + (T.asOf ? '&at=' + encodeURIComponent(T.asOf) : '');
  };

  function writeHash() {
    var h = T.hash();
    if (h !== location.hash) { history.replaceState(null, '', h); }
  }
  T.writeHash = writeHash;

  function applyHash(state) {
    if (state.lang === 'en' || state.lang === 'zh') { I.lang = state.lang; }
    if (state.layers !== undefined) {
      var on = state.layers.split(',');
      T.config.layers.forEach(function (l) { T.overlays[l.id].visible = on.indexOf(l.id) >= 0; });
    }
    if (state.base && T.config.basemaps.some(function (b) { return b.id === state.base; })) { T.base = state.base; }
  }

  /* ---- the user: name, role, area; signing in again ---- */

  /* Where to sign in and come back to this view. */
  T.loginUrl = function () {
    return T.config.login + encodeURIComponent(location.pathname + location.hash);
  };

  /* Go to the sign-in page (after `expired` sessions, say why first). */
  T.signIn = function (expired) {
    if (T.leaving) { return; }
    T.leaving = true;
    if (expired) { T.notify(I.t('signInAgain')); }
    setTimeout(function () { location.assign(T.loginUrl()); }, expired ? 1200 : 0);
  };

  function renderUser() {
    var role = document.getElementById('twin-user-role');
    if (role) { role.textContent = role.getAttribute(I.lang === 'en' ? 'data-en' : 'data-zh'); }
    if (T.areaLabel) { T.areaLabel.setContent(areaTitle()); }
  }

  function areaTitle() {
    var area = T.config.user.area;
    return T.esc(I.t('yourArea') + area.name) + ' <span class="twin-muted">' + T.esc(I.name(area)) + '</span>';
  }

  /* The scoped user's area: its outline, the city outside it dimmed, and its name at its northern tip. */
  function drawArea() {
    var area = T.config.user.area;
    if (!area) { return; }
    if (T.areaLayer) { T.map.removeLayer(T.areaLayer); }
    var polys = area.outline.type === 'Polygon' ? [area.outline.coordinates] : area.outline.coordinates;
    var ring = function (r) { return r.map(function (c) { return T.toDisplay(c[0], c[1]); }); };
    var world = [[-85, -180], [-85, 180], [85, 180], [85, -180]];
    var top = null;
    polys.forEach(function (p) { p[0].forEach(function (c) { if (!top || c[1] > top[1]) { top = c; } }); });
    T.areaLayer = L.layerGroup([
      L.polygon([world].concat(polys.map(function (p) { return ring(p[0]); })), {pane: 'twinArea',
        interactive: false, stroke: false, fillColor: '#1f3a5f', fillOpacity: 0.12, className: 'twin-area-outside'}),
      L.polygon(polys.map(function (p) { return p.map(ring); }), {pane: 'twinArea', interactive: false,
        color: '#c2185b', weight: 3, opacity: 0.9, dashArray: '10 6', fill: false, className: 'twin-area'})
    ]).addTo(T.map);
    T.areaLabel = L.tooltip({permanent: true, direction: 'top', className: 'twin-area-label', pane: 'twinArea'})
      .setLatLng(T.toDisplay(top[0], top[1])).setContent(areaTitle()).addTo(T.areaLayer);
  }

  /* ---- layers panel and legend ---- */

  T.setVisible = function (id, on) {
    T.overlays[id].visible = on;
    var box = document.querySelector('input[data-layer="' + id + '"]');
    if (box) { box.checked = on; }
    T.refreshOverlays(false);
    writeHash();
  };

  function layerRow(spec) {
    var statuses = spec.status_colored ? spec.statuses.map(function (s) {
      return '<span class="twin-status"><span class="twin-chip" style="background:' + s.color + '"></span>' +
        T.esc(I.name(s)) + '</span>';
    }).join('') : '';
    return '<div class="twin-layer"><label><input type="checkbox" data-layer="' + spec.id + '"' +
      (T.overlays[spec.id].visible ? ' checked' : '') + '> <span class="twin-chip twin-chip-' + spec.geometry +
      '" style="background:' + spec.color + '"></span> <span class="twin-layer-name">' + T.esc(I.name(spec)) +
      '</span> <span class="twin-muted">' + spec.count.toLocaleString() + (spec.count_exact ? '' : '+') +
      '</span></label>' +
      '<div class="twin-statuses">' + statuses + '</div>' +
      '<div class="twin-zoomhint" data-zoomhint="' + spec.id + '" hidden>' +
      T.esc(I.t('zoomHint', {z: spec.min_zoom})) + '</div></div>';
  }

  function renderPanel() {
    var html = T.config.groups.map(function (g) {
      var members = T.config.layers.filter(function (l) { return l.group === g.id; });
      if (!members.length) { return ''; }
      return '<div class="twin-group"><div class="twin-group-title">' + T.esc(I.name(g)) + '</div>' +
        members.map(layerRow).join('') + '</div>';
    }).join('');
    var list = document.getElementById('twin-layers');
    list.innerHTML = html;
    list.querySelectorAll('input[data-layer]').forEach(function (box) {
      box.addEventListener('change', function () { T.setVisible(box.getAttribute('data-layer'), box.checked); });
    });
    var bases = document.getElementById('twin-basemaps');
    bases.innerHTML = T.config.basemaps.map(function (b) {
      return '<label class="twin-base"><input type="radio" name="twin-base" value="' + b.id + '"' +
        (b.id === T.base ? ' checked' : '') + '> ' + T.esc(I.name(b)) + '</label>';
    }).join('');
    bases.querySelectorAll('input').forEach(function (r) {
      r.addEventListener('change', function () { T.setBasemap(r.value); writeHash(); });
    });
    updateZoomHints();
  }

  function updateZoomHints() {
    var z = T.map.getZoom();
    document.querySelectorAll('[data-zoomhint]').forEach(function (el) {
      var spec = T.spec(el.getAttribute('data-zoomhint'));
      el.hidden = !(T.overlays[spec.id].visible && z < spec.min_zoom);
    });
  }

  /* ---- basemaps ---- */

  function offlineBasemap() {
    var group = L.layerGroup(), pane = 'twinBase';
    var renderer = L.canvas({pane: pane, padding: 0.3});
    T.roads = ROAD_STYLE.map(function () { return L.layerGroup(); });
    T.getJSON(T.config.roads).then(function (fc) {
      ROAD_STYLE.forEach(function (style, c) {
        L.geoJSON(fc, {filter: function (f) { return f.properties.c === c; }, interactive: false, renderer: renderer,
          style: {color: style.color, weight: style.weight, opacity: 1}}).addTo(T.roads[c]);
      });
      showRoads();
    });
    [['district', {color: '#555', weight: 2.2, fill: false, dashArray: null}],
      ['subdistrict', {color: '#888', weight: 1, fill: false, dashArray: '4 3'}]].forEach(function (pair) {
      var spec = T.spec(pair[0]);
      if (!spec || !spec.count || spec.count > 5000) { return; }
      T.getJSON(T.itemsUrl(spec.id, {limit: spec.count})).then(function (fc) {
        var outline = L.geoJSON(fc, {interactive: false, renderer: renderer,
          style: L.extend({opacity: 0.9}, pair[1])});
        if (spec.id === 'district') {
          outline.eachLayer(function (l) {
            l.bindTooltip(T.esc(l.feature.properties.name || ''), {permanent: true, direction: 'center',
              className: 'twin-district-label'});
          });
        }
        group.addLayer(outline);
      });
    });
    return group;
  }

  /* Minor roads only when zoomed in far enough for them to help. */
  function showRoads() {
    var z = T.map.getZoom();
    (T.roads || []).forEach(function (layer, c) {
      var on = z >= ROAD_STYLE[c].minZoom;
      if (on && !T.offline.hasLayer(layer)) { T.offline.addLayer(layer); }
      if (!on && T.offline.hasLayer(layer)) { T.offline.removeLayer(layer); }
    });
  }

  function onlineBasemap(b) {
    var opts = {maxZoom: 22, maxNativeZoom: b.max_zoom, subdomains: b.subdomains || 'abc',
      attribution: T.esc(b.attribution)};
    var group = L.layerGroup([L.tileLayer(b.url, opts)]);
    if (b.labels) { group.addLayer(L.tileLayer(b.labels, opts)); }
    return group;
  }

  T.setBasemap = function (id) {
    var b = T.config.basemaps.filter(function (x) { return x.id === id; })[0] || T.config.basemaps[0];
    var centre = T.toData(T.map.getCenter());
    if (T.baseLayer) { T.map.removeLayer(T.baseLayer); }
    if (b.id === 'twin') { T.offline = T.offline || offlineBasemap(); T.baseLayer = T.offline; }
    else if (b.id === 'none') { T.baseLayer = null; }
    else { T.baseLayer = onlineBasemap(b); }
    if (T.baseLayer) { T.baseLayer.addTo(T.map); }
    T.base = b.id;
    var wasGcj = T.gcj;
    T.gcj = b.crs === 'gcj02';
    if (T.gcj !== wasGcj) {
      T.nearbyLayer.clearLayers();
      drawArea();
      T.map.setView(T.toDisplay(centre[0], centre[1]), T.map.getZoom(), {animate: false});
      if (T.gcj) { T.notify(I.t('gcjNote')); }
    }
    document.body.classList.toggle('twin-gcj', T.gcj);
    T.refreshOverlays(false);
  };

  /* ---- start ---- */

  function bindToolbar() {
    var on = function (id, fn) { document.getElementById(id).addEventListener('click', fn); };
    on('twin-measure-distance', function () { T.startMeasure('distance'); });
    on('twin-measure-area', function () { T.startMeasure('area'); });
    on('twin-measure-clear', function () { T.clearMeasure(); });
    on('twin-nearby', function () {
      T.mode = 'nearby';
      T.map.getContainer().classList.add('twin-crosshair');
      T.notify(I.t('nearbyHint'));
    });
    on('twin-share', function () {
      writeHash();
      var done = function () { T.notify(I.t('copied') + ': ' + location.href); };
      if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(location.href).then(done, done); }
      else { done(); }
    });
    on('twin-lang', function () {
      I.lang = I.lang === 'zh' ? 'en' : 'zh';
      I.apply();
      renderUser();
      renderPanel();
      writeHash();
    });
    var signIn = document.getElementById('twin-sign-in');
    if (signIn) { signIn.addEventListener('click', function () { signIn.href = T.loginUrl(); }); }
    document.querySelector('#twin-results .twin-close').addEventListener('click', function () {
      document.getElementById('twin-results').hidden = true;
      T.nearbyLayer.clearLayers();
    });
    document.getElementById('twin-search-form').addEventListener('submit', function (e) {
      e.preventDefault();
      T.search(document.getElementById('twin-search').value);
    });
  }

  T.start = function (map, config) {
    T.map = map;
    T.config = config;
    T.overlays = {};
    config.layers.forEach(function (l) { T.overlays[l.id] = {visible: l.visible}; });
    T.base = config.basemaps[0].id;
    var state = readHash();
    applyHash(state);
    map.createPane('twinBase').style.zIndex = 250;
    map.createPane('twinArea').style.zIndex = 390;  // above the basemap, under the layers
    L.control.scale({imperial: false, position: 'bottomright'}).addTo(map);
    T.installTools();
    if (T.installTimebar) { T.installTimebar(state); }
    if (T.installVitals) { T.installVitals(); }
    if (T.installWatch) { T.installWatch(); }
    bindToolbar();
    I.apply();
    renderUser();
    // the view first, so that no tile or feature is fetched for folium's starting view
    if (state.view) { map.setView(T.toDisplay(state.view[2], state.view[1]), state.view[0], {animate: false}); }
    else { map.fitBounds([[config.view[1], config.view[0]], [config.view[3], config.view[2]]], {animate: false}); }
    T.setBasemap(T.base);
    drawArea();
    renderPanel();
    map.on('moveend', function () { writeHash(); updateZoomHints(); T.refreshOverlays(true); });
    map.on('zoomend', showRoads);
    window.addEventListener('hashchange', function () {
      if (location.hash === T.hash()) { return; }
      var s = readHash();
      applyHash(s);
      I.apply();
      renderUser();
      renderPanel();
      T.setBasemap(T.base);
      if (T.setAsOf && (s.at || null) !== T.asOf) { T.setAsOf(s.at && !isNaN(Date.parse(s.at)) ? s.at : null); }
      if (s.view) { map.setView(T.toDisplay(s.view[2], s.view[1]), s.view[0]); }
    });
    if (T.startLive) { T.startLive(); }
    T.ready = true;
  };
})(window);
