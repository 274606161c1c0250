"""Geo commands in the pure keyspace: the geohash arithmetic, the searches, the effects.

What redis-server answers for the same commands is checked in
``test_differential_geo.py``; here are the building blocks (interleaving, cells,
neighbours, distances, spellings), the propagated forms and events, a search against a
brute-force scan, and a replay property: replaying what geo commands propagate rebuilds
the same keyspace.
"""

from __future__ import annotations

import random

import pytest

from workbench.resp import NULL_ARRAY, ReplyError, RequestParser, encode_command
from workbench.store import Keyspace, lookup
from workbench.store import geohash
from workbench.store.cmd_geo import coordinate, distance_text, points_in_shape
from workbench.store.zset import ZSet

from keyspace_helpers import outcome as reply, run

PALERMO = (13.361389, 38.115556)
CATANIA = (15.087269, 37.502669)


@pytest.fixture
def ks():
    k = Keyspace()
    run(k, "GEOADD", "Sicily", *PALERMO, "Palermo", *CATANIA, "Catania")
    return k


# -- the geohash arithmetic ----------------------------------------------------------------
def test_interleave_puts_latitude_in_even_bits_and_inverts():
    assert geohash.interleave(0b11, 0) == 0b0101
    assert geohash.interleave(0, 0b11) == 0b1010
    rng = random.Random(3)
    for _ in range(500):
        x, y = rng.getrandbits(32), rng.getrandbits(32)
        assert geohash.deinterleave(geohash.interleave(x, y)) == (x, y)


def test_known_scores_positions_and_hashes():
    """The values Valkey's documentation shows for Palermo and Catania."""
    assert geohash.score_of(*PALERMO) == 3479099956230698
    assert geohash.score_of(*CATANIA) == 3479447370796909
    lon, lat = geohash.decode(3479099956230698)
    assert (coordinate(lon), coordinate(lat)) == (b"13.36138933897018433", b"38.11555639549629859")
    assert geohash.geohash_string(3479099956230698) == b"sqc8b49rny0"
    assert geohash.geohash_string(3479447370796909) == b"sqdtr74hyu0"
    assert distance_text(geohash.distance(*geohash.decode(3479099956230698),
                                          *geohash.decode(3479447370796909))) == b"166274.1516"


def test_encode_rejects_points_outside_the_indexable_area():
    assert geohash.encode(180.0001, 0) is None
    assert geohash.encode(0, 85.06) is None
    assert geohash.encode(0, -85.06) is None
    assert geohash.encode(180, 85.05112878) is not None      # the edges themselves are fine


def test_decode_returns_the_centre_of_a_cell_within_a_metre():
    rng = random.Random(1)
    for _ in range(300):
        lon, lat = rng.uniform(-180, 180), rng.uniform(-85, 85)
        dlon, dlat = geohash.decode(geohash.score_of(lon, lat))
        assert geohash.distance(lon, lat, dlon, dlat) < 1.0
        # encoding the decoded centre gives the very same cell back
        assert geohash.score_of(dlon, dlat) == geohash.score_of(lon, lat)


def test_neighbours_are_adjacent_cells_and_moves_undo_each_other():
    rng = random.Random(2)
    for _ in range(200):
        step = rng.randrange(1, 27)
        cell = geohash.encode(rng.uniform(-179, 179), rng.uniform(-84, 84), step)
        around = geohash.neighbours(cell, step)
        assert geohash.neighbours(around["east"], step)["west"] == cell
        assert geohash.neighbours(around["north"], step)["south"] == cell
        assert geohash.neighbours(around["north_east"], step)["south_west"] == cell
        (lo_lon, hi_lon), (lo_lat, hi_lat) = geohash.cell_area(cell, step)
        if hi_lon < 180:
            assert geohash.cell_area(around["east"], step)[0][0] == pytest.approx(hi_lon)
        if hi_lat < geohash.LAT_MAX:
            assert geohash.cell_area(around["north"], step)[1][0] == pytest.approx(hi_lat)


def test_cell_score_range_holds_exactly_the_points_of_the_cell():
    step = 10
    cell = geohash.encode(*PALERMO, step)
    low, high = geohash.cell_score_range(cell, step)
    assert low <= geohash.score_of(*PALERMO) < high
    assert not low <= geohash.score_of(*CATANIA) < high


