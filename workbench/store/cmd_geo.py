"""Geo commands: a geo index is a sorted set whose scores are 52-bit geohashes.

GEOADD turns each (longitude, latitude) into a score (:mod:`.geohash`) and is then a
ZADD -- Valkey even rewrites its argument vector, so it fires ``zadd`` and is propagated
as ``zadd key [NX|XX] [CH] score member ..``. Every other sorted set command works on a
geo index too (ZREM, ZRANGE, ZCARD ...).

The searches (GEOSEARCH, GEORADIUS and their variants) follow Valkey's
``georadiusGeneric``: look up the source first (WRONGTYPE before any argument error),
parse the options in one pass with Valkey's error texts, read the nine cells around the
centre in Valkey's order, keep the points inside the shape, then sort by distance
(stably) when asked. Without ASC/DESC the reply is in that scan order, as in Valkey.
The STORE forms are deterministic given the same data, so they propagate as they are.

Replies: distances are bulk strings with 4 decimals (Valkey's ``fixedpoint_d2string``),
hashes are integers, coordinates are Valkey's "human" long double spelling (``%.17Lf``
without trailing zeros).
"""

from __future__ import annotations

from ..resp import NULL_ARRAY, DoubleText, ReplyError
from . import geohash
from .cmd_zsets import parse_score, store_zset, zadd
from .keyspace import NOT_INTEGER, SYNTAX
from .table import command
from .values import parse_int
from .zset import ZSet

NOT_FLOAT = ReplyError("ERR value is not a valid float")
BAD_UNIT = ReplyError("ERR unsupported unit provided. please use M, KM, FT, MI")
BAD_MEMBER = ReplyError("ERR could not decode requested zset member")

# metres per unit
UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}


# -- arguments ---------------------------------------------------------------------------------
def _double(raw: bytes, error: ReplyError = NOT_FLOAT) -> float:
    value = parse_score(raw)          # the whole argument as Valkey's getDoubleFromObject
    if value is None:
        raise error
    return value


def lonlat_arg(raw_long: bytes, raw_lat: bytes) -> tuple[float, float]:
    """A (longitude, latitude) pair inside the indexable area, as ``extractLongLatOrReply``."""
    longitude, latitude = _double(raw_long), _double(raw_lat)
    if not (geohash.LONG_MIN <= longitude <= geohash.LONG_MAX
            and geohash.LAT_MIN <= latitude <= geohash.LAT_MAX):
        raise ReplyError("ERR invalid longitude,latitude pair %f,%f" % (longitude, latitude))
    return longitude, latitude


def unit_arg(raw: bytes) -> float:
    """Metres per unit of ``m``, ``km``, ``ft`` or ``mi`` (any letter case)."""
    conversion = UNITS.get(raw.lower())
    if conversion is None:
        raise BAD_UNIT
    return conversion


def _distance_arg(raw: bytes, what: str) -> float:
    value = _double(raw, ReplyError(f"ERR need numeric {what}"))
    return value


# -- reply spellings ---------------------------------------------------------------------------
def distance_text(d: float) -> bytes:
    """A distance with 4 decimals, as Valkey's ``fixedpoint_d2string(.., 4)``: the double
    times 10^4 rounded half to even (``llrint``), then split at the decimal point."""
    if d == 0:
        return b"0.0000"
    scaled = round(d * 10000.0)
    sign = b"-" if scaled < 0 else b""
    whole, fraction = divmod(abs(scaled), 10000)
    return b"%s%d.%04d" % (sign, whole, fraction)


def coordinate(value: float) -> DoubleText:
    """A coordinate as Valkey's ``addReplyHumanLongDouble`` spells it: ``%.17Lf`` of the
    exact double, trailing zeros dropped (``13.36138933897018433``): a bulk string in
    RESP2, a double in RESP3."""
    text = b"%.17f" % value
    text = text.rstrip(b"0").rstrip(b".")
    return DoubleText(b"0" if text == b"-0" else text)


