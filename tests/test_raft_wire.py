"""The Raft wire codec: messages to frames and back, a stream cut anywhere, damaged bytes."""

import random
import struct
import zlib

import pytest

from workbench.consensus.wire import (MAX_MESSAGE_BYTES, MESSAGE_MAGIC, FrameReader, WireError,
                                      decode_message, encode_message)
from workbench.raft.messages import (AppendEntries, AppendResponse, InstallSnapshot, Message,
                                     TimeoutNow, VoteRequest, VoteResponse)
from workbench.raft.types import Entry, EntryKind, Membership, Snapshot, SnapshotMeta

BIG = 2**63 + 12345
U64_MAX = 2**64 - 1
HEADER = 12


def frame(payload: bytes) -> bytes:
    """A frame with a correct checksum around any payload."""
    return MESSAGE_MAGIC + struct.pack(">II", len(payload), zlib.crc32(payload)) + payload


def payload_of(message) -> bytes:
    return encode_message(message)[HEADER:]


def snapshot(index=7, term=3, voters="abc", learners="", data=b"state"):
    return Snapshot(SnapshotMeta(index, term, Membership(frozenset(voters), frozenset(learners))),
                    data)


SAMPLES = [
    VoteRequest(src="n1", dst="n2", term=1, last_log_index=0, last_log_term=0),
    VoteRequest(src="n1", dst="n2", term=BIG, pre_vote=True, last_log_index=U64_MAX,
                last_log_term=BIG - 1, transfer=True),
    VoteResponse(src="n2", dst="n1", term=5, granted=True),
    VoteResponse(src="n2", dst="n1", term=0, pre_vote=True, granted=False),
    AppendEntries(src="a", dst="b", term=2, prev_log_index=0, prev_log_term=0, leader_commit=0),
    AppendEntries(src="a", dst="b", term=2, prev_log_index=4, prev_log_term=1, leader_commit=3,
                  read_context=0),
    AppendEntries(src="leader", dst="ünïcødé", term=BIG, prev_log_index=BIG, prev_log_term=BIG,
                  leader_commit=BIG, read_context=U64_MAX,
                  entries=(Entry(BIG + 1, BIG, EntryKind.NOOP),
                           Entry(BIG + 2, BIG, EntryKind.COMMAND, b"SET k \r\n\x00v\x00\r\n"),
                           Entry(BIG + 3, BIG, EntryKind.CONFIG, b"add_learner n4"),
                           Entry(BIG + 4, BIG, EntryKind.COMMAND, bytes(range(256))))),
    AppendResponse(src="b", dst="a", term=2, success=True, match_index=9, read_context=17),
    AppendResponse(src="b", dst="a", term=2, success=False, conflict_index=3, conflict_term=0,
                   rejected_index=5),
    AppendResponse(src="b", dst="a", term=BIG, success=False, conflict_index=BIG,
                   conflict_term=None, rejected_index=U64_MAX),
    InstallSnapshot(src="a", dst="d", term=4, snapshot=snapshot(learners="de", data=b"")),
    InstallSnapshot(src="a", dst="b", term=4,
                    snapshot=snapshot(index=BIG, term=BIG, voters="", data=b"\r\n\x00" * 9)),
    TimeoutNow(src="a", dst="b", term=6),
    TimeoutNow(src="", dst="", term=0),
]


def stream_of(messages) -> bytes:
    return b"".join(encode_message(m) for m in messages)


# -- round trips -------------------------------------------------------------------------

@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_survives_the_round_trip(message):
    data = encode_message(message)
    assert data[:4] == MESSAGE_MAGIC
    assert decode_message(data[HEADER:]) == message
    assert FrameReader().feed(data) == [message]


def test_samples_cover_every_message_type_and_entry_kind():
    assert {type(m) for m in SAMPLES} == {VoteRequest, VoteResponse, AppendEntries,
                                          AppendResponse, InstallSnapshot, TimeoutNow}
    kinds = {e.kind for m in SAMPLES if isinstance(m, AppendEntries) for e in m.entries}
    assert kinds == set(EntryKind)


