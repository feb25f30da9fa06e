/* geo maps: the planner's boundary editor (geo/maps/editor.py), loaded after maps.js on the
 * editor page only. GeoMan edits the boundary; 预览 and 保存 call the API; every message is in
 * Chinese (the API's English messages are translated here, see `chinese`).
 * window.GEO.editor exposes the editor's state (for people debugging and for tests). */
(function () {
  'use strict';
  var G = window.GeoMaps;
  var esc = G.esc;
  var el = G.el;
  var cfg = {};

  /* ---------------------------------------------------------------- messages in Chinese
     The API and the CLI speak English (integrators and tests read those messages); the editor
     says every boundary message in Chinese. Each pattern is one message the boundary code
     writes (geo/boundaries/topology.py Problem.message, geo/boundaries/edit.py,
     geo/service/boundaries.py); tests/test_editor_browser.py feeds the real answers through. */
  var REASONS = {
    'self-intersection': '边相互交叉', 'ring self-intersection': '环自身交叉', 'too few points': '顶点太少',
    'hole lies outside shell': '内洞在外环之外', 'nested shells': '外环相互嵌套', 'nested holes': '内洞相互嵌套',
    'interior is disconnected': '内部不连通', 'duplicate rings': '环重复', 'invalid coordinate': '坐标无效',
    'ring is not closed': '环未闭合', 'empty geometry': '几何为空',
  };
  function reasonZh(r) { var k = String(r).trim().toLowerCase(); return REASONS[k] || r; }
  function idsZh(ids) { return String(ids).replace(/, /g, '、'); }
  var ZH = [
    [/ at \((-?[\d.]+), (-?[\d.]+)\) \(lon, lat\)/g, '，位置：经度 $1，纬度 $2'],
    [/^the boundary cannot be saved: /, ''],
    [/\. Move the boundary onto the shared road \(or inside the street\) and try again\.?$/, '。请把边界移到共用道路上（或街道范围内）后再试。'],
    [/(\S+) and (\S+) overlap: ([\d.]+) m²/g, '$1 与 $2 重叠 $3 平方米'],
    [/(\S+) reaches outside (\S+): ([\d.]+) m²/g, '$1 超出 $2 的范围 $3 平方米'],
    [/sliver \((overlap|gap), ([\d.]+) m wide\) between ([^:]+): ([\d.]+) m²/g, function (_, kind, w, ids, a) {
      return idsZh(ids) + ' 之间有细长的' + (kind === 'gap' ? '空隙' : '重叠') + '（宽 ' + w + ' 米）' + a + ' 平方米';
    }],
    [/gap between ([^:]+): ([\d.]+) m²/g, function (_, ids, a) { return idsZh(ids) + ' 之间有空隙 ' + a + ' 平方米'; }],
    [/(\S+) is not a valid polygon \(([^)]*)\): [\d.]+ m²/g, function (_, id, r) { return id + ' 不是有效的多边形（' + reasonZh(r) + '）'; }],
    [/^(the drawn boundary|the boundary snapped to the roads) is not a valid polygon: ([^，;]+?)(，位置：[^;]*)?(; redraw the boundary so that its edges do not cross)?$/,
      function (_, what, r, where, redraw) {
        return (what === 'the drawn boundary' ? '所画的边界' : '吸附到道路后的边界') + '不是有效的多边形：' + reasonZh(r) + (where || '') +
          (redraw ? '。请重画边界，使各边互不交叉' : '') + '。';
      }],
    [/^the boundary of (\S+) is degenerate \(([^ ]+) m², mean width ([^ ]+) m\); a community needs at least ([^ ]+) m² and a mean width of ([^ ]+) m: draw its real outline$/,
      '$1 的边界退化（面积 $2 平方米，平均宽度 $3 米）；社区至少需要 $4 平方米、平均宽度 $5 米：请画出真实的边界。'],
    [/^the boundary is degenerate: the geometry engine cannot use it \((.*)\); draw its real outline$/, '边界退化，几何计算无法处理（$1）：请画出真实的边界。'],
    [/^the boundary's coordinates are out of range once converted to lon\/lat: .*$/, '边界坐标换算为经纬度后超出范围：请检查坐标数值及其坐标系。'],
    [/^the geometry is empty; draw the boundary polygon$/, '边界为空：请画出边界多边形。'],
    [/^the geometry must be a GeoJSON Polygon or MultiPolygon, got .*$/, '边界必须是多边形：请用“绘制多边形”工具画出边界。'],
    [/^the reason is ([\d,]+) characters long; the limit is ([\d,]+): say it in fewer words$/, '修改原因有 $1 个字符，上限为 $2：请写得简短些。'],
    [/^the boundary was drawn: the community's four-to text was kept and no longer describes it; send four_to to replace the text$/,
      '边界为手绘：社区的四至文字保持不变，已不再描述新边界；如需更新，请另行提交四至文字。'],
    [/^the grids of (\S+) were drawn for the old boundary: re-split them \(`geo check` lists the gaps and overlaps\)$/,
      '$1 的网格是按旧边界划分的，已不能铺满新边界：请重新划分网格（geo check 可列出空隙和重叠）。'],
    [/^(\d+) park\(s\) changed community: (.*)$/, function (_, n, list) {
      return n + ' 个园区改变了所属社区：' + list.replace(/ \((\S+) → (\S+)\)/g, function (_, a, b) {
        return '（' + (a === 'none' ? '无' : a) + ' → ' + (b === 'none' ? '无' : b) + '）';
      }).replace(/, /g, '、') + '。';
    }],
    [/^.*(?:was|were) (?:counter-clockwise|clockwise); (?:it|they) (?:was|were) reversed \(RFC 7946: .*\)$/, '有环的方向与 RFC 7946 的规定相反（外环应为逆时针、内洞应为顺时针），已自动反转。'],
    [/^(\d+) server process\(es\) still answered from an older version .*$/, '有 $1 个服务进程仍按旧版本作答，稍后会自动更新。'],
    [/; /g, '；'],
  ];
  function chinese(text) {
    return ZH.reduce(function (t, rule) { return t.replace(rule[0], rule[1]); }, String(text == null ? '' : text));
  }
  G.chinese = chinese;


  function apiUrl(path) { return (cfg.api || '') + path; }

  function editor(map) {
    var state = { version: null, etag: null, layer: null, marks: L.layerGroup().addTo(map), preview: L.layerGroup().addTo(map) };
    window.GEO.editor = state;
    var noPm = { pmIgnore: true, snapIgnore: true };
    var snap = { pmIgnore: true, snapIgnore: false };
    var streets = L.geoJSON(cfg.streets, Object.assign({ interactive: false, style: { color: '#555', weight: 1, fill: false, dashArray: '2 4' } }, noPm)).addTo(map);
    var roads = L.geoJSON(cfg.roads, Object.assign({
      style: function () { return { color: '#7f8c8d', weight: 3, opacity: 0.8, className: 'geo-roads' }; },
      onEachFeature: function (f, l) { if (f.properties.name) l.bindTooltip(esc(f.properties.name), { sticky: true }); },
    }, snap)).addTo(map);
    var neighbours = L.geoJSON(cfg.neighbours, Object.assign({
      style: function () { return { color: '#34495e', weight: 2, dashArray: '6 4', fillOpacity: 0.05, className: 'geo-neighbours' }; },
      onEachFeature: function (f, l) { l.bindTooltip(esc(f.properties.name), { sticky: true }); },
    }, snap)).addTo(map);
    var labels = L.layerGroup((cfg.roadLabels || []).map(function (r) {
      return L.marker([r[1], r[2]], Object.assign({ interactive: false, keyboard: false, icon: L.divIcon({
        className: 'geo-road-label', iconSize: null,
        html: '<span style="transform: translate(-50%,-50%) rotate(' + r[3] + 'deg)">' + esc(r[0]) + '</span>' }) }, noPm));
    })).addTo(map);
    L.control.layers(null, { '道路': roads, '道路名称': labels, '相邻社区': neighbours, '街道': streets }, { collapsed: true }).addTo(map);

    map.pm.setLang('zh');
    map.pm.addControls({ position: 'topleft', drawMarker: false, drawCircleMarker: false, drawPolyline: false,
      drawRectangle: false, drawCircle: false, drawText: false, cutPolygon: false, rotateMode: false,
      removalMode: false, drawPolygon: true, editMode: true, dragMode: true });
    map.pm.setGlobalOptions({ snappable: true, snapDistance: 20, allowSelfIntersection: false, snapSegment: true });

    var panel = L.control({ position: 'topright' });
    panel.onAdd = function () {
      var d = el('div', 'geo-editor leaflet-bar');
      d.innerHTML = '<div class="geo-four"><b>四至：</b>' + esc(cfg.community.four_to) + '</div>' +
        '<p class="geo-hint">用左侧工具：“编辑”移动顶点，或“绘制多边形”重画边界；顶点会吸附到道路和相邻边界（按住 Alt 暂停吸附）；边的中点手柄可添加顶点，很短的边请先放大。</p>' +
        '<label>修改原因<textarea id="geo-reason" rows="2" maxlength="' + (cfg.maxReason || 1000) + '" placeholder="例如：北界由江南大道调整至联庄路"></textarea></label>' +
        '<label>规划人员令牌<input id="geo-token" type="password" autocomplete="off" placeholder="geo users add 生成的令牌"></label>' +
        '<div class="geo-buttons"><button type="button" id="geo-preview">预览</button>' +
        '<button type="button" id="geo-save">保存</button><button type="button" id="geo-reset">还原</button></div>' +
        '<div id="geo-version" class="geo-sub"></div><div id="geo-message" role="status"></div>';
      L.DomEvent.disableClickPropagation(d);
      L.DomEvent.disableScrollPropagation(d);
      return d;
    };
    panel.addTo(map);

    /* the panel ends above the controls of the bottom-right corner (legend, attribution): at
       1366×768 a long preview would otherwise run under the legend; it scrolls inside instead */
    function fitPanel() {
      var d = panel.getContainer();
      if (!d || !d.parentNode) return;
      var box = map.getContainer().getBoundingClientRect(), limit = box.bottom;
      var corner = map.getContainer().querySelector('.leaflet-bottom.leaflet-right');
      Array.prototype.forEach.call(corner ? corner.children : [], function (c) {
        var r = c.getBoundingClientRect();
        if (r.height > 0) limit = Math.min(limit, r.top);
      });
      var cs = getComputedStyle(d), extra = ['paddingTop', 'paddingBottom', 'borderTopWidth', 'borderBottomWidth']
        .reduce(function (a, k) { return a + (parseFloat(cs[k]) || 0); }, 0); /* max-height is the content's */
      d.style.maxHeight = Math.max(120, Math.floor(limit - d.getBoundingClientRect().top - 10 - extra)) + 'px';
    }
    state.fitPanel = fitPanel;
    map.on('resize', fitPanel);
    map.getContainer().addEventListener('click', function (ev) {
      if (ev.target.closest && ev.target.closest('.geo-legend-head')) setTimeout(fitPanel, 0);
    }, true); /* capture: the legend stops the click's propagation */
    setTimeout(fitPanel, 0);

    function message(kind, html) {
      var m = document.getElementById('geo-message');
      m.className = 'geo-msg geo-msg-' + kind;
      m.innerHTML = html;
      state.lastMessage = { kind: kind, text: m.textContent };
    }
    function showVersion() {
      document.getElementById('geo-version').textContent = '载入的版本：' + (state.version == null ? '未知' : state.version);
    }

    /* GeoMan's "add vertex" handles (middle markers) sit halfway along each edge. On an edge
       shorter than MIDDLE_MIN_PX on screen a handle covers a vertex (a vertex icon is 14 px, a
       handle 10 px), and dragging what looks like the vertex inserts a new one and folds the
       boundary. So such handles are taken off the map (zoom in to add a vertex on a short
       edge: they come back once the edge is long enough), and vertices lie above every handle. */
    var MIDDLE_MIN_PX = 30;
    function flat(a, out) {
      (a || []).forEach(function (x) { if (Array.isArray(x)) flat(x, out); else out.push(x); });
      return out;
    }
    function tidyMarkers() {
      var pm = state.layer && state.layer.pm;
      if (!pm || !pm.enabled || !pm.enabled() || !pm._markerGroup) return;
      var group = pm._markerGroup, hidden = 0;
      flat(pm._markers, []).forEach(function (v) {
        v.setZIndexOffset(1000);
        var mid = v._middleMarkerNext;
        if (!mid || !mid.leftM || !mid.rightM) return;
        var a = map.latLngToLayerPoint(mid.leftM.getLatLng()), b = map.latLngToLayerPoint(mid.rightM.getLatLng());
        if (a.distanceTo(b) < MIDDLE_MIN_PX) {
          hidden++;
          if (group.hasLayer(mid)) group.removeLayer(mid);
        } else if (!group.hasLayer(mid)) group.addLayer(mid);
      });
      state.hiddenMiddleMarkers = hidden;
    }
    state.tidyMarkers = tidyMarkers;
    function later() { setTimeout(tidyMarkers, 0); }
    map.on('zoomend pm:globaleditmodetoggled', later);
    function watch(layer) {
      layer.on('pm:enable pm:vertexadded pm:vertexremoved pm:markerdragend pm:intersect', later);
      layer.on('pm:edit', function () { state.preview.clearLayers(); }); /* the preview no longer holds */
    }

    function setBoundary(geometry) {
      if (state.layer) map.removeLayer(state.layer);
      var g = L.geoJSON(geometry, { pmIgnore: false, snapIgnore: true, style: { color: '#c0392b', weight: 3, fillOpacity: 0.08, className: 'geo-boundary' } });
      state.layer = g.getLayers()[0];
      state.layer.options.pmIgnore = false;
      L.PM.reInitLayer(state.layer);
      watch(state.layer);
      state.layer.addTo(map);
      state.loaded = geometry;
    }
    state.setBoundary = setBoundary;
    state.geometry = function () {
      var gj = state.layer.toGeoJSON(7).geometry;
      return gj;
    };

    map.on('pm:create', function (e) {
      if (e.shape !== 'Polygon') return;
      if (state.layer) map.removeLayer(state.layer);
      state.layer = e.layer;
      watch(e.layer);
      state.preview.clearLayers();
      e.layer.setStyle({ color: '#c0392b', weight: 3, fillOpacity: 0.08 });
      message('info', '已绘制新边界：请预览后保存。');
    });

    function load() {
      return fetch(apiUrl('/communities/' + encodeURIComponent(cfg.community.id)), { headers: { Accept: 'application/json' } })
        .then(function (r) {
          if (!r.ok) throw new Error('HTTP ' + r.status);
          state.etag = r.headers.get('ETag');
          return r.json();
        })
        .then(function (body) {
          var geometry = body.geometry || (body.feature && body.feature.geometry) || cfg.geometry;
          var v = body.version != null ? body.version : (body.properties && body.properties.version);
          if (v == null && state.etag) v = state.etag.replace(/^W\//, '').replace(/"/g, '');
          state.version = v;
          setBoundary(geometry);
          showVersion();
          state.ready = true;
        })
        .catch(function (err) {
          setBoundary(cfg.geometry);
          state.version = null;
          showVersion();
          message('error', '无法从服务载入边界版本（' + esc(err.message) + '），保存将不可用。');
          state.ready = true;
        });
    }
    state.load = load;

    function body(withReason) {
      var b = { geometry: state.geometry() };
      if (withReason) b.reason = document.getElementById('geo-reason').value.trim();
      return b;
    }

    function detailText(detail) {
      if (detail == null) return '';
      if (typeof detail === 'string') return detail;
      if (Array.isArray(detail)) return detail.map(detailText).join('；');
      if (detail.message || detail.msg) return detail.message || detail.msg;
      return JSON.stringify(detail);
    }

    /* locations in an answer: GeoJSON geometries, {lon, lat}, [lon, lat], "(lon, lat) (lon, lat)" text */
    var LONLAT = /\((-?\d+(?:\.\d+)?),\s*(-?\d+(?:\.\d+)?)\)\s*\(lon, lat\)/g;
    function findLocations(x, depth, out) {
      if (x == null || depth > 6) return out;
      if (typeof x === 'string') {
        var m; LONLAT.lastIndex = 0;
        while ((m = LONLAT.exec(x))) out.push({ type: 'Point', coordinates: [parseFloat(m[1]), parseFloat(m[2])] });
      } else if (Array.isArray(x)) {
        if (x.length === 2 && typeof x[0] === 'number' && typeof x[1] === 'number') out.push({ type: 'Point', coordinates: x });
        else x.forEach(function (i) { findLocations(i, depth + 1, out); });
      } else if (typeof x === 'object') {
        if (x.type && x.coordinates) out.push(x);
        else if (typeof x.lon === 'number' && typeof x.lat === 'number') out.push({ type: 'Point', coordinates: [x.lon, x.lat] });
        else Object.keys(x).forEach(function (k) { findLocations(x[k], depth + 1, out); });
      }
      return out;
    }
    G.findLocations = function (x) { return findLocations(x, 0, []); };


    function showProblems(detail) {
      state.marks.clearLayers();
      var seen = {};
      var locs = findLocations(detail, 0, []).filter(function (g) {
        var k = JSON.stringify(g.type === 'Point' ? g.coordinates.map(function (v) { return v.toFixed(5); }) : g);
        if (seen[k]) return false;
        seen[k] = true;
        return true;
      });
      locs.forEach(function (loc) {
        var layer = L.geoJSON(loc, { pmIgnore: true, snapIgnore: true,
          pointToLayer: function (f, ll) { return L.circleMarker(ll, { radius: 14, color: '#ff0000', weight: 3, fillOpacity: 0.25, className: 'geo-problem', pmIgnore: true, snapIgnore: true }); },
          style: { color: '#ff0000', weight: 4, className: 'geo-problem' } });
        layer.bindTooltip('问题位置', { permanent: true, direction: 'top' });
        layer.addTo(state.marks);
      });
      if (locs.length) map.fitBounds(state.marks.getBounds ? L.featureGroup(state.marks.getLayers()).getBounds().pad(0.5) : map.getBounds(), { maxZoom: 17 });
      return locs.length;
    }

    function list(title, items) {
      if (!items || !items.length) return '';
      return '<details open><summary>' + esc(title) + '（' + items.length + '）</summary><ul>' + items.slice(0, 200).map(function (i) {
        if (typeof i !== 'object') return '<li>' + esc(i) + '</li>';
        var from = i.from_name || i.from || (i.before && (i.before.name || i.before)) || '';
        var to = i.to_name || i.to || (i.after && (i.after.name || i.after)) || '';
        if (typeof from === 'object') from = from.name || from.id || '';
        if (typeof to === 'object') to = to.name || to.id || '';
        var arrow = (from || to) ? ' <small>' + esc(from || '无') + ' → ' + esc(to || '无') + '</small>' : '';
        return '<li>' + esc(i.name || i.id) + arrow + '</li>';
      }).join('') + (items.length > 200 ? '<li>……</li>' : '') + '</ul></details>';
    }

    var LABELS = { parks: '园区', buildings: '楼宇', enterprises: '企业', grids: '网格' };
    /* bring every mark into the part of the map the panel does not cover (if one is not) */
    function showMarks() {
      var marks = state.preview.getLayers();
      if (!marks.length) return;
      var box = map.getContainer().getBoundingClientRect(), pr = panel.getContainer().getBoundingClientRect();
      var free = L.bounds([70, 40], [Math.max(80, pr.left - box.left - 10), box.height - 40]);
      var hidden = marks.some(function (m) { return !free.contains(map.latLngToContainerPoint(m.getLatLng())); });
      if (hidden) {
        map.fitBounds(L.featureGroup(marks).getBounds(), { paddingTopLeft: [80, 50],
          paddingBottomRight: [box.right - pr.left + 20, 50], maxZoom: Math.max(map.getZoom(), 16), animate: false });
      }
    }
    /* an enterprise that changes community, on the map until the next preview, 还原 or save */
    function markMoved(i) {
      if (!i || typeof i !== 'object' || typeof i.lon !== 'number' || typeof i.lat !== 'number') return;
      var cell = function (c) { return c ? (c.name || c.id) : '无'; };
      var tip = esc(i.name || i.id) + '<br><small>' + esc(cell(i.from)) + ' → ' + esc(cell(i.to)) + '</small>';
      L.circleMarker([i.lat, i.lon], { radius: 6, weight: 2, color: '#ffffff', fillColor: cfg.movedColor || '#7b1fa2',
        fillOpacity: 1, pmIgnore: true, snapIgnore: true, className: 'geo-moved' }).bindTooltip(tip).addTo(state.preview);
    }
    function renderPreview(p) {
      state.preview.clearLayers();
      var groups = p;
      var html = '', total = 0;
      ['parks', 'buildings', 'enterprises', 'grids'].forEach(function (k) {
        var v = groups[k];
        if (v && !Array.isArray(v) && typeof v === 'object') {
          var items = [];
          ['joined', 'joining', 'added', 'in', 'enter', 'gained'].forEach(function (a) { (v[a] || []).forEach(function (i) { items.push(Object.assign({ _dir: '划入' }, typeof i === 'object' ? i : { id: i })); }); });
          ['left', 'leaving', 'removed', 'out', 'leave', 'lost'].forEach(function (a) { (v[a] || []).forEach(function (i) { items.push(Object.assign({ _dir: '划出' }, typeof i === 'object' ? i : { id: i })); }); });
          v = items;
        }
        if (Array.isArray(v)) {
          total += v.length;
          html += list(LABELS[k] + '变更', v.map(function (i) {
            if (typeof i !== 'object') return i;
            var o = Object.assign({}, i);
            if (o._dir && !o.from && !o.to) o.name = o._dir + '：' + (o.name || o.id);
            return o;
          }));
          if (k === 'enterprises') v.forEach(markMoved);
        }
      });
      state.lastPreview = p;
      state.previewTotal = total;
      var a = p.area || {};
      var area = a.after_m2 != null ? '<p>面积：' + (a.before_m2 / 1e6).toFixed(3) + ' → ' + (a.after_m2 / 1e6).toFixed(3) +
        ' 平方公里（增加 ' + Math.round(a.gained_m2) + ' 平方米，减少 ' + Math.round(a.lost_m2) + ' 平方米）</p>' : '';
      var errs = (p.errors || []).map(function (e) { return '<li>' + esc(chinese(e.message || e.detail || e.kind)) + '</li>'; }).join('');
      var gaps = (p.gaps || []).map(function (e) { return '<li>' + esc(chinese(e.message || e.kind)) + '</li>'; }).join('');
      if (gaps) gaps = '<p><b>提示（不影响保存）：</b></p><ul>' + gaps + '</ul>';
      var warn = p.valid === false ? '<p class="geo-msg-error"><b>此边界不能保存：</b></p><ul>' + errs + '</ul>' : '';
      if (p.valid === false) showProblems(p.errors);
      var marked = state.preview.getLayers().length;
      showMarks();
      var onMap = marked ? '<p class="geo-sub">地图上以<i class="geo-sw geo-sw-dot" style="--c:' + esc(cfg.movedColor || '#7b1fa2') +
        '"></i>标出改变所属社区的 ' + marked + ' 家企业。</p>' : '';
      message(p.valid === false ? 'error' : 'info', '<b>预览：' + (total ? '以下对象将改变所属社区' : '没有对象改变所属社区') + '</b>' + area + warn + gaps + onMap + html);
    }

    function errorFor(r, data) {
      state.preview.clearLayers();
      if (r.status === 401 || r.status === 403) {
        message('error', '<b>' + (r.status === 401 ? '需要登录：' : '权限不足：') + '</b>预览和保存需要规划人员令牌，请在上方填写（由管理员用 geo users add 生成）。');
        return;
      }
      if (r.status === 412) {
        var cur = data && (data.current_version || (data.detail && data.detail.current_version));
        message('error', '<b>保存失败：该边界已被他人修改。</b>您载入的是版本 ' + esc(state.version) +
          (cur != null ? '，当前版本为 ' + esc(cur) : '') + '。请刷新页面，在最新边界上重新修改。');
        return;
      }
      if (r.status === 422) {
        var shown = showProblems(data && data.detail);
        message('error', '<b>边界无效，未保存：</b>' + esc(chinese(detailText(data && data.detail))) + (shown ? '<br>（问题位置已在地图上用红圈标出）' : ''));
        return;
      }
      if (r.status === 428) {
        message('error', '<b>保存失败：</b>缺少版本号（If-Match）。请刷新页面后重试。');
        return;
      }
      message('error', '<b>出错了（HTTP ' + r.status + '）：</b>' + esc(detailText(data && data.detail)));
    }

    /* the planner's bearer token: typed once, kept for this browser tab only (sessionStorage) */
    var tokenInput = document.getElementById('geo-token');
    try { tokenInput.value = sessionStorage.getItem('geo-token') || ''; } catch (e) { /* storage off */ }
    function authHeaders() {
      var t = tokenInput.value.trim();
      try { sessionStorage.setItem('geo-token', t); } catch (e) { /* storage off */ }
      return t ? { Authorization: 'Bearer ' + t } : {};
    }

    function call(method, path, payload, headers) {
      var all = Object.assign({ 'Content-Type': 'application/json', Accept: 'application/json' }, authHeaders(), headers || {});
      return fetch(apiUrl(path), { method: method, headers: all, body: JSON.stringify(payload) })
        .then(function (r) { return r.text().then(function (t) { var d = null; try { d = t ? JSON.parse(t) : null; } catch (e) { d = { detail: t }; } return { r: r, data: d }; }); });
    }

    document.getElementById('geo-preview').onclick = function () {
      state.marks.clearLayers();
      message('info', '正在预览……');
      return call('POST', '/communities/' + encodeURIComponent(cfg.community.id) + '/boundary/preview', body(false))
        .then(function (x) { if (x.r.ok) renderPreview(x.data); else errorFor(x.r, x.data); })
        .catch(function (err) { message('error', '无法连接服务：' + esc(err.message)); });
    };
    document.getElementById('geo-save').onclick = function () {
      state.marks.clearLayers();
      var reason = document.getElementById('geo-reason').value.trim();
      if (!reason) { message('error', '请先填写修改原因。'); return; }
      if (cfg.maxReason && reason.length > cfg.maxReason) {
        message('error', '修改原因有 ' + reason.length + ' 个字符，上限为 ' + cfg.maxReason + '：请写得简短些。');
        return;
      }
      if (state.version == null) { message('error', '没有载入版本号，无法保存：请刷新页面。'); return; }
      message('info', '正在保存……');
      var ifMatch = state.etag || ('"' + state.version + '"');
      return call('PUT', '/communities/' + encodeURIComponent(cfg.community.id) + '/boundary', body(true), { 'If-Match': ifMatch })
        .then(function (x) {
          if (!x.r.ok) { errorFor(x.r, x.data); return; }
          var etag = x.r.headers.get('ETag');
          var v = x.data && (x.data.version != null ? x.data.version : (x.data.properties && x.data.properties.version));
          if (v == null && etag) v = etag.replace(/^W\//, '').replace(/"/g, '');
          state.etag = etag || null;
          state.version = v;
          showVersion();
          state.saved = (state.saved || 0) + 1;
          state.preview.clearLayers();
          var notes = ((x.data && x.data.warnings) || []).concat(((x.data && x.data.gaps) || []).map(function (g) { return g.message; }));
          var list = notes.length ? '<ul>' + notes.map(function (w) { return '<li>' + esc(chinese(w)) + '</li>'; }).join('') + '</ul>' : '';
          if (x.data && x.data.unchanged) message('ok', '<b>边界没有变化，未保存新版本。</b>仍为版本 ' + esc(v) + '。' + list);
          else message('ok', '<b>已保存。</b>新版本：' + esc(v) + '。' + list);
        })
        .catch(function (err) { message('error', '无法连接服务：' + esc(err.message)); });
    };
    document.getElementById('geo-reset').onclick = function () {
      if (state.loaded) setBoundary(state.loaded);
      state.marks.clearLayers();
      state.preview.clearLayers();
      message('info', '已还原为载入时的边界。');
    };
    load();
  }

  G.editor = function (map, config) {
    cfg = config;
    editor(map);
  };
})();