# -- GEOADD, GEOPOS, GEOHASH, GEODIST ------------------------------------------------------
@command("GEOADD", -5, "write denyoom", 1, 1, 1, group="geo", since="3.2.0")
def geoadd(ctx, argv):
    """Add members at (longitude, latitude) [NX|XX] [CH]; a ZADD of their geohash scores."""
    nx = xx = False
    first = 2
    while first < len(argv):
        opt = argv[first].upper()
        if opt == b"NX":
            nx = True
        elif opt == b"XX":
            xx = True
        elif opt != b"CH":
            break
        first += 1
    if (len(argv) - first) % 3 or (nx and xx):
        raise SYNTAX
    as_zadd = [b"zadd", *argv[1:first]]
    for i in range(first, len(argv), 3):
        longitude, latitude = lonlat_arg(argv[i], argv[i + 1])
        as_zadd += [b"%d" % geohash.score_of(longitude, latitude), argv[i + 2]]
    reply = zadd(ctx, as_zadd)
    if len(ctx.changed_keys) > len(ctx.expired_dels):     # propagated as the ZADD it was
        ctx.rewrite_as(as_zadd)
    return reply


@command("GEOPOS", -2, "readonly", 1, 1, 1, group="geo", since="3.2.0")
def geopos(ctx, argv):
    """[longitude, latitude] of each member (a null array for a missing one)."""
    z = ctx.lookup_typed(argv[1], ZSet)
    out = []
    for member in argv[2:]:
        score = None if z is None else z.score(member)
        if score is None:
            out.append(NULL_ARRAY)
        else:
            longitude, latitude = geohash.decode(score)
            out.append([coordinate(longitude), coordinate(latitude)])
    return out


@command("GEOHASH", -2, "readonly", 1, 1, 1, group="geo", since="3.2.0")
def geohash_command(ctx, argv):
    """The 11-character standard geohash of each member (nil for a missing one)."""
    z = ctx.lookup_typed(argv[1], ZSet)
    scores = [None if z is None else z.score(member) for member in argv[2:]]
    return [None if s is None else geohash.geohash_string(s) for s in scores]


@command("GEODIST", -4, "readonly", 1, 1, 1, group="geo", since="3.2.0")
def geodist(ctx, argv):
    """The distance between two members [m|km|ft|mi], or nil if one is missing."""
    conversion = 1.0
    if len(argv) == 5:
        conversion = unit_arg(argv[4])
    elif len(argv) > 5:
        raise SYNTAX
    z = ctx.lookup_typed(argv[1], ZSet)
    if z is None:
        return None
    score1, score2 = z.score(argv[2]), z.score(argv[3])
    if score1 is None or score2 is None:
        return None
    (lon1, lat1), (lon2, lat2) = geohash.decode(score1), geohash.decode(score2)
    return distance_text(geohash.distance(lon1, lat1, lon2, lat2) / conversion)


# -- searching ---------------------------------------------------------------------------------
class _Kind:
    """Which search command: how the centre is given and which options it takes."""

    def __init__(self, centre: str, store_options: bool = False, geosearch: bool = False,
                 searchstore: bool = False):
        self.centre = centre                  # "coords", "member" or "options"
        self.store_options = store_options    # STORE key / STOREDIST key accepted
        self.geosearch = geosearch
        self.searchstore = searchstore


GEORADIUS = _Kind("coords", store_options=True)
GEORADIUS_RO = _Kind("coords")
GEORADIUSBYMEMBER = _Kind("member", store_options=True)
GEORADIUSBYMEMBER_RO = _Kind("member")
GEOSEARCH = _Kind("options", geosearch=True)
GEOSEARCHSTORE = _Kind("options", geosearch=True, searchstore=True)


def _member_position(z: ZSet, member: bytes) -> tuple[float, float]:
    score = z.score(member)
    if score is None:
        raise BAD_MEMBER
    return geohash.decode(score)