def test_the_same_message_always_encodes_to_the_same_bytes():
    a = InstallSnapshot(src="a", dst="b", term=1, snapshot=snapshot(voters="zyxw", learners="qp"))
    b = InstallSnapshot(src="a", dst="b", term=1, snapshot=snapshot(voters="wxyz", learners="pq"))
    assert encode_message(a) == encode_message(b)


def test_none_and_zero_stay_apart():
    for field in ("conflict_term", "read_context"):
        none = AppendResponse(src="b", dst="a", term=1, success=False, **{field: None})
        zero = AppendResponse(src="b", dst="a", term=1, success=False, **{field: 0})
        assert decode_message(payload_of(none)) == none
        assert decode_message(payload_of(zero)) == zero
        assert getattr(decode_message(payload_of(zero)), field) == 0


def test_a_five_megabyte_snapshot_round_trips():
    data = random.Random(5).randbytes(5 * 1024 * 1024)
    message = InstallSnapshot(src="a", dst="b", term=9,
                              snapshot=snapshot(index=1000, learners="x", data=data))
    assert decode_message(payload_of(message)) == message


def random_message(rng: random.Random) -> Message:
    def number():
        return rng.choice([0, 1, rng.randrange(2**16), rng.randrange(2**64), U64_MAX])

    def optional():
        return None if rng.random() < 0.4 else number()

    def name():
        return "".join(rng.choice("abcdé-_0\u4e2d") for _ in range(rng.randrange(6)))

    def blob():
        return rng.randbytes(rng.choice([0, 1, 2, rng.randrange(300)]))

    common = {"src": name(), "dst": name(), "term": number()}
    kind = rng.randrange(6)
    if kind == 0:
        return VoteRequest(**common, pre_vote=rng.random() < 0.5, last_log_index=number(),
                           last_log_term=number(), transfer=rng.random() < 0.5)
    if kind == 1:
        return VoteResponse(**common, pre_vote=rng.random() < 0.5, granted=rng.random() < 0.5)
    if kind == 2:
        entries = tuple(Entry(number(), number(), rng.choice(list(EntryKind)), blob())
                        for _ in range(rng.randrange(5)))
        return AppendEntries(**common, prev_log_index=number(), prev_log_term=number(),
                             entries=entries, leader_commit=number(), read_context=optional())
    if kind == 3:
        return AppendResponse(**common, success=rng.random() < 0.5, match_index=number(),
                              conflict_index=number(), conflict_term=optional(),
                              read_context=optional(), rejected_index=number())
    if kind == 4:
        members = Membership(frozenset(name() for _ in range(rng.randrange(4))),
                             frozenset(name() for _ in range(rng.randrange(3))))
        return InstallSnapshot(**common, snapshot=Snapshot(
            SnapshotMeta(number(), number(), members), blob()))
    return TimeoutNow(**common)


def test_random_messages_round_trip_alone_and_as_one_stream():
    rng = random.Random(20240611)
    messages = [random_message(rng) for _ in range(500)]
    for message in messages:
        assert decode_message(payload_of(message)) == message
    assert FrameReader().feed(stream_of(messages)) == messages


# -- a stream in pieces ------------------------------------------------------------------

def test_a_stream_cut_at_any_byte_gives_the_same_messages():
    messages = SAMPLES[:3] + SAMPLES[6:8] + SAMPLES[10:11]
    data = stream_of(messages)
    for cut in range(len(data) + 1):
        reader = FrameReader()
        assert reader.feed(data[:cut]) + reader.feed(data[cut:]) == messages, cut
        assert reader.buffered == 0


def test_byte_by_byte_feeding_gives_the_same_messages():
    data = stream_of(SAMPLES)
    reader, got = FrameReader(), []
    for i in range(len(data)):
        got += reader.feed(data[i:i + 1])
    assert got == SAMPLES
    assert reader.buffered == 0


