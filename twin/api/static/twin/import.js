/* twin import page: upload a GIS file, read the dry-run report with its rows drawn on the map, then confirm or
   cancel. Talks to POST /collections/{layer}/import (dry_run=true first, then dry_run=false). */
(function (root) {
  'use strict';
  var esc = function (v) {
    return String(v === null || v === undefined ? '' : v).replace(/[&<>"']/g, function (c) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c];
    });
  };
  var ACTIONS = {
    insert: {zh: '新增', en: 'insert', color: '#1a9641'},
    update: {zh: '更新', en: 'update', color: '#2b83ba'},
    unchanged: {zh: '不变', en: 'unchanged', color: '#8c8c8c'},
    reject: {zh: '拒绝', en: 'rejected', color: '#d7191c'}
  };
  var X = root.TwinImport = {};

  function form() { return document.getElementById('twin-import-form'); }

  function payload(dryRun) {
    var f = form(), data = new FormData();
    Array.prototype.forEach.call(document.getElementById('twin-file').files, function (file) {
      data.append('file', file, file.name);
    });
    data.append('dry_run', dryRun ? 'true' : 'false');
    ['encoding', 'crs', 'note'].forEach(function (name) {
      if (f.elements[name].value) { data.append(name, f.elements[name].value); }
    });
    data.append('strict', f.elements.strict.checked ? 'true' : 'false');
    data.append('allow_outside', f.elements.allow_outside.checked ? 'true' : 'false');
    return data;
  }

  function send(dryRun) {
    var layer = form().elements.layer.value;
    var url = X.config.api + '/collections/' + encodeURIComponent(layer) + '/import';
    return fetch(url, {method: 'POST', body: payload(dryRun), credentials: 'same-origin'}).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.description || r.statusText); }
        return body;
      });
    });
  }

  function drawPreview(fc) {
    if (X.preview) { X.map.removeLayer(X.preview); }
    X.preview = L.geoJSON(fc, {
      style: function (f) {
        var a = ACTIONS[f.properties.action];
        return {color: a.color, weight: 2, fillColor: a.color, fillOpacity: 0.35,
          className: 'twin-preview twin-preview-' + f.properties.action};
      },
      pointToLayer: function (f, latlng) {
        var a = ACTIONS[f.properties.action];
        return L.circleMarker(latlng, {radius: 6, color: '#fff', weight: 1, fillColor: a.color, fillOpacity: 0.95,
          className: 'twin-preview twin-preview-' + f.properties.action});
      },
      onEachFeature: function (f, layer) {
        var p = f.properties, a = ACTIONS[p.action];
        layer.bindPopup('<b style="color:' + a.color + '">' + a.zh + ' ' + a.en + '</b><br>' +
          (p.key ? '<code class="twin-key">' + esc(p.key) + '</code>' : '') + esc(p.problems || ''));
      }
    }).addTo(X.map);
    if (fc.features.length) { X.map.fitBounds(X.preview.getBounds(), {maxZoom: 17, paddingTopLeft: [390, 40], paddingBottomRight: [40, 40]}); }
  }

  function counts(r) {
    var rows = [['读取 read', r.read], ['新增 insert', r.inserted], ['更新 update', r.updated],
      ['不变 unchanged', r.unchanged], ['拒绝 rejected', r.rejected], ['范围外 outside', r.held_back],
      ['已修复 repaired', r.repaired]];
    return '<table class="twin-counts">' + rows.map(function (x) {
      return '<tr><td>' + x[0] + '</td><td><b data-count="' + x[0].split(' ')[1] + '">' + x[1] + '</b></td></tr>';
    }).join('') + '</table>';
  }

  function problems(r) {
    if (!r.problems.length) { return ''; }
    var rows = r.problems.slice(0, 300).map(function (p) {
      return '<tr><td>' + p.row + '</td><td>' + esc(p.field) + '</td><td>' + esc(p.message) + '</td></tr>';
    }).join('');
    return '<h4>问题 Problems (' + r.problem_count + ')</h4><table class="twin-problems"><tr><th>行 row</th>' +
      '<th>字段 field</th><th>说明 message</th></tr>' + rows + '</table>';
  }

  function legend() {
    return '<div>' + Object.keys(ACTIONS).map(function (k) {
      return '<span class="twin-status"><span class="twin-chip" style="background:' + ACTIONS[k].color +
        '"></span>' + ACTIONS[k].zh + '</span>';
    }).join('') + '</div>';
  }

  function showReport(body, final) {
    var r = body.report;
    var html = ['<h3>' + (final ? '已导入 Imported' : '预检结果 Dry run') + ' · ' + esc(r.source) + '</h3>',
      '<div class="twin-muted">编码 encoding: ' + esc(r.encoding) + ' (' + esc(r.encoding_how) + ')<br>' +
      '坐标系 CRS: ' + esc(r.crs) + ' (' + esc(r.crs_how) + ')</div>', counts(r), legend()];
    r.warnings.forEach(function (w) { html.push('<p class="twin-warning">⚠ ' + esc(w) + '</p>'); });
    html.push(problems(r));
    if (final) {
      var b = r.bbox, layer = r.layer;
      var link = X.config.api + '/map#map=16/' + ((b[1] + b[3]) / 2).toFixed(6) + '/' + ((b[0] + b[2]) / 2)
        .toFixed(6) + '&layers=' + layer + '&base=twin&lang=zh';
      html.push('<p>变更集 changeset <b id="twin-changeset">' + r.changeset + '</b> · <a id="twin-open-map" href="' +
        link + '">在地图上查看 Open on the map</a></p>');
    } else {
      html.push('<div class="twin-actions"><button id="twin-confirm" class="twin-primary" type="button">确认导入 ' +
        'Confirm</button><button id="twin-cancel" type="button">取消 Cancel</button></div>');
    }
    document.getElementById('twin-report').innerHTML = html.join('');
    drawPreview(body.preview);
    if (!final) {
      document.getElementById('twin-confirm').addEventListener('click', X.confirm);
      document.getElementById('twin-cancel').addEventListener('click', X.cancel);
    }
  }

  function fail(err) {
    document.getElementById('twin-report').innerHTML = '<p class="twin-error">✖ ' + esc(err.message) + '</p>';
  }

  X.dryRun = function () {
    document.getElementById('twin-report').innerHTML = '<p>预检中… Checking…</p>';
    return send(true).then(function (body) { showReport(body, false); }).catch(fail);
  };

  X.confirm = function () {
    document.getElementById('twin-report').innerHTML = '<p>导入中… Importing…</p>';
    return send(false).then(function (body) { showReport(body, true); }).catch(fail);
  };

  X.cancel = function () {
    document.getElementById('twin-report').innerHTML = '<p class="twin-muted">已取消，未写入任何数据。Cancelled; ' +
      'nothing was written.</p>';
    if (X.preview) { X.map.removeLayer(X.preview); X.preview = null; }
  };

  X.start = function (map, config) {
    X.map = map;
    X.config = config;
    map.fitBounds([[config.view[1], config.view[0]], [config.view[3], config.view[2]]]);
    L.control.scale({imperial: false, position: 'bottomright'}).addTo(map);
    fetch(config.roads).then(function (r) { return r.json(); }).then(function (fc) {
      L.geoJSON(fc, {interactive: false, renderer: L.canvas(),
        style: function (f) { return {color: f.properties.c === 2 ? '#ffffff' : '#f2c86b', weight: 2}; }
      }).addTo(map).bringToBack();
    });
    form().addEventListener('submit', function (e) { e.preventDefault(); X.dryRun(); });
  };
})(window);
