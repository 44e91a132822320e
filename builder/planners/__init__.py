"""Planner backends: turn (image, instruction) into workflow JSON text."""