def test_several_frames_in_one_feed_come_out_in_order():
    reader = FrameReader()
    tail = encode_message(SAMPLES[0])
    assert reader.feed(stream_of(SAMPLES) + tail[:7]) == SAMPLES
    assert reader.buffered == 7
    assert reader.feed(tail[7:]) == [SAMPLES[0]]
    assert reader.buffered == 0
    assert reader.feed(b"") == []


def test_a_big_snapshot_in_64k_pieces_is_read_once_and_leaves_nothing_behind():
    data = random.Random(64).randbytes(5 * 1024 * 1024 + 17)
    big = InstallSnapshot(src="a", dst="b", term=2, snapshot=snapshot(data=data))
    after = TimeoutNow(src="a", dst="b", term=2)
    stream = encode_message(big) + encode_message(after)
    reader, got, piece = FrameReader(), [], 64 * 1024
    for start in range(0, len(stream), piece):
        got += reader.feed(stream[start:start + piece])
        if not got:
            assert reader.buffered == start + piece
    assert got == [big, after]
    assert reader.buffered == 0


def test_bytes_of_whole_frames_leave_the_buffer_when_a_partial_one_follows():
    big = encode_message(InstallSnapshot(src="a", dst="b", term=2,
                                         snapshot=snapshot(data=bytes(1024 * 1024))))
    partial = encode_message(SAMPLES[6])[:30]
    reader = FrameReader()
    assert len(reader.feed(big + partial)) == 1
    assert reader.buffered == len(partial)


# -- damaged bytes -----------------------------------------------------------------------

def feed_fails(data: bytes, match: str | None = None) -> None:
    with pytest.raises(WireError, match=match):
        FrameReader().feed(data)


def test_a_flipped_payload_byte_fails_the_checksum():
    data = bytearray(encode_message(SAMPLES[6]))
    for pos in (HEADER, HEADER + 10, len(data) - 1):
        damaged = bytearray(data)
        damaged[pos] ^= 0x40
        feed_fails(bytes(damaged), "checksum")


def test_a_bad_magic_is_refused():
    feed_fails(b"RLE1" + encode_message(SAMPLES[0])[4:], "magic")
    feed_fails(b"*1\r\n$4\r\nPING\r\n", "magic")


def test_a_length_over_the_limit_is_refused_as_soon_as_the_header_arrives():
    header = MESSAGE_MAGIC + struct.pack(">II", MAX_MESSAGE_BYTES + 1, 0)
    reader = FrameReader()
    assert reader.feed(header[:-1]) == []
    with pytest.raises(WireError, match="limit"):
        reader.feed(header[-1:])


def test_a_length_at_the_limit_waits_for_its_body():
    reader = FrameReader()
    assert reader.feed(MESSAGE_MAGIC + struct.pack(">II", MAX_MESSAGE_BYTES, 0)) == []
    assert reader.buffered == HEADER


def test_an_unknown_message_type_is_refused():
    for code in (0, 7, 255):
        feed_fails(frame(bytes([code]) + payload_of(SAMPLES[12])[1:]), "unknown message type")
    feed_fails(frame(b""), "message type")


