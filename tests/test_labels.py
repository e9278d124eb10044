import pytest

from estm_core.labels import GEMS9, GTZAN_GENRES, QUADRANTS, deam_quadrant, quadrant, scale_deam


def test_deam_scaling_maps_the_observed_range_to_plus_minus_one():
    assert scale_deam(8.4, 8.1) == pytest.approx((1.0, 1.0))
    assert scale_deam(1.6, 1.6) == pytest.approx((-1.0, -1.0))
    assert scale_deam(5.0, 4.85) == (0.0, 0.0)


@pytest.mark.parametrize("valence, arousal, expected", [
    (6.0, 6.0, "Q1"), (4.0, 6.0, "Q2"), (4.0, 4.0, "Q3"), (6.0, 4.0, "Q4"),
    (5.0, 6.0, "Q2"),  # valence exactly at the centre counts as negative
    (6.0, 4.85, "Q4"),  # arousal exactly at the centre counts as low
    (5.0, 4.85, "Q3"),
    (3.1, 3.0, "Q3"),  # DEAM song 2
])
def test_deam_quadrant_boundaries(valence, arousal, expected):
    assert deam_quadrant(valence, arousal) == expected


def test_quadrant_on_the_scaled_plane():
    assert [quadrant(v, a) for v, a in [(0.1, 0.1), (-0.1, 0.1), (-0.1, -0.1), (0.1, -0.1)]] == list(QUADRANTS.labels)


def test_label_sets():
    assert len(QUADRANTS) == 4 and len(QUADRANTS.descriptions) == 4
    assert GTZAN_GENRES.labels[:3] == ("blues", "classical", "country") and len(GTZAN_GENRES) == 10
    assert len(GEMS9) == 9 and "joyful_activation" in GEMS9.labels
    assert GTZAN_GENRES.index("Jazz") == 5 and QUADRANTS.index("q3") == 2
    with pytest.raises(ValueError, match="unknown genre label 'polka'"):
        GTZAN_GENRES.index("polka")
