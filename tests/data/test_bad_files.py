"""The shared many-files reader: every item is tried and one error names every bad one."""

import pytest

from contrastive_signals.data.bad_files import BadFilesError, problem_line, read_each


class ToyError(BadFilesError):
    kind = "toy"


def read(text: str) -> int:
    if text == "crash":
        raise RuntimeError("a bug, not a bad file")
    if text.startswith("many"):
        raise BadFilesError([("x.part1", "bad"), ("x.part2", "worse")])
    return int(text)  # ValueError for text that is no number


def test_good_items_are_read_in_order():
    assert read_each([("a", "1"), ("b", "2")], read) == [1, 2]


def test_every_failure_is_listed_once_sorted_after_every_item_was_tried():
    tried = []

    def spy(text):
        tried.append(text)
        return read(text)

    with pytest.raises(ToyError) as error:
        read_each([("z.txt", "nope"), ("a.txt", "1"), ("m.txt", "many"), ("b.txt", "?")], spy,
                  error=ToyError, problems=[("c.txt", "missing")], folder="/data")
    assert tried == ["nope", "1", "many", "?"]
    assert [file for file, _ in error.value.problems] == ["b.txt", "c.txt", "x.part1", "x.part2",
                                                          "z.txt"]
    message = str(error.value)
    assert message.startswith("5 bad toy file(s) in /data:\n")
    assert "  - c.txt: missing" in message and "  - x.part2: worse" in message
    assert "  - z.txt: invalid literal for int() with base 10: 'nope'" in message


def test_errors_outside_catch_propagate_at_once():
    with pytest.raises(RuntimeError, match="a bug"):
        read_each([("a", "crash"), ("b", "nope")], read)
    with pytest.raises(ValueError, match="invalid literal"):
        read_each([("a", "nope")], read, catch=())


def test_a_problem_that_names_its_file_is_not_prefixed_twice():
    assert problem_line("/d/f.ts", "/d/f.ts, line 3: bad") == "/d/f.ts, line 3: bad"
    assert problem_line("f.ts", "bad") == "f.ts: bad"
