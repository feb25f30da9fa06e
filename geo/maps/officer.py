"""我的楼宇: an officer's map."""

from __future__ import annotations

from typing import Any

import folium
import pandas as pd

from geo.atlas import Atlas
from geo.maps.data import Derived, building_props, collection, derived, fit, grid_lookup
from geo.maps.layers import (
    common_config,
    enterprise_layer,
    enterprise_legend,
    enterprise_rows,
    legend,
    polygon_layers,
    popup,
)
from geo.maps.options import COLORS, KIND_LABEL, MapError, MapOptions
from geo.maps.page import App, geojson_layer, new_map, render


def officer_map(atlas: Atlas, officer_id: str, opts: MapOptions | None = None) -> str:
    """我的楼宇: the officer's buildings highlighted and fitted, the rest of their grids faded,
    and a list of each building's enterprises (a side panel; below the map on a phone)."""
    opts = opts or MapOptions()
    officers = atlas.tables["officers"]
    row = officers[officers["id"] == officer_id]
    if row.empty:
        raise MapError(f"no officer {officer_id!r}")
    o = row.iloc[0]
    mine_ids = [b.strip() for b in str(o["building_ids"] or "").split(";") if b.strip()]
    b_all = atlas.tables["buildings"]
    mine = b_all[b_all["id"].isin(mine_ids)]
    gids = set(mine["grid_id"])
    grids = atlas.tables["grids"][atlas.tables["grids"]["id"].isin(gids)]
    parks = atlas.tables["parks"][atlas.tables["parks"]["grid_id"].isin(gids)]
    others = b_all[b_all["grid_id"].isin(gids) & ~b_all["id"].isin(mine_ids)]
    d = derived(atlas)
    ent = d.ent[d.ent["building_id"].isin(mine_ids)]
    title = f"我的楼宇 · {o['name']}（{o['role']}）"
    m = new_map(opts, title, fit(mine if len(mine) else grids, opts))
    layers = polygon_layers(m, atlas, d, opts, grids, parks, others, faded=True)
    props = building_props(atlas, mine, d)
    mine_style = {
        "color": COLORS["mine"],
        "weight": 3,
        "fillColor": COLORS["mine"],
        "fillOpacity": 0.6,
        "className": "geo-mine",
    }
    layers["mine"] = geojson_layer(
        collection(mine, props, opts),
        "我的楼宇",
        mine_style,
        popup=popup(
            ["name", "kind_label", "address", "grid", "team", "enterprises"],
            ["楼宇", "类型", "地址", "网格", "一长二员", "企业数"],
        ),
    ).add_to(m)
    layers["enterprises"], mode = enterprise_layer(m, atlas, ent, opts, officer=True)
    control = folium.LayerControl(collapsed=True).add_to(m)
    panel = _officer_panel(atlas, officer_id, mine, ent, d, opts)
    config = common_config(atlas, opts, "officer", title)
    config.update(
        {
            "subtitle": f"{len(mine)} 栋楼宇 · {len(ent)} 家企业",
            "officer": {
                "id": o["id"],
                "name": o["name"],
                "role": o["role"],
                "party_member": bool(o["party_member"]),
                "buildings": panel,
            },
            "counts": {
                "mine": len(mine),
                "buildings": len(others),
                "grids": len(grids),
                "parks": len(parks),
                "enterprises": len(ent),
            },
            "enterprises": mode,
            "legend": legend(
                (COLORS["mine"], "我的楼宇", "fill"),
                (COLORS["faded"], "网格内其他楼宇", "fill"),
                (COLORS["park"], "产业园区", "fill"),
                (COLORS["grid"], "网格", "dash"),
                enterprise_legend(mode),
            ),
        }
    )
    App(config, layers, control).add_to(m)
    return render(m)


def _officer_panel(
    atlas: Atlas, officer_id: str, mine: pd.DataFrame, ent: pd.DataFrame, d: Derived,
    opts: MapOptions,
) -> list[dict[str, Any]]:  # fmt: skip
    """The side panel: each of the officer's buildings, its team (but them), its enterprises."""
    grids = grid_lookup(atlas)
    by_building: dict[str, list[list[Any]]] = {}
    for r, bid in zip(enterprise_rows(atlas, ent, opts), ent["building_id"], strict=True):
        by_building.setdefault(bid, []).append([r[2], r[3], r[4]])
    panel: list[dict[str, Any]] = []
    for b in mine.itertuples(index=False):
        team = [[n, r] for i, n, r in d.officers_by_building.get(b.id, []) if i != officer_id]
        panel.append(
            {
                "id": b.id,
                "name": b.name,
                "address": b.address or "",
                "kind": KIND_LABEL.get(b.kind, b.kind),
                "grid": grids[b.grid_id][:2],
                "team": team,
                "enterprises": by_building.get(b.id, []),
            }
        )
    return panel
