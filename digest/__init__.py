"""digest: emails researchers the new papers that match their interests."""

from pathlib import Path

__version__ = "0.1.0"


def resource_dir(name: str) -> Path:
    """Return a bundled directory (templates, alembic) from the wheel or the source tree."""
    packaged = Path(__file__).parent / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name
