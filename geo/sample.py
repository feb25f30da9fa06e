"""A synthetic but realistic sample district: Binjiang's industrial communities, generated.

`make_district` builds every layer of `geo.model` from a seed, deterministically and without
I/O; `write_district` writes them as RFC 7946 GeoJSON and CSV; ``python -m geo.sample -o
data/geojson`` regenerates the committed sample.

How the geometry is made (all in the metric frame EPSG:4549, converted to WGS84 at the end):

1. Named road centerlines from control points placed where Binjiang's roads really run
   (DOMAIN.md "Reference positions"); a road that ends at another one is snapped to it.
2. The district outline, the named roads and the named-area boundary lines (汇智, 白马湖) are
   noded and polygonized: the faces of that network are the *named faces*. A community is the
   face of its four-to roads that holds its seed point, i.e. the union of named faces inside
   it; each of its named faces is one grid.
3. Unnamed branch roads cut the grids into street blocks; polygonizing again gives the *blocks*,
   and every polygon of the district (streets, communities, grids, areas) is a coverage union
   of blocks, so neighbours share identical vertices and tile exactly.
4. Blocks, set back from the roads, are divided into lots; lots become parks or sites of
   standalone office towers, and hold rectangular building footprints.
5. Enterprises are points inside buildings (reported in GCJ-02, as a geocoder gives them),
   plus a few outside every community and a few exactly on shared vertices (in WGS84).

The road layer is written "as real data comes": each road in pieces with sub-metre gaps,
江南大道 as two carriageways 12 m either side of its centerline, and some roads running
50-200 m past the junction that ends them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from shapely import LineString, Polygon
from shapely.ops import substring

from geo import creditcode, crs
from geo.grids.codes import reading_order
from geo.model import (
    BUILDINGS,
    COMMUNITIES,
    COUNTY_CODE,
    GRIDS,
    OFFICERS,
    PARKS,
    ROADS,
    STREETS,
    TEAM_ROLES,
)

DEFAULT_SEED = 20240101
METRIC = crs.METRIC_CRS
ENTERPRISE_COLUMNS = (
    "id",
    "name",
    "credit_code",
    "address",
    "lon",
    "lat",
    "crs",
    "chain",
    "employees",
)
AREA_COLUMNS = ("id", "name")
LAYER_FILES = ("roads", "streets", "communities", "grids", "parks", "buildings", "areas")

T_OVERSHOOT = 4.0  # m a road end is drawn past the road it meets, so the network nodes
SEGMENT = 150.0  # m, centerlines are densified so shared edges have interior vertices
CARRIAGEWAY = 12.0  # m from 江南大道's centerline to each carriageway
LANE = 8.0  # m between neighbouring lots
SETBACK = {
    "expressway": 30.0,
    "arterial": 22.0,
    "secondary": 14.0,
    "branch": 8.0,
    "boundary": 6.0,
    "dual": 32.0,
    "district": 15.0,
}
N_OFFICERS = 453
N_PARTY = 79
INVALID_CODE_SHARE = 0.005
OUTSIDE_SHARE = 0.03
N_ON_EDGE = (4, 6)  # enterprises on vertices shared by two communities, by two grids


# --------------------------------------------------------------------------------------------
# The specification of the district
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineSpec:
    """A named line of the network: a road centerline or a named area's boundary line.

    ``points`` are WGS84 lon/lat control points, drawn west→east or north→south (door numbers
    grow in that direction). ``start_at``/``end_at`` name the line whose junction ends this one.
    ``overshoot`` is how far (m) the *data* runs past those junctions, as real data does.
    """

    name: str
    cls: str  # one of model.ROAD_CLASSES, or "boundary" for an area boundary line
    points: tuple[tuple[float, float], ...]
    start_at: str | None = None
    end_at: str | None = None
    overshoot: tuple[float, float] = (0.0, 0.0)
    dual: bool = False


@dataclass(frozen=True)
class CommunitySpec:
    """A community: its record, the lines enclosing it, a seed point inside, and its contents."""

    id: str
    name: str
    street_id: str
    code: str
    type: str
    mode: str
    four_to: str
    founded: str
    bounds: tuple[str, ...]
    seeds: tuple[tuple[float, float], ...]  # points inside (one per face of its bounds)
    parks: int
    tower_lots: int
    enterprises: int
    lot: float  # target lot size (m)
    mixed: float  # share of mixed-use (商住) buildings among standalone towers
    chains: tuple[tuple[str, float], ...]


DISTRICT = (  # the river bank (north-west), then the east and south edges
    (120.1200, 30.1700),
    (120.1260, 30.1790),
    (120.1330, 30.1880),
    (120.1420, 30.1975),
    (120.1520, 30.2050),
    (120.1650, 30.2110),
    (120.1800, 30.2165),
    (120.1950, 30.2230),
    (120.2100, 30.2300),
    (120.2250, 30.2370),
    (120.2310, 30.2400),
    (120.2310, 30.2100),
    (120.2280, 30.1800),
    (120.2150, 30.1620),
    (120.1950, 30.1490),
    (120.1700, 30.1400),
    (120.1450, 30.1410),
    (120.1300, 30.1500),
    (120.1200, 30.1620),
)

J_XINCHENG = (120.1720, 30.1874)  # 滨安路 × 信诚路; 南环路 becomes 滨安路 here
J_JIANGNAN_XINCHENG = (120.1720, 30.1954)
J_BINKANG_XINCHENG = (120.1722, 30.1790)
J_BINSHENG_XINCHENG = (120.1720, 30.2075)

LINES: tuple[LineSpec, ...] = (
    LineSpec(
        "江南大道",
        "arterial",
        (
            (120.1240, 30.1822),
            (120.1380, 30.1880),
            (120.1500, 30.1918),
            J_JIANGNAN_XINCHENG,
            (120.1950, 30.2050),
            (120.2190, 30.2160),
            (120.2400, 30.2255),
        ),
        dual=True,
    ),
    LineSpec(
        "滨盛路",
        "arterial",
        (
            (120.1600, 30.2027),
            (120.1680, 30.2060),
            J_BINSHENG_XINCHENG,
            (120.1950, 30.2165),
            (120.2190, 30.2265),
            (120.2400, 30.2355),
        ),
    ),
    LineSpec(
        "南环路",
        "arterial",
        (
            (120.1380, 30.1880),
            (120.1410, 30.1868),
            (120.1460, 30.1864),
            (120.1575, 30.1871),
            J_XINCHENG,
        ),
    ),
    LineSpec(
        "滨安路",
        "arterial",
        (J_XINCHENG, (120.1950, 30.1960), (120.2190, 30.2048), (120.2400, 30.2125)),
    ),
    LineSpec(
        "滨康路",
        "arterial",
        (
            (120.1180, 30.1722),
            (120.1500, 30.1760),
            J_BINKANG_XINCHENG,
            (120.2000, 30.1890),
            (120.2400, 30.2030),
        ),
    ),
    LineSpec(
        "信诚路",
        "arterial",
        (
            (120.1710, 30.2160),
            J_BINSHENG_XINCHENG,
            J_JIANGNAN_XINCHENG,
            J_XINCHENG,
            J_BINKANG_XINCHENG,
            (120.1725, 30.1340),
        ),
    ),
    LineSpec(
        "东信大道",
        "arterial",
        ((120.1300, 30.1743), (120.1364, 30.1806), (120.1477, 30.1896), (120.1515, 30.1926)),
        start_at="滨康路",
        end_at="江南大道",
        overshoot=(0, 90),
    ),
    LineSpec("火炬大道", "arterial", ((120.1636, 30.2160), (120.1635, 30.1340))),
    LineSpec("时代大道", "expressway", ((120.1895, 30.2260), (120.1905, 30.1300))),
    LineSpec("长河路", "arterial", ((120.2030, 30.2320), (120.2045, 30.1400))),
    LineSpec("江陵路", "arterial", ((120.2118, 30.2340), (120.2130, 30.1450))),
    LineSpec(
        "伟业路",
        "secondary",
        ((120.1588, 30.1940), (120.1585, 30.1770)),
        start_at="江南大道",
        end_at="滨康路",
        overshoot=(80, 0),
    ),
    LineSpec(
        "诚业路",
        "secondary",
        ((120.1680, 30.1945), (120.1680, 30.1875)),
        start_at="江南大道",
        end_at="南环路",
        overshoot=(0, 120),
    ),
    LineSpec(
        "联庄路",
        "secondary",
        ((120.1552, 30.1935), (120.1530, 30.1870), (120.1510, 30.1819), (120.1497, 30.1770)),
        start_at="江南大道",
        end_at="滨康路",
    ),
    LineSpec(
        "浦沿路",
        "secondary",
        ((120.1332, 30.1858), (120.1328, 30.1775)),
        start_at="江南大道",
        end_at="东信大道",
        overshoot=(0, 60),
    ),
    LineSpec(
        "建业路",
        "secondary",
        ((120.1808, 30.2110), (120.1815, 30.1815)),
        start_at="滨盛路",
        end_at="滨康路",
        overshoot=(150, 0),
    ),
    LineSpec(
        "秋溢路",
        "secondary",
        ((120.2078, 30.2225), (120.2085, 30.1925)),
        start_at="滨盛路",
        end_at="滨康路",
    ),
    LineSpec(
        "阡陌路",
        "secondary",
        ((120.2191, 30.2262), (120.2197, 30.1965)),
        start_at="滨盛路",
        end_at="滨康路",
        overshoot=(0, 200),
    ),
    LineSpec(
        "物联网街",
        "secondary",
        ((120.2040, 30.2045), (120.2190, 30.2105)),
        start_at="长河路",
        end_at="阡陌路",
    ),
    LineSpec(
        "江虹路",
        "secondary",
        ((120.1590, 30.1830), (120.1720, 30.1860), (120.2040, 30.1945)),
        start_at="伟业路",
        end_at="长河路",
        overshoot=(50, 0),
    ),
    LineSpec(
        "聚才路",
        "secondary",
        ((120.1768, 30.1890), (120.1770, 30.1800)),
        start_at="滨安路",
        end_at="滨康路",
    ),
    LineSpec(
        "滨文路",
        "arterial",
        (
            (120.1180, 30.1655),
            (120.1500, 30.1700),
            (120.1723, 30.1735),
            (120.1905, 30.1795),
            (120.2040, 30.1835),
            (120.2400, 30.1945),
        ),
    ),
    LineSpec(
        "江汉路",
        "arterial",
        ((120.1180, 30.1560), (120.1700, 30.1560), (120.2100, 30.1640), (120.2400, 30.1720)),
    ),
    LineSpec(
        "闻涛路",
        "arterial",
        ((120.1640, 30.2085), (120.1950, 30.2205), (120.2400, 30.2390)),
        start_at="火炬大道",
        overshoot=(70, 0),
    ),
    LineSpec("西浦路", "secondary", ((120.1405, 30.1760), (120.1395, 30.1300)), start_at="滨康路"),
    LineSpec(
        "月明路",
        "secondary",
        ((120.1970, 30.1880), (120.1972, 30.1820)),
        start_at="滨康路",
        end_at="滨文路",
    ),
    LineSpec(
        "汇智地界",
        "boundary",
        ((120.1478, 30.1893), (120.1535, 30.1893)),
        start_at="东信大道",
        end_at="联庄路",
    ),
    LineSpec(
        "白马湖北界",
        "boundary",
        ((120.1905, 30.1740), (120.1980, 30.1748), (120.2045, 30.1762)),
        start_at="时代大道",
        end_at="长河路",
    ),
    LineSpec(
        "白马湖南界",
        "boundary",
        ((120.1905, 30.1640), (120.2045, 30.1660)),
        start_at="时代大道",
        end_at="长河路",
    ),
)

# Streets: (id, name, code, seed points). Their borders are 江南大道, 信诚路 and 滨安路.
STREET_SPECS = (
    ("S01", "西兴街道", "001", ((120.150, 30.198), (120.190, 30.212), (120.205, 30.205))),
    ("S02", "长河街道", "002", ((120.200, 30.170),)),
    ("S03", "浦沿街道", "003", ((120.150, 30.170),)),
)
STREET_LINES = ("江南大道", "信诚路", "滨安路")

# Named areas that four-to text refers to as "…地界": (id, name, bounding lines, seed).
AREA_SPECS = (
    ("A01", "汇智", ("东信大道", "江南大道", "联庄路", "汇智地界"), ((120.1510, 30.1905),)),
    ("A02", "白马湖", ("时代大道", "长河路", "白马湖北界", "白马湖南界"), ((120.1970, 30.1700),)),
)

_TECH = (
    ("数字安防", 0.3),
    ("网络信息", 0.25),
    ("集成电路", 0.15),
    ("智能制造", 0.15),
    ("物联网", 0.05),
    ("生物医药", 0.05),
    ("文化创意", 0.05),
)
COMMUNITY_SPECS: tuple[CommunitySpec, ...] = (
    CommunitySpec(
        "C01",
        "火炬产业社区",
        "S03",
        "001",
        "科技创新型",
        "street",
        "东至信诚路、南至南环路、西至东信大道、北至江南大道沿联庄路至汇智地界北",
        "2024-01",
        ("信诚路", "南环路", "东信大道", "江南大道", "联庄路", "汇智地界"),
        ((120.1650, 30.1900), (120.1495, 30.1875)),
        61,
        30,
        1858,
        92.0,
        0.20,
        _TECH,
    ),
    CommunitySpec(
        "C02",
        "物联网产业社区",
        "S01",
        "001",
        "科技创新型",
        "platform",
        "东至阡陌路，南至滨安路，西至长河路，北至江南大道",
        "2021-06",
        ("阡陌路", "滨安路", "长河路", "江南大道"),
        ((120.2159, 30.2132),),
        30,
        60,
        4236,
        92.0,
        0.15,
        (
            ("物联网", 0.4),
            ("数字安防", 0.15),
            ("集成电路", 0.15),
            ("网络信息", 0.2),
            ("智能制造", 0.1),
        ),
    ),
    CommunitySpec(
        "C03",
        "互联网产业社区",
        "S02",
        "001",
        "科技创新型",
        "platform",
        "东至阡陌路；南至滨康路；西至长河路；北至滨安路",
        "2022-09",
        ("阡陌路", "滨康路", "长河路", "滨安路"),
        ((120.2110, 30.1970),),
        14,
        30,
        1460,
        110.0,
        0.15,
        (
            ("网络信息", 0.5),
            ("电子商务", 0.2),
            ("文化创意", 0.1),
            ("物联网", 0.1),
            ("数字安防", 0.1),
        ),
    ),
    CommunitySpec(
        "C04",
        "白马湖产业社区",
        "S02",
        "002",
        "文化创意型",
        "platform",
        "北至滨康路、东至长河路、南至白马湖地界、西至时代大道",
        "2023-03",
        ("滨康路", "长河路", "白马湖北界", "时代大道"),
        ((120.1970, 30.1790),),
        16,
        14,
        870,
        110.0,
        0.25,
        (("文化创意", 0.6), ("网络信息", 0.2), ("电子商务", 0.1), ("智能制造", 0.1)),
    ),
    CommunitySpec(
        "C05",
        "智造产业社区",
        "S03",
        "002",
        "智能制造型",
        "street",
        "东至信诚路、西至伟业路、南至滨康路、北至南环路",
        "2024-05",
        ("信诚路", "伟业路", "滨康路", "南环路"),
        ((120.1650, 30.1820),),
        20,
        14,
        1120,
        115.0,
        0.15,
        (("智能制造", 0.45), ("生物医药", 0.25), ("集成电路", 0.15), ("数字安防", 0.15)),
    ),
    CommunitySpec(
        "C06",
        "奥体产业社区",
        "S01",
        "002",
        "商务楼宇型",
        "street",
        "北以滨盛路为界，南以江南大道为界，西以长河路为界，东以阡陌路为界",
        "2023-10",
        ("滨盛路", "江南大道", "长河路", "阡陌路"),
        ((120.2110, 30.2190),),
        6,
        40,
        1010,
        95.0,
        0.40,
        (
            ("网络信息", 0.3),
            ("电子商务", 0.2),
            ("文化创意", 0.15),
            ("数字安防", 0.1),
            ("生物医药", 0.1),
            ("智能制造", 0.15),
        ),
    ),
    CommunitySpec(
        "C07",
        "星光产业社区",
        "S02",
        "003",
        "商务楼宇型",
        "street",
        "西至信诚路；东至建业路；北至滨安路；南至滨康路",
        "2024-03",
        ("信诚路", "建业路", "滨安路", "滨康路"),
        ((120.1760, 30.1840),),
        5,
        34,
        1080,
        85.0,
        0.40,
        (
            ("网络信息", 0.3),
            ("电子商务", 0.25),
            ("文化创意", 0.2),
            ("生物医药", 0.15),
            ("数字安防", 0.1),
        ),
    ),
)

# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋"
    "蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷"
    "侯龙史陶黎贺顾毛郝龚邵万钱严戴孔汤俞楼应童施鲍"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚英华玉萍红鹏晨浩宇轩欣怡婷佳俊博文斌"
    "辉建国晓燕雪琳颖倩慧楠帆凯健峰涵睿瑶璐蕾琪嘉宁诗梦思雨航阳毅哲炜彬"
)
BRAND = (
    "海康威视华数恒生网新中天安信博创联智云达正泰和合鑫嘉鼎汇诚远航星辰瑞丰源景明德弘"
    "宏峰力迅捷腾飞鸿光越晟昊睿思宇微芯凌蓝卓易优普锐朗图灵启元方舟铭钛晶迈极禾川策聚"
    "乐维洲立道英凯润亿索赛格码酷讯万象同望步桥"
)
INDUSTRY = {
    "数字安防": ("数字技术", "智能科技", "安防技术", "视觉科技", "感知技术"),
    "物联网": ("物联网科技", "传感技术", "智联科技", "通信技术", "电子科技"),
    "集成电路": ("微电子", "半导体", "芯片科技", "集成电路", "电子科技"),
    "生物医药": ("生物医药", "生物科技", "医疗器械", "医药科技", "基因技术"),
    "网络信息": ("网络科技", "信息技术", "软件", "数据科技", "云计算科技"),
    "智能制造": ("智能装备", "自动化技术", "机器人", "智能制造", "精密机械"),
    "文化创意": ("文化创意", "动漫", "文化传媒", "影视", "数字娱乐"),
    "电子商务": ("电子商务", "供应链管理", "网络技术", "贸易"),
}
HIKVISION = (
    "威视数字技术股份有限公司",
    "威视系统技术有限公司",
    "机器人股份有限公司",
    "汽车软件有限公司",
    "智能科技有限公司",
    "消防科技有限公司",
    "存储科技有限公司",
    "慧影科技有限公司",
    "微影传感科技有限公司",
    "智联物联网科技有限公司",
    "云图信息技术有限公司",
    "睿视电子科技有限公司",
)
PARK_NAMES = (
    "海创园",
    "聚光中心",
    "东冠高新科技园",
    "华业高科技产业园",
    "智慧e谷",
    "中控科技园",
    "新光科技园",
    "信诚科技园",
    "之江科技工业园",
    "东信科技园",
    "中南科技园",
    "江虹国际创意园",
    "物联网产业园",
    "白马湖创意园",
    "数字创意园",
    "海聚科技园",
)
PARK_SUFFIX = ("科技园", "创新园", "产业园", "智造园", "创意园", "孵化园", "创业中心", "科创中心")
TOWER_SUFFIX = ("大厦", "中心", "国际", "科技大厦", "广场", "金融中心")
MIXED_SUFFIX = ("公寓", "国际公寓", "商务公寓", "星座", "府")
PHONE_PREFIX = ("138", "139", "135", "137", "150", "158", "159", "187", "188", "177")


# --------------------------------------------------------------------------------------------
# Coordinates
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=2)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def _to_metric(points: Sequence[tuple[float, float]]) -> np.ndarray:
    """WGS84 lon/lat control points as an (n, 2) array in EPSG:4549."""
    arr = np.asarray(points, dtype=np.float64)
    x, y = _transformer("EPSG:4326", METRIC).transform(arr[:, 0], arr[:, 1])
    return np.column_stack([x, y])


def round7(values: np.ndarray) -> np.ndarray:
    """Correctly rounded to 7 decimals (so ``repr`` and ``%.7f`` give the same number)."""
    values = np.asarray(values, dtype=np.float64)
    return np.char.mod("%.7f", values).astype(np.float64).reshape(values.shape)


def _lonlat(geoms: np.ndarray, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """Metric geometries shifted by (dx, dy), in WGS84 lon/lat rounded to 7 decimals."""

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = _transformer(METRIC, "EPSG:4326").transform(coords[:, 0] + dx, coords[:, 1] + dy)
        return np.column_stack([round7(x), round7(y)])

    return shapely.transform(np.asarray(geoms, dtype=object), project)


def _points_lonlat(xy: np.ndarray, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    x, y = _transformer(METRIC, "EPSG:4326").transform(xy[:, 0] + dx, xy[:, 1] + dy)
    return np.column_stack([x, y])


# --------------------------------------------------------------------------------------------
# The network and its faces
# --------------------------------------------------------------------------------------------


def _snap_end(coords: np.ndarray, target: LineString, at_start: bool) -> np.ndarray:
    """Move one end of a polyline onto ``target`` (plus `T_OVERSHOOT`) along its end segment."""
    c = coords[::-1].copy() if at_start else coords.copy()
    p, q = c[-2], c[-1]
    d = (q - p) / np.hypot(*(q - p))
    probe = LineString([q - 400 * d, q + 400 * d])
    hits = shapely.get_coordinates(probe.intersection(target))
    if len(hits) == 0:
        raise ValueError("a road end does not reach the road it should meet")
    c[-1] = hits[np.argmin(np.hypot(*(hits - q).T))] + T_OVERSHOOT * d
    return c[::-1] if at_start else c


def _lines(district: Polygon) -> dict[str, shapely.Geometry]:
    """Named centerlines (metric): T-junctions snapped, clipped 5 m past the district, densified."""
    raw: dict[str, LineString] = {}
    for spec in LINES:
        coords = _to_metric(spec.points)
        if spec.start_at:
            coords = _snap_end(coords, raw[spec.start_at], at_start=True)
        if spec.end_at:
            coords = _snap_end(coords, raw[spec.end_at], at_start=False)
        raw[spec.name] = LineString(coords)
    frame = district.buffer(5.0)
    return {
        name: shapely.segmentize(line.intersection(frame), SEGMENT) for name, line in raw.items()
    }


def _faces(lines: Iterable[shapely.Geometry], district: Polygon) -> np.ndarray:
    """The faces of the noded network inside the district, in a stable order."""
    noded = shapely.union_all(np.asarray(list(lines), dtype=object))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    reps = shapely.point_on_surface(faces)
    faces = faces[shapely.contains(district, reps)]
    xy = shapely.get_coordinates(shapely.point_on_surface(faces))
    return faces[np.lexsort((xy[:, 1], xy[:, 0]))]


def _region(
    lines: Iterable[shapely.Geometry], district: Polygon, seeds: Sequence[tuple[float, float]]
) -> shapely.Geometry:
    """The faces of ``lines`` (with the district outline) that hold the WGS84 ``seeds``."""
    faces = _faces([district.boundary, *lines], district)
    points = shapely.points(_to_metric(seeds))
    hit = shapely.contains(faces[:, None], points[None, :])
    if (hit.sum(axis=0) != 1).any():
        raise ValueError(f"seeds {seeds} do not each lie in one face")
    return shapely.union_all(faces[hit.any(axis=1)])


def _assign(faces: np.ndarray, regions: Sequence[shapely.Geometry]) -> np.ndarray:
    """Index of the region holding each face's interior point, -1 for none."""
    reps = shapely.point_on_surface(faces)
    out = np.full(len(faces), -1)
    for i, region in enumerate(regions):
        out[shapely.contains(region, reps)] = i
    return out


