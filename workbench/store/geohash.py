"""Geohashes as Valkey computes them: a point on the map as one 52-bit sorted set score.

A geo index is a plain sorted set. Each member's score is its position, encoded so that
nearby points get nearby scores (Valkey's ``geohash.c`` and ``geohash_helper.c``):

* **Encode.** Longitude in [-180, 180] and latitude in [-85.05112878, 85.05112878] (the
  Web-Mercator limits: no poles) are each scaled to a 26-bit integer, and the two are
  interleaved bit by bit -- latitude in the even bits, longitude in the odd ones. The
  52-bit result fits a double exactly, so it can be a score.
* **Decode.** A score names a little cell (``step`` = 26 bits per axis, about 0.6 m
  wide); the point reported is the cell's centre. That is why GEOPOS returns
  coordinates slightly different from those GEOADD was given.
* **Search.** Every point in a cell of ``step`` bits per axis has a score in one range:
  the cell's bits followed by anything. A radius or box search picks a ``step`` whose
  cells are about as wide as the search area, takes the cell of the centre and its
  eight neighbours, reads the nine score ranges and keeps the points truly inside
  (haversine distance on a sphere of Valkey's radius).

Everything here is integer arithmetic and the same libm calls Valkey makes, in the same
order, so the scores, decoded coordinates and distances are the same doubles.
"""

from __future__ import annotations

import math
from functools import lru_cache

STEP_MAX = 26                       # bits per axis of a stored score (52 in all)
LONG_MIN, LONG_MAX = -180.0, 180.0
LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
EARTH_RADIUS_IN_METERS = 6372797.560856
MERCATOR_MAX = 20037726.37
_D_R = math.pi / 180.0

_U64 = (1 << 64) - 1
_EVEN = 0x5555555555555555          # latitude bits
_ODD = 0xAAAAAAAAAAAAAAAA           # longitude bits

# the ranges a stored score is encoded with, and the standard ones GEOHASH spells with
WGS84_RANGES = ((LONG_MIN, LONG_MAX), (LAT_MIN, LAT_MAX))
STANDARD_RANGES = ((-180.0, 180.0), (-90.0, 90.0))


# -- interleaving ---------------------------------------------------------------------------
def interleave(x: int, y: int) -> int:
    """The bits of ``x`` in the even positions and those of ``y`` in the odd ones (both
    32-bit); "Interleave bits by Binary Magic Numbers", as Valkey's ``interleave64``."""
    for shift, mask in ((16, 0x0000FFFF0000FFFF), (8, 0x00FF00FF00FF00FF),
                        (4, 0x0F0F0F0F0F0F0F0F), (2, 0x3333333333333333), (1, _EVEN)):
        x = (x | (x << shift)) & mask
        y = (y | (y << shift)) & mask
    return x | (y << 1)


def deinterleave(bits: int) -> tuple[int, int]:
    """The inverse of :func:`interleave`: (even bits, odd bits) as two 32-bit integers."""
    x, y = bits & _U64, (bits & _U64) >> 1
    for shift, mask in ((0, _EVEN), (1, 0x3333333333333333), (2, 0x0F0F0F0F0F0F0F0F),
                        (4, 0x00FF00FF00FF00FF), (8, 0x0000FFFF0000FFFF),
                        (16, 0x00000000FFFFFFFF)):
        x = (x | (x >> shift)) & mask
        y = (y | (y >> shift)) & mask
    return x, y


# -- encoding and decoding cells ------------------------------------------------------------
def encode(longitude: float, latitude: float, step: int = STEP_MAX,
           ranges=WGS84_RANGES) -> int | None:
    """The ``2*step``-bit cell holding the point, or ``None`` outside the indexable area."""
    (long_min, long_max), (lat_min, lat_max) = ranges
    if not (LONG_MIN <= longitude <= LONG_MAX and LAT_MIN <= latitude <= LAT_MAX):
        return None
    if not (lat_min <= latitude <= lat_max and long_min <= longitude <= long_max):
        return None
    lat_offset = (latitude - lat_min) / (lat_max - lat_min) * (1 << step)
    long_offset = (longitude - long_min) / (long_max - long_min) * (1 << step)
    # C converts the doubles to uint32_t: truncation
    return interleave(int(lat_offset) & 0xFFFFFFFF, int(long_offset) & 0xFFFFFFFF)