def test_estimate_step_shrinks_with_the_radius_and_near_the_poles():
    assert geohash.estimate_step(0, 0) == 26
    assert geohash.estimate_step(100, 0) > geohash.estimate_step(100_000, 0)
    assert geohash.estimate_step(100, 70) == geohash.estimate_step(100, 0) - 1
    assert geohash.estimate_step(100, -85) == geohash.estimate_step(100, 0) - 2
    assert geohash.estimate_step(1e9, 0) == 1


def test_score_bits_converts_any_score_as_x86_c_does():
    assert geohash.score_bits(3.7) == 3
    assert geohash.score_bits(-1.0) == 2**64 - 1
    assert geohash.score_bits(float("inf")) == 2**63
    assert geohash.score_bits(1e300) == 0


# -- spellings -------------------------------------------------------------------------------
def test_distances_round_half_to_even_on_the_scaled_double():
    assert distance_text(0.0) == b"0.0000"
    assert distance_text(1.0) == b"1.0000"
    assert distance_text(0.09375) == b"0.0938"      # 937.5 -> 938
    assert distance_text(0.03125) == b"0.0312"      # 312.5 -> 312 (llrint: half to even)
    assert distance_text(1234.56789) == b"1234.5679"


def test_coordinates_are_long_double_human_form():
    assert coordinate(1.5) == b"1.5"
    assert coordinate(2.0) == b"2"
    assert coordinate(-0.0) == b"0"
    assert coordinate(0.1) == b"0.10000000000000001"


# -- commands, effects, events -------------------------------------------------------------------
def test_geoadd_is_propagated_as_the_zadd_it_amounts_to(ks):
    out = run(ks, "GEOADD", "Sicily", "CH", 13.5, 38.0, "Palermo", 1, 1, "new")
    assert out.reply == 2
    assert out.propagate == [[b"zadd", b"Sicily", b"CH",
                              b"%d" % geohash.score_of(13.5, 38.0), b"Palermo",
                              b"%d" % geohash.score_of(1, 1), b"new"]]
    assert out.events == [("z", "zadd", 0, b"Sicily")]
    same = run(ks, "GEOADD", "Sicily", 1, 1, "new")
    assert same.reply == 0 and same.propagate == [] and same.events == []
    assert reply(ks, "GEOADD", "Sicily", 200, 1, "x") == (
        "error", "ERR invalid longitude,latitude pair 200.000000,1.000000")
    assert reply(ks, "GEOADD", "Sicily", "NX", "XX", 1, 1, "x") == ("error", "ERR syntax error")
    assert reply(ks, "GEOADD", "Sicily", "CH", "CH", "CH") == ("error", "ERR syntax error")


def test_geoadd_checks_every_pair_before_the_key_type():
    k = Keyspace()
    run(k, "SET", "s", "v")
    assert reply(k, "GEOADD", "s", 1, 1, "a", 1, 100, "b") == (
        "error", "ERR invalid longitude,latitude pair 1.000000,100.000000")
    assert reply(k, "GEOADD", "s", 1, 1, "a")[1].startswith("WRONGTYPE")


def test_geopos_geohash_geodist(ks):
    assert reply(ks, "GEOPOS", "Sicily", "Palermo", "nope") == [
        [b"13.36138933897018433", b"38.11555639549629859"], NULL_ARRAY]
    assert reply(ks, "GEOHASH", "Sicily", "Catania", "nope") == [b"sqdtr74hyu0", None]
    assert reply(ks, "GEODIST", "Sicily", "Palermo", "Catania", "km") == b"166.2742"
    assert reply(ks, "GEODIST", "Sicily", "Palermo", "nope") is None
    assert reply(ks, "GEODIST", "Sicily", "Palermo", "Catania", "yd") == (
        "error", "ERR unsupported unit provided. please use M, KM, FT, MI")


def test_search_replies_and_sorting(ks):
    assert reply(ks, "GEOSEARCH", "Sicily", "FROMLONLAT", 15, 37, "BYRADIUS", 200, "km",
                 "ASC", "WITHDIST", "WITHHASH") == [
        [b"Catania", b"56.4413", 3479447370796909],
        [b"Palermo", b"190.4424", 3479099956230698]]
    assert reply(ks, "GEOSEARCH", "Sicily", "FROMLONLAT", 15, 37, "BYRADIUS", 200, "km",
                 "DESC") == [b"Palermo", b"Catania"]
    # COUNT without an order means the nearest ones
    assert reply(ks, "GEORADIUS", "Sicily", 15, 37, 200, "km", "COUNT", 1) == [b"Catania"]
    assert reply(ks, "GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", 400, 400, "km",
                 "ASC") == [b"Palermo", b"Catania"]
    assert reply(ks, "GEOSEARCH", "Sicily", "FROMLONLAT", 15, 37, "BYRADIUS", 1, "m") == []
    assert reply(ks, "GEOSEARCH", "nokey", "FROMMEMBER", "x", "BYRADIUS", 1, "m") == []


