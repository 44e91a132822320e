"""GPU backends: bricks on real `diffusers` / `transformers` models, through the model manager.

Nothing here imports torch at import time; `manager.py` loads components on first use.
"""
