"""Training: a run end to end (`run`), everything built before it starts (`prepare`), the loop
(`train`), its plan (`schedule`), precision, checkpoints, logs, callbacks, evaluation while
training, and several runs at once (`jobs`)."""
