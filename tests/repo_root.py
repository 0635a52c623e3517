"""The repository's root folder: tests run commands there and read its files."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
