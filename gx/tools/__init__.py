"""The library behind the commands other than run and parity: sampling (generate, strip), ONNX
export, speed (bench), the layer table (summary) and the spec drawn with Graphviz (drawing)."""
