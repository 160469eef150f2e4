/* twin web map: alerts (告警) and work orders (工单). The open alerts of the reader's area are listed and drawn with the
   geometry that explains each (the shortest line from a site to a gas main, where a drain crosses a building); one
   click zooms to it, 派单 opens a work order for its committee with the nearest hydrants (新建工单, then a click on the
   map, opens one where the officer sees a problem); the orders of the area are
   listed with their next step (接单 → 处置 → 办结). Both follow the time bar's moment (read-only in the past). */
(function (root) {
  'use strict';
  var T = root.TwinMap = root.TwinMap || {};
  var I = root.TwinI18n;
  var SEVERITY = {high: '#d7191c', medium: '#fdae61', low: '#2b83ba'};
  var NEXT = {dispatched: ['accept', 'orderAccept'], accepted: ['handle', 'orderHandle'],
              handling: ['close', 'orderClose']};

  function el(id) { return document.getElementById(id); }

  function post(url, body) {
    return fetch(url, {method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'},
                       body: JSON.stringify(body || {})}).then(function (r) {
      return r.json().then(function (b) { if (!r.ok) { throw new Error(b.description || r.statusText); } return b; });
    });
  }

  function asOf() { return T.asOfParam ? T.asOfParam() : ''; }

  T.drawAlerts = function () {
    if (!el('twin-watch')) { return Promise.resolve(null); }
    return T.getJSON(T.config.api + '/alerts?f=geojson&limit=500' + asOf()).then(function (fc) {
      if (T.alertLayer) { T.map.removeLayer(T.alertLayer); }
      T.alertFeatures = fc.features;
      T.alertLayer = L.geoJSON(fc, {
        coordsToLatLng: function (c) { return T.toDisplay(c[0], c[1]); },
        style: function (f) {  // no fill: an alert's area never hides the components under it from a click
          return {color: SEVERITY[f.properties.severity] || '#d7191c', weight: 4, dashArray: '6 4', fill: false};
        },
        pointToLayer: function (f, latlng) {
          return L.circleMarker(latlng, {radius: 7, color: SEVERITY[f.properties.severity] || '#d7191c'});
        },
        onEachFeature: function (f, layer) { layer.bindTooltip(T.esc(f.properties.message)); }
      }).addTo(T.map);
      var list = el('twin-alerts');
      list.innerHTML = fc.features.length ? '' : '<li class="twin-muted">' + T.esc(I.t('noAlerts')) + '</li>';
      fc.features.slice(0, 100).forEach(function (f, i) {
        var p = f.properties, li = document.createElement('li');
        li.className = 'twin-alert twin-sev-' + p.severity;
        li.innerHTML = '<a href="#" data-alert="' + i + '">' + T.esc(p.message) + '</a> <span class="twin-muted">' +
          T.esc(I.t('status_' + p.status)) + '</span>' + (T.asOf ? '' : ' <button type="button" data-dispatch="' +
          T.esc(p.id) + '">' + T.esc(I.t('dispatch')) + '</button>');
        list.appendChild(li);
      });
      el('twin-alert-count').textContent = String(fc.numberReturned);
      return fc;
    });
  };

  T.showAlert = function (i) {
    var f = T.alertFeatures[i], shape = L.geoJSON(f, {coordsToLatLng: function (c) { return T.toDisplay(c[0], c[1]); }});
    T.map.fitBounds(shape.getBounds().pad(2), {maxZoom: 18});
  };

  T.drawOrders = function () {
    if (!el('twin-watch')) { return Promise.resolve(null); }
    return T.getJSON(T.config.api + '/work-orders?' + asOf().replace(/^&/, '')).then(function (body) {
      if (T.orderLayer) { T.map.removeLayer(T.orderLayer); }
      T.orderLayer = L.layerGroup().addTo(T.map);
      var list = el('twin-orders');
      list.innerHTML = body.workOrders.length ? '' : '<li class="twin-muted">' + T.esc(I.t('noOrders')) + '</li>';
      body.workOrders.slice(0, 100).forEach(function (o) {
        L.marker(T.toDisplay(o.lon, o.lat), {title: o.title}).bindTooltip(T.esc(o.statusTitle + ' · ' + o.title))
          .addTo(T.orderLayer);
        var li = document.createElement('li'), next = NEXT[o.status];
        li.className = 'twin-order';
        li.setAttribute('data-order', o.id);
        li.innerHTML = '<b class="twin-order-status">' + T.esc(o.statusTitle) + '</b> ' + T.esc(o.title) +
          ' <span class="twin-muted">' + T.esc((o.resources || []).length) + ' ' + T.esc(I.t('resources')) + '</span>' +
          (next && !T.asOf ? ' <button type="button" data-step="' + next[0] + '" data-id="' + T.esc(o.id) + '">' +
            T.esc(I.t(next[1])) + '</button>' : '');
        list.appendChild(li);
      });
      return body;
    });
  };

  T.refreshWatch = function () { return Promise.all([T.drawAlerts(), T.drawOrders()]).catch(function () {}); };

  T.installWatch = function () {
    var box = el('twin-watch');
    if (!box || T.config.user.anonymous) { return; }
    box.hidden = false;
    el('twin-alerts').addEventListener('click', function (e) {
      var a = e.target.closest('[data-alert]'), b = e.target.closest('[data-dispatch]');
      if (a) { e.preventDefault(); T.showAlert(Number(a.getAttribute('data-alert'))); }
      if (b) {
        b.disabled = true;
        post(T.config.api + '/work-orders', {alert: Number(b.getAttribute('data-dispatch'))}).then(function (o) {
          T.notify(I.t('dispatched', {area: o.committeeName || o.committee}));
          return T.drawOrders();
        }).catch(function (err) { T.notify(err.message); b.disabled = false; });
      }
    });
    el('twin-orders').addEventListener('click', function (e) {
      var b = e.target.closest('[data-step]');
      if (!b) { return; }
      b.disabled = true;
      post(T.config.api + '/work-orders/' + b.getAttribute('data-id') + '/' + b.getAttribute('data-step'), {})
        .then(T.drawOrders).catch(function (err) { T.notify(err.message); b.disabled = false; });
    });
    el('twin-new-order').addEventListener('click', function () {
      T.mode = 'order';
      T.map.getContainer().classList.add('twin-crosshair');
      T.notify(I.t('newOrderHint'));
    });
    T.map.on('click', function (e) {  // an officer opens an order where something is wrong
      if (T.mode !== 'order') { return; }
      T.mode = null;
      T.map.getContainer().classList.remove('twin-crosshair');
      var title = root.prompt(I.t('newOrderTitle'));
      if (!title) { return; }
      var at = T.toData(e.latlng);
      post(T.config.api + '/work-orders', {lon: at[0], lat: at[1], title: title}).then(function (o) {
        T.notify(I.t('dispatched', {area: o.committeeName || o.committee}));
        return T.drawOrders();
      }).catch(function (err) { T.notify(err.message); });
    });
    T.refreshWatch();
  };
})(window);
