"""slabench: benchmark sequence-mixing mechanisms on synthetic recall tasks."""

__version__ = "0.1.0"
