"""Stage 3-4: run models on an execution provider and measure them (detections, COCO mAP, parity, bootstrap, latency,
peers)."""
