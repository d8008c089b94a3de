"""RunLog: what one run logged to TensorBoard, read back. The one reader of logged runs for experiments and tests."""

import io
import math
import re
import statistics

import matplotlib.image as mpimg
import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

TEXT = "/text_summary"  # what TensorBoard adds to the tag of a text


class RunLog:
    """The scalars, images and texts in a run's event files (`<log_dir>/events.out.tfevents.*`), every one kept.

    Tags are the names the run logged under: `val_loss`, or a prefix from `callbacks.tags` and what follows it.
    """

    def __init__(self, log_dir: str) -> None:
        self._events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
        self._events.Reload()
        tags = self._events.Tags()
        self.scalar_tags, self.image_tags = set(tags["scalars"]), set(tags["images"])
        self.text_tags = {tag.removesuffix(TEXT) for tag in tags["tensors"] if tag.endswith(TEXT)}

    @property
    def tags(self) -> set[str]:
        return self.scalar_tags | self.image_tags | self.text_tags

    def scalars(self, tag: str) -> tuple[list[int], list[float]]:
        """Steps and values of one scalar, in the order they were logged."""
        events = self._events.Scalars(tag)
        return [e.step for e in events], [e.value for e in events]

    def wall_times(self, tag: str) -> list[float]:
        """When each value of one scalar was logged, in seconds since the epoch."""
        return [e.wall_time for e in self._events.Scalars(tag)]

    def last(self, tag: str) -> float:
        return self._events.Scalars(tag)[-1].value

    def median(self, tag: str) -> float:
        """The median of a scalar over the run; NaN if the run never logged it (too short)."""
        return statistics.median(self.scalars(tag)[1]) if tag in self.scalar_tags else math.nan

    def series(self, prefix: str) -> dict[str, float]:
        """{suffix: last value} of the scalars under `prefix`, in numeric order (block_2 before block_10)."""
        found = {tag[len(prefix) :]: self.last(tag) for tag in self.scalar_tags if tag.startswith(prefix)}
        return dict(sorted(found.items(), key=lambda item: [int(n) for n in re.findall(r"\d+", item[0])]))

    def texts(self, tag: str) -> tuple[list[int], list[str]]:
        """Steps and texts logged under `tag` (TensorBoard's Text tab)."""
        events = self._events.Tensors(tag + TEXT)
        return [e.step for e in events], [e.tensor_proto.string_val[0].decode() for e in events]

    def images(self, tag: str) -> list[int]:
        """The steps at which images were logged under `tag`."""
        return [e.step for e in self._events.Images(tag)]

    def image(self, tag: str) -> np.ndarray | None:
        """The last image logged under `tag`, as an (H, W, C) array, or None."""
        if tag not in self.image_tags:
            return None
        return mpimg.imread(io.BytesIO(self._events.Images(tag)[-1].encoded_image_string), format="png")
