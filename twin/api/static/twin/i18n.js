/* twin web map: the interface texts in Chinese (default) and English. */
(function (root) {
  'use strict';

  var TEXTS = {
    zh: {
      title: '上海城市数字孪生地图',
      layers: '图层', legend: '图例', basemap: '底图', offline: '离线底图（本地数据）', none: '无底图',
      search: '搜索位置编码、名称或地址', searchGo: '搜索', searching: '搜索中…', noResult: '没有找到',
      measureDistance: '测距', measureArea: '测面', measureClear: '清除', measureDone: '完成',
      measureHint: '单击地图添加点，双击或点“完成”结束',
      nearby: '附近', nearbyHint: '单击地图上任一点，列出各图层最近的设施', nearbyTitle: '附近设施',
      nearbyAt: '位置', metres: '米', km: '公里', sqm: '平方米', ha: '公顷', sqkm: '平方公里',
      key: '位置编码', layer: '图层', status: '状态', updated: '更新时间', api: 'API 链接', details: '详情页',
      cells: '汇总', count: '数量', zoomIn: '放大查看', zoomHint: '放大到 {z} 级显示单个设施',
      lang: 'EN', importData: '数据导入', close: '关闭', loading: '加载中…', error: '出错了',
      share: '复制链接', copied: '链接已复制', shown: '显示', length: '长度', area: '面积',
      gcjNote: '已切换到高德底图：图层已偏移到 GCJ-02 坐标', roads: '道路', districts: '区界', subdistricts: '街镇界',
      yourArea: '您的辖区：', signIn: '登录', signOut: '退出登录', masked: '已脱敏',
      maskedHint: '个人信息按您的角色脱敏显示', signInAgain: '登录已失效，请重新登录',
      liveTitle: '实时变化', opCreate: '新增', opUpdate: '更新', opDelete: '删除', opLeave: '移出辖区',
      timeTitle: '时间轴', now: '现在', replay: '回放', pause: '暂停', live: '实时', asOfShown: '{at} 的状态',
      vitalsTitle: '城市体征', vitalsNone: '（选择指标）', vitalsUp: '上一级', vitalsBehind: '数字背后的设施',
      vitalsNote: '{n} 个{level}，{warn} 个预警（变更集 {cs}）', band_normal: '正常', band_attention: '关注',
      band_warning: '预警', alertsTitle: '告警', ordersTitle: '工单', noAlerts: '辖区内暂无告警',
      noOrders: '辖区内暂无工单', dispatch: '派单', dispatched: '已派单至 {area}', orderAccept: '接单',
      orderHandle: '处置', orderClose: '办结', resources: '处最近资源', status_open: '待处理',
      status_acknowledged: '已确认', status_closed: '已关闭', newOrder: '新建工单',
      newOrderHint: '单击地图上出问题的位置', newOrderTitle: '工单标题（问题描述）'
    },
    en: {
      title: 'Shanghai city digital twin',
      layers: 'Layers', legend: 'Legend', basemap: 'Basemap', offline: 'Offline basemap (local data)', none: 'No basemap',
      search: 'Search a location key, name or address', searchGo: 'Search', searching: 'Searching…',
      noResult: 'Nothing found',
      measureDistance: 'Distance', measureArea: 'Area', measureClear: 'Clear', measureDone: 'Done',
      measureHint: 'Click to add points; double-click or press Done to finish',
      nearby: 'Nearby', nearbyHint: 'Click any point to list the nearest components of each layer',
      nearbyTitle: 'Nearby components', nearbyAt: 'At', metres: 'm', km: 'km', sqm: 'm²', ha: 'ha', sqkm: 'km²',
      key: 'Location key', layer: 'Layer', status: 'Status', updated: 'Updated', api: 'API link', details: 'Page',
      cells: 'Summary', count: 'Count', zoomIn: 'Zoom in', zoomHint: 'Zoom to level {z} to see single components',
      lang: '中文', importData: 'Import data', close: 'Close', loading: 'Loading…', error: 'Error',
      share: 'Copy link', copied: 'Link copied', shown: 'shown', length: 'Length', area: 'Area',
      gcjNote: 'Amap basemap: overlays shifted to GCJ-02', roads: 'Roads', districts: 'Districts',
      subdistricts: 'Sub-districts',
      yourArea: 'Your area: ', signIn: 'Sign in', signOut: 'Sign out', masked: 'masked',
      maskedHint: 'Personal data is masked for your role', signInAgain: 'Your session has ended: please sign in again',
      liveTitle: 'Live changes', opCreate: 'added', opUpdate: 'updated', opDelete: 'deleted', opLeave: 'left your area',
      timeTitle: 'Time', now: 'Now', replay: 'Replay', pause: 'Pause', live: 'Live', asOfShown: 'As of {at}',
      vitalsTitle: 'Vital signs', vitalsNone: '(choose an indicator)', vitalsUp: 'Up a level',
      vitalsBehind: 'the components behind the number', vitalsNote: '{n} areas ({level}), {warn} in warning (changeset {cs})',
      band_normal: 'normal', band_attention: 'attention', band_warning: 'warning', alertsTitle: 'Alerts',
      ordersTitle: 'Work orders', noAlerts: 'No alert in your area', noOrders: 'No work order in your area',
      dispatch: 'Dispatch', dispatched: 'Work order sent to {area}', orderAccept: 'Accept', orderHandle: 'Handle',
      orderClose: 'Close', resources: 'nearest resources', status_open: 'open', status_acknowledged: 'acknowledged',
      status_closed: 'closed', newOrder: 'New order', newOrderHint: 'Click the map where the problem is',
      newOrderTitle: 'Work order title (what is wrong)'
    }
  };

  var I18n = {
    lang: 'zh',
    t: function (key, vars) {
      var text = (TEXTS[I18n.lang] && TEXTS[I18n.lang][key]) || TEXTS.zh[key] || key;
      Object.keys(vars || {}).forEach(function (k) { text = text.replace('{' + k + '}', vars[k]); });
      return text;
    },
    /* The title of a catalogue object in the current language (title_zh/title_en or zh/en). */
    name: function (obj) {
      if (!obj) { return ''; }
      if (I18n.lang === 'en') { return obj.title_en || obj.en || obj.title_zh || obj.zh || obj.id; }
      return obj.title_zh || obj.zh || obj.title_en || obj.en || obj.id;
    },
    /* Fill every element carrying data-i18n (text) or data-i18n-placeholder / data-i18n-title. */
    apply: function (scope) {
      (scope || document).querySelectorAll('[data-i18n]').forEach(function (el) {
        el.textContent = I18n.t(el.getAttribute('data-i18n'));
      });
      (scope || document).querySelectorAll('[data-i18n-placeholder]').forEach(function (el) {
        el.setAttribute('placeholder', I18n.t(el.getAttribute('data-i18n-placeholder')));
      });
      (scope || document).querySelectorAll('[data-i18n-title]').forEach(function (el) {
        el.setAttribute('title', I18n.t(el.getAttribute('data-i18n-title')));
      });
      document.documentElement.setAttribute('lang', I18n.lang === 'en' ? 'en' : 'zh-CN');
    }
  };
  root.TwinI18n = I18n;
})(window);
