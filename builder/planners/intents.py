"""Nearest intent of a clause the rules do not match, by sentence embedding (all-MiniLM-L6-v2).

Each intent is a plain phrase the rules understand, with a few ways people say it. A clause is
mapped to the intent whose examples it is closest to (cosine of mean-pooled, normalised
MiniLM embeddings) when that is close enough, and the rules then plan the intent's phrase;
amounts and colours are still read from the user's own words. The model is the real one,
loaded offline from the models directory (`lego-edit-mcp fetch-models`); torch and
transformers are imported on the first clause that needs it.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from bricks.cpu.weights import Weights

THRESHOLD = 0.72  # below it the clause is refused: a wrong edit is worse than a clear "cannot"

INTENTS: dict[str, tuple[str, ...]] = {
    "brighter": ("make the photo brighter", "it is too dark", "lift the exposure", "more light in the picture", "the image looks underexposed"),
    "darker": ("make the photo darker", "it is too bright", "lower the exposure", "the image looks overexposed", "make it moodier and darker"),
    "more contrast": ("add more contrast", "make the shadows deeper and highlights brighter", "more punch in the tones"),
    "less contrast": ("reduce the contrast", "flatten the tones", "make it look flat and soft"),
    "more saturation": ("make the colours more vivid", "more colourful please", "the colours look dull, make them richer", "make the colours stronger"),
    "less saturation": ("make the colours less intense", "tone down the colours", "make the colours more muted", "the colours are too strong"),
    "warmer": ("give it a warm tone", "make it feel like golden hour", "warmer colour temperature", "add a warm orange cast"),
    "cooler": ("give it a cool tone", "make it look colder and bluer", "cooler colour temperature", "add a blue cast"),
    "sharpen": ("make it sharper", "bring out the details", "make it crisper and clearer", "the photo is soft, sharpen it"),
    "blur the background": ("blur what is behind the subject", "make the background out of focus", "add a bokeh effect behind the subject", "portrait mode background blur"),
    "zoom out": ("show more of the scene around the image", "extend the borders of the picture", "make the frame larger around the photo"),
}

_lock = threading.Lock()


@functools.cache
def _embedder(weights: Weights):
    import torch
    from transformers import AutoModel, AutoTokenizer

    directory = weights.path("minilm", "model.safetensors").parent
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModel.from_pretrained(directory).eval()

    def embed(texts: list[str]) -> np.ndarray:
        batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state
        weight = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weight).sum(1) / weight.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=1).numpy()

    return embed


@functools.cache
def _examples(weights: Weights) -> tuple[np.ndarray, tuple[str, ...]]:
    labels = tuple(intent for intent, phrases in INTENTS.items() for _ in phrases)
    return _embedder(weights)([p for phrases in INTENTS.values() for p in phrases]), labels


def available(weights: Weights) -> bool:
    return not weights.missing(["minilm"])


def nearest(clause: str, weights: Weights) -> tuple[str, float] | None:
    """(intent phrase, similarity) of the closest intent above `THRESHOLD`, else None (also
    when MiniLM is not in `weights`)."""
    if not available(weights):
        return None
    with _lock:  # one model, one caller at a time
        vectors, labels = _examples(weights)
        scores = vectors @ _embedder(weights)([clause])[0]
    best = int(np.argmax(scores))
    return (labels[best], float(scores[best])) if scores[best] >= THRESHOLD else None