def _main_angle(lines: dict[str, shapely.Geometry]) -> float:
    """Bearing (radians from east) of 江南大道: the direction of the district's street grid."""
    xy = shapely.get_coordinates(lines["江南大道"])
    return math.atan2(xy[-1, 1] - xy[0, 1], xy[-1, 0] - xy[0, 0])


def _branch_cuts(face: Polygon, theta: float, rng: np.random.Generator) -> list[LineString]:
    """Unnamed branch roads across a grid face: 0-2 cuts across its long axis."""
    env = shapely.oriented_envelope(face)
    ring = np.asarray(env.exterior.coords)[:4]
    edges = np.diff(np.vstack([ring, ring[:1]]), axis=0)
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    k = int(np.argmax(lengths))
    long_len = lengths[k]
    n_cuts = min(2, int(long_len // 380))
    if n_cuts == 0:
        return []
    axis = edges[k] / long_len
    normal = np.array([-axis[1], axis[0]])
    start = ring[k]
    cuts = []
    for j in range(n_cuts):
        t = long_len * ((j + 1) / (n_cuts + 1) + rng.uniform(-0.06, 0.06))
        mid = start + axis * t
        probe = LineString([mid - normal * 5000, mid + normal * 5000])
        part = probe.intersection(face.buffer(T_OVERSHOOT))
        if isinstance(part, LineString) and not part.is_empty:
            cuts.append(shapely.segmentize(part, SEGMENT))
    return cuts


@dataclass
class _Base:
    """The base district in the metric frame, before replication and conversion."""

    frames: dict[str, pd.DataFrame]  # attribute tables with a metric ``geometry`` column
    district: Polygon
    on_edge: list[tuple[int, int]]  # (grid row, vertex index) of exactly-shared vertices


def _network(district: Polygon, rng: np.random.Generator):
    """Named lines, branch cuts, named faces, blocks and their community/grid/street labels."""
    lines = _lines(district)
    theta = _main_angle(lines)
    named = _faces([district.boundary, *lines.values()], district)
    regions = [_region([lines[n] for n in c.bounds], district, c.seeds) for c in COMMUNITY_SPECS]
    named_comm = _assign(named, regions)
    branches: list[LineString] = []
    for i in np.flatnonzero(named_comm >= 0):
        branches.extend(_branch_cuts(named[i], theta, rng))
    blocks = _faces([district.boundary, *lines.values(), *branches], district)
    grid_of = _assign(blocks, list(named))
    comm_of = named_comm[grid_of]
    streets = [
        _region([lines[n] for n in STREET_LINES], district, seeds) for *_, seeds in STREET_SPECS
    ]
    street_of = _assign(blocks, streets)
    areas = [_region([lines[n] for n in spec[2]], district, spec[3]) for spec in AREA_SPECS]
    area_of = _assign(blocks, areas)
    if (street_of < 0).any() or (grid_of < 0).any():
        raise AssertionError("a block lies in no street or no named face")
    return lines, branches, theta, blocks, grid_of, comm_of, street_of, area_of


def _union(blocks: np.ndarray) -> Polygon:
    """Coverage union of blocks: the shared edges go, every other vertex stays."""
    return shapely.coverage_union_all(blocks)


def _polygons(blocks, grid_of, comm_of, street_of, area_of, theta):
    """Streets, communities, grids and areas as attribute tables with metric geometry."""
    streets = pd.DataFrame(
        [
            {"id": sid, "name": name, "code": code, "geometry": _union(blocks[street_of == k])}
            for k, (sid, name, code, _) in enumerate(STREET_SPECS)
        ]
    )
    areas = pd.DataFrame(
        [
            {"id": aid, "name": name, "geometry": _union(blocks[area_of == k])}
            for k, (aid, name, *_) in enumerate(AREA_SPECS)
        ]
    )
    comm_rows, grid_rows = [], []
    street_code = dict(zip(streets["id"], streets["code"], strict=True))
    for k, spec in enumerate(COMMUNITY_SPECS):
        geom = _union(blocks[comm_of == k])
        inside = np.unique(street_of[comm_of == k])
        if len(inside) != 1 or STREET_SPECS[inside[0]][0] != spec.street_id:
            raise AssertionError(f"{spec.name} does not lie inside {spec.street_id}")
        comm_rows.append(
            {
                "id": spec.id,
                "name": spec.name,
                "street_id": spec.street_id,
                "code": spec.code,
                "type": spec.type,
                "mode": spec.mode,
                "four_to": spec.four_to,
                "founded": spec.founded,
                "geometry": geom,
            }
        )
        named_ids = np.unique(grid_of[comm_of == k])
        geoms = np.array([_union(blocks[grid_of == g]) for g in named_ids], dtype=object)
        if not 3 <= len(geoms) <= 8:
            raise AssertionError(f"{spec.name} has {len(geoms)} grids")
        short = spec.name.removesuffix("产业社区")
        for seq, j in enumerate(reading_order(geoms, theta), start=1):
            grid_rows.append(
                {
                    "id": f"{spec.id}-G{seq:02d}",
                    "name": f"{short}第{seq}网格",
                    "community_id": spec.id,
                    "code": f"{COUNTY_CODE}{street_code[spec.street_id]}{spec.code}{seq:03d}",
                    "geometry": geoms[j],
                    "_named": named_ids[j],
                }
            )
    return streets, pd.DataFrame(comm_rows), pd.DataFrame(grid_rows), areas


def _road_pieces(
    lines: dict[str, shapely.Geometry],
    branches: list[LineString],
    district: Polygon,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The road layer as data comes: pieces with sub-metre gaps, carriageways, overshoots."""
    rows = []
    for spec in LINES:
        if spec.cls == "boundary":
            continue
        line = _overshoot(lines[spec.name], spec)
        for part in shapely.get_parts(line.intersection(district)):
            if spec.dual:
                carriageways = [shapely.offset_curve(part, d) for d in (CARRIAGEWAY, -CARRIAGEWAY)]
            else:
                carriageways = [part]
            for cw in carriageways:
                rows += [
                    {"name": spec.name, "class": spec.cls, "geometry": g} for g in _pieces(cw, rng)
                ]
    for line in branches:
        rows += [{"name": "", "class": "branch", "geometry": g} for g in _pieces(line, rng)]
    roads = pd.DataFrame(rows)
    roads.insert(0, "id", [f"R{i:04d}" for i in range(1, len(roads) + 1)])
    return roads


def _overshoot(line: shapely.Geometry, spec: LineSpec) -> shapely.Geometry:
    """Extend the ends that the spec says run past their junction."""
    if line.geom_type != "LineString" or not any(spec.overshoot):
        return line
    c = np.asarray(line.coords)
    start, end = spec.overshoot
    if start:
        d = (c[0] - c[1]) / np.hypot(*(c[0] - c[1]))
        c = np.vstack([c[:1] + d * start, c])
    if end:
        d = (c[-1] - c[-2]) / np.hypot(*(c[-1] - c[-2]))
        c = np.vstack([c, c[-1:] + d * end])
    return LineString(c)


def _pieces(line: LineString, rng: np.random.Generator) -> list[LineString]:
    """Cut a line every 250-900 m (at least once); about half the cuts leave a 0.1-0.8 m gap."""
    length = line.length
    cuts = [0.0]
    while cuts[-1] + 250 < length - 150:
        cuts.append(cuts[-1] + rng.uniform(250, 900))
    cuts = [c for c in cuts if c < length - 100]
    if len(cuts) == 1 and length > 60:  # every road comes in at least two pieces
        cuts.append(length * rng.uniform(0.35, 0.65))
    cuts.append(length)
    out = []
    for a, b in itertools.pairwise(cuts):
        gap = rng.uniform(0.1, 0.8) if b < length and rng.random() < 0.5 else 0.0
        out.append(substring(line, a, b - gap))
    return out


# --------------------------------------------------------------------------------------------
# Lots, parks and buildings
# --------------------------------------------------------------------------------------------


def _setback_buffers(
    lines: dict[str, shapely.Geometry], branches: list[LineString], district: Polygon
) -> np.ndarray:
    """Buffers around every line (as drawn in the data) that buildings keep clear of."""
    geoms, widths = [district.exterior], [SETBACK["district"]]
    for spec in LINES:
        geoms.append(_overshoot(lines[spec.name], spec))
        widths.append(SETBACK["dual"] if spec.dual else SETBACK[spec.cls])
    geoms += branches
    widths += [SETBACK["branch"]] * len(branches)
    return shapely.buffer(np.asarray(geoms, dtype=object), np.asarray(widths))


def _angle(poly: Polygon) -> float:
    """Direction (radians) of the longest side of a polygon's oriented envelope."""
    ring = np.asarray(shapely.oriented_envelope(poly).exterior.coords)
    edges = np.diff(ring, axis=0)
    k = int(np.argmax(np.hypot(edges[:, 0], edges[:, 1])))
    return math.atan2(edges[k, 1], edges[k, 0])


def _rotate(xy: np.ndarray, ang: float) -> np.ndarray:
    cos, sin = math.cos(ang), math.sin(ang)
    return np.column_stack([xy[:, 0] * cos - xy[:, 1] * sin, xy[:, 0] * sin + xy[:, 1] * cos])


def _rects(fp: np.ndarray) -> np.ndarray:
    """Rectangles from rows (cx, cy, w, h, angle) in the metric frame, as polygons."""
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5]])
    local = corners[None, :, :] * fp[:, None, 2:4]
    cos, sin = np.cos(fp[:, 4])[:, None], np.sin(fp[:, 4])[:, None]
    world = np.stack(
        [
            fp[:, None, 0] + local[..., 0] * cos - local[..., 1] * sin,
            fp[:, None, 1] + local[..., 0] * sin + local[..., 1] * cos,
        ],
        axis=-1,
    )
    return shapely.polygons(world)


