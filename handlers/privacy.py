"""Masking personal data for dispatch topics; the ledger keeps it in clear."""

from __future__ import annotations


def mask_phone(phone: str | None) -> str | None:
    """'13812341234' -> '138****1234'; short numbers keep only their last two digits."""
    if phone is None:
        return None
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(len(digits) - 2, 0) + digits[-2:]


def mask_name(name: str | None) -> str | None:
    """'张丽娜' -> '张**': the surname stays, so a responder can say 张阿姨."""
    if name is None:
        return None
    return name[:1] + "*" * (len(name) - 1) if len(name) > 1 else "*"