class _Query:
    __slots__ = ("centre", "conversion", "radius", "width", "height", "withdist", "withhash",
                 "withcoord", "sort", "any", "count", "store_key", "storedist")

    def __init__(self):
        self.centre = self.conversion = self.radius = self.width = self.height = None
        self.withdist = self.withhash = self.withcoord = self.any = self.storedist = False
        self.sort, self.count, self.store_key = None, 0, None


def _parse(argv, kind: _Kind, src: int, z: ZSet | None) -> _Query:
    """The search's arguments, checked in Valkey's order with Valkey's errors."""
    q = _Query()
    if kind.centre == "coords":
        base = 6
        q.centre = lonlat_arg(argv[2], argv[3])
        q.radius = _distance_arg(argv[4], "radius")
        if q.radius < 0:
            raise ReplyError("ERR radius cannot be negative")
        q.conversion = unit_arg(argv[5])
    elif kind.centre == "member":
        base = 5
        if z is not None:                     # no source: parse on, the reply is empty
            q.centre = _member_position(z, argv[2])
            q.radius = _distance_arg(argv[3], "radius")
            if q.radius < 0:
                raise ReplyError("ERR radius cannot be negative")
            q.conversion = unit_arg(argv[4])
    else:
        base = src + 1
        if kind.searchstore:
            q.store_key = argv[1]
    frommember = fromlonlat = byradius = bybox = False
    i, n = base, len(argv)
    while i < n:
        arg = argv[i].lower()
        left = n - i - 1                      # arguments after this one
        if arg == b"withdist":
            q.withdist = True
        elif arg == b"withhash":
            q.withhash = True
        elif arg == b"withcoord":
            q.withcoord = True
        elif arg == b"any":
            q.any = True
        elif arg == b"asc":
            q.sort = "asc"
        elif arg == b"desc":
            q.sort = "desc"
        elif arg == b"count" and left >= 1:
            count = parse_int(argv[i + 1])
            if count is None:
                raise NOT_INTEGER
            if count <= 0:
                raise ReplyError("ERR COUNT must be > 0")
            q.count = count
            i += 1
        elif arg in (b"store", b"storedist") and left >= 1 and kind.store_options:
            q.store_key, q.storedist = argv[i + 1], arg == b"storedist"
            i += 1
        elif arg == b"storedist" and kind.searchstore:
            q.storedist = True
        elif arg == b"frommember" and left >= 1 and kind.geosearch and not fromlonlat:
            if z is not None:
                q.centre = _member_position(z, argv[i + 1])
            frommember = True
            i += 1
        elif arg == b"fromlonlat" and left >= 2 and kind.geosearch and not frommember:
            q.centre = lonlat_arg(argv[i + 1], argv[i + 2])
            fromlonlat = True
            i += 2
        elif arg == b"byradius" and left >= 2 and kind.geosearch and not bybox:
            q.radius = _distance_arg(argv[i + 1], "radius")
            if q.radius < 0:
                raise ReplyError("ERR radius cannot be negative")
            q.conversion = unit_arg(argv[i + 2])
            q.width = q.height = None
            byradius = True
            i += 2
        elif arg == b"bybox" and left >= 3 and kind.geosearch and not byradius:
            q.width = _distance_arg(argv[i + 1], "width")
            q.height = _distance_arg(argv[i + 2], "height")
            if q.height < 0 or q.width < 0:
                raise ReplyError("ERR height or width cannot be negative")
            q.conversion = unit_arg(argv[i + 3])
            q.radius = None
            bybox = True
            i += 3
        else:
            raise SYNTAX
        i += 1
    name = argv[0].decode("utf-8", "replace")
    if q.store_key is not None and (q.withdist or q.withhash or q.withcoord):
        raise ReplyError("ERR %s is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
                         % ("GEOSEARCHSTORE" if kind.searchstore
                            else "STORE option in GEORADIUS"))
    if kind.geosearch and not (frommember or fromlonlat):
        raise ReplyError(f"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")
    if kind.geosearch and not (byradius or bybox):
        raise ReplyError(f"ERR exactly one of BYRADIUS and BYBOX can be specified for {name}")
    if q.any and not q.count:
        raise ReplyError("ERR the ANY argument requires COUNT argument")
    return q


