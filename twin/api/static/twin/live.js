/* twin web map: the live twin. Changes reach the map as they are committed (/changes/stream, Server-Sent Events,
   bound to the signed-in user's area and masked like every read): a component's status colour changes where it is
   drawn, without a reload, and the latest changes are listed in the panel (click one to go there). */
(function (root) {
  'use strict';
  var T = root.TwinMap = root.TwinMap || {};
  var I = root.TwinI18n;
  var KEEP = 12;  // changes listed

  function statusLabel(spec, status) {
    var s = spec.statuses.filter(function (x) { return x.id === status; })[0];
    return s ? (I.lang === 'en' ? s.en : s.zh) : (status || '');
  }

  /* Draw the component's new status where it is drawn: in the vector tiles and in GeoJSON layers. */
  function restyle(spec, c) {
    var status = c.feature.properties.status, style = L.extend({}, T.styleOf(spec, status));
    style.className = 'twin-f twin-f-' + spec.id + ' twin-s-' + status;
    if (T.grid) {  // VectorGrid restyles a path but keeps the class it was drawn with: set that too
      T.grid.setFeatureStyle(c.key, style);
      Object.keys(T.grid._vectorTiles).forEach(function (t) {
        var f = T.grid._vectorTiles[t]._features[c.key];
        if (f && f.feature._path) { f.feature._path.setAttribute('class', style.className + ' leaflet-interactive'); }
      });
    }
    var entry = T.overlays[spec.id];
    if (entry && entry.layer) {
      entry.layer.eachLayer(function (f) {
        if (f.feature && f.feature.id === c.key) {
          f.feature.properties = c.feature.properties;
          f.setStyle(style);
          if (f._path) { f._path.setAttribute('class', style.className + ' leaflet-interactive'); }
        }
      });
    }
  }

  function opLabel(c) {
    return I.t({create: 'opCreate', update: 'opUpdate', delete: 'opDelete', leave: 'opLeave'}[c.op] || 'opUpdate');
  }

  function show(c) {
    var spec = T.spec(c.layer);
    if (!spec) { return; }
    if (c.feature && c.op === 'update' && !T.asOf) { restyle(spec, c); }  // the past stays as it was
    var list = document.getElementById('twin-live-list');
    var item = document.createElement('li');
    var status = c.feature ? statusLabel(spec, c.feature.properties.status) : '';
    item.className = 'twin-live-item';
    item.setAttribute('data-key', c.key);
    item.innerHTML = '<b>' + T.esc(I.lang === 'en' ? spec.title_en : spec.title_zh) + '</b> ' +
      T.esc(opLabel(c)) + (status ? ' · ' + T.esc(status) : '') +
      '<br><code>' + T.esc(c.key) + '</code> <small>' +
      T.esc(new Date(c.time).toLocaleTimeString(I.lang === 'en' ? 'en-GB' : 'zh-CN', {hour12: false})) + '</small>';
    if (c.feature && c.feature.geometry) {
      item.addEventListener('click', function () {
        var g = L.geoJSON(c.feature.geometry).getBounds().getCenter();
        T.map.setView(T.toDisplay(g.lng, g.lat), Math.max(T.map.getZoom(), spec.min_zoom || 16));
        T.openFeature(spec.id, c.key, T.toDisplay(g.lng, g.lat));
      });
    }
    list.insertBefore(item, list.firstChild);
    while (list.children.length > KEEP) { list.removeChild(list.lastChild); }
    document.getElementById('twin-live').hidden = false;
    T.liveSeen = (T.liveSeen || 0) + 1;
  }

  /* Follow the change feed (served maps only; a browser without EventSource simply has no live list). */
  T.startLive = function () {
    if (!T.config.changes || !root.EventSource) { return; }
    var feed = new EventSource(T.config.changes, {withCredentials: true});
    feed.addEventListener('change', function (e) { show(JSON.parse(e.data)); });
    feed.addEventListener('open', function () { T.liveOpen = true; });
    T.live = feed;
  };
})(window);
