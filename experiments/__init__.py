"""Experiments built on train.py: ablations of each model's switches and the GPT2Mini scaling law."""