def points_in_shape(z: ZSet, shape: geohash.Shape, limit: int = 0) -> list:
    """[(member, score, distance in metres, longitude, latitude)] of the members inside
    ``shape``, in Valkey's scan order: cell by cell, each cell in score order; stop at
    ``limit`` points (0: no limit)."""
    step, cells = geohash.search_cells(shape)
    found, last = [], None
    for index, cell in enumerate(cells):
        if cell is None:
            continue
        # huge areas: adjacent neighbours can be the same cell; Valkey skips a repeat of
        # the cell processed just before (never comparing with the centre, as it does)
        if last and cell == cells[last]:
            continue
        if found and limit and len(found) >= limit:
            break
        low, high = geohash.cell_score_range(cell, step)
        lo, hi = z.score_span(float(low), False, float(high), True)
        for member, score in z.items(lo, hi):
            longitude, latitude = geohash.decode(score)
            d = shape.distance_if_inside(longitude, latitude)
            if d is not None:
                found.append((member, score, d, longitude, latitude))
            if found and limit and len(found) >= limit:
                break
        last = index
    return found


def _search(ctx, argv, kind: _Kind, src: int):
    z = ctx.lookup_typed(argv[src], ZSet)
    q = _parse(argv, kind, src, z)
    event = "geosearchstore" if kind.geosearch else "georadiusstore"
    if z is None:                             # no source: delete the destination, or []
        if q.store_key is not None:
            return store_zset(ctx, q.store_key, ZSet(), event)
        return []
    if q.count and q.sort is None and not q.any:
        q.sort = "asc"                        # COUNT means "the nearest N"
    shape = geohash.Shape(q.centre[0], q.centre[1], q.conversion, radius=q.radius,
                          width=q.width, height=q.height)
    points = points_in_shape(z, shape, q.count if q.any else 0)
    if q.count and q.count < len(points):
        # Valkey sorts only the first COUNT places, with its partial quicksort: equal
        # distances come out in its order, so the same algorithm is used here
        if q.sort is not None:
            partial_sort(points, q.sort == "desc", q.count - 1)
        points = points[:q.count]
    elif q.sort is not None:    # qsort, which glibc implements as a stable merge sort
        points.sort(key=lambda p: p[2], reverse=q.sort == "desc")
    if q.store_key is not None:
        stored = ZSet((member, d / q.conversion if q.storedist else score)
                      for member, score, d, _, _ in points)
        return store_zset(ctx, q.store_key, stored, event)
    if not (q.withdist or q.withhash or q.withcoord):
        return [p[0] for p in points]
    out = []
    for member, score, d, longitude, latitude in points:
        entry = [member]
        if q.withdist:
            entry.append(distance_text(d / q.conversion))
        if q.withhash:
            entry.append(int(score))
        if q.withcoord:
            entry.append([coordinate(longitude), coordinate(latitude)])
        out.append(entry)
    return out


