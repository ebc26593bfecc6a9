"""Per-site text columns: each site takes the values of the structure it came from."""

from __future__ import annotations

from xanesnet.pipeline.columns import StructureColumns, site_columns


def _structures(ids: list[str]) -> StructureColumns:
    return StructureColumns(ids, {"source": [f"{i}.xyz" for i in ids], "info.tag": ids[::-1]})


def test_one_site_per_structure_takes_each_structures_values():
    structures = _structures(["a", "b", "c"])
    columns = site_columns(structures, ["a", "b", "c"])
    assert columns == {"source": ["a.xyz", "b.xyz", "c.xyz"], "info.tag": ["c", "b", "a"]}
    # a copy: the caller may keep it while the structure table goes on
    assert columns["source"] is not structures.values["source"]


def test_several_sites_failed_and_siteless_structures_are_matched_in_order():
    structures = _structures(["a", "b", "c", "d"])
    # "b" failed (or had no site); "a" has two sites, "c" one, "d" three
    columns = site_columns(structures, ["a", "a", "c", "d", "d", "d"])
    assert columns["source"] == ["a.xyz", "a.xyz", "c.xyz", "d.xyz", "d.xyz", "d.xyz"]
    assert columns["info.tag"] == ["d", "d", "b", "a", "a", "a"]


def test_repeated_structure_ids_take_the_first_structure_with_the_id_from_the_last_match():
    structures = StructureColumns(["x", "y", "x"], {"source": ["1", "2", "3"]})
    assert site_columns(structures, ["x", "x", "x"])["source"] == ["1", "1", "1"]
    assert site_columns(structures, ["y", "x"])["source"] == ["2", "3"]


def test_no_sites_gives_empty_columns():
    assert site_columns(_structures(["a", "b"]), []) == {"source": [], "info.tag": []}