def _frame_rows(centres: np.ndarray, w: np.ndarray, h: np.ndarray, ang: float) -> np.ndarray:
    """Rows (cx, cy, w, h, angle) from centres given in the frame rotated by ``ang``."""
    world = _rotate(centres, ang)
    return np.column_stack([world, w, h, np.full(len(w), ang)])


def _lattice(inner: shapely.Geometry, ang: float, size: float) -> np.ndarray:
    """Lots: a lattice of cells aligned with the block, cut to its buildable part."""
    if inner.is_empty:
        return np.zeros(0, dtype=object)
    rot = shapely.get_coordinates(inner)
    rot = _rotate(rot, -ang)
    (x0, y0), (x1, y1) = rot.min(axis=0), rot.max(axis=0)
    nx, ny = max(1, round((x1 - x0) / size)), max(1, round((y1 - y0) / size))
    sx, sy = (x1 - x0) / nx, (y1 - y0) / ny
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    centres = np.column_stack([x0 + (ii.ravel() + 0.5) * sx, y0 + (jj.ravel() + 0.5) * sy])
    w = np.full(len(centres), sx - LANE)
    h = np.full(len(centres), sy - LANE)
    cells = _rects(_frame_rows(centres, w, h, ang))
    lots = shapely.intersection(cells, inner)
    ok = (shapely.get_type_id(lots) == 3) & (shapely.area(lots) >= 0.55 * w * h)
    return lots[ok]


