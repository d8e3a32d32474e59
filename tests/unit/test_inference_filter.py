from __future__ import annotations

from core.inference import filter_predictions


def box(x1: float, y1: float, x2: float, y2: float, confidence: float, class_id: int = 0) -> dict[str, object]:
    return {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "confidence": confidence, "class_id": class_id, "label": str(class_id)}


RAW = {
    "task": "detect",
    "boxes": [
        box(0, 0, 10, 10, 0.9),
        box(1, 1, 11, 11, 0.8),  # IoU with the first ≈ 0.68
        box(0, 0, 10, 10, 0.7, class_id=1),  # same place, other class: never suppressed by class 0
        box(50, 50, 60, 60, 0.3),
        box(70, 70, 80, 80, 0.05),
    ],
    "masks": [{"i": 0}, {"i": 1}, {"i": 2}, {"i": 3}, {"i": 4}],
}


def test_confidence_threshold_filters_boxes_and_aligned_masks() -> None:
    high = filter_predictions(RAW, conf=0.5, iou=0.99)
    assert [b["confidence"] for b in high["boxes"]] == [0.9, 0.8, 0.7]
    assert [m["i"] for m in high["masks"]] == [0, 1, 2]
    low = filter_predictions(RAW, conf=0.01, iou=0.99)
    assert len(low["boxes"]) == 5


def test_iou_threshold_suppresses_within_a_class_only() -> None:
    result = filter_predictions(RAW, conf=0.1, iou=0.5)
    assert [(b["confidence"], b["class_id"]) for b in result["boxes"]] == [(0.9, 0), (0.7, 1), (0.3, 0)]


def test_classification_top_k_keeps_at_least_the_best() -> None:
    result = filter_predictions({"top_k": [{"label": "a", "confidence": 0.4}, {"label": "b", "confidence": 0.3}]},
                                conf=0.9, iou=0.5)
    assert [t["label"] for t in result["top_k"]] == ["a"]


def test_prepared_filter_matches_plain_nms_at_every_threshold() -> None:
    """The cached fast path (sorted prefix + precomputed IoU) keeps exactly what plain NMS keeps."""
    import numpy as np

    from core.inference import filter_predictions, nms_keep

    rng = np.random.default_rng(7)
    boxes = []
    for i in range(120):
        x, y = rng.uniform(0, 200, 2)
        w, h = rng.uniform(10, 60, 2)
        boxes.append({"x1": x, "y1": y, "x2": x + w, "y2": y + h, "confidence": float(rng.uniform(0, 1)),
                      "class_id": int(i % 3), "label": str(i % 3)})
    result = {"boxes": boxes, "masks": [], "keypoints": []}
    coords = np.array([[b["x1"], b["y1"], b["x2"], b["y2"]] for b in boxes])
    scores = np.array([b["confidence"] for b in boxes])
    classes = np.array([b["class_id"] for b in boxes])
    for conf in (0.0, 0.1, 0.5, 0.93, 1.0):
        for iou in (0.0, 0.3, 0.7, 1.0):
            candidates = np.nonzero(scores >= conf)[0]
            expected = sorted(int(i) for i in candidates[nms_keep(coords[candidates], scores[candidates],
                                                                  classes[candidates], iou)])
            got = filter_predictions(result, conf=conf, iou=iou)["boxes"]
            assert [boxes.index(b) for b in got] == expected, (conf, iou)


def test_a_semantic_segmentation_is_summed_up_by_its_classes_areas() -> None:
    from core.contracts import class_mask
    from core.services.inference import summary

    names = ["background", "field", "road", "river", "house"]
    mask = class_mask(b"", (10, 10), names, {0: 70, 1: 25, 2: 5})
    assert summary({"boxes": [], "top_k": [], "class_mask": mask}) == "field 25.0 %, road 5.0 % of the image"
    assert summary({"boxes": [], "class_mask": class_mask(b"", (10, 10), names, {0: 100})}) == "background only"
    many = class_mask(b"", (10, 10), names, {0: 60, 1: 10, 2: 10, 3: 10, 4: 10})
    assert summary({"class_mask": many}).endswith("of the image (+1 more classes)")
