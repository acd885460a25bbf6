"""Tests of tracking/classic/people.py: HOG on crops around track boxes, evidence and labels."""

from __future__ import annotations

import numpy as np

from recon4d.tracking.classic.config import ClassicTrackerConfig, hog_available
from recon4d.tracking.classic.people import crop_people, label_tracks, person_evidence, sample_frames


class RecordingDetector:
    """Finds one person filling the middle of every crop it is given; records the crop sizes."""

    def __init__(self):
        self.shapes = []

    def __call__(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        self.shapes.append((height, width))
        return np.array([[0.3 * width, 0.2 * height, 0.7 * width, 0.8 * height]])


def test_crop_people_scales_the_box_to_the_detector_and_maps_back():
    frame = np.zeros((400, 600, 3), np.uint8)
    detect = RecordingDetector()
    box = np.array([300.0, 100.0, 348.0, 292.0])  # 48 × 192: twice the 96 px the detector expects
    found = crop_people(frame, box, detect)
    height, width = detect.shapes[0]
    assert abs(height - 0.5 * 1.6 * 192) <= 1  # the crop is 1.6 box heights tall, at scale 1/2
    assert width >= 0.9 * 96 - 1
    # the fake person fills the middle of the crop: mapped back, it is centred on the box
    centre = (found[0, :2] + found[0, 2:]) / 2
    np.testing.assert_allclose(centre, [(300 + 348) / 2, (100 + 292) / 2], atol=1.5)


def test_crop_people_at_the_border_and_degenerate_boxes():
    frame = np.zeros((100, 100, 3), np.uint8)
    detect = RecordingDetector()
    found = crop_people(frame, np.array([90.0, 0.0, 100.0, 40.0]), detect)
    assert found.shape == (1, 4) and (found[:, [0, 2]] <= 100 + 1e-9).all()
    assert crop_people(frame, np.array([5.0, 5.0, 5.0, 9.0]), detect).shape == (0, 4)
    assert crop_people(frame, np.array([np.nan] * 4), detect).shape == (0, 4)


def test_sample_frames_spreads_over_the_track():
    assert sample_frames(np.arange(5), 8).tolist() == [0, 1, 2, 3, 4]
    picked = sample_frames(np.arange(100), 4)
    assert picked.tolist() == [0, 33, 66, 99]


def test_person_evidence_runs_the_detector_on_sampled_crops_only():
    boxes = np.zeros((2, 20, 4))
    boxes[0] = [10, 10, 30, 70]   # a person-shaped box
    boxes[1] = [50, 50, 90, 80]   # a dog-shaped box
    detected = np.ones((2, 20), bool)
    frames = np.zeros((20, 120, 120, 3), np.uint8)
    detect = RecordingDetector()
    config = ClassicTrackerConfig(person_samples=5)
    looked, evidence = person_evidence(boxes, detected, frames, config, people=detect)
    assert looked.sum(axis=1).tolist() == [5, 5] and len(detect.shapes) == 10
    assert evidence[looked].all()  # the fake detector always finds a person in the middle
    categories, is_agent = label_tracks(looked, evidence, boxes, detected, config)
    assert categories == ("person", "object")  # the wide box is not upright: not a person
    assert is_agent.tolist() == [True, False]


def test_person_evidence_without_a_detector():
    boxes = np.array([[[10, 10, 30, 70]], [[50, 50, 90, 80]]], float)
    detected = np.ones((2, 1), bool)
    looked, evidence = person_evidence(boxes, detected, None, ClassicTrackerConfig(person_detector="shape"))
    np.testing.assert_array_equal(evidence, [[True], [False]])
    looked, evidence = person_evidence(boxes, detected, None, ClassicTrackerConfig(person_detector="none"))
    assert not looked.any() and not evidence.any()


def test_label_tracks_rules():
    config = ClassicTrackerConfig()
    detected = np.ones((4, 10), bool)
    looked = np.ones((4, 10), bool)
    boxes = np.zeros((4, 10, 4))
    boxes[0] = [0, 0, 20, 60]    # slim, strong evidence → person
    boxes[1] = [0, 0, 40, 60]    # upright (1.5), strong evidence → person
    boxes[2] = [0, 0, 20, 60]    # slim, weak evidence (2 of 10) → person
    boxes[3] = [0, 0, 40, 60]    # upright but not slim, weak evidence → object (a dog facing the camera)
    evidence = np.zeros((4, 10), bool)
    evidence[:2, :4] = True
    evidence[2:, :2] = True
    categories, is_agent = label_tracks(looked, evidence, boxes, detected, config)
    assert categories == ("person", "person", "person", "object")
    wide = np.zeros((1, 10, 4))
    wide[0] = [0, 0, 80, 40]     # a car: evidence everywhere, still not a person
    categories, _ = label_tracks(np.ones((1, 10), bool), np.ones((1, 10), bool), wide, np.ones((1, 10), bool), config)
    assert categories == ("object",)
    nothing, agent = label_tracks(np.zeros((1, 10), bool), np.zeros((1, 10), bool), wide, np.zeros((1, 10), bool),
                                  config)
    assert nothing == ("object",) and not agent.any()


def test_hog_on_a_crop_finds_nothing_in_a_blank_frame():
    from recon4d.tracking.classic.people import hog_people_detector

    assert hog_available()  # setup.cfg pins opencv < 5, whose wheels ship HOG
    found = crop_people(np.full((200, 200, 3), 128, np.uint8), np.array([80.0, 40.0, 120.0, 160.0]),
                        hog_people_detector())
    assert found.shape == (0, 4)


def test_auto_evidence_counts_a_slim_box_the_detector_misses():
    """HOG misses bent or side-on people: with "auto" a standing person's slim box is evidence on
    its own, a dog's or a car's box never is; with "hog" only the detector counts."""
    boxes = np.zeros((2, 6, 4))
    boxes[0] = [10, 10, 30, 70]   # 3 × taller than wide
    boxes[1] = [50, 50, 90, 80]   # wider than tall
    detected = np.ones((2, 6), bool)
    frames = np.zeros((6, 120, 120, 3), np.uint8)
    nobody = lambda image: np.zeros((0, 4))  # noqa: E731
    looked, evidence = person_evidence(boxes, detected, frames, ClassicTrackerConfig(), people=nobody)
    assert looked.all() and evidence[0].all() and not evidence[1].any()
    categories, _ = label_tracks(looked, evidence, boxes, detected, ClassicTrackerConfig())
    assert categories == ("person", "object")
    if hog_available():
        _, evidence = person_evidence(boxes, detected, frames, ClassicTrackerConfig(person_detector="hog"),
                                      people=nobody)
        assert not evidence.any()
