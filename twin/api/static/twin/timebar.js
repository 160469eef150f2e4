/* twin web map: the time bar (时间轴). Pick a past moment and the map shows the twin as it was then (tiles and
   layers read with as_of, from the history); replay runs the clock forward from that moment at a chosen speed
   (a rainstorm night in minutes); "now" returns to the live map. The moment is kept in the link (#…&at=…). */
(function (root) {
  'use strict';
  var T = root.TwinMap = root.TwinMap || {};
  var I = root.TwinI18n;

  function pad(n) { return (n < 10 ? '0' : '') + n; }

  /* A Date as the datetime-local input wants it (the browser's local time). */
  function localInput(d) {
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' +
      pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  /* The URL parameter that reads the past, or '' when live. */
  T.asOfParam = function (sep) {
    return T.asOf ? (sep || '&') + 'as_of=' + encodeURIComponent(T.asOf) : '';
  };

  function show() {
    var input = document.getElementById('twin-asof'), note = document.getElementById('twin-asof-note');
    if (T.asOf) { input.value = localInput(new Date(T.asOf)); }
    note.textContent = T.asOf ? I.t('asOfShown', {at: new Date(T.asOf).toLocaleString(I.lang === 'en' ? 'en-GB' :
      'zh-CN', {hour12: false})}) : I.t('live');
    document.getElementById('twin-time').classList.toggle('twin-past', !!T.asOf);
  }

  /* Show the twin at `iso` (an RFC 3339 instant), or live when null. */
  T.setAsOf = function (iso) {
    T.asOf = iso || null;
    T.config.layers.forEach(function (l) { if (T.overlays[l.id]) { T.overlays[l.id].data = null; } });
    show();
    if (T.ready) { T.refreshOverlays(true); T.writeHash(); if (T.drawVitals) { T.drawVitals(false); }
      if (T.refreshWatch) { T.refreshWatch(); } }
  };

  function stop() {
    clearInterval(T._replay);
    T._replay = null;
    document.getElementById('twin-replay').textContent = I.t('replay');
  }

  function replay() {
    if (T._replay) { stop(); return; }
    var from = new Date(document.getElementById('twin-asof').value || Date.now() - 3600e3);
    var speed = Number(document.getElementById('twin-speed').value);
    var at = from.getTime();
    document.getElementById('twin-replay').textContent = I.t('pause');
    T.setAsOf(new Date(at).toISOString());
    T._replay = setInterval(function () {
      at += speed * 1000;
      if (at >= Date.now()) { stop(); T.setAsOf(null); return; }
      T.setAsOf(new Date(at).toISOString());
    }, 1000);
  }

  T.installTimebar = function (state) {
    document.getElementById('twin-asof').addEventListener('change', function (e) {
      stop();
      T.setAsOf(e.target.value ? new Date(e.target.value).toISOString() : null);
    });
    document.getElementById('twin-now').addEventListener('click', function () { stop(); T.setAsOf(null); });
    document.getElementById('twin-replay').addEventListener('click', replay);
    T.asOf = state.at && !isNaN(Date.parse(state.at)) ? new Date(state.at).toISOString() : null;
    show();
  };
})(window);
