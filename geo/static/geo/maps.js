/* geo maps: the browser side of geo/maps.py (legend, title, search, officer panel; the editor is editor.js).
 * Plain ES2017, no dependencies beyond Leaflet and the vendored plugins; all text in Chinese.
 * window.GEO exposes the map, its layers and timings (for people debugging and for tests). */
(function () {
  'use strict';
  var G = (window.GeoMaps = {});
  var cfg = {};
  var registry = {}; // feature id -> Leaflet layer (polygons and enterprise markers)
  var clusterLayer = null;

  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  G.esc = esc;

  function el(tag, cls, html) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (html != null) e.innerHTML = html;
    return e;
  }
  G.el = el;

  /* a URL for an href: relative, or http(s); anything else (javascript:, data:) becomes '#' */
  function safeHref(u) {
    var s = String(u == null ? '' : u);
    var scheme = /^\s*([a-z][a-z0-9+.-]*):/i.exec(s);
    return !scheme || /^https?$/i.test(scheme[1]) ? s : '#';
  }
  G.safeHref = safeHref;

  /* ---------------------------------------------------------------- popups and tooltips
     of the folium GeoJSON layers: built as DOM with textContent, so a name is never markup */
  function propsTable(props, fields) {
    var d = el('div', 'geo-popup geo-props');
    var table = el('table');
    fields.forEach(function (f) {
      var v = props ? props[f[0]] : null;
      var tr = el('tr');
      var th = el('th');
      th.textContent = f[1];
      var td = el('td');
      if (f[2] === 'link' && v) {
        var a = el('a');
        a.href = safeHref(v);
        a.textContent = '打开社区地图';
        td.appendChild(a);
      } else {
        td.textContent = v == null ? '' : String(v);
      }
      tr.appendChild(th);
      tr.appendChild(td);
      table.appendChild(tr);
    });
    d.appendChild(table);
    return d;
  }
  G.propsTable = propsTable;

  var popupExtra = null; /* (layer) -> node added to the next popup drawn (officer clusters) */
  G.bindPopups = function (group, fields, options) {
    group.bindPopup(function (layer) {
      var d = propsTable(layer.feature && layer.feature.properties, fields);
      var extra = popupExtra && popupExtra(layer);
      if (extra) d.appendChild(extra);
      return d;
    }, options || {});
  };

  G.bindTooltips = function (group, field, options) {
    group.bindTooltip(function (layer) {
      var span = el('span');
      var p = layer.feature && layer.feature.properties;
      span.textContent = p && p[field] != null ? String(p[field]) : '';
      return span;
    }, options || {});
  };

  function gridText(id) {
    var g = (cfg.grids || {})[id];
    return g ? esc(g[0]) + ' <span class="geo-code">' + esc(g[1]) + '</span>' : '—';
  }

  /* ---------------------------------------------------------------- enterprises */
  var entIcon = null;
  function icon() {
    if (!entIcon) entIcon = L.divIcon({ className: 'geo-ent', iconSize: [14, 14], iconAnchor: [7, 7], popupAnchor: [0, -6] });
    return entIcon;
  }

  G.enterprisePopup = function (e) {
    var rows = [
      ['信用代码', '<span class="geo-code">' + esc(e.credit_code) + '</span>'],
      ['地址', esc(e.address)],
      ['楼宇', esc(e.building) || '—'],
      ['园区', esc(e.park) || '—'],
      ['网格', gridText(e.grid_id)],
      ['社区', esc(((cfg.grids || {})[e.grid_id] || [])[2]) || '不在产业社区内'],
      ['产业链', esc(e.chain) || '—'],
    ];
    return '<div class="geo-popup"><h4>' + esc(e.name) + '</h4><table>' +
      rows.map(function (r) { return '<tr><th>' + r[0] + '</th><td>' + r[1] + '</td></tr>'; }).join('') +
      '</table></div>';
  };

  /* FastMarkerCluster callback: row = [lat, lon, id, name, credit_code, address, chain, building, park, grid_id] */
  G.enterpriseMarker = function (row) {
    var e = { id: row[2], name: row[3], credit_code: row[4], address: row[5], chain: row[6], building: row[7], park: row[8], grid_id: row[9] };
    var m = L.marker([row[0], row[1]], { icon: icon(), title: row[3], keyboard: false });
    m.geoId = row[2];
    m.bindPopup(function () { return G.enterprisePopup(e); }, { maxWidth: 320 });
    return m;
  };

  /* the dots grow with the zoom: below 14 the tiles are thinned and the dots small */
  G.enterpriseTileStyle = function (p, z) {
    return { radius: z < 14 ? 2.5 : z < 16 ? 3.5 : 4.5, weight: 1, color: '#ffffff', fill: true, fillColor: '#1565c0', fillOpacity: 0.9 };
  };

  /* ---------------------------------------------------------------- notices: a failure is
     said on the map, in Chinese (window.GEO.notices: key -> text, for tests) */
  var notices = {};
  G.notices = notices;
  var noticeBox = null;
  G.notice = function (map, key, text) {
    notices[key] = text;
    if (!noticeBox) {
      var c = L.control({ position: 'bottomleft' });
      c.onAdd = function () {
        var d = el('div', 'geo-notices');
        d.setAttribute('role', 'alert');
        L.DomEvent.disableClickPropagation(d);
        L.DomEvent.disableScrollPropagation(d);
        return d;
      };
      c.addTo(map);
      noticeBox = c.getContainer();
    }
    var p = noticeBox.querySelector('[data-key="' + key + '"]');
    if (!p) {
      p = el('div', 'geo-notice');
      p.setAttribute('data-key', key);
      var text_ = el('span', 'geo-notice-text');
      var close = el('button', 'geo-notice-close', '×');
      close.type = 'button';
      close.setAttribute('aria-label', '关闭提示');
      close.onclick = function () { p.remove(); };
      p.appendChild(text_);
      p.appendChild(close);
      noticeBox.appendChild(p);
    }
    p.querySelector('.geo-notice-text').textContent = text;
  };

  /* a plugin whose script did not load: the layers that need it are left out, said once */
  var missing = {};
  function missingPlugin(map, plugin, what) {
    var m = (missing[plugin] = missing[plugin] || []);
    if (m.indexOf(what) < 0) m.push(what);
    G.notice(map, 'missing-' + plugin, '地图组件 ' + plugin + ' 未能载入：' + m.join('、') +
      '无法显示，地图的其余部分可正常使用。请刷新页面重试。');
  }

  function pane(map, name, z, interactive) {
    if (!map.getPane(name)) {
      var p = map.createPane(name);
      p.style.zIndex = z;
      if (!interactive) p.style.pointerEvents = 'none';
    }
    return name;
  }

  /* VectorGrid.Protobuf that reports failed tiles (network error or HTTP error: the plugin
     draws them empty without a word) as 'tilefailed', and still finishes the tile */
  function safeProtobuf() {
    if (safeProtobuf.cls) return safeProtobuf.cls;
    var base = L.VectorGrid.Protobuf.prototype._getVectorTilePromise;
    safeProtobuf.cls = L.VectorGrid.Protobuf.extend({
      _getVectorTilePromise: function (coords) {
        var self = this, real = window.fetch, p;
        function failed(why) { self.fire('tilefailed', { coords: coords, error: why }); }
        window.fetch = function () { /* the plugin calls fetch() once, synchronously, here */
          return real.apply(window, arguments).then(function (r) {
            if (!r.ok) failed('HTTP ' + r.status);
            return r;
          }, function (err) { failed('网络错误'); throw err; });
        };
        try { p = base.call(this, coords); } finally { window.fetch = real; }
        return p.catch(function () { return { layers: {} }; });
      },
      /* a clicked point of a tile has no latlng of its own: Leaflet 1.9 would read it (and throw
         before any click handler runs), so the click is placed where the pointer is */
      _createLayer: function () {
        var l = L.VectorGrid.prototype._createLayer.apply(this, arguments);
        if (l.getLatLng && !l._latlng) l.getLatLng = null;
        return l;
      },
    });
    return safeProtobuf.cls;
  }

  function tileFailures(map, layer, key, what) {
    var n = 0, why = '';
    layer.on('tilefailed', function (e) {
      n += 1;
      why = e.error;
      G.notice(map, key, what + '有 ' + n + ' 个瓦片载入失败（' + why + '），部分内容未显示。请检查网络后刷新页面。');
    });
  }

  /* a tile carries what the map draws and labels (id, name, credit code); the popup shows
     those at once and completes the rest from the feature by id and its owners */
  function enterpriseTileProps(p) {
    return { id: p.id, name: p.name, credit_code: p.credit_code, chain: '', grid_id: '', address: '', building: '', park: '', community: '' };
  }

  function getJSON(url) {
    return fetch((cfg.api || '') + url, { headers: { Accept: 'application/geo+json, application/json' } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .catch(function () { return null; });
  }

  /* the enterprise popup of a vector-tile dot, completed from /collections/enterprises/items/{id}
     (chain, grid, address) and /enterprises/{id}/owner (building or park) */
  function tilePopup(map, e) {
    var p = e.layer && e.layer.properties;
    if (!p) return;
    var ent = enterpriseTileProps(p);
    var popup = L.popup({ maxWidth: 320 }).setLatLng(e.latlng).setContent(G.enterprisePopup(ent)).openOn(map);
    window.GEO.lastEnterprisePopup = popup;
    var id = encodeURIComponent(p.id);
    Promise.all([getJSON('/collections/enterprises/items/' + id + '?f=json'), getJSON('/enterprises/' + id + '/owner')])
      .then(function (got) {
        if (!map.hasLayer(popup)) return;
        var item = (got[0] || {}).properties || {}, o = got[1] || {}, mg = o.microgrid || {};
        ent.credit_code = item.credit_code || ent.credit_code;
        ent.chain = item.chain || '';
        ent.grid_id = item.grid_id || (o.grid || {}).id || '';
        ent.address = item.address || (o.enterprise || {}).address || '';
        ent.building = mg.kind === 'building' ? mg.name : '';
        ent.park = mg.kind === 'park' ? mg.name : '';
        popup.setContent(G.enterprisePopup(ent));
      });
  }

  /* enterprises from vector tiles, in a pane above the building fills (so the dots are the
     legend's blue and a click reaches them) */
  G.enterpriseTiles = function (map, args) {
    if (!L.VectorGrid || !L.VectorGrid.Protobuf) { missingPlugin(map, 'Leaflet.VectorGrid', '企业图层'); return L.layerGroup(); }
    var Cls = safeProtobuf();
    var layer = new Cls(args.url, {
      bounds: args.bounds, /* the enterprises' extent: no requests for the empty tiles around it */
      pane: pane(map, 'geoEnterprises', 450, true), interactive: true, maxNativeZoom: 18, maxZoom: 20,
      getFeatureId: function (f) { return f.properties.id; },
      vectorTileLayerStyles: { enterprises: G.enterpriseTileStyle },
    });
    layer.on('click', function (e) { tilePopup(map, e); });
    tileFailures(map, layer, 'tiles-enterprises', '企业图层');
    return layer;
  };

  /* enterprises as clustered markers (a plain group, said in a notice, without the plugin) */
  G.enterpriseCluster = function (map, args) {
    var markers = args.rows.map(G.enterpriseMarker);
    if (!L.MarkerClusterGroup) {
      missingPlugin(map, 'Leaflet.markercluster', '企业聚合');
      return L.featureGroup(markers);
    }
    var group = L.markerClusterGroup(args.options);
    group.addLayers(markers);
    return group;
  };

  var ROAD_WEIGHT = { expressway: 4, arterial: 3, secondary: 2, branch: 1.5 };
  function roadStyle(p, z) {
    var w = ROAD_WEIGHT[(p || {}).class] || 1.5;
    return { color: '#a9b4bf', weight: z < 14 ? w * 0.6 : z < 16 ? w : w * 1.6, opacity: 0.9, fill: false, className: 'geo-roads' };
  }

  /* roads (vector tiles or inline GeoJSON) under the polygons, named by labels at zoom >= 15 */
  G.roads = function (map, args) {
    var layer;
    var where = pane(map, 'geoRoads', 390, false);
    if (args.url) {
      if (!L.VectorGrid || !L.VectorGrid.Protobuf) { missingPlugin(map, 'Leaflet.VectorGrid', '道路图层'); layer = L.layerGroup(); }
      else {
        layer = new (safeProtobuf())(args.url, { pane: where, interactive: false, maxNativeZoom: 18, maxZoom: 20,
          vectorTileLayerStyles: { roads: roadStyle } });
        tileFailures(map, layer, 'tiles-roads', '道路图层');
      }
    } else {
      layer = L.geoJSON(args.data, { pane: where, interactive: false, style: function (f) { return roadStyle(f.properties, 15); } });
    }
    layer.geoRoadLabels = args.labels || [];
    return layer;
  };

  /* ---------------------------------------------------------------- controls */
  function titleControl(map) {
    var c = L.control({ position: 'topleft' });
    c.onAdd = function () {
      var d = el('div', 'geo-title geo-box');
      var html = '<b>' + esc(cfg.title) + '</b>';
      if (cfg.subtitle) html += '<div class="geo-sub">' + esc(cfg.subtitle) + '</div>';
      if (cfg.kind !== 'district' && cfg.links && cfg.links.district) {
        html += '<div class="geo-sub"><a class="geo-back" href="' + esc(safeHref(cfg.links.district)) + '">← 区级总览</a></div>';
      }
      if (cfg.communityLinks) {
        html += '<div class="geo-sub geo-links">' + cfg.communityLinks.map(function (c) {
          return '<a href="' + esc(safeHref(c[2])) + '">' + esc(c[1]) + '</a>';
        }).join(' ') + '</div>';
      }
      if (cfg.crs === 'gcj02') html += '<div class="geo-sub">高德底图：图层已转换为 GCJ-02</div>';
      d.innerHTML = html;
      L.DomEvent.disableClickPropagation(d);
      return d;
    };
    return c.addTo(map);
  }

  function legendControl(map) {
    if (!cfg.legend) return;
    var c = L.control({ position: 'bottomright' });
    c.onAdd = function () {
      var d = el('div', 'geo-legend leaflet-bar');
      var head = el('div', 'geo-legend-head', '图例');
      var body = el('div', 'geo-legend-body');
      body.innerHTML = cfg.legend.map(function (i) {
        return '<div><i class="geo-sw geo-sw-' + esc(i[2]) + '" style="--c:' + esc(i[0]) + '"></i>' + esc(i[1]) + '</div>';
      }).join('');
      d.appendChild(head);
      d.appendChild(body);
      head.onclick = function () { d.classList.toggle('geo-collapsed'); };
      if (window.innerWidth < 600) d.classList.add('geo-collapsed');
      L.DomEvent.disableClickPropagation(d);
      return d;
    };
    c.addTo(map);
  }

  /* search: Chinese name, full pinyin or initials; entries [kind, name, detail, pinyin, initials, lat, lon, ref] */
  function matches(q, entries) {
    var qn = q.toLowerCase().replace(/\s+/g, '');
    if (!qn) return [];
    var scored = [];
    for (var i = 0; i < entries.length; i++) {
      var e = entries[i], s = -1;
      var name = e[1].toLowerCase();
      if (name.indexOf(qn) === 0) s = 0;
      else if (e[4].indexOf(qn) === 0) s = 1;
      else if (e[3].indexOf(qn) === 0) s = 2;
      else if (name.indexOf(qn) > 0) s = 3;
      else if (e[3].indexOf(qn) > 0) s = 4;
      else if (e[4].indexOf(qn) > 0) s = 5;
      if (s >= 0) scored.push([s, e[1].length, i]);
    }
    scored.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1] || a[2] - b[2]; });
    return scored.slice(0, 30).map(function (x) { return entries[x[2]]; });
  }
  G.matches = matches;

  /* served maps ask the service (GET /search?q=, cfg.searchUrl) as the user types, so no
     index is loaded up front; standalone files embed their entries (cfg.search) */
  var KIND_TAG = { enterprise: '企业', building: '楼宇', officer: '人员', park: '园区' };
  function remoteEntry(h) {
    return [KIND_TAG[h.kind] || h.kind, h.name, h.detail || '', '', '', h.lat, h.lon, h.ref || h.id];
  }
  var searchCache = {};
  function searchRemote(q, then) {
    var key = q.trim();
    if (searchCache[key]) { then(searchCache[key]); return; }
    var url = cfg.searchUrl + (cfg.searchUrl.indexOf('?') < 0 ? '?' : '&') + 'limit=30&q=' + encodeURIComponent(key);
    var ctl = window.AbortController ? new AbortController() : null;
    if (searchRemote.ctl) searchRemote.ctl.abort(); /* only the latest query counts */
    searchRemote.ctl = ctl;
    fetch(url, { headers: { Accept: 'application/json' }, signal: ctl ? ctl.signal : undefined })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (data) {
        var hits = (data.results || []).filter(function (h) { return h.lat != null; }).map(remoteEntry);
        searchCache[key] = hits;
        then(hits);
      })
      .catch(function (err) { if (!err || err.name !== 'AbortError') then(null); });
  }
  /* the entries matching q, in then(hits); null when the search failed */
  function lookUp(q, then) {
    if (!q.replace(/\s+/g, '')) { then([]); return; }
    if (cfg.search) { then(matches(q, cfg.search)); return; }
    searchRemote(q, then);
  }
  G.lookUp = lookUp;

  function searchControl(map) {
    if (!cfg.search && !cfg.searchUrl) return;
    var c = L.control({ position: 'topleft' });
    c.onAdd = function () {
      var d = el('div', 'geo-search leaflet-bar');
      var input = el('input');
      input.type = 'search';
      input.placeholder = '搜索企业、楼宇、人员（汉字/拼音/首字母）';
      input.setAttribute('aria-label', '搜索');
      var list = el('ul', 'geo-results');
      d.appendChild(input);
      d.appendChild(list);
      var timer = null;
      function show(q, hits) {
        if (input.value !== q) return; /* the user typed on */
        list.innerHTML = '';
        if (hits === null) { list.appendChild(el('li', 'geo-none geo-error', '搜索失败（无法连接服务或服务出错），请检查网络后重试。')); return; }
        if (q && !hits.length) list.appendChild(el('li', 'geo-none', '没有找到'));
        hits.forEach(function (h) {
          var li = el('li', null, '<span class="geo-tag">' + esc(h[0]) + '</span>' + esc(h[1]) +
            '<small>' + esc(h[2]) + '</small>');
          /* the click must not reach the map once the list is emptied (the list item is gone, so
             Leaflet would take it for a click on the map and close the popup just opened) */
          li.onclick = function (ev) { L.DomEvent.stop(ev); G.go(h); list.innerHTML = ''; };
          list.appendChild(li);
        });
      }
      function update() {
        var q = input.value;
        if (!cfg.search && q.trim() && !searchCache[q.trim()]) {
          list.innerHTML = '';
          list.appendChild(el('li', 'geo-none', '正在搜索……'));
        }
        lookUp(q, function (hits) { show(q, hits); });
      }
      input.addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(update, cfg.search ? 120 : 200); });
      input.addEventListener('keydown', function (ev) {
        if (ev.key !== 'Enter') return;
        clearTimeout(timer);
        var q = input.value;
        lookUp(q, function (hits) {
          if (input.value !== q) return;
          if (hits && hits.length) { G.go(hits[0]); list.innerHTML = ''; } else show(q, hits);
        });
      });
      L.DomEvent.disableClickPropagation(d);
      L.DomEvent.disableScrollPropagation(d);
      return d;
    };
    c.addTo(map);
  }

  /* show a layer and open its popup: a clustered marker at the deepest zoom (spiderfied if it
     still shares a cluster), a polygon fitted to the view */
  function showLayer(layer) {
    var map = window.GEO.map;
    if (clusterLayer && clusterLayer.hasLayer(layer)) {
      map.setView(layer.getLatLng(), map.getMaxZoom(), { animate: false });
      var parent = clusterLayer.getVisibleParent(layer);
      if (!layer._icon && parent && parent.spiderfy) parent.spiderfy();
      layer.openPopup();
      return;
    }
    if (!layer.getBounds) { /* a plain marker */
      map.setView(layer.getLatLng(), Math.max(map.getZoom(), 17), { animate: false });
      layer.openPopup();
      return;
    }
    var centre = layer.getBounds().getCenter();
    map.fitBounds(layer.getBounds(), { maxZoom: 18, animate: false });
    if (layer.getPopup && layer.getPopup()) layer.openPopup(centre);
    else layer.fire('click', { latlng: centre }, true); /* popup bound on the parent GeoJSON */
  }

  G.go = function (entry) {
    var map = window.GEO.map;
    var layer = registry[entry[7]];
    if (layer && (layer.getLatLng || layer.getBounds)) {
      showLayer(layer);
    } else {
      map.setView([entry[5], entry[6]], 18);
      L.popup().setLatLng([entry[5], entry[6]]).setContent('<b>' + esc(entry[1]) + '</b><br>' + esc(entry[2])).openOn(map);
    }
    window.GEO.lastSearch = entry;
  };

  /* "我的楼宇": officer links in building popups */
  function officerLinks(layer) {
    if (!cfg.officerLinks || !layer) return;
    layer.on('popupopen', function (ev) {
      var id = ev.layer && ev.layer.feature && ev.layer.feature.properties.id;
      var team = id && cfg.officerLinks[id];
      if (!team) return;
      var c = ev.popup.getElement().querySelector('.leaflet-popup-content');
      if (!c || c.querySelector('.geo-team')) return;
      c.appendChild(el('div', 'geo-team', '我的楼宇：' + team.map(function (t) {
        return '<a href="' + esc(safeHref(t[3])) + '">' + esc(t[1]) + '（' + esc(t[2]) + '）</a>';
      }).join(' ')));
    });
  }

  /* ---------------------------------------------------------------- officer panel */
  function officerPanel(map) {
    var o = cfg.officer;
    document.body.classList.add('geo-with-panel');
    var p = el('aside', 'geo-panel');
    var html = '<h2>我的楼宇</h2><p class="geo-who">' + esc(o.name) + ' · ' + esc(o.role) +
      (o.party_member ? ' · 党员' : '') + '</p>';
    o.buildings.forEach(function (b) {
      html += '<section data-id="' + esc(b.id) + '"><h3><a href="#" class="geo-fly" data-id="' + esc(b.id) + '">' +
        esc(b.name) + '</a></h3><p>' + esc(b.kind) + ' · ' + esc(b.address) + '<br>网格：' + esc(b.grid[0]) +
        ' <span class="geo-code">' + esc(b.grid[1]) + '</span></p>';
      if (b.team.length) html += '<p>同楼宇：' + b.team.map(function (t) { return esc(t[0]) + '（' + esc(t[1]) + '）'; }).join('、') + '</p>';
      html += '<p class="geo-count">企业 ' + b.enterprises.length + ' 家</p><ol>' + b.enterprises.map(function (e) {
        return '<li><a href="#" class="geo-ent-link" data-id="' + esc(e[0]) + '">' + esc(e[1]) + '</a><small>' + esc(e[2]) + '</small></li>';
      }).join('') + '</ol></section>';
    });
    if (!o.buildings.length) html += '<p>没有登记楼宇。</p>';
    p.innerHTML = html;
    document.body.appendChild(p);
    p.addEventListener('click', function (ev) {
      var a = ev.target.closest('a');
      if (!a || !a.dataset.id) return;
      ev.preventDefault();
      var layer = registry[a.dataset.id];
      if (!layer) return;
      showLayer(layer);
      if (window.innerWidth < 700) window.scrollTo({ top: 0, behavior: 'smooth' });
    });
    setTimeout(function () { map.invalidateSize(); G.fitMine(); }, 0);
  }

  G.fitMine = function () {
    var mine = window.GEO.layers.mine;
    if (mine && mine.getLayers().length) window.GEO.map.fitBounds(mine.getBounds(), { padding: [24, 24], maxZoom: 18 });
  };

  /* ---------------------------------------------------------------- labels placed where they
     fit: the officer's buildings first, then grid codes (inside their grid, at the centre of its
     visible part, only when the whole label fits in the grid), then road names (zoom >= 15,
     main roads first). A label that overlaps one placed before it or leaves the map is hidden;
     recomputed after every zoom and move (GEO.labels: what is shown, for tests). */
  var labelItems = [];

  function addLabel(map, group, html, cls, opt) {
    var angle = opt.angle ? ' style="transform: translate(-50%,-50%) rotate(' + opt.angle + 'deg)"' : '';
    var marker = L.marker(opt.latlng || [0, 0], {
      pane: pane(map, 'geoLabels', 460, false), interactive: false, keyboard: false,
      icon: L.divIcon({ className: 'geo-lbl-icon', iconSize: null, html: '<span class="geo-lbl ' + cls + '"' + angle + '>' + html + '</span>' }),
    });
    labelItems.push({ marker: marker, group: group, poly: opt.poly || null, minZoom: opt.minZoom || 0, shown: false, text: opt.text });
  }

  function polyRings(map, poly) {
    var ll = poly.getLatLngs();
    var polys = L.LineUtil.isFlat(ll) ? [[ll]] : L.LineUtil.isFlat(ll[0]) ? [ll] : ll;
    return polys.map(function (p) { return p[0].map(function (x) { return map.latLngToContainerPoint(x); }); });
  }

  function inRings(x, y, rings) {
    return rings.some(function (r) {
      var inside = false;
      for (var i = 0, j = r.length - 1; i < r.length; j = i++) {
        if ((r[i].y > y) !== (r[j].y > y) && x < (r[j].x - r[i].x) * (y - r[i].y) / (r[j].y - r[i].y) + r[i].x) inside = !inside;
      }
      return inside;
    });
  }

  /* the point of the polygon's visible part nearest that part's centre (null: not in view) */
  function anchorIn(map, poly, size) {
    var b = poly.getBounds(), a = map.latLngToContainerPoint(b.getNorthWest()), c = map.latLngToContainerPoint(b.getSouthEast());
    var r = { x0: Math.max(a.x, 4), y0: Math.max(a.y, 4), x1: Math.min(c.x, size.x - 4), y1: Math.min(c.y, size.y - 4) };
    if (r.x1 - r.x0 < 16 || r.y1 - r.y0 < 10) return null;
    var rings = polyRings(map, poly), cx = (r.x0 + r.x1) / 2, cy = (r.y0 + r.y1) / 2, best = null, bd = Infinity;
    for (var i = 0; i < 9; i++) {
      for (var j = 0; j < 9; j++) {
        var x = r.x0 + (r.x1 - r.x0) * (i + 0.5) / 9, y = r.y0 + (r.y1 - r.y0) * (j + 0.5) / 9;
        var d = (x - cx) * (x - cx) + (y - cy) * (y - cy);
        if (d < bd && inRings(x, y, rings)) { bd = d; best = L.point(x, y); }
      }
    }
    return best && { pt: best, rings: rings };
  }

  function overlap(a, b) { return a.x0 < b.x1 + 2 && b.x0 < a.x1 + 2 && a.y0 < b.y1 + 2 && b.y0 < a.y1 + 2; }

  function placeLabels(map) {
    var size = map.getSize(), z = map.getZoom(), origin = map.getContainer().getBoundingClientRect();
    var placed = []; /* the controls first: no label hides under the title, legend or search */
    map.getContainer().querySelectorAll('.leaflet-control').forEach(function (k) {
      var r = k.getBoundingClientRect();
      if (r.width) placed.push({ x0: r.left - origin.left, y0: r.top - origin.top, x1: r.right - origin.left, y1: r.bottom - origin.top });
    });
    labelItems.forEach(function (it) { /* first every position, then every measure (one layout) */
      it.anchor = null;
      it.want = !!it.group && map.hasLayer(it.group) && z >= it.minZoom;
      if (it.want && it.poly) {
        it.anchor = anchorIn(map, it.poly, size);
        it.want = !!it.anchor;
        if (it.anchor) it.marker.setLatLng(map.containerPointToLatLng(it.anchor.pt));
      }
    });
    labelItems.forEach(function (it) {
      var icon = it.marker.getElement(), span = icon && icon.firstChild, show = it.want && !!span;
      if (show) {
        var r = span.getBoundingClientRect();
        var box = { x0: r.left - origin.left, y0: r.top - origin.top, x1: r.right - origin.left, y1: r.bottom - origin.top };
        show = box.x0 >= 2 && box.y0 >= 2 && box.x1 <= size.x - 2 && box.y1 <= size.y - 2 &&
          !placed.some(function (p) { return overlap(p, box); });
        if (show && it.anchor) {
          var k = it.anchor.rings;
          show = inRings(box.x0, box.y0, k) && inRings(box.x1, box.y0, k) && inRings(box.x0, box.y1, k) && inRings(box.x1, box.y1, k);
        }
        if (show) placed.push(box);
      }
      if (icon) icon.classList.toggle('geo-lbl-hidden', !show);
      it.shown = show;
    });
    window.GEO.labels = labelItems.filter(function (it) { return it.shown; }).map(function (it) { return it.text; });
  }
  G.placeLabels = function () { placeLabels(window.GEO.map); };

  function setUpLabels(map, layers) {
    var mine = layers.mine, grids = layers.grids, roads = layers.roads;
    if (mine && mine.eachLayer) mine.eachLayer(function (l) {
      /* above the building: its enterprise cluster sits on its centre */
      var b = l.getBounds();
      if (l.feature) addLabel(map, mine, esc(l.feature.properties.name), 'geo-label', { latlng: [b.getNorth(), b.getCenter().lng], text: l.feature.properties.name });
    });
    if (grids && grids.eachLayer) {
      var gl = grids.getLayers().slice().sort(function (a, b) { return area(b) - area(a); });
      gl.forEach(function (l) {
        var p = l.feature && l.feature.properties;
        if (p) addLabel(map, grids, esc(p.name) + '<br><span class="geo-code">' + esc(p.code) + '</span>', 'geo-grid-label', { poly: l, text: p.code });
      });
    }
    if (roads && roads.geoRoadLabels) {
      roads.geoRoadLabels.slice().sort(function (a, b) { return (ROAD_WEIGHT[b[4]] || 0) - (ROAD_WEIGHT[a[4]] || 0); }).forEach(function (r) {
        addLabel(map, roads, esc(r[0]), 'geo-road-name', { latlng: [r[1], r[2]], angle: r[3], minZoom: 15, text: r[0] });
      });
    }
    if (!labelItems.length) return;
    L.layerGroup(labelItems.map(function (it) { return it.marker; })).addTo(map);
    var queued = false;
    function schedule() {
      if (queued) return;
      queued = true;
      requestAnimationFrame(function () { queued = false; placeLabels(map); });
    }
    map.on('zoomend moveend resize overlayadd overlayremove', schedule);
    placeLabels(map);
  }

  function area(l) {
    var b = l.getBounds();
    return (b.getEast() - b.getWest()) * (b.getNorth() - b.getSouth());
  }

  /* ---------------------------------------------------------------- the district: a click inside a
     community opens the community below zoom 15 (grids let clicks through), the grid from 15 on
     (its popup names the community and links its map) */
  function gridClicks(map) {
    if (cfg.kind !== 'district') return;
    function update() { map.getContainer().classList.toggle('geo-grids-passive', map.getZoom() < 15); }
    map.on('zoomend', update);
    update();
  }

  /* a popup never opens under the title, search box, layer control or legend: before Leaflet
     pans it into view, the paddings become the edges of the controls it would overlap (the top
     ones win when it cannot clear both); and it is never wider than the map */
  function popupsClearOfControls() {
    if (L.Popup.prototype.geoClear) return;
    var base = L.Popup.prototype._adjustPan, layout = L.Popup.prototype._updateLayout;
    L.Popup.prototype.geoClear = true;
    L.Popup.prototype._updateLayout = function () { /* never wider than the map (a phone) */
      if (this._map) this.options.maxWidth = Math.min(this.options.maxWidth || 300, this._map.getSize().x - 70);
      return layout.apply(this, arguments);
    };
    L.Popup.prototype._adjustPan = function () {
      var map = this._map, c = this._container;
      if (map && c) {
        var p = c.getBoundingClientRect(), box = map.getContainer().getBoundingClientRect(), top = 5, bottom = 5;
        var left = p.left, right = p.right, dx = 0; /* where Leaflet's sideways pan will put it */
        if (right + 5 > box.right) dx = right + 5 - box.right;
        if (left - dx < box.left + 5) dx = left - box.left - 5;
        left -= dx;
        right -= dx;
        map.getContainer().querySelectorAll('.leaflet-control').forEach(function (k) {
          var r = k.getBoundingClientRect();
          if (!r.width || r.left >= right || left >= r.right) return;
          if (k.closest('.leaflet-top')) top = Math.max(top, r.bottom - box.top + 8);
          else bottom = Math.max(bottom, box.bottom - r.top + 8);
        });
        this.options.autoPanPaddingTopLeft = L.point(5, top);
        this.options.autoPanPaddingBottomRight = L.point(5, bottom);
      }
      return base.apply(this, arguments);
    };
  }

  /* the base map (its layers come unshown): one tile is fetched first; once it loads the base
     map is shown, and when it fails (no internet, an intranet) the page says so and draws on a
     plain background, with one failed request instead of a console error per tile. Later
     failures (the connection lost) fall back the same way. */
  var BASEMAP_NAMES = { osm: 'OpenStreetMap', tianditu: '天地图', amap: '高德地图' };
  function basemapFailed(map, control, base) {
    if (window.GEO.basemapFailed) return;
    window.GEO.basemapFailed = true;
    base.forEach(function (b) { map.removeLayer(b); if (control) control.removeLayer(b); });
    map.getContainer().classList.add('geo-no-basemap');
    G.notice(map, 'basemap', '底图（' + (BASEMAP_NAMES[cfg.basemap] || cfg.basemap) +
      '）无法载入，可能没有连接互联网：已改为无底图显示，其余图层不受影响。');
  }

  function watchBasemap(map, control, base) {
    base = base || [];
    if (!base.length) { map.getContainer().classList.add('geo-no-basemap'); return; }
    var ok = 0, bad = 0;
    base.forEach(function (l) {
      l.on('tileload', function () { ok += 1; });
      l.on('tileerror', function () {
        bad += 1;
        if (bad >= 12 && bad > ok) basemapFailed(map, control, base);
      });
    });
    var first = base[0], o = first.options, z = Math.round(map.getZoom());
    var p = map.project(map.getCenter(), z).divideBy(o.tileSize || 256).floor();
    var subs = typeof o.subdomains === 'string' ? o.subdomains.split('') : o.subdomains || [''];
    var probe = new Image();
    probe.referrerPolicy = 'no-referrer-when-downgrade';
    probe.onload = function () {
      window.GEO.basemapShown = true;
      base.forEach(function (b) { b.addTo(map); });
    };
    probe.onerror = function () { basemapFailed(map, control, base); };
    probe.src = L.Util.template(first._url, L.extend({}, o, { s: subs[0], x: p.x, y: p.y, z: z, r: '' }));
  }

  /* the officer's building at latlng (null: none) */
  function buildingAt(map, latlng) {
    var mine = window.GEO.layers.mine, pt = map.latLngToContainerPoint(latlng), hit = null;
    if (mine) mine.eachLayer(function (l) {
      if (!hit && l.feature && l.getBounds().contains(latlng) && inRings(pt.x, pt.y, polyRings(map, l))) hit = l;
    });
    return hit;
  }

  /* 我的楼宇: a tap on a cluster sitting on one of the officer's buildings (the tap inside the
     building, or every enterprise of the cluster in it) opens the building, whose popup offers
     to spread the enterprises; other clusters zoom in or spread */
  function officerClusters(map) {
    var cl = clusterLayer;
    if (!cl || cfg.kind !== 'officer') return;
    var inBuilding = {};
    cfg.officer.buildings.forEach(function (b) { b.enterprises.forEach(function (e) { inBuilding[e[0]] = b.id; }); });
    cl.on('clusterclick', function (a) {
      var kids = a.layer.getAllChildMarkers(), b = inBuilding[kids[0].geoId];
      var one = kids.every(function (k) { return inBuilding[k.geoId] === b; });
      var at = a.originalEvent && a.originalEvent.clientX != null ? map.mouseEventToLatLng(a.originalEvent) : a.layer.getLatLng();
      var tapped = buildingAt(map, at);
      if (tapped) { b = tapped.feature.properties.id; one = true; } /* the building under the finger */
      if (!b || !one || !registry[b]) {
        if (map.getZoom() >= map.getMaxZoom() || a.layer._bounds && map.getBoundsZoom(a.layer.getBounds()) <= map.getZoom()) a.layer.spiderfy();
        else a.layer.zoomToBounds({ padding: [20, 20] });
        return;
      }
      var cluster = a.layer, id = b;
      popupExtra = function (layer) { /* drawn with the popup, so its size counts when it opens */
        if (!layer.feature || layer.feature.properties.id !== id) return null;
        var btn = el('button', 'geo-spread', '在地图上展开此处的 ' + kids.length + ' 家企业');
        btn.type = 'button';
        btn.onclick = function () { map.closePopup(); cluster.spiderfy(); };
        return btn;
      };
      registry[b].fire('click', { latlng: at }, true);
      popupExtra = null;
    });
  }

  /* ---------------------------------------------------------------- init */
  G.init = function (map, config, layers, control, basemaps) {
    cfg = config;
    var t0 = performance.now();
    window.GEO = { map: map, cfg: cfg, layers: layers, registry: registry, ready: false, initAt: t0, notices: notices, labels: [] };
    popupsClearOfControls();
    watchBasemap(map, control, basemaps);
    Object.keys(layers).forEach(function (k) {
      var layer = layers[k];
      if (layer && layer.eachLayer) {
        layer.eachLayer(function (l) {
          var id = l.geoId || (l.feature && l.feature.properties && l.feature.properties.id);
          if (id != null) registry[id] = l;
        });
      }
      if (window.L.MarkerClusterGroup && layer instanceof L.MarkerClusterGroup) clusterLayer = layer;
    });
    window.GEO.cluster = clusterLayer;
    if (map.zoomControl && map.getSize().x < 600) map.zoomControl.setPosition('topright'); /* a phone: the title at the top */
    titleControl(map);
    legendControl(map);
    searchControl(map);
    setUpLabels(map, layers);
    gridClicks(map);
    officerClusters(map);
    officerLinks(layers.buildings);
    officerLinks(layers.mine);
    if (cfg.kind === 'officer') officerPanel(map);
    if (cfg.kind === 'editor' && G.editor) G.editor(map, cfg); /* static/geo/editor.js */
    // a map is interactive once its overlays are drawn and its vector tiles (if any) have loaded
    var pending = [];
    Object.keys(layers).forEach(function (k) {
      var layer = layers[k];
      if (layer && layer instanceof L.GridLayer && map.hasLayer(layer)) {
        pending.push(new Promise(function (resolve) {
          if (layer.isLoading && !layer.isLoading()) { resolve(); return; }
          layer.once('load', resolve);
          setTimeout(resolve, 15000);
        }));
      }
    });
    Promise.all(pending).then(function () {
      requestAnimationFrame(function () {
        window.GEO.interactiveAt = performance.now();
        window.GEO.ready = true;
      });
    });
  };

  /* counts of what is drawn, for people and tests */
  G.counts = function () {
    var out = {};
    var layers = window.GEO.layers;
    Object.keys(layers).forEach(function (k) {
      var l = layers[k];
      if (l && l.getLayers) out[k] = l.getLayers().length;
    });
    return out;
  };
})();
