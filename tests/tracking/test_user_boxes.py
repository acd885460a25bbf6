"""tracking/classic/user_boxes.py: the --boxes format (issue 10: categories lower-cased)."""

from __future__ import annotations

from recon4d.tracking.classic.user_boxes import validate_user_boxes


def test_categories_are_lower_cased_and_capitalised_people_are_agents():
    boxes = validate_user_boxes([
        {"category": "Person", "box": [-5, 2, 40, 90], "frame": 0},
        {"category": " Traffic  Cone ", "box": [1, 2, 3, 4], "time_s": 0.5},
        {"category": "DOG", "box": [1, 2, 3, 4], "frame": 1, "is_agent": False},
    ])
    assert [b["category"] for b in boxes] == ["person", "traffic cone", "dog"]
    assert [b["is_agent"] for b in boxes] == [True, False, False]
    assert boxes[0]["box"] == [-5.0, 2.0, 40.0, 90.0]  # kept as given; the trackers clamp to the frame
