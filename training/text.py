"""Small wording helpers for terminal output and cards."""


def count(number: int, noun: str) -> str:
    """``count(1, "epoch")`` is "1 epoch", ``count(20, "epoch")`` is "20 epochs"."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