def _footprints(lot: Polygon, ang: float, tower: bool, rng: np.random.Generator) -> np.ndarray:
    """Building rectangles inside a lot, as rows (cx, cy, w, h, ang) in the metric frame."""
    rot = _rotate(shapely.get_coordinates(lot), -ang)
    (x0, y0), (x1, y1) = rot.min(axis=0), rot.max(axis=0)
    width, height = x1 - x0, y1 - y0
    if tower:
        nx, ny = (2 if width > 75 and rng.random() < 0.5 else 1), 1
    else:
        nx, ny = max(1, round(width / 55)), max(1, round(height / 45))
    sx, sy = width / nx, height / ny
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    n = nx * ny
    if tower:
        w = np.minimum(sx * 0.7, rng.uniform(28, 50, n))
        h = np.minimum(sy * 0.6, rng.uniform(18, 30, n))
    else:
        w, h = sx * rng.uniform(0.55, 0.8, n), sy * rng.uniform(0.5, 0.75, n)
    cx = x0 + (ii.ravel() + 0.5) * sx + rng.uniform(-0.25, 0.25, n) * (sx - w)
    cy = y0 + (jj.ravel() + 0.5) * sy + rng.uniform(-0.25, 0.25, n) * (sy - h)
    keep = rng.random(n) >= (0.0 if tower else 0.2)
    keep[rng.integers(n)] = True
    rows = _frame_rows(np.column_stack([cx, cy]), w, h, ang)
    keep &= shapely.contains(shapely.buffer(lot, -2.0), _rects(rows))
    return rows[keep]


