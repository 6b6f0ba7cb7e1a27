"""Stage 2: FP32 ONNX -> INT8 ONNX (presets, calibration, ranges, graph rewrites, weight-only mode)."""
