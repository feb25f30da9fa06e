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

  G.bindPopups = function (group, fields, options) {
    group.bindPopup(function (layer) {
      return propsTable(layer.feature && layer.feature.properties, fields);
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

  G.enterpriseTileStyle = { radius: 4, weight: 1, color: '#ffffff', fill: true, fillColor: '#1565c0', fillOpacity: 0.9 };

  /* ---------------------------------------------------------------- controls */
  function titleControl(map) {
    var c = L.control({ position: 'topleft' });
    c.onAdd = function () {
      var d = el('div', 'geo-title leaflet-bar');
      var html = '<b>' + esc(cfg.title) + '</b>';
      if (cfg.subtitle) html += '<div class="geo-sub">' + esc(cfg.subtitle) + '</div>';
      if (cfg.kind !== 'district' && cfg.links && cfg.links.district) {
        html += '<div class="geo-sub"><a href="' + esc(safeHref(cfg.links.district)) + '">← 区级总览</a></div>';
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
        if (hits === null) { list.appendChild(el('li', 'geo-none', '搜索失败，请稍后重试')); return; }
        if (q && !hits.length) list.appendChild(el('li', 'geo-none', '没有找到'));
        hits.forEach(function (h) {
          var li = el('li', null, '<span class="geo-tag">' + esc(h[0]) + '</span>' + esc(h[1]) +
            '<small>' + esc(h[2]) + '</small>');
          li.onclick = function () { G.go(h); list.innerHTML = ''; };
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

  /* permanent labels at each polygon's centre (grids by code, the officer's buildings) */
  function labels(group, text, cls) {
    if (!group || !group.eachLayer) return;
    group.eachLayer(function (l) {
      if (l.feature) l.bindTooltip(text(l.feature.properties), { permanent: true, direction: 'center', className: cls, interactive: false });
    });
  }

  /* ---------------------------------------------------------------- init */
  G.init = function (map, config, layers) {
    cfg = config;
    var t0 = performance.now();
    window.GEO = { map: map, cfg: cfg, layers: layers, registry: registry, ready: false, initAt: t0 };
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
    titleControl(map);
    labels(layers.grids, function (p) { return esc(p.name) + '<br><span class="geo-code">' + esc(p.code) + '</span>'; }, 'geo-grid-label');
    labels(layers.mine, function (p) { return esc(p.name); }, 'geo-label');
    legendControl(map);
    searchControl(map);
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
