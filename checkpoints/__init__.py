"""Checkpoints: the lab's format (its version, and how every earlier one is upgraded as it loads) in `format`,
and how files are written (atomically, in the background) and read (with a clear error) in `files`.

Callbacks and models import from here; nothing here imports them.
"""

from checkpoints.files import AtomicCheckpointIO, read_checkpoint
from checkpoints.format import FORMAT, READABLE_FORMATS, collect_rng_states, set_rng_states, stamp, upgrade

__all__ = [
    "FORMAT",
    "READABLE_FORMATS",
    "AtomicCheckpointIO",
    "collect_rng_states",
    "read_checkpoint",
    "set_rng_states",
    "stamp",
    "upgrade",
]