def _lots(blocks, grid_of, comm_of, grids: pd.DataFrame, buffers: np.ndarray) -> pd.DataFrame:
    """Lots of every block inside a community: geometry, grid row, community index, angle."""
    tree = shapely.STRtree(buffers)
    grid_row = {named: i for i, named in enumerate(grids["_named"])}
    parts = []
    for b in np.flatnonzero(comm_of >= 0):
        block = blocks[b]
        near = buffers[tree.query(block, predicate="intersects")]
        inner = shapely.difference(block, shapely.union_all(near))
        ang = _angle(block)
        cells = _lattice(inner, ang, COMMUNITY_SPECS[comm_of[b]].lot)
        parts.append(
            pd.DataFrame(
                {"geometry": cells, "grid": grid_row[grid_of[b]], "comm": comm_of[b], "ang": ang}
            )
        )
    return pd.concat(parts, ignore_index=True)


class _Names:
    """Unique synthetic Chinese names, drawn deterministically from one generator."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.used: set[str] = set()

    def _draw(self, make) -> str:
        while True:
            name = make()
            if name not in self.used:
                self.used.add(name)
                return name

    def brand(self, k: int) -> str:
        return "".join(self.rng.choice(list(BRAND), size=k, replace=False))

    def park(self) -> str:
        return self._draw(lambda: self.brand(2) + str(self.rng.choice(PARK_SUFFIX)))

    def tower(self, mixed: bool) -> str:
        suffix = MIXED_SUFFIX if mixed else TOWER_SUFFIX
        return self._draw(lambda: self.brand(2) + str(self.rng.choice(suffix)))

    def company(self, chain: str) -> str:
        def make() -> str:
            city = "杭州" if self.rng.random() < 0.92 else "浙江"
            brand = self.brand(int(self.rng.choice([2, 2, 2, 3, 4])))
            form = "股份有限公司" if self.rng.random() < 0.1 else "有限公司"
            return f"{city}{brand}{self.rng.choice(INDUSTRY[chain])}{form}"

        return self._draw(make)

    def person(self) -> str:
        def make() -> str:
            given = "".join(self.rng.choice(list(GIVEN), size=int(self.rng.choice([1, 2, 2]))))
            return str(self.rng.choice(list(SURNAMES))) + given

        return self._draw(make)


def _parks_and_buildings(
    lots: pd.DataFrame, grids: pd.DataFrame, theta: float, rng: np.random.Generator, names: _Names
):
    """Choose parks and tower lots, place buildings, number everything grid by grid."""
    lot_geoms = lots["geometry"].to_numpy()
    lot_comm = lots["comm"].to_numpy()
    park_fp = [_footprints(g, a, False, rng) for g, a in zip(lot_geoms, lots["ang"], strict=True)]
    role = np.zeros(len(lots), dtype=int)  # 0 open space, 1 park, 2 tower lot
    for k, spec in enumerate(COMMUNITY_SPECS):
        mine = np.flatnonzero(lot_comm == k)
        able = mine[[len(park_fp[i]) > 0 for i in mine]]
        if len(able) < spec.parks or len(mine) < spec.parks + spec.tower_lots:
            raise AssertionError(f"{spec.name}: only {len(mine)} lots")
        area = shapely.area(lot_geoms[able])
        parks = rng.choice(able, spec.parks, replace=False, p=area / area.sum())
        role[parks] = 1
        rest = np.setdiff1d(mine, parks)
        role[rng.choice(rest, spec.tower_lots, replace=False)] = 2
    tower_fp = {
        i: _footprints(lot_geoms[i], lots["ang"][i], True, rng) for i in np.flatnonzero(role == 2)
    }
    curated = list(PARK_NAMES)
    names.used.update(curated)
    park_rows: list[dict] = []
    bldg_rows: list[dict] = []
    for g, grid in enumerate(grids.to_dict("records")):
        in_grid = np.flatnonzero(lots["grid"].to_numpy() == g)
        spec = COMMUNITY_SPECS[lot_comm[in_grid[0]]]
        park_lots = in_grid[role[in_grid] == 1]
        park_lots = park_lots[reading_order(lot_geoms[park_lots], theta)]
        seq = 0
        for i in park_lots:
            seq += 1
            pid = f"P{len(park_rows) + 1:04d}"
            pname = curated.pop(0) if curated else names.park()
            park_rows.append(
                {
                    "id": pid,
                    "name": pname,
                    "grid_id": grid["id"],
                    "code": f"{grid['code']}{seq:03d}",
                    "address": "",
                    "geometry": lot_geoms[i],
                }
            )
            fp = park_fp[i][reading_order(_rects(park_fp[i]), theta)]
            for n, row in enumerate(fp, start=1):
                bldg_rows.append(
                    {
                        "name": f"{pname}{n}号楼",
                        "kind": rng.random() < 0.08,
                        "grid_id": grid["id"],
                        "park_id": pid,
                        "code": "",
                        "floors": int(rng.integers(4, 13)),
                        "_fp": row,
                        "_n": n,
                        "_comm": lot_comm[i],
                    }
                )
        towers = [tower_fp[i] for i in in_grid if role[i] == 2 and len(tower_fp[i])]
        if not towers:
            continue
        fp = np.vstack(towers)
        for row in fp[reading_order(_rects(fp), theta)]:
            seq += 1
            mixed = bool(rng.random() < spec.mixed)
            floors = rng.integers(18, 34) if mixed else rng.integers(10, 31)
            bldg_rows.append(
                {
                    "name": names.tower(mixed),
                    "kind": mixed,
                    "grid_id": grid["id"],
                    "park_id": "",
                    "code": f"{grid['code']}{seq:03d}",
                    "floors": int(floors),
                    "_fp": row,
                    "_n": 0,
                    "_comm": lot_comm[in_grid[0]],
                }
            )
    parks = pd.DataFrame(park_rows)
    buildings = pd.DataFrame(bldg_rows)
    buildings["kind"] = np.where(buildings["kind"], "mixed-use", "enterprise")
    buildings["geometry"] = _rects(np.vstack(buildings["_fp"].to_numpy()))
    buildings.insert(0, "id", [f"B{i:05d}" for i in range(1, len(buildings) + 1)])
    return parks, buildings


# --------------------------------------------------------------------------------------------
# Addresses, enterprises, officers
# --------------------------------------------------------------------------------------------


def _door_numbers(points: np.ndarray, lines: dict[str, shapely.Geometry]) -> list[str]:
    """``路名+门牌号`` for each point: the nearest named road, odd numbers on its left side."""
    names = [s.name for s in LINES if s.cls != "boundary"]
    roads = np.asarray([lines[n] for n in names], dtype=object)
    nearest = shapely.STRtree(roads).query_nearest(points, all_matches=False)[1]
    road = roads[nearest]
    pos = shapely.line_locate_point(road, points)
    here = shapely.get_coordinates(shapely.line_interpolate_point(road, pos))
    ahead = shapely.get_coordinates(shapely.line_interpolate_point(road, pos + 1.0))
    xy = shapely.get_coordinates(points)
    fwd, off = ahead - here, xy - here
    left = fwd[:, 0] * off[:, 1] - fwd[:, 1] * off[:, 0] > 0
    numbers = 2 * (pos // 5).astype(int) + np.where(left, 1, 2)
    out, used = [], set()
    for n, number in zip(nearest, numbers, strict=True):
        while f"{names[n]}{number}号" in used:
            number += 2
        used.add(f"{names[n]}{number}号")
        out.append(f"{names[n]}{number}号")
    return out


def _addresses(parks: pd.DataFrame, buildings: pd.DataFrame, lines) -> None:
    """Door addresses: parks and towers get their own, park buildings their park's + 幢."""
    towers = buildings["park_id"] == ""
    pts = shapely.point_on_surface(
        np.concatenate([parks["geometry"].to_numpy(), buildings.loc[towers, "geometry"].to_numpy()])
    )
    doors = _door_numbers(pts, lines)
    parks["address"] = doors[: len(parks)]
    park_door = dict(zip(parks["id"], parks["address"], strict=True))
    buildings["address"] = [
        f"{park_door[p]}{n}幢" if p else ""
        for p, n in zip(buildings["park_id"], buildings["_n"], strict=True)
    ]
    buildings.loc[towers, "address"] = doors[len(parks) :]


