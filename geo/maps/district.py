"""The district overview map, and the index of every map `geo maps build` writes."""

from __future__ import annotations

import folium
import pandas as pd

from geo.atlas import Atlas
from geo.maps.data import Derived, collection, derived, fit
from geo.maps.layers import (
    LEGEND_BASE,
    common_config,
    enterprise_layer,
    enterprise_legend,
    legend,
    officer_links,
    polygon_layers,
    popup,
    roads_layer,
    search_config,
)
from geo.maps.options import COLORS, MapOptions
from geo.maps.page import App, TextTooltip, geojson_layer, new_map, render


def district_map(atlas: Atlas, opts: MapOptions | None = None) -> str:
    """The district: streets, communities (linked to their maps), grids, parks, buildings, and
    enterprises (vector tiles when there are more than ``inline_max``)."""
    opts = opts or MapOptions()
    d = derived(atlas)
    t = atlas.tables
    title = "滨江区产业社区总览"
    m = new_map(opts, title, fit(t["streets"], opts))
    streets = geojson_layer(
        collection(t["streets"], None, opts),
        "街道",
        {
            "color": COLORS["street"],
            "weight": 2,
            "fillOpacity": 0,
            "className": "geo-streets",
            "interactive": False,
        },
    ).add_to(m)
    comms = t["communities"]
    community = _communities_layer(m, comms, d, opts)
    layers = {
        "streets": streets,
        "communities": community,
        **polygon_layers(m, atlas, d, opts, t["grids"], t["parks"], t["buildings"]),
    }
    layers["roads"] = roads_layer(m, atlas, opts)
    layers["enterprises"], mode = enterprise_layer(m, atlas, d.ent, opts)
    control = folium.LayerControl(collapsed=True).add_to(m)
    config = common_config(atlas, opts, "district", title)
    config.update(
        {
            "subtitle": f"街道 {len(t['streets'])} · 产业社区 {len(comms)} · 网格 "
            f"{len(t['grids'])} · 园区 {len(t['parks'])} · 楼宇 {len(t['buildings'])} · "
            f"企业 {len(d.ent)}",
            "counts": {
                "streets": len(t["streets"]),
                "communities": len(comms),
                "grids": len(t["grids"]),
                "parks": len(t["parks"]),
                "buildings": len(t["buildings"]),
                "enterprises": len(d.ent),
            },
            "enterprises": mode,
            "legend": legend(
                (COLORS["street"], "街道边界", "line"),
                (COLORS["road"], "道路（放大后标注路名）", "line"),
                *LEGEND_BASE,
                enterprise_legend(mode),
            ),
            "communityLinks": [
                [i, n, opts.href("community", i)]
                for i, n in zip(comms["id"], comms["name"], strict=True)
            ],
            **search_config(atlas, d.ent, t["buildings"], d, opts, None),
            "officerLinks": officer_links(atlas, t["buildings"], opts),
        }
    )
    App(config, layers, control).add_to(m)
    return render(m)


def _communities_layer(
    m: folium.Map, comms: pd.DataFrame, d: Derived, opts: MapOptions
) -> folium.GeoJson:
    """The communities with their enterprise counts, each linked to its map."""
    counts = d.ent["community_id"].value_counts()
    cprops = pd.DataFrame(
        {
            "id": comms["id"].to_numpy(),
            "name": comms["name"].to_numpy(),
            "type": comms["type"].to_numpy(),
            "four_to": comms["four_to"].to_numpy(),
            "enterprises": [int(counts.get(i, 0)) for i in comms["id"]],
            "link": [opts.href("community", i) for i in comms["id"]],
        }
    )
    return geojson_layer(
        collection(comms, cprops, opts),
        "产业社区",
        {
            "color": COLORS["community"],
            "weight": 3,
            "fillColor": COLORS["community"],
            "fillOpacity": 0.04,
            "className": "geo-communities",
        },
        popup=popup(
            ["name", "type", "four_to", "enterprises", "link"],
            ["产业社区", "类型", "四至", "企业数", "地图"],
            links=("link",),
        ),
        tooltip=TextTooltip("name", sticky=True),
    ).add_to(m)


def index_of_maps(atlas: Atlas) -> dict[str, list[str]]:
    """The ids of every map `geo maps build` writes: communities and officers."""
    return {
        "community": list(atlas.tables["communities"]["id"]),
        "officer": list(atlas.tables["officers"]["id"]),
    }
