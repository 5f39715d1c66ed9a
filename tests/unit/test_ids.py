from chronapilot.common.ids import id_timestamp_ms, is_valid_id, new_id


def test_ids_carry_their_prefix_and_are_well_formed():
    value = new_id("con")
    assert value.startswith("con_")
    assert is_valid_id(value, "con")
    assert not is_valid_id(value, "usr")
    assert not is_valid_id("con_../etc/passwd", "con")


def test_ids_made_later_sort_after_ids_made_earlier_even_within_one_millisecond():
    ids = [new_id("evt") for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_encode_their_creation_time():
    assert id_timestamp_ms(new_id("usr", now_ms=1_700_000_000_123)) == 1_700_000_000_123


def test_ids_are_unguessable_from_a_neighbour():
    a, b = new_id("con", now_ms=1), new_id("con", now_ms=1)
    assert a != b
    # 80 random bits: the two differ in many positions, not just the last character
    assert sum(x != y for x, y in zip(a, b, strict=True)) > 5
