"""The maps' layers (grids, parks, buildings, enterprises), search entries and config."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import folium
import numpy as np
import pandas as pd
import shapely

from geo.atlas import Atlas
from geo.maps.data import (
    Derived,
    building_props,
    collection,
    derived,
    grid_lookup,
    grid_props,
    lonlat,
    park_props,
    pinyin_keys,
    plain,
    road_labels,
)
from geo.maps.options import COLORS, MapError, MapOptions
from geo.maps.page import ScriptLayer, TextPopup, geojson_layer, plugin_assets

ROAD_CLASSES = ("expressway", "arterial", "secondary", "branch")


def popup(fields: list[str], aliases: list[str], links: tuple[str, ...] = ()) -> TextPopup:
    """A popup table of ``fields`` labelled with ``aliases``, drawn as text (``links``: fields
    holding a URL, drawn as a link)."""
    rows = [[f, a, "link"] if f in links else [f, a] for f, a in zip(fields, aliases, strict=True)]
    return TextPopup(rows, maxWidth=340)


def polygon_layers(
    m: folium.Map,
    atlas: Atlas,
    d: Derived,
    opts: MapOptions,
    grids: pd.DataFrame,
    parks: pd.DataFrame,
    buildings: pd.DataFrame,
    *,
    faded: bool = False,
) -> dict[str, Any]:
    """Grids, parks and buildings (faded: the officer map's other buildings) added to ``m``."""
    layers: dict[str, Any] = {}
    grid_style = {
        "color": COLORS["grid"],
        "weight": 2,
        "dashArray": "6 4",
        "fillOpacity": 0.02,
        "className": "geo-grids",
    }
    gprops = grid_props(atlas, grids, d)
    gprops["link"] = [opts.href("community", c) for c in grids["community_id"]]
    layers["grids"] = geojson_layer(
        collection(grids, gprops, opts),
        "网格",
        grid_style,
        popup=popup(
            ["name", "code", "community", "enterprises", "link"],
            ["网格", "网格编码", "产业社区", "企业数", "社区地图"],
            links=("link",),
        ),
    ).add_to(m)
    park_style = {
        "color": COLORS["park"],
        "weight": 1.5,
        "fillColor": COLORS["park"],
        "fillOpacity": 0.08 if faded else 0.18,
        "className": "geo-parks",
    }
    layers["parks"] = geojson_layer(
        collection(parks, park_props(atlas, parks, d), opts),
        "产业园区",
        park_style,
        popup=popup(
            ["name", "code", "grid", "address", "enterprises"],
            ["园区", "微网格编码", "网格", "地址", "企业数"],
        ),
    ).add_to(m)
    props = building_props(atlas, buildings, d)
    data = collection(buildings, props, opts)
    b_layer = folium.GeoJson(
        data,
        name="网格内其他楼宇" if faded else "楼宇",
        style_function=_building_style_faded if faded else _building_style,
        embed=True,
    ).add_to(m)
    b_layer.add_child(
        popup(
            ["name", "kind_label", "address", "park", "grid", "team", "enterprises"],
            ["楼宇", "类型", "地址", "所属园区", "网格", "一长二员", "企业数"],
        )
    )
    layers["buildings"] = b_layer
    return layers


def _building_style(feature: dict[str, Any]) -> dict[str, Any]:
    """A building coloured by its kind."""
    color = COLORS.get(feature["properties"].get("kind"), COLORS["enterprise"])
    return {
        "color": color,
        "weight": 1,
        "fillColor": color,
        "fillOpacity": 0.55,
        "className": "geo-buildings",
    }


def _building_style_faded(feature: dict[str, Any]) -> dict[str, Any]:
    """A building in grey (not the officer's)."""
    return {
        "color": COLORS["faded"],
        "weight": 1,
        "fillColor": COLORS["faded"],
        "fillOpacity": 0.25,
        "className": "geo-buildings",
    }


ENT_COLUMNS = [
    "lat",
    "lon",
    "id",
    "name",
    "credit_code",
    "address",
    "chain",
    "building",
    "park",
    "grid_id",
]


def enterprise_rows(atlas: Atlas, ent: pd.DataFrame, opts: MapOptions) -> list[list[Any]]:
    """``ENT_COLUMNS`` of each enterprise, for the clustered markers."""
    bnames = dict(
        zip(atlas.tables["buildings"]["id"], atlas.tables["buildings"]["name"], strict=True)
    )
    pnames = dict(zip(atlas.tables["parks"]["id"], atlas.tables["parks"]["name"], strict=True))
    x, y = lonlat(ent["lon"].to_numpy(), ent["lat"].to_numpy(), opts)
    rows = []
    for i, r in enumerate(ent.itertuples(index=False)):
        rows.append(
            [
                float(y[i]),
                float(x[i]),
                r.id,
                r.name,
                r.credit_code,
                r.address or "",
                plain(r.chain) or "",
                bnames.get(r.building_id, "") if r.building_id else "",
                pnames.get(r.park_id, "") if r.park_id else "",
                r.grid_id,
            ]
        )
    return rows


def enterprise_layer(
    m: folium.Map, atlas: Atlas, ent: pd.DataFrame, opts: MapOptions, *, officer: bool = False
) -> tuple[Any, str]:
    """Enterprises: clustered markers inline, or vector tiles above ``inline_max`` (drawn in a
    pane above the building fills). Built by ``GeoMaps.enterpriseTiles`` /
    ``GeoMaps.enterpriseCluster``, which keep the page working (and say so) when the plugin's
    script failed to load. On the officer map a tap on a cluster that sits on one of the
    officer's buildings opens the building (``officer``)."""
    if opts.tiles_url and not opts.gcj02 and len(ent) > opts.inline_max:
        url = opts.tiles_url.rstrip("/") + "/enterprises/{z}/{x}/{y}.mvt"
        # tiles are asked only inside the enterprises' extent, grown by about 200 m so that a
        # dot at its edge is drawn whole (no round trip for the empty tiles around it)
        w, e = float(ent["lon"].min()) - 0.002, float(ent["lon"].max()) + 0.002
        s, n = float(ent["lat"].min()) - 0.002, float(ent["lat"].max()) + 0.002
        layer = ScriptLayer(
            "GeoMaps.enterpriseTiles",
            {"url": url, "bounds": [[round(s, 6), round(w, 6)], [round(n, 6), round(e, 6)]]},
            name=f"企业（{len(ent)}，矢量瓦片）",
        )
        plugin_assets(layer, opts, ["vectorgrid"], [])
        return layer.add_to(m), "tiles"
    options = {
        "chunkedLoading": True,
        "showCoverageOnHover": False,
        "spiderfyOnMaxZoom": not officer,
        "zoomToBoundsOnClick": not officer,
        "disableClusteringAtZoom": 19,
    }
    layer = ScriptLayer(
        "GeoMaps.enterpriseCluster",
        {"rows": enterprise_rows(atlas, ent, opts), "options": options},
        name=f"企业（{len(ent)}）",
    )
    plugin_assets(layer, opts, ["markercluster"], ["markercluster", "markercluster_default"])
    return layer.add_to(m), "inline"


def roads_layer(m: folium.Map, atlas: Atlas, opts: MapOptions) -> Any:
    """The roads (vector tiles when served in WGS84, inline simplified GeoJSON otherwise),
    with their names as labels at higher zooms (placed where they fit, see maps.js)."""
    roads = atlas.tables["roads"]
    roads = roads[roads["class"].isin(ROAD_CLASSES)]
    args: dict[str, Any] = {"labels": road_labels(roads, opts)}
    if opts.tiles_url and not opts.gcj02:
        args["url"] = opts.tiles_url.rstrip("/") + "/roads/{z}/{x}/{y}.mvt"
    else:
        geoms = shapely.set_precision(
            shapely.simplify(np.asarray(roads.geometry, dtype=object), 2e-5), 1e-6
        )  # about 2 m, to 0.1 m: the lines as drawn at street zooms
        simple = roads.assign(**{roads.geometry.name: geoms})
        args["data"] = collection(simple, simple[["id", "name", "class"]], opts)
    layer = ScriptLayer("GeoMaps.roads", args, name="道路")
    plugin_assets(layer, opts, ["vectorgrid"] if "url" in args else [], [])
    return layer.add_to(m)


def _search_entries(
    atlas: Atlas, ent: pd.DataFrame, buildings: pd.DataFrame, d: Derived, opts: MapOptions
) -> list[list[Any]]:
    """``[kind, name, detail, pinyin, initials, lat, lon, ref]`` for enterprises, buildings and
    the officers of those buildings (ref: the id of the layer to open)."""
    out: list[list[Any]] = []
    x, y = lonlat(ent["lon"].to_numpy(), ent["lat"].to_numpy(), opts)
    for i, r in enumerate(ent.itertuples(index=False)):
        py, ini = pinyin_keys(r.name)
        out.append(["企业", r.name, r.credit_code, py, ini, float(y[i]), float(x[i]), r.id])
    if len(buildings):
        c = shapely.point_on_surface(np.asarray(buildings.geometry, dtype=object))
        bx, by = lonlat(shapely.get_x(c), shapely.get_y(c), opts)
        for i, r in enumerate(buildings.itertuples(index=False)):
            label = r.name or ""  # a footprint without a name is not searched for by name
            if label:
                py, ini = pinyin_keys(label)
                out.append(
                    ["楼宇", label, r.address or "", py, ini, float(by[i]), float(bx[i]), r.id]
                )
            for _oid, name, role in d.officers_by_building.get(r.id, []):
                py, ini = pinyin_keys(name)
                where = f"{role} · {label or r.id}"
                out.append(["人员", name, where, py, ini, float(by[i]), float(bx[i]), r.id])
    return out


def search_config(
    atlas: Atlas,
    ent: pd.DataFrame,
    buildings: pd.DataFrame,
    d: Derived,
    opts: MapOptions,
    community_id: str | None,
) -> dict[str, Any]:
    """``{"search": entries}`` embedded, or ``{"searchUrl": url}``: the search endpoint
    (``GET /search``) the search box asks as the user types, scoped to the community."""
    if opts.search_url is None:
        return {"search": _search_entries(atlas, ent, buildings, d, opts)}
    query = [f"community={quote(community_id, safe='')}"] if community_id else []
    if opts.gcj02:
        query.append("coords=gcj02")
    return {"searchUrl": opts.search_url + ("?" + "&".join(query) if query else "")}


def no_community(community_id: str, comms: pd.DataFrame) -> str:
    """The message for an unknown community id (naming the known ones)."""
    if len(comms) == 0:
        return (
            f"no community {community_id!r}: the store has none yet; build one from four-to "
            "text with `geo boundary build` or POST /communities"
        )
    return f"no community {community_id!r}: known ids are {', '.join(comms['id'])}"


def search_data(atlas: Atlas, community_id: str | None, opts: MapOptions) -> list[list[Any]]:
    """The search entries of the district (None) or of one community, as the maps use them."""
    d = derived(atlas)
    if community_id is None:
        return _search_entries(atlas, d.ent, atlas.tables["buildings"], d, opts)
    comms = atlas.tables["communities"]
    if not (comms["id"] == community_id).any():
        raise MapError(no_community(community_id, comms))
    grids = atlas.tables["grids"]
    gids = set(grids.loc[grids["community_id"] == community_id, "id"])
    buildings = atlas.tables["buildings"][atlas.tables["buildings"]["grid_id"].isin(gids)]
    ent = d.ent[d.ent["community_id"] == community_id]
    return _search_entries(atlas, ent, buildings, d, opts)


def legend(*items: tuple[str, str, str]) -> list[list[str]]:
    """Legend rows: [colour, label, symbol]."""
    return [list(i) for i in items]


LEGEND_BASE = (
    (COLORS["community"], "产业社区边界", "line"),
    (COLORS["grid"], "网格（标注网格编码）", "dash"),
    (COLORS["park"], "产业园区", "fill"),
    (COLORS["enterprise"], "企业楼宇", "fill"),
    (COLORS["mixed-use"], "商住楼宇", "fill"),
)


def enterprise_legend(mode: str) -> tuple[str, str, str]:
    """The legend row of the enterprises as they are drawn: clustered markers (inline) or
    vector-tile dots, thinned below zoom 14 by the tile server (tiles)."""
    if mode == "tiles":
        return (COLORS["point"], "企业（缩小时抽稀，放大后逐家显示）", "dot")
    return (COLORS["point"], "企业（聚合：圆内数字为企业数）", "dot")


def common_config(atlas: Atlas, opts: MapOptions, kind: str, title: str) -> dict[str, Any]:
    """The config every page hands to ``GeoMaps.init``."""
    return {
        "kind": kind,
        "title": title,
        "version": atlas.version,
        "basemap": opts.basemap,
        "crs": "gcj02" if opts.gcj02 else "wgs84",
        "grids": grid_lookup(atlas),
        "links": {"district": opts.district_link + opts.extra_query},
        "api": opts.api_url,
    }


def officer_links(atlas: Atlas, buildings: pd.DataFrame, opts: MapOptions) -> dict[str, Any]:
    """building id -> [[officer id, name, role, href], ...] ("我的楼宇" links)."""
    d = derived(atlas)
    out: dict[str, Any] = {}
    for b in buildings["id"]:
        team = d.officers_by_building.get(b)
        if team:
            out[b] = [[i, n, r, opts.href("officer", i)] for i, n, r in team]
    return out