def cell_area(bits: int, step: int, ranges=WGS84_RANGES):
    """((long min, long max), (lat min, lat max)) of a cell, as ``geohashDecode``."""
    (long_min, long_max), (lat_min, lat_max) = ranges
    lat_cell, long_cell = deinterleave(bits)
    cells = float(1 << step)
    lat_scale, long_scale = lat_max - lat_min, long_max - long_min
    return ((long_min + (long_cell * 1.0 / cells) * long_scale,
             long_min + (((long_cell + 1) & 0xFFFFFFFF) * 1.0 / cells) * long_scale),
            (lat_min + (lat_cell * 1.0 / cells) * lat_scale,
             lat_min + (((lat_cell + 1) & 0xFFFFFFFF) * 1.0 / cells) * lat_scale))


def score_bits(score: float) -> int:
    """``(uint64_t)score`` as C on x86-64 converts it (any score, not only geo ones)."""
    if score != score or score in (math.inf, -math.inf):
        return 1 << 63
    if score >= 2.0**64:
        return 0
    if score >= 2.0**63:
        return int(score)
    whole = int(score)
    return (1 << 63) if whole < -(1 << 63) else whole & _U64


# A search decodes every point of up to nine cells, often the same points again: decoding
# is a pure function of the score, so recent answers are remembered.
@lru_cache(maxsize=1 << 16)
def decode(score: float) -> tuple[float, float]:
    """(longitude, latitude) of the centre of a stored score's cell, as Valkey's
    ``decodeGeohash`` (clamped to the indexable area)."""
    (long_lo, long_hi), (lat_lo, lat_hi) = cell_area(score_bits(score), STEP_MAX)
    longitude = min(max((long_lo + long_hi) / 2, LONG_MIN), LONG_MAX)
    latitude = min(max((lat_lo + lat_hi) / 2, LAT_MIN), LAT_MAX)
    return longitude, latitude


def score_of(longitude: float, latitude: float) -> int | None:
    """The 52-bit score GEOADD stores for a point (``None`` outside the indexable area)."""
    return encode(longitude, latitude)


_BASE32 = b"0123456789bcdefghjkmnpqrstuvwxyz"


def geohash_string(score: float) -> bytes:
    """The 11-character standard geohash GEOHASH returns: the decoded point re-encoded
    with latitude range [-90, 90] (26 bits per axis, so the 11th character is always
    ``0``, as in Valkey)."""
    longitude, latitude = decode(score)
    bits = encode(longitude, latitude, STEP_MAX, STANDARD_RANGES)
    chars = [_BASE32[(bits >> (52 - (i + 1) * 5)) & 0x1F] for i in range(10)]
    return bytes(chars) + b"0"


# -- neighbours ------------------------------------------------------------------------------
def _move(bits: int, step: int, east_west: bool, d: int) -> int:
    """The cell ``d`` (+1 or -1) away along one axis: ``geohash_move_x`` / ``_move_y``."""
    width = 64 - step * 2
    if east_west:                              # longitude: the odd bits
        moving, fixed = bits & _ODD, bits & _EVEN
        zz, mask = _EVEN >> width, _ODD >> width
    else:                                      # latitude: the even bits
        moving, fixed = bits & _EVEN, bits & _ODD
        zz, mask = _ODD >> width, _EVEN >> width
    if d > 0:
        moving = moving + (zz + 1)
    else:
        moving = (moving | zz) - (zz + 1)
    return ((moving & _U64) & mask) | fixed


def neighbours(bits: int, step: int) -> dict:
    """The eight cells around a cell, by compass direction (wrapping at the edges)."""
    def at(dx, dy):
        moved = bits
        if dx:
            moved = _move(moved, step, True, dx)
        if dy:
            moved = _move(moved, step, False, dy)
        return moved
    return {"north": at(0, 1), "south": at(0, -1), "east": at(1, 0), "west": at(-1, 0),
            "north_east": at(1, 1), "north_west": at(-1, 1),
            "south_east": at(1, -1), "south_west": at(-1, -1)}


# -- distances -------------------------------------------------------------------------------
def _rad(degrees: float) -> float:
    return degrees * _D_R


def _deg(radians: float) -> float:
    return radians / _D_R


