"""Hybrid search's fusion keeps what one side alone finds (rank fusion sank such passages)."""

from kz_jupyter.rag.fusion import fuse, scaled

# The vector side's 50 candidates, cosines spread as a real query's are: a few near, a long tail.
VECTOR = [(row, 0.62 - 0.04 * min(row, 3) - 0.003 * row) for row in range(50)]


def test_a_keyword_only_hit_survives_fusion_in_the_top_5():
    # the keywords rank a vector candidate first and row 99 (unseen by vectors) second
    keyword = [(20, 10.0), (99, 9.0), *((row, 5.0 - row / 10) for row in range(30, 40))]
    fused = [row for row, _ in fuse(VECTOR, keyword)]
    assert 99 in fused[:5]
    rrf = {row: 1 / (60 + rank) for rank, (row, _) in enumerate(VECTOR, start=1)}
    for rank, (row, _) in enumerate(keyword, start=1):
        rrf[row] = rrf.get(row, 0) + 1 / (60 + rank)
    assert sorted(rrf, key=lambda row: -rrf[row]).index(99) >= 5  # where rank fusion put it


def test_what_both_sides_rank_first_comes_first_and_one_side_still_counts():
    fused = fuse(VECTOR, [(0, 3.0), (7, 2.0)])
    assert fused[0] == (0, 1.0)
    assert {row for row, _ in fused} == set(range(50))  # nothing is dropped


def test_scores_are_scaled_between_the_weakest_and_the_best():
    assert scaled([(1, 0.75), (2, 0.5), (3, 0.25)]) == {1: 1.0, 2: 0.5, 3: 0.0}
    assert scaled([(1, 4.0), (2, 1.0)], floor=0.0) == {1: 1.0, 2: 0.25}
    assert scaled([(1, 0.5), (2, 0.5)]) == {1: 1.0, 2: 1.0} and scaled([]) == {}
