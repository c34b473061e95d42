"""Stand-in of the iCoT-text-to-JSON script: data/gsm_SPLIT.txt to data/gsm_SPLIT.json (the
question before `||`, the steps are the words before the first `##`, the answer after the last)."""

import json
import sys


def convert(line):
    question, _, rest = line.partition("||")
    return {
        "question": question,
        "steps": rest.partition("##")[0].strip().split(" "),
        "answer": rest.rpartition("##")[2].strip(),
    }


name = f"data/gsm_{sys.argv[1]}"
with open(name + ".txt") as f:
    rows = [convert(line) for line in f]
with open(name + ".json", "w") as f:
    json.dump(rows, f)