def lat_distance(lat1: float, lat2: float) -> float:
    """Metres between two latitudes on one meridian."""
    return EARTH_RADIUS_IN_METERS * math.fabs(_rad(lat2) - _rad(lat1))


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle metres between two points (haversine), as ``geohashGetDistance``."""
    lon1r, lon2r = _rad(lon1), _rad(lon2)
    v = math.sin((lon2r - lon1r) / 2)
    if v == 0.0:                               # same meridian: no trigonometry needed
        return lat_distance(lat1, lat2)
    lat1r, lat2r = _rad(lat1), _rad(lat2)
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + math.cos(lat1r) * math.cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS_IN_METERS * math.asin(math.sqrt(a))


# -- search shapes ---------------------------------------------------------------------------
class Shape:
    """A search area around (longitude, latitude): a circle of ``radius`` or a box of
    ``width`` x ``height``, in a unit that is ``conversion`` metres."""

    __slots__ = ("longitude", "latitude", "radius", "width", "height", "conversion")

    def __init__(self, longitude, latitude, conversion, radius=None, width=None, height=None):
        self.longitude, self.latitude = longitude, latitude
        self.conversion = conversion
        self.radius, self.width, self.height = radius, width, height

    @property
    def is_circle(self) -> bool:
        return self.radius is not None

    def distance_if_inside(self, longitude: float, latitude: float) -> float | None:
        """Metres from the centre to a point, or ``None`` if the point is outside."""
        x1, y1 = self.longitude, self.latitude
        if self.is_circle:
            d = distance(x1, y1, longitude, latitude)
            return None if d > self.radius * self.conversion else d
        width_m, height_m = self.width * self.conversion, self.height * self.conversion
        if lat_distance(latitude, y1) > height_m / 2:
            return None
        if distance(longitude, latitude, x1, latitude) > width_m / 2:
            return None
        return distance(x1, y1, longitude, latitude)

    def bounding_box(self):
        """(min long, min lat, max long, max lat) around the shape (``geohashBoundingBox``)."""
        if self.is_circle:
            height = width = self.conversion * self.radius
        else:
            height = self.conversion * self.height / 2
            width = self.conversion * self.width / 2
        lon, lat = self.longitude, self.latitude
        lat_delta = _deg(height / EARTH_RADIUS_IN_METERS)
        long_delta_top = _deg(width / EARTH_RADIUS_IN_METERS / math.cos(_rad(lat + lat_delta)))
        long_delta_bottom = _deg(width / EARTH_RADIUS_IN_METERS
                                 / math.cos(_rad(lat - lat_delta)))
        long_delta = long_delta_bottom if lat < 0 else long_delta_top
        return lon - long_delta, lat - lat_delta, lon + long_delta, lat + lat_delta

    def radius_meters(self) -> float:
        if self.is_circle:
            r = self.radius
        else:
            r = math.sqrt((self.width / 2) * (self.width / 2)
                          + (self.height / 2) * (self.height / 2))
        return r * self.conversion


def estimate_step(range_meters: float, latitude: float) -> int:
    """Bits per axis of cells about as wide as the search (``geohashEstimateStepsByRadius``)."""
    if range_meters == 0:
        return 26
    step = 1
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2                          # make sure the range is included in most cases
    if latitude > 66 or latitude < -66:        # meridians converge towards the poles
        step -= 1
        if latitude > 80 or latitude < -80:
            step -= 1
    return min(max(step, 1), 26)


# the order Valkey visits the nine cells in (it decides the unsorted reply's order)
SEARCH_ORDER = ("centre", "north", "south", "east", "west",
                "north_east", "north_west", "south_east", "south_west")


def search_cells(shape: Shape) -> tuple[int, list]:
    """(step, cells): the cells to read for ``shape``, in :data:`SEARCH_ORDER`, ``None``
    for a neighbour that cannot hold a match (``geohashCalculateAreasByShapeWGS84``)."""
    min_lon, min_lat, max_lon, max_lat = shape.bounding_box()
    lon, lat = shape.longitude, shape.latitude
    step = estimate_step(shape.radius_meters(), lat)
    centre = encode(lon, lat, step)
    around = neighbours(centre, step)
    # a cell too close to an edge of the search area: use cells twice as big
    if (cell_area(around["north"], step)[1][1] < max_lat
            or cell_area(around["south"], step)[1][0] > min_lat
            or cell_area(around["east"], step)[0][1] < max_lon
            or cell_area(around["west"], step)[0][0] > min_lon) and step > 1:
        step -= 1
        centre = encode(lon, lat, step)
        around = neighbours(centre, step)
    cells = dict(around, centre=centre)
    if step >= 2:                              # drop the neighbours the area cannot reach
        (long_lo, long_hi), (lat_lo, lat_hi) = cell_area(centre, step)
        if lat_lo < min_lat:
            cells["south"] = cells["south_west"] = cells["south_east"] = None
        if lat_hi > max_lat:
            cells["north"] = cells["north_east"] = cells["north_west"] = None
        if long_lo < min_lon:
            cells["west"] = cells["south_west"] = cells["north_west"] = None
        if long_hi > max_lon:
            cells["east"] = cells["south_east"] = cells["north_east"] = None
    return step, [cells[name] for name in SEARCH_ORDER]


def cell_score_range(bits: int, step: int) -> tuple[int, int]:
    """[low, high): the scores of every stored point inside a cell."""
    shift = 52 - step * 2
    return bits << shift, (bits + 1) << shift
