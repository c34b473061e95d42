"""Inference from a trained run: load and answer (`infer`), accuracy per block (`evaluate`), and a
model directory any engine serves (`export`)."""
