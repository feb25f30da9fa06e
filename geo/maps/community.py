"""The community map."""

from __future__ import annotations

import folium

from geo.atlas import Atlas
from geo.maps.data import collection, derived, fit
from geo.maps.layers import (
    LEGEND_BASE,
    common_config,
    enterprise_layer,
    enterprise_legend,
    legend,
    no_community,
    officer_links,
    polygon_layers,
    popup,
    search_config,
)
from geo.maps.options import COLORS, MapError, MapOptions
from geo.maps.page import App, geojson_layer, new_map, render


def community_map(atlas: Atlas, community_id: str, opts: MapOptions | None = None) -> str:
    """One community: its boundary, grids (labelled by code), parks, buildings by kind,
    enterprises clustered with popups, legend, layer control and search."""
    opts = opts or MapOptions()
    comms = atlas.tables["communities"]
    row = comms[comms["id"] == community_id]
    if row.empty:
        raise MapError(no_community(community_id, comms))
    c = row.iloc[0]
    grids = atlas.tables["grids"][atlas.tables["grids"]["community_id"] == community_id]
    gids = set(grids["id"])
    parks = atlas.tables["parks"][atlas.tables["parks"]["grid_id"].isin(gids)]
    buildings = atlas.tables["buildings"][atlas.tables["buildings"]["grid_id"].isin(gids)]
    d = derived(atlas)
    ent = d.ent[d.ent["community_id"] == community_id]
    title = f"{c['name']} · 产业社区地图"
    m = new_map(opts, title, fit(row, opts))
    boundary = geojson_layer(
        collection(row, row[["id", "name", "code", "type", "four_to"]], opts),
        "社区边界",
        {"color": COLORS["community"], "weight": 3, "fillOpacity": 0, "className": "geo-community"},
        popup=popup(["name", "type", "four_to"], ["产业社区", "类型", "四至"]),
    ).add_to(m)
    layers = {"community": boundary, **polygon_layers(m, atlas, d, opts, grids, parks, buildings)}
    layers["enterprises"], mode = enterprise_layer(m, atlas, ent, opts)
    control = folium.LayerControl(collapsed=True).add_to(m)
    config = common_config(atlas, opts, "community", title)
    config.update(
        {
            "subtitle": f"{c['type']} · 网格 {len(grids)} · 园区 {len(parks)} · "
            f"楼宇 {len(buildings)} · 企业 {len(ent)}",
            "counts": {
                "community": 1,
                "grids": len(grids),
                "parks": len(parks),
                "buildings": len(buildings),
                "enterprises": len(ent),
            },
            "enterprises": mode,
            "legend": legend(*LEGEND_BASE, enterprise_legend(mode)),
            **search_config(atlas, ent, buildings, d, opts, community_id),
            "officerLinks": officer_links(atlas, buildings, opts),
        }
    )
    App(config, layers, control).add_to(m)
    return render(m)
