"""Geometry-aware Qwen2.5-VL: geometry tokenizer, GSM, GeoSR, training and evaluation."""