def _chains(spec_chains, n: int, rng: np.random.Generator) -> np.ndarray:
    labels = [c for c, _ in spec_chains]
    p = np.asarray([w for _, w in spec_chains])
    return rng.choice(labels, size=n, p=p / p.sum())


def _enterprises(
    buildings: pd.DataFrame,
    blocks,
    comm_of,
    area_of,
    buffers,
    lines,
    rng: np.random.Generator,
    names: _Names,
) -> pd.DataFrame:
    """Enterprises in buildings (per community counts), plus ~3 % outside every community."""
    fp = np.vstack(buildings["_fp"].to_numpy())
    weight = fp[:, 2] * fp[:, 3] * buildings["floors"].to_numpy() * rng.lognormal(0, 0.6, len(fp))
    parts = []
    for k, spec in enumerate(COMMUNITY_SPECS):
        mine = np.flatnonzero(buildings["_comm"].to_numpy() == k)
        pick = rng.choice(mine, spec.enterprises, p=weight[mine] / weight[mine].sum())
        f = fp[pick]
        local = (rng.random((len(pick), 2)) - 0.5) * (f[:, 2:4] - 4.0)
        cos, sin = np.cos(f[:, 4]), np.sin(f[:, 4])
        xy = f[:, :2] + np.column_stack(
            [local[:, 0] * cos - local[:, 1] * sin, local[:, 0] * sin + local[:, 1] * cos]
        )
        floors = buildings["floors"].to_numpy()[pick]
        room = [
            f"{fl}{u:02d}室"
            for fl, u in zip(
                rng.integers(1, floors + 1), rng.integers(1, 30, len(pick)), strict=True
            )
        ]
        parts.append(
            pd.DataFrame(
                {
                    "address": buildings["address"].to_numpy()[pick] + np.asarray(room),
                    "chain": _chains(spec.chains, len(pick), rng),
                    "x": xy[:, 0],
                    "y": xy[:, 1],
                }
            )
        )
    inside = sum(s.enterprises for s in COMMUNITY_SPECS) + sum(N_ON_EDGE)
    n_out = round(inside * OUTSIDE_SHARE / (1 - OUTSIDE_SHARE))
    xy = _outside_points(blocks[(comm_of < 0) & (area_of != 1)], buffers, n_out, rng)
    rooms = [
        f"{fl}{u:02d}室"
        for fl, u in zip(rng.integers(1, 12, n_out), rng.integers(1, 20, n_out), strict=True)
    ]
    doors = _door_numbers(shapely.points(xy), lines)
    parts.append(
        pd.DataFrame(
            {
                "address": [d + r for d, r in zip(doors, rooms, strict=True)],
                "chain": _chains(_TECH, n_out, rng),
                "x": xy[:, 0],
                "y": xy[:, 1],
            }
        )
    )
    ents = pd.concat(parts, ignore_index=True)
    ents["name"] = [names.company(c) for c in ents["chain"]]
    hik = rng.choice(
        np.flatnonzero(
            ents["chain"]
            .isin(["数字安防", "物联网"])
            .to_numpy()[: COMMUNITY_SPECS[0].enterprises + COMMUNITY_SPECS[1].enterprises]
        ),
        len(HIKVISION),
        replace=False,
    )
    ents.loc[hik, "name"] = [f"杭州海康{s}" for s in HIKVISION]
    ents["employees"] = np.maximum(1, rng.lognormal(np.log(18), 1.25, len(ents))).astype(int)
    ents.loc[hik[0], "employees"] = 28000
    return ents


