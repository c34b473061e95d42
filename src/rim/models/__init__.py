"""Models and tokenizers: loading or building them and adding the block tokens (`modeling`), the
model families the layout works with (`families`), a tokenizer trained from scratch (`tokenizer`),
the hub probe (`hub`) and what a saved model needs besides its weights (`runinfo`)."""