def test_search_errors_in_valkeys_order(ks):
    run(ks, "SET", "s", "v")
    # the source's type is checked before any argument
    assert reply(ks, "GEOSEARCH", "s", "FROMLONLAT", 999, 1, "BYRADIUS", 1, "km")[1].startswith(
        "WRONGTYPE")
    assert reply(ks, "GEOSEARCH", "Sicily", "FROMLONLAT", 1, 1, "ASC", "WITHDIST") == (
        "error", "ERR exactly one of BYRADIUS and BYBOX can be specified for GEOSEARCH")
    assert reply(ks, "GEOSEARCH", "Sicily", "BYRADIUS", 1, "km", "ASC", "ASC") == (
        "error", "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for GEOSEARCH")
    assert reply(ks, "GEOSEARCH", "Sicily", "FROMMEMBER", "nope", "BYRADIUS", "x", "km") == (
        "error", "ERR could not decode requested zset member")
    assert reply(ks, "GEORADIUS", "Sicily", 15, 37, -1, "km") == (
        "error", "ERR radius cannot be negative")
    assert reply(ks, "GEORADIUS", "Sicily", 15, 37, 1, "km", "STORE", "d", "WITHDIST") == (
        "error", "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH "
                 "and WITHCOORD options")
    assert reply(ks, "GEOSEARCH", "Sicily", "FROMLONLAT", 1, 1, "BYRADIUS", 1, "km", "ANY") == (
        "error", "ERR the ANY argument requires COUNT argument")
    assert reply(ks, "GEORADIUS_RO", "Sicily", 15, 37, 1, "km", "STORE", "d") == (
        "error", "ERR syntax error")


def test_store_forms_propagate_as_themselves_and_fire_their_events(ks):
    argv = ["GEOSEARCHSTORE", "d", "Sicily", "FROMLONLAT", 15, 37, "BYRADIUS", 200, "km",
            "STOREDIST"]
    out = run(ks, *argv)
    assert out.reply == 2
    assert out.propagate == [[str(w).encode() for w in argv]]
    assert out.events == [("z", "geosearchstore", 0, b"d")]
    stored = ks.dbs[0].data[b"d"]
    assert [m for m, _ in stored.items()] == [b"Catania", b"Palermo"]
    assert stored.score(b"Catania") == pytest.approx(56.4413, abs=1e-4)
    out = run(ks, "GEORADIUS", "Sicily", 15, 37, 200, "km", "STORE", "d")
    assert out.events == [("z", "georadiusstore", 0, b"d")]
    assert ks.dbs[0].data[b"d"] == ks.dbs[0].data[b"Sicily"]
    out = run(ks, "GEORADIUS", "Sicily", 15, 37, 1, "m", "STORE", "d")
    assert out.reply == 0 and out.events == [("g", "del", 0, b"d")]
    assert b"d" not in ks.dbs[0].data
    nothing = run(ks, "GEORADIUS", "Sicily", 15, 37, 200, "km")
    assert nothing.propagate == [] and nothing.events == []


def test_command_table_entries():
    georadius = lookup(b"georadius")
    assert georadius.is_write and "movablekeys" in georadius.flags
    assert georadius.keys([b"GEORADIUS", b"src", b"1", b"1", b"1", b"km", b"STORE", b"a",
                           b"STOREDIST", b"b"]) == [b"src", b"b"]
    assert georadius.keys([b"GEORADIUS", b"src", b"1", b"1", b"1", b"km"]) == [b"src"]
    assert lookup(b"GEOSEARCHSTORE").keys([b"GEOSEARCHSTORE", b"d", b"s"]) == [b"d", b"s"]
    assert lookup(b"georadius_ro").is_readonly and not lookup(b"georadius_ro").is_write
    assert (lookup(b"geoadd").arity, lookup(b"geosearch").arity) == (-5, -7)


