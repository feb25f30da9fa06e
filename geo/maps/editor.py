"""The planner's boundary editor."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import shapely

from geo.atlas import Atlas
from geo.ids import MAX_REASON_CHARS
from geo.maps.data import collection, fit
from geo.maps.layers import common_config, legend, no_community
from geo.maps.options import COLORS, MapError, MapOptions, OptionError
from geo.maps.page import App, assets, new_map, render

MOVED_ENTERPRISE = "#7b1fa2"  # the preview's enterprises that change community (editor.js)


def editor_map(atlas: Atlas, community_id: str, opts: MapOptions | None = None) -> str:
    """The planner's boundary editor: the boundary (reloaded from the API), named roads with
    labels, neighbouring boundaries, GeoMan drawing with snapping to both, 预览 and 保存."""
    opts = opts or MapOptions()
    if opts.gcj02:
        raise OptionError(
            "the boundary editor draws in WGS84: use basemap=osm, tianditu or none (not amap)"
        )
    comms = atlas.tables["communities"]
    row = comms[comms["id"] == community_id]
    if row.empty:
        raise MapError(no_community(community_id, comms))
    c = row.iloc[0]
    geom = row.geometry.iloc[0]
    area = shapely.buffer(shapely.envelope(geom), 0.01)
    roads = atlas.tables["roads"]
    near = roads[shapely.intersects(np.asarray(roads.geometry, dtype=object), area)]
    others = comms[
        (comms["id"] != community_id)
        & shapely.intersects(np.asarray(comms.geometry, dtype=object), area)
    ]
    streets = atlas.tables["streets"]
    near_streets = streets[shapely.intersects(np.asarray(streets.geometry, dtype=object), area)]
    title = f"{c['name']} · 边界编辑"
    m = new_map(opts, title, fit(row, opts))
    editor_js = ("geo_editor", f"{opts.static_url.rstrip('/')}/geo/editor.js")  # after maps.js
    m.default_js = [*m.default_js, *assets(opts, ["geoman"], [])[0], editor_js]
    m.default_css = [*m.default_css, *assets(opts, [], ["geoman"])[1]]
    config = common_config(atlas, opts, "editor", title)
    config.update(
        {
            "community": {"id": c["id"], "name": c["name"], "four_to": c["four_to"]},
            "api": opts.api_url.rstrip("/"),
            "geometry": json.loads(shapely.to_geojson(geom)),
            "roads": collection(near, near[["id", "name", "class"]], opts),
            "roadLabels": _road_labels(near),
            "neighbours": collection(others, others[["id", "name"]], opts),
            "streets": collection(near_streets, None, opts),
            "movedColor": MOVED_ENTERPRISE,
            "maxReason": MAX_REASON_CHARS,
            "legend": legend(
                (COLORS["community"], "当前边界（可编辑）", "line"),
                ("#34495e", "相邻社区边界（可吸附）", "dash"),
                (COLORS["road"], "道路中心线（可吸附）", "line"),
                (MOVED_ENTERPRISE, "预览：将改变所属社区的企业", "dot"),
            ),
        }
    )
    App(config, {}).add_to(m)
    return render(m)


def _road_labels(roads: pd.DataFrame) -> list[list[Any]]:
    """One label per road name: [name, lat, lon, angle°] at the middle of its longest piece."""
    named = roads[roads["name"].fillna("") != ""]
    out = []
    for name, group in named.groupby("name", sort=True):
        geoms = np.asarray(group.geometry, dtype=object)
        g = geoms[int(np.argmax(shapely.length(geoms)))]
        if g.geom_type == "MultiLineString":
            g = max(g.geoms, key=lambda p: p.length)
        mid = g.interpolate(0.5, normalized=True)
        a = g.interpolate(0.45, normalized=True)
        b = g.interpolate(0.55, normalized=True)
        dx = (b.x - a.x) * math.cos(math.radians(mid.y))
        angle = -math.degrees(math.atan2(b.y - a.y, dx))
        if angle > 90:
            angle -= 180
        elif angle < -90:
            angle += 180
        out.append([name, round(mid.y, 7), round(mid.x, 7), round(angle, 1)])
    return out
