"""Private keys: software keys generated per certificate (software.py)."""
