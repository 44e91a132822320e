"""CPU backends: Pillow, NumPy and OpenCV only, no weights. Never import torch here."""