def partial_sort(points: list, descending: bool, last: int) -> None:
    """Sort ``points`` by distance far enough that positions ``0..last`` hold the right
    points in order: Valkey's ``pqsort`` (Bentley & McIlroy's quicksort that skips the
    partitions outside the wanted range), step for step, so that ties come out alike."""
    sign = -1 if descending else 1

    def cmp(i, j):
        a, b = points[i][2], points[j][2]
        return sign * ((a > b) - (a < b))

    def swap(i, j):
        points[i], points[j] = points[j], points[i]

    def med3(a, b, c):
        if cmp(a, b) < 0:
            return b if cmp(b, c) < 0 else (c if cmp(a, c) < 0 else a)
        return b if cmp(b, c) > 0 else (a if cmp(a, c) < 0 else c)

    def wanted(first, n):           # does [first, first + n) overlap [0, last]?
        end = first + n - 1
        return not ((0 < first and last < first) or (0 > end and last > end))

    def sort(base, n):
        while True:
            if n < 7:
                for m in range(base + 1, base + n):
                    k = m
                    while k > base and cmp(k - 1, k) > 0:
                        swap(k, k - 1)
                        k -= 1
                return
            pm = base + n // 2
            if n > 7:
                pl, pn = base, base + n - 1
                if n > 40:
                    d = n // 8
                    pl = med3(pl, pl + d, pl + 2 * d)
                    pm = med3(pm - d, pm, pm + d)
                    pn = med3(pn - 2 * d, pn - d, pn)
                pm = med3(pl, pm, pn)
            swap(base, pm)
            pa = pb = base + 1
            pc = pd = base + n - 1
            while True:
                while pb <= pc and (c := cmp(pb, base)) <= 0:
                    if c == 0:
                        swap(pa, pb)
                        pa += 1
                    pb += 1
                while pb <= pc and (c := cmp(pc, base)) >= 0:
                    if c == 0:
                        swap(pc, pd)
                        pd -= 1
                    pc -= 1
                if pb > pc:
                    break
                swap(pb, pc)
                pb += 1
                pc -= 1
            pn = base + n
            r = min(pa - base, pb - pa)
            for k in range(r):
                swap(base + k, pb - r + k)
            r = min(pd - pc, pn - pd - 1)
            for k in range(r):
                swap(pb + k, pn - r + k)
            r = pb - pa
            if r > 1 and wanted(base, r):
                sort(base, r)
            r = pd - pc
            if r > 1 and wanted(pn - r, r):
                base, n = pn - r, r
                continue
            return

    sort(0, len(points))


def store_key_of(argv) -> list:
    """Keys of GEORADIUS[BYMEMBER]: the source and the last STORE/STOREDIST destination
    (Valkey's ``georadiusGetKeys``, which scans from the sixth argument)."""
    stored, i = None, 5
    while i < len(argv):
        if argv[i].lower() in (b"store", b"storedist") and i + 1 < len(argv):
            stored = argv[i + 1]
            i += 1
        i += 1
    return [argv[1]] if stored is None else [argv[1], stored]


@command("GEOSEARCH", -7, "readonly", 1, 1, 1, group="geo", since="6.2.0")
def geosearch(ctx, argv):
    """Members within a radius or a box of a member or a point."""
    return _search(ctx, argv, GEOSEARCH, 1)


@command("GEOSEARCHSTORE", -8, "write denyoom", 1, 2, 1, group="geo", since="6.2.0")
def geosearchstore(ctx, argv):
    """GEOSEARCH into a sorted set (scores: geohashes, or distances with STOREDIST)."""
    return _search(ctx, argv, GEOSEARCHSTORE, 2)


@command("GEORADIUS", -6, "write denyoom movablekeys", 1, 1, 1, group="geo", since="3.2.0",
         find_keys=store_key_of)
def georadius(ctx, argv):
    """Members within a radius of a point [STORE|STOREDIST key] (deprecated: GEOSEARCH)."""
    return _search(ctx, argv, GEORADIUS, 1)


@command("GEORADIUSBYMEMBER", -5, "write denyoom movablekeys", 1, 1, 1, group="geo",
         since="3.2.0", find_keys=store_key_of)
def georadiusbymember(ctx, argv):
    """Members within a radius of a member [STORE|STOREDIST key] (deprecated: GEOSEARCH)."""
    return _search(ctx, argv, GEORADIUSBYMEMBER, 1)


@command("GEORADIUS_RO", -6, "readonly", 1, 1, 1, group="geo", since="3.2.10")
def georadius_ro(ctx, argv):
    """GEORADIUS without STORE (deprecated: GEOSEARCH)."""
    return _search(ctx, argv, GEORADIUS_RO, 1)


@command("GEORADIUSBYMEMBER_RO", -5, "readonly", 1, 1, 1, group="geo", since="3.2.10")
def georadiusbymember_ro(ctx, argv):
    """GEORADIUSBYMEMBER without STORE (deprecated: GEOSEARCH)."""
    return _search(ctx, argv, GEORADIUSBYMEMBER_RO, 1)