def _outside_points(
    blocks: np.ndarray, buffers: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` random points on buildable land outside the communities (not in the lake)."""
    tree = shapely.STRtree(buffers)
    inner = np.asarray(
        [shapely.difference(b, shapely.union_all(buffers[tree.query(b)])) for b in blocks],
        dtype=object,
    )
    area = shapely.area(inner)
    counts = rng.multinomial(n, area / area.sum())
    out = []
    for geom, count in zip(inner, counts, strict=True):
        x0, y0, x1, y1 = geom.bounds
        got = np.zeros((0, 2))
        while len(got) < count:
            cand = rng.uniform((x0, y0), (x1, y1), size=(4 * count + 8, 2))
            got = np.vstack([got, cand[shapely.contains_xy(geom, cand[:, 0], cand[:, 1])]])
        out.append(got[:count])
    return np.vstack(out)


def _officers(buildings: pd.DataFrame, rng: np.random.Generator, names: _Names) -> pd.DataFrame:
    """453 一长二员 officers for the buildings outside parks; a few teams are incomplete."""
    towers = buildings[buildings["park_id"] == ""]
    groups = [("楼宇管理长", ("enterprise", "mixed-use"))] + [
        (role, (kind,)) for kind in ("enterprise", "mixed-use") for role in TEAM_ROLES[kind][1:]
    ]
    cells = []  # (role, community, building ids) in a fixed order
    for role, kinds in groups:
        ok = towers[towers["kind"].isin(kinds)]
        keep = rng.random(len(ok)) >= (0.02 if role == "楼宇管理长" else 0.04)
        ok = ok[keep]
        for comm, sub in ok.groupby("_comm", sort=True):
            cells.append((role, comm, list(sub["id"])))
    sizes = np.asarray([len(c[2]) for c in cells], dtype=float)
    quota = sizes / sizes.sum() * N_OFFICERS
    k = np.maximum(1, np.floor(quota).astype(int))
    for i in np.argsort(-(quota - np.floor(quota)), kind="stable")[: N_OFFICERS - k.sum()]:
        k[i] += 1
    rows = []
    for (role, _, ids), n in zip(cells, k, strict=True):
        for chunk in np.array_split(np.asarray(ids), n):
            rows.append({"name": names.person(), "role": role, "building_ids": ";".join(chunk)})
    officers = pd.DataFrame(rows)
    if len(officers) != N_OFFICERS:
        raise AssertionError(f"{len(officers)} officers")
    officers.insert(0, "id", [f"O{i:04d}" for i in range(1, N_OFFICERS + 1)])
    party = np.zeros(N_OFFICERS, dtype=bool)
    party[rng.choice(N_OFFICERS, N_PARTY, replace=False)] = True
    officers["party_member"] = party
    officers["phone"] = ""
    return officers[list(OFFICERS.field_names)]


def _shared_vertices(
    grids: pd.DataFrame, comms: pd.DataFrame, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """(grid row, vertex index) of vertices shared by exactly two communities or two grids.

    Torch (C01) is left out, so that its enterprise count is the same under every reading of
    "inside"; a vertex shared by two communities must also be shared by exactly two grids.
    """

    def table(geoms: np.ndarray) -> pd.DataFrame:
        xy, owner = shapely.get_coordinates(geoms, return_index=True)
        first = np.searchsorted(owner, owner)
        df = pd.DataFrame(
            {"x": xy[:, 0], "y": xy[:, 1], "owner": owner, "vertex": np.arange(len(xy)) - first}
        )
        return df.drop_duplicates(["x", "y", "owner"])

    g = table(grids["geometry"].to_numpy())
    g["community"] = grids["community_id"].to_numpy()[g["owner"]]
    c = table(comms["geometry"].to_numpy())
    c["community"] = comms["id"].to_numpy()[c["owner"]]
    n_grid = g.groupby(["x", "y"])["owner"].nunique().rename("n_grid")
    n_comm = c.groupby(["x", "y"])["owner"].nunique().rename("n_comm")
    torch = c[c["community"] == COMMUNITY_SPECS[0].id].set_index(["x", "y"]).index
    g = g.join(n_grid, on=["x", "y"]).join(n_comm, on=["x", "y"])
    g["n_comm"] = g["n_comm"].fillna(0)
    g = g[~g.set_index(["x", "y"]).index.isin(torch) & (g["community"] != COMMUNITY_SPECS[0].id)]
    g = g.sort_values(["x", "y", "owner"]).drop_duplicates(["x", "y"])
    chosen = []
    for want, mask in zip(
        N_ON_EDGE,
        ((g["n_comm"] == 2) & (g["n_grid"] == 2), (g["n_comm"] == 0) & (g["n_grid"] == 2)),
        strict=True,
    ):
        cand = g[mask]
        pick = np.sort(rng.choice(len(cand), want, replace=False))
        chosen += list(
            zip(cand["owner"].to_numpy()[pick], cand["vertex"].to_numpy()[pick], strict=True)
        )
    return [(int(a), int(b)) for a, b in chosen]


def _base(seed: int) -> _Base:
    """Build the base district (scale 1) in the metric frame."""
    rng = np.random.default_rng(seed)
    district = Polygon(_to_metric(DISTRICT))
    lines, branches, theta, blocks, grid_of, comm_of, street_of, area_of = _network(district, rng)
    streets, comms, grids, areas = _polygons(blocks, grid_of, comm_of, street_of, area_of, theta)
    roads = _road_pieces(lines, branches, district, rng)
    buffers = _setback_buffers(lines, branches, district)
    lots = _lots(blocks, grid_of, comm_of, grids, buffers)
    names = _Names(rng)
    parks, buildings = _parks_and_buildings(lots, grids, theta, rng, names)
    _addresses(parks, buildings, lines)
    ents = _enterprises(buildings, blocks, comm_of, area_of, buffers, lines, rng, names)
    on_edge = _shared_vertices(grids, comms, rng)
    xy = np.asarray([shapely.get_coordinates(grids["geometry"][g])[v] for g, v in on_edge])
    comm_index = {s.id: k for k, s in enumerate(COMMUNITY_SPECS)}
    edge = pd.DataFrame(
        {
            "address": _door_numbers(shapely.points(xy), lines),
            "chain": [
                _chains(COMMUNITY_SPECS[comm_index[grids["community_id"][g]]].chains, 1, rng)[0]
                for g, _ in on_edge
            ],
            "x": xy[:, 0],
            "y": xy[:, 1],
        }
    )
    edge["name"] = [names.company(c) for c in edge["chain"]]
    edge["employees"] = np.maximum(1, rng.lognormal(np.log(18), 1.25, len(edge))).astype(int)
    edge["_edge"] = np.arange(len(edge))
    ents["_edge"] = -1
    ents = pd.concat([ents, edge], ignore_index=True)
    ents = ents.iloc[rng.permutation(len(ents))].reset_index(drop=True)
    officers = _officers(buildings, rng, names)
    frames = {
        "roads": roads,
        "streets": streets,
        "communities": comms,
        "grids": grids.drop(columns="_named"),
        "parks": parks,
        "buildings": buildings,
        "areas": areas,
        "enterprises": ents,
        "officers": officers,
    }
    return _Base(frames=frames, district=district, on_edge=on_edge)


# --------------------------------------------------------------------------------------------
# Replication, conversion, output
# --------------------------------------------------------------------------------------------


def _renumber(ids: pd.Series, copy: int, total: int) -> list[str]:
    """``P0007`` in copy ``c`` of ``n`` features → ``P{c*n + 7}``, padded to fit ``total``."""
    prefix = ids.iloc[0][0]
    width = max(len(ids.iloc[0]) - 1, len(str(total)))
    n = len(ids)
    return [f"{prefix}{copy * n + int(i[1:]):0{width}d}" for i in ids]


def _credit_codes(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` unique codes of region 330108; ~0.5 % fail the check character, as in registries."""
    alphabet = np.asarray(list(creditcode.ALPHABET))
    codes: list[str] = []
    used: set[str] = set()
    while len(codes) < n:
        m = n - len(codes)
        new_style = rng.random(m) < 0.7
        tail = alphabet[rng.integers(0, len(alphabet), (m, 6))]
        digits = rng.integers(0, 10, (m, 8)).astype(str)
        for is_new, t6, d8 in zip(new_style, tail, digits, strict=True):
            body = "MA" + "".join(t6) if is_new else "".join(d8)
            code = creditcode.make_credit_code(COUNTY_CODE, body)
            if code not in used:
                used.add(code)
                codes.append(code)
    bad = rng.choice(n, round(n * INVALID_CODE_SHARE), replace=False)
    for i in np.sort(bad):
        right = codes[i][-1]
        wrong = str(rng.choice([c for c in creditcode.ALPHABET if c != right]))
        codes[i] = codes[i][:-1] + wrong
    return codes


def _phones(n: int, rng: np.random.Generator) -> list[str]:
    """Unique synthetic mobile numbers such as 13805711234."""
    prefix = rng.choice(PHONE_PREFIX, n)
    tail = rng.choice(10**8, n, replace=False)
    return [f"{p}{t:08d}" for p, t in zip(prefix, tail, strict=True)]


def _offsets(scale: int, district: Polygon) -> list[tuple[float, float]]:
    """Copy offsets (m): tiles east then south, 2 km apart."""
    x0, y0, x1, y1 = district.bounds
    cols = math.ceil(math.sqrt(scale))
    step_x, step_y = x1 - x0 + 2000.0, y1 - y0 + 2000.0
    return [((c % cols) * step_x, -(c // cols) * step_y) for c in range(scale)]


def _copy(base: _Base, c: int, scale: int, dx: float, dy: float) -> dict[str, pd.DataFrame]:
    """Copy ``c`` of the base district: ids suffixed or renumbered, codes kept unique."""
    f = {name: df.copy() for name, df in base.frames.items()}
    suffix = f"x{c + 1}" if c else ""
    label = f"({c + 1})" if c else ""
    street_code = {sid: f"{3 * c + k + 1:03d}" for k, sid in enumerate(f["streets"]["id"])}

    def recode(code: pd.Series, street: pd.Series) -> pd.Series:
        return pd.Series(
            [
                x[:6] + street_code[s] + x[9:] if x else ""
                for x, s in zip(code, street, strict=True)
            ],
            index=code.index,
        )

    comm_street = dict(zip(f["communities"]["id"], f["communities"]["street_id"], strict=True))
    grid_street = {
        g: comm_street[cid]
        for g, cid in zip(f["grids"]["id"], f["grids"]["community_id"], strict=True)
    }
    f["grids"]["code"] = recode(f["grids"]["code"], f["grids"]["id"].map(grid_street))
    f["parks"]["code"] = recode(f["parks"]["code"], f["parks"]["grid_id"].map(grid_street))
    f["buildings"]["code"] = recode(
        f["buildings"]["code"], f["buildings"]["grid_id"].map(grid_street)
    )
    f["streets"]["code"] = f["streets"]["id"].map(street_code)
    for layer in ("streets", "areas", "communities"):
        f[layer]["id"] = f[layer]["id"] + suffix
        f[layer]["name"] = f[layer]["name"] + label
    f["communities"]["street_id"] = f["communities"]["street_id"] + suffix
    f["grids"]["community_id"] = f["grids"]["community_id"] + suffix
    f["grids"]["id"] = f["grids"]["community_id"] + f["grids"]["id"].str[3:]
    for layer in ("parks", "buildings"):
        f[layer]["grid_id"] = f[layer]["grid_id"].str[:3] + suffix + f[layer]["grid_id"].str[3:]
    for layer in ("roads", "parks", "buildings", "officers"):
        old = f[layer]["id"]
        f[layer]["id"] = _renumber(old, c, len(old) * scale)
        if layer == "parks":
            park_map = dict(zip(old, f[layer]["id"], strict=True))
        if layer == "buildings":
            bldg_map = dict(zip(old, f[layer]["id"], strict=True))
    f["buildings"]["park_id"] = f["buildings"]["park_id"].map(lambda p: park_map.get(p, ""))
    f["officers"]["building_ids"] = [
        ";".join(bldg_map[b] for b in ids.split(";")) for ids in f["officers"]["building_ids"]
    ]
    for layer in LAYER_FILES:
        f[layer]["geometry"] = _lonlat(f[layer]["geometry"].to_numpy(), dx, dy)
    ents = f["enterprises"]
    lon, lat = crs.from_wgs84(*_points_lonlat(ents[["x", "y"]].to_numpy(), dx, dy).T, "gcj02")
    ents["lon"], ents["lat"], ents["crs"] = round7(lon), round7(lat), "gcj02"
    grid_geoms = f["grids"]["geometry"].to_numpy()
    for row in np.flatnonzero(ents["_edge"].to_numpy() >= 0):
        g, v = base.on_edge[ents["_edge"][row]]
        ents.loc[row, ["lon", "lat"]] = shapely.get_coordinates(grid_geoms[g])[v]
        ents.loc[row, "crs"] = "wgs84"
    return f


def make_district(scale: int = 1, seed: int = DEFAULT_SEED) -> dict[str, pd.DataFrame]:
    """The sample district: GeoDataFrames per layer (EPSG:4326), plus enterprises and officers.

    ``scale`` > 1 tiles copies of the district east- and southward (ids suffixed ``x2``… or
    renumbered, codes unique) for benchmarks. Pure and deterministic: no I/O, and the same
    ``seed`` gives the same frames.
    """
    if scale < 1:
        raise ValueError("scale must be >= 1")
    base = _base(seed)
    copies = [
        _copy(base, c, scale, dx, dy) for c, (dx, dy) in enumerate(_offsets(scale, base.district))
    ]
    out: dict[str, pd.DataFrame] = {}
    specs = {
        "roads": ROADS,
        "streets": STREETS,
        "communities": COMMUNITIES,
        "grids": GRIDS,
        "parks": PARKS,
        "buildings": BUILDINGS,
    }
    for layer in LAYER_FILES:
        df = pd.concat([c[layer] for c in copies], ignore_index=True)
        cols = list(specs[layer].field_names) if layer in specs else list(AREA_COLUMNS)
        geoms = df["geometry"].to_numpy()
        if layer != "roads":
            geoms = shapely.orient_polygons(geoms, exterior_cw=False)
        out[layer] = gpd.GeoDataFrame(df.reindex(columns=cols), geometry=geoms, crs="EPSG:4326")
    extra = np.random.default_rng([seed, scale])
    ents = pd.concat([c["enterprises"] for c in copies], ignore_index=True)
    ents["id"] = [f"E{i:0{max(6, len(str(len(ents))))}d}" for i in range(1, len(ents) + 1)]
    ents["credit_code"] = _credit_codes(len(ents), extra)
    out["enterprises"] = ents[list(ENTERPRISE_COLUMNS)].reset_index(drop=True)
    officers = pd.concat([c["officers"] for c in copies], ignore_index=True)
    officers["phone"] = _phones(len(officers), extra)
    out["officers"] = officers[list(OFFICERS.field_names)]
    return out


def _feature_collection(gdf: gpd.GeoDataFrame) -> str:
    """An RFC 7946 FeatureCollection, one feature per line, top-level ``id`` = properties.id."""
    props = gdf.drop(columns="geometry").to_dict("records")
    lines = []
    for p, geom in zip(props, gdf.geometry, strict=True):
        p = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in p.items()}
        feature = {
            "type": "Feature",
            "id": p["id"],
            "properties": p,
            "geometry": shapely.geometry.mapping(geom),
        }
        lines.append(json.dumps(feature, ensure_ascii=False, separators=(",", ":")))
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"


def write_district(out_dir: str | Path, frames: dict[str, pd.DataFrame]) -> list[Path]:
    """Write ``<layer>.geojson`` for each layer and ``enterprises.csv``, ``officers.csv``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for layer in LAYER_FILES:
        path = out / f"{layer}.geojson"
        path.write_text(_feature_collection(frames[layer]), encoding="utf-8")
        written.append(path)
    for table in ("enterprises", "officers"):
        path = out / f"{table}.csv"
        frames[table].to_csv(
            path, index=False, encoding="utf-8", lineterminator="\n", float_format="%.7f"
        )
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m geo.sample -o data/geojson [--scale N] [--seed S]``."""
    parser = argparse.ArgumentParser(
        prog="python -m geo.sample", description="Generate the sample district."
    )
    parser.add_argument("-o", "--out", required=True, help="output directory")
    parser.add_argument("--scale", type=int, default=1, help="copies of the district (>= 1)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    args = parser.parse_args(argv)
    write_district(args.out, make_district(args.scale, args.seed))


if __name__ == "__main__":
    main()
