"""qnnc's compiler pipeline: ONNX frontend, passes, public API and CLI."""
