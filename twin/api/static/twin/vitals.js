/* twin web map: the vital-signs panel (城市体征). Choose an indicator and a level: the areas are drawn in their band's
   colour (正常 / 关注 / 预警) with their value; a click on a district or sub-district drills down to the areas inside
   it, a click on a committee lists the components behind its number. Everything follows the time bar's moment. */
(function (root) {
  'use strict';
  var T = root.TwinMap = root.TwinMap || {};
  var I = root.TwinI18n;
  var FINER = {district: 'subdistrict', subdistrict: 'committee'};
  var state = {list: [], id: null, level: null, parent: null, layer: null};

  function el(id) { return document.getElementById(id); }

  function current() { return state.list.filter(function (i) { return i.id === state.id; })[0]; }

  function format(v, unit) {
    if (v === null || v === undefined) { return '–'; }
    var digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
    return v.toLocaleString(I.lang === 'en' ? 'en-GB' : 'zh-CN', {maximumFractionDigits: digits}) + ' ' + (unit || '');
  }

  function legend(ind) {
    var t = ind.thresholds, cmp = t.higherIsWorse ? '≥' : '≤';
    el('twin-vitals-legend').innerHTML = ['normal', 'attention', 'warning'].map(function (b) {
      var rule = b === 'normal' ? '' : ' ' + cmp + ' ' + T.esc(t[b]) + ' ' + T.esc(ind.unit);
      return '<span class="twin-band"><i style="background:' + T.esc(t.colors[b]) + '"></i>' +
        T.esc(I.t('band_' + b)) + rule + '</span>';
    }).join('');
  }

  function url(extra) {
    var q = 'level=' + encodeURIComponent(state.level) + '&f=geojson' +
      (state.parent ? '&parent=' + encodeURIComponent(state.parent) : '') + (extra || '');
    return T.config.api + '/indicators/' + encodeURIComponent(state.id) + '?' + q + (T.asOfParam ? T.asOfParam() : '');
  }

  /* Draw the current indicator, level and parent (again: after a change of the time bar's moment). */
  T.drawVitals = function (fit) {
    var ind = current();
    if (T.vitalsLayer) { T.map.removeLayer(T.vitalsLayer); T.vitalsLayer = null; }
    el('twin-vitals-note').textContent = '';
    if (!ind) { el('twin-vitals-legend').innerHTML = ''; return Promise.resolve(null); }
    legend(ind);
    el('twin-vitals-note').textContent = I.t('loading');
    var asked = state.id + state.level + state.parent;
    return T.getJSON(url()).then(function (fc) {
      if (asked !== state.id + state.level + state.parent) { return null; }
      T.vitalsLayer = L.geoJSON(fc, {
        pane: 'twinArea',
        coordsToLatLng: function (c) { return T.toDisplay(c[0], c[1]); },
        style: function (f) {
          return {color: '#555', weight: 1, fillColor: f.properties.color || '#cccccc', fillOpacity: 0.55};
        },
        onEachFeature: function (f, layer) {
          var p = f.properties;
          layer.bindTooltip('<b>' + T.esc(p.name) + '</b><br>' + T.esc(format(p.value, fc.unit)) + ' · ' +
            T.esc(I.t('band_' + (p.band || 'normal'))), {sticky: true});
          layer.on('click', function (e) { L.DomEvent.stopPropagation(e); T.openArea(p); });
        }
      }).addTo(T.map);
      var worst = fc.features.filter(function (f) { return f.properties.band === 'warning'; }).length;
      el('twin-vitals-note').textContent = I.t('vitalsNote', {n: fc.features.length, level: fc.levelTitle,
        warn: worst, cs: fc.changeset});
      el('twin-vitals-up').hidden = !state.parent;
      if (fit && fc.features.length) { T.map.fitBounds(T.vitalsLayer.getBounds(), {animate: false}); }
      return fc;
    }).catch(function (err) { el('twin-vitals-note').textContent = I.t('error') + ': ' + err.message; });
  };

  /* A click on an area: the areas inside it, or (for a committee) the components behind its number. */
  T.openArea = function (p) {
    var ind = current(), finer = FINER[p.level];
    if (finer && ind.levels.indexOf(finer) >= 0) {
      state.stack = (state.stack || []).concat([[state.level, state.parent]]);
      state.level = finer;
      state.parent = p.key;
      el('twin-vitals-level').value = finer;
      return T.drawVitals(true);
    }
    return T.componentsOf(p);
  };

  T.componentsOf = function (p) {
    var ind = current(), items = p.links.filter(function (l) { return l.rel === 'items'; })[0];
    var spec = T.spec(ind.layer);
    return T.getJSON(items.href + '&limit=200' + (T.asOfParam ? T.asOfParam() : '')).then(function (fc) {
      var html = ['<p>' + T.esc(ind.title) + ': <b>' + T.esc(format(p.value, ind.unit)) + '</b> · ' +
        T.esc(I.t('band_' + (p.band || 'normal'))) + '</p><ul class="twin-list" id="twin-vitals-items">'];
      fc.features.forEach(function (f, i) {
        var q = f.properties;
        html.push('<li><a href="#" data-item="' + i + '"><code>' + T.esc(f.id) + '</code></a> <span class="twin-muted">' +
          T.esc(q.name || q.project_name || q.road || q.status || '') + '</span></li>');
      });
      html.push('</ul>');
      T.panel(T.esc(p.name) + ' · ' + T.esc(I.t('vitalsBehind')), html.join(''));
      el('twin-results').querySelectorAll('a[data-item]').forEach(function (a) {
        a.addEventListener('click', function (e) {
          e.preventDefault();
          T.showFeature(spec, fc.features[Number(a.getAttribute('data-item'))]);
        });
      });
      return fc;
    });
  };

  function choose() {
    state.id = el('twin-vitals-indicator').value || null;
    var ind = current(), level = el('twin-vitals-level');
    state.parent = null;
    state.stack = [];
    if (ind) {
      Array.prototype.forEach.call(level.options, function (o) { o.disabled = ind.levels.indexOf(o.value) < 0; });
      if (ind.levels.indexOf(level.value) < 0) { level.value = ind.levels[0]; }
    }
    state.level = level.value;
    T.drawVitals(false);
  }

  T.installVitals = function () {
    var box = el('twin-vitals');
    if (!box) { return; }
    T.getJSON(T.config.api + '/indicators').then(function (body) {
      state.list = body.indicators;
      if (!state.list.length) { return; }
      box.hidden = false;
      var select = el('twin-vitals-indicator'), groups = {};
      select.innerHTML = '<option value="">' + T.esc(I.t('vitalsNone')) + '</option>';
      state.list.forEach(function (i) { (groups[i.category] = groups[i.category] || []).push(i); });
      Object.keys(groups).forEach(function (c) {
        var g = document.createElement('optgroup');
        g.label = c;
        groups[c].forEach(function (i) {
          var o = document.createElement('option');
          o.value = i.id;
          o.textContent = I.lang === 'en' ? i.titleEn : i.title;
          g.appendChild(o);
        });
        select.appendChild(g);
      });
      var level = el('twin-vitals-level');
      level.innerHTML = body.levels.map(function (lv) {
        return '<option value="' + T.esc(lv.id) + '">' + T.esc(lv.title) + '</option>';
      }).join('');
      select.addEventListener('change', choose);
      level.addEventListener('change', function () { state.level = level.value; state.parent = null; T.drawVitals(false); });
      el('twin-vitals-up').addEventListener('click', function () {
        var back = (state.stack || []).pop() || [level.options[0].value, null];
        state.level = back[0];
        state.parent = back[1];
        level.value = state.level;
        T.drawVitals(true);
      });
    }).catch(function () { /* a reader who may see no indicator gets no panel */ });
  };
})(window);
