"""The method core: a training sequence as segments (`segments`), the block-causal mask
(`segments`, `flex`), records to token ids (`encoding`), the losses (`losses`), the RiM
curriculum's weights (`curriculum`), batched greedy decoding (`generation`) and continuous
thoughts (`thoughts`). Depends on data only."""
