"""What every layer uses: one-line errors (`errors`), typed settings (`schema`), the files rim
reads and writes (`fileio`, `outputs`), progress and logging (`progress`), the run-directory lock."""