def test_an_unknown_entry_kind_is_refused():
    message = AppendEntries(src="a", dst="b", term=1, prev_log_index=0, prev_log_term=0,
                            leader_commit=0, entries=(Entry(1, 1, EntryKind.COMMAND, b"x"),))
    payload = bytearray(payload_of(message))
    kind_at = len(payload) - 1 - 4 - 1           # ... kind u8 | length u32 | b"x"
    assert payload[kind_at] == EntryKind.COMMAND
    payload[kind_at] = 9
    feed_fails(frame(bytes(payload)), "entry kind")


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_truncation_of_a_payload_is_refused(message):
    payload = payload_of(message)
    for cut in range(len(payload)):
        with pytest.raises(WireError):
            decode_message(payload[:cut])
    for cut in (0, 1, len(payload) // 2, len(payload) - 1):
        feed_fails(frame(payload[:cut]))


def test_a_length_field_that_runs_past_the_payload_is_refused():
    payload = bytearray(payload_of(SAMPLES[10]))
    data_length_at = len(payload) - 8              # snapshot data is empty: the u64 is last
    payload[data_length_at:] = struct.pack(">Q", U64_MAX)
    feed_fails(frame(bytes(payload)), "runs past")


def test_a_bool_byte_other_than_0_or_1_is_refused():
    payload = bytearray(payload_of(VoteResponse(src="b", dst="a", term=1, granted=True)))
    assert payload[-1] == 1                        # granted is the last field
    payload[-1] = 2
    feed_fails(frame(bytes(payload)), "not a boolean")


def test_trailing_bytes_after_the_last_field_are_refused():
    for message in SAMPLES:
        feed_fails(frame(payload_of(message) + b"\x00"), "unexpected bytes")


def test_a_name_that_is_not_utf8_is_refused():
    payload = bytearray(payload_of(TimeoutNow(src="ab", dst="c", term=1)))
    payload[3:5] = b"\xff\xfe"                    # type u8 | length u16 | "ab"
    feed_fails(frame(bytes(payload)), "utf-8")
    snap = bytearray(payload_of(InstallSnapshot(src="a", dst="b", term=1,
                                                snapshot=snapshot(voters="v", data=b""))))
    voter_at = snap.index(b"v", 1 + 3 + 3 + 8 + 16)
    snap[voter_at] = 0xff
    feed_fails(frame(bytes(snap)), "voters")


def test_random_damage_inside_a_valid_frame_never_escapes_as_another_error():
    rng = random.Random(7)
    payloads = [payload_of(m) for m in SAMPLES] + [payload_of(random_message(rng))
                                                   for _ in range(100)]
    for _ in range(5000):
        payload = bytearray(rng.choice(payloads))
        for _ in range(rng.randrange(1, 4)):
            payload[rng.randrange(len(payload))] = rng.randrange(256)
        try:
            message = decode_message(bytes(payload))
        except WireError:
            continue
        if not isinstance(message, InstallSnapshot):   # (its name lists are re-sorted)
            assert encode_message(message)[HEADER:] == bytes(payload)


def test_after_a_bad_frame_the_reader_refuses_everything():
    reader = FrameReader()
    with pytest.raises(WireError):
        reader.feed(b"XXXX" + bytes(8))
    assert reader.buffered == 0
    with pytest.raises(WireError, match="already failed"):
        reader.feed(encode_message(SAMPLES[0]))


# -- what cannot be sent -----------------------------------------------------------------

@pytest.mark.parametrize("context", ["round-1", 1.5, True, b"\x01", (1,), -1, 2**64])
def test_a_read_context_that_is_not_a_u64_round_number_is_not_sent(context):
    heartbeat = AppendEntries(src="a", dst="b", term=1, prev_log_index=0, prev_log_term=0,
                              leader_commit=0, read_context=context)
    reply = AppendResponse(src="b", dst="a", term=1, success=True, read_context=context)
    for message in (heartbeat, reply):
        with pytest.raises(ValueError, match="read_context") as caught:
            encode_message(message)
        assert not isinstance(caught.value, WireError)


@pytest.mark.parametrize("message", [
    VoteRequest(src="a", dst="b", term=-1, last_log_index=0, last_log_term=0),
    VoteRequest(src="a", dst="b", term=2**64, last_log_index=0, last_log_term=0),
    TimeoutNow(src="a" * 65536, dst="b", term=1),
    AppendResponse(src="b", dst="a", term=1, success=False, conflict_term=-5),
    Message(src="a", dst="b", term=1),
], ids=["negative", "over-u64", "long-name", "negative-optional", "base-class"])
def test_fields_that_cannot_be_sent_raise_value_error(message):
    with pytest.raises(ValueError):
        encode_message(message)
