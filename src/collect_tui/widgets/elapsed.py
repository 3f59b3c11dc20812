"""How long ago something happened, in the words the screens use."""

from __future__ import annotations

from datetime import datetime


def ago(moment: datetime, now: datetime, *, compact: bool = False) -> str:
    """``5 min ago``, ``3 h ago``, ``2 days ago`` (``later`` when ``now`` is behind it);
    ``compact`` for a table cell: ``5m``, ``3h``, ``2d``."""
    seconds = (now - moment).total_seconds()
    if compact:
        if seconds < 3600:
            return f"{max(0, int(seconds // 60))}m"
        if seconds < 86400:
            return f"{int(seconds // 3600)}h"
        return f"{int(seconds // 86400)}d"
    if seconds < -60:
        return "later"
    if seconds < 3600:
        return f"{max(0, int(seconds // 60))} min ago"
    if seconds < 86400 * 2:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"