# -- searches against a brute-force scan --------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_the_nine_cells_find_every_point_inside_the_shape(seed):
    rng = random.Random(seed)
    centre_lon, centre_lat = rng.uniform(-170, 170), rng.uniform(-70, 70)
    z = ZSet()
    for i in range(600):
        lon = min(max(centre_lon + rng.uniform(-3, 3), -180), 180)
        lat = min(max(centre_lat + rng.uniform(-3, 3), -85), 85)
        z.add(b"m%d" % i, float(geohash.score_of(lon, lat)))
    for _ in range(30):
        lon, lat = centre_lon + rng.uniform(-1, 1), centre_lat + rng.uniform(-1, 1)
        if rng.random() < 0.5:
            shape = geohash.Shape(lon, lat, 1000.0, radius=rng.uniform(0.5, 200))
        else:
            shape = geohash.Shape(lon, lat, 1000.0, width=rng.uniform(1, 300),
                                  height=rng.uniform(1, 300))
        found = {member for member, *_ in points_in_shape(z, shape)}
        expected = {member for member, score in z.items()
                    if shape.distance_if_inside(*geohash.decode(score)) is not None}
        assert found == expected


def test_any_stops_at_count_in_scan_order(ks):
    for i in range(50):
        run(ks, "GEOADD", "Sicily", 15 + i / 100, 37, "p%d" % i)
    everything = reply(ks, "GEOSEARCH", "Sicily", "FROMLONLAT", 15, 37, "BYRADIUS", 500, "km")
    first = reply(ks, "GEOSEARCH", "Sicily", "FROMLONLAT", 15, 37, "BYRADIUS", 500, "km",
                  "COUNT", 5, "ANY")
    assert first == everything[:5]


# -- replay ----------------------------------------------------------------------------------------
PLACES = [b"g%d" % i for i in range(3)]


def random_geo_command(rng: random.Random) -> list:
    """A geo write (or a read-only search), sometimes failing or changing nothing."""
    key, dst = rng.choice(PLACES), rng.choice(PLACES + [b"d"])
    lon, lat = b"%.5f" % rng.uniform(10, 16), b"%.5f" % rng.uniform(36, 40)
    member = b"m%d" % rng.randrange(30)
    radius = b"%d" % rng.choice([10, 100, 300])
    unit = rng.choice([b"km", b"mi"])
    return rng.choice([
        [b"GEOADD", key, lon, lat, member],
        [b"GEOADD", key, rng.choice([b"NX", b"XX", b"CH"]), lon, lat, member, b"1", b"37", b"m1"],
        [b"GEOADD", key, lon, b"91", member],
        [b"GEOSEARCHSTORE", dst, key, b"FROMLONLAT", lon, lat, b"BYRADIUS", radius, unit],
        [b"GEOSEARCHSTORE", dst, key, b"FROMMEMBER", member, b"BYBOX", radius, radius, unit,
         b"STOREDIST", b"DESC", b"COUNT", b"4"],
        [b"GEORADIUS", key, lon, lat, radius, unit, rng.choice([b"STORE", b"STOREDIST"]), dst],
        [b"GEORADIUSBYMEMBER", key, member, radius, unit, b"STORE", dst, b"COUNT", b"3", b"ANY"],
        [b"GEORADIUS", key, lon, lat, radius, unit, b"WITHDIST"],
        [b"ZREM", key, member],
        [b"PEXPIRE", dst, b"%d" % rng.randrange(1, 400)],
    ])


@pytest.mark.parametrize("seed", range(4))
def test_replaying_the_propagated_geo_commands_rebuilds_the_keyspace(seed):
    rng = random.Random(seed)
    primary, stream, now = Keyspace(), [], 1_000_000
    forms = set()
    for _ in range(600):
        now += rng.randrange(0, 100)
        out = primary.execute(random_geo_command(rng), now_ms=now)
        stream += [encode_command(argv) for argv in out.propagate]
        forms.update(argv[0].upper() for argv in out.propagate)
    assert {b"ZADD", b"GEOSEARCHSTORE", b"GEORADIUS", b"GEORADIUSBYMEMBER"} <= forms
    replica = Keyspace()
    for argv in RequestParser().feed(b"".join(stream)):
        out = replica.execute(argv, now_ms=now + 5_000, replica=True)
        assert not isinstance(out.reply, ReplyError), (argv, out.reply)
    assert primary.dbs[0].data == replica.dbs[0].data
    assert primary.dbs[0].expires == replica.dbs[0].expires
