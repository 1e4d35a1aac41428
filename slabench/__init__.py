"""slabench: benchmark sequence-mixing mechanisms on synthetic recall tasks."""

__version__ = "0.1.0"


def register_mixer(name: str, cls: type, *, replace: bool = False) -> type:
    """Register a plugin mixer class under `name` (and `sla-<name>` for a LinearMixer); see
    `slabench.plugins`. Imported lazily so `import slabench` stays light."""
    from slabench.plugins import register_mixer as register

    return register(name, cls, replace=replace)
