"""The Python API in TRL's shape: `RiMConfig` (`config`) and `RiMTrainer` with `load` (`trainer`).
`import rim` gives all of them; this package imports nothing itself, so that reading the settings
does not load torch."""
