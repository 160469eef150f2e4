/* twin web map: popups of components (attributes under their Chinese titles, key, API link) and of cells. */
(function (root) {
  'use strict';
  var T = root.TwinMap = root.TwinMap || {};
  var I = root.TwinI18n;

  function fieldTitle(field) {
    var title = I.lang === 'en' ? field.name.replace(/_/g, ' ') : field.title_zh;
    return field.unit ? title + ' (' + field.unit + ')' : title;
  }

  function statusChip(spec, status) {
    var s = spec.statuses.filter(function (x) { return x.id === status; })[0];
    if (!s) { return T.esc(status); }
    return '<span class="twin-chip" style="background:' + s.color + '"></span>' + T.esc(I.name(s)) +
      ' <span class="twin-muted">' + T.esc(status) + '</span>';
  }

  T.itemUrl = function (layer, key) {
    return T.config.api + '/collections/' + layer + '/items/' + encodeURIComponent(key);
  };

  /* The popup HTML of one GeoJSON feature of layer `spec`. */
  T.featureHtml = function (spec, feature) {
    var p = feature.properties || {}, key = feature.id;
    var label = p.name || p.project_name || '';
    var rows = ['<tr><th>' + I.t('key') + '</th><td><code class="twin-key">' + T.esc(key) + '</code></td></tr>',
      '<tr><th>' + I.t('status') + '</th><td>' + statusChip(spec, p.status) + '</td></tr>'];
    spec.fields.forEach(function (f) {
      if (p[f.name] === null || p[f.name] === undefined || p[f.name] === '') { return; }
      var tag = f.masked ? ' <span class="twin-masked" title="' + T.esc(I.t('maskedHint')) + '">' +
        T.esc(I.t('masked')) + '</span>' : '';
      rows.push('<tr><th>' + T.esc(fieldTitle(f)) + '</th><td data-field="' + T.esc(f.name) + '"><span ' +
        'class="twin-value">' + T.esc(p[f.name]) + '</span>' + tag + '</td></tr>');
    });
    if (p.updated_at) { rows.push('<tr><th>' + I.t('updated') + '</th><td>' + T.esc(p.updated_at) + '</td></tr>'); }
    var url = T.itemUrl(spec.id, key);
    return '<div class="twin-popup" data-key="' + T.esc(key) + '"><div class="twin-popup-title">' +
      '<span class="twin-chip" style="background:' + spec.color + '"></span>' + T.esc(I.name(spec)) +
      (label ? ' · ' + T.esc(label) : '') + '</div><table>' + rows.join('') + '</table>' +
      '<div class="twin-popup-links"><a href="' + url + '?f=json" target="_blank" rel="noopener">' + I.t('api') +
      '</a> · <a href="' + url + '?f=html" target="_blank" rel="noopener">' + I.t('details') + '</a></div></div>';
  };

  /* Open the popup of component `key` of `layer` at `latlng` (fetching its full record from the API). */
  T.openFeature = function (layer, key, latlng) {
    if (T.mode) { return; }
    var spec = T.spec(layer) || T.specOfKey(key);
    var popup = L.popup({maxWidth: 380, className: 'twin-popup-wrap'}).setLatLng(latlng)
      .setContent('<div class="twin-popup">' + I.t('loading') + '</div>').openOn(T.map);
    T.getJSON(T.itemUrl(spec.id, key)).then(function (feature) {
      popup.setContent(T.featureHtml(spec, feature));
    }).catch(function (err) { popup.setContent(I.t('error') + ': ' + T.esc(err.message)); });
  };

  /* Open the popup of an aggregate cell: how many components of each status it holds. */
  T.openCell = function (layer, props, latlng) {
    if (T.mode) { return; }
    var spec = T.spec(layer);
    var rows = ['<tr><th>' + I.t('count') + '</th><td><b>' + (props.count || 0).toLocaleString() + '</b></td></tr>'];
    spec.statuses.forEach(function (s) {
      var n = props['count_' + s.id];
      if (n) { rows.push('<tr><th>' + statusChip(spec, s.id) + '</th><td>' + n.toLocaleString() + '</td></tr>'); }
    });
    if (props.length_m) {
      rows.push('<tr><th>' + I.t('length') + '</th><td>' + T.formatLength(props.length_m) + '</td></tr>');
    }
    if (props.area_m2) { rows.push('<tr><th>' + I.t('area') + '</th><td>' + T.formatArea(props.area_m2) + '</td></tr>'); }
    var html = '<div class="twin-popup"><div class="twin-popup-title"><span class="twin-chip" style="background:' +
      spec.color + '"></span>' + T.esc(I.name(spec)) + ' · ' + I.t('cells') + '</div><table>' + rows.join('') +
      '</table><div class="twin-popup-links"><a href="#" class="twin-zoom-in">' + I.t('zoomIn') + '</a> <span ' +
      'class="twin-muted">' + T.esc(I.t('zoomHint', {z: spec.min_zoom})) + '</span></div></div>';
    var popup = L.popup({maxWidth: 320}).setLatLng(latlng).setContent(html).openOn(T.map);
    var link = popup.getElement().querySelector('.twin-zoom-in');
    L.DomEvent.on(link, 'click', function (e) {
      L.DomEvent.preventDefault(e);
      T.map.closePopup();
      T.map.setView(latlng, Math.max(spec.min_zoom, T.map.getZoom() + 1));
    });
  };

  /* Zoom to a GeoJSON feature (data coordinates) and open its popup. */
  T.showFeature = function (spec, feature) {
    var shape = L.geoJSON(feature, {coordsToLatLng: function (c) { return T.toDisplay(c[0], c[1]); }});
    var bounds = shape.getBounds(), centre = bounds.getCenter();
    if (feature.geometry.type === 'Point') {
      T.map.setView(centre, Math.max(T.map.getZoom(), spec.min_zoom, 16));
    } else {
      T.map.fitBounds(bounds, {maxZoom: Math.max(spec.min_zoom, 16)});
    }
    if (T.overlays[spec.id] && !T.overlays[spec.id].visible) { T.setVisible(spec.id, true); }
    T.map.once('moveend', function () {
      L.popup({maxWidth: 380}).setLatLng(centre).setContent(T.featureHtml(spec, feature)).openOn(T.map);
    });
    if (T.map.getCenter().distanceTo(centre) < 1 && !T.map._animatingZoom) { T.map.fire('moveend'); }
  };
})(window);
