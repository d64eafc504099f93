"""The recent publications a node keeps of a room it follows (recent.py), byte for byte."""

from __future__ import annotations

from stelar_core.plugin_api import Position
from stelar_nats.recent import Recent


def filled(start: int, newest: int, size: int = 10) -> Recent:
    recent = Recent(Position("e", start), size)
    for offset in range(start + 1, newest + 1):
        recent.add(Position("e", offset), float(offset), b"f%d" % offset)
    return recent


def test_a_read_it_holds_whole_is_answered_from_memory():
    recent = filled(3, 8)
    assert recent.after(5, Position("e", 7), 0.0) == [(6, b"f6"), (7, b"f7")]
    assert recent.after(3, Position("e", 4), 0.0) == [(4, b"f4")]
    assert recent.after(8, Position("e", 8), 0.0) == []


def test_what_it_does_not_hold_whole_goes_elsewhere():
    recent = filled(3, 8)
    assert recent.after(2, Position("e", 8), 0.0) is None  # older than it holds
    assert recent.after(5, Position("e", 9), 0.0) is None  # not received yet
    assert recent.after(5, Position("other", 7), 0.0) is None  # another epoch


def test_it_keeps_at_most_its_size():
    recent = filled(0, 25, size=10)
    assert recent.after(15, Position("e", 25), 0.0) == [(n, b"f%d" % n) for n in range(16, 26)]
    assert recent.after(14, Position("e", 25), 0.0) is None


def test_a_gap_or_a_new_epoch_starts_it_again():
    recent = filled(0, 5)
    recent.add(Position("e", 9), 9.0, b"f9")  # 6 to 8 never came
    assert recent.start == Position("e", 8) and recent.after(5, Position("e", 9), 0.0) is None
    assert recent.after(8, Position("e", 9), 0.0) == [(9, b"f9")]
    recent.began("new")
    assert recent.start == Position("new", 0) and recent.after(0, Position("new", 0), 0.0) == []
    recent.add(Position("new", 1), 10.0, b"n1")
    assert recent.after(0, Position("new", 1), 0.0) == [(1, b"n1")]


def test_older_ones_read_from_jetstream_are_kept_when_they_join_up():
    recent = filled(5, 7)
    read = [(n, float(n), b"f%d" % n) for n in range(2, 8)]  # a read from 1 up to 7
    recent.extend_back("e", read)
    assert recent.start == Position("e", 1)
    assert recent.after(1, Position("e", 7), 0.0) == [(n, b"f%d" % n) for n in range(2, 8)]
    unjoined = filled(5, 7)
    unjoined.extend_back("e", [(2, 2.0, b"f2"), (3, 3.0, b"f3")])  # 4 and 5 missing
    assert unjoined.start == Position("e", 5)
    unjoined.extend_back("other", [(4, 4.0, b"x"), (5, 5.0, b"x")])
    assert unjoined.start == Position("e", 5)


def test_what_is_older_than_the_rooms_ttl_is_left_out():
    recent = filled(0, 5)
    assert recent.after(0, Position("e", 5), 3.5) == [(4, b"f4"), (5, b"f5")]
