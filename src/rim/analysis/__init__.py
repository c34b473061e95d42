"""Looking inside a trained run: what each memory block reads out (`explain`), and a probe of the
blocks' correctness (`probe`)."""
