# Dataclasses become objects of their fields.
# status: success
# return: {"x": 1, "y": 2.5, "tags": ["a"]}
from dataclasses import dataclass, field


@dataclass
class Point:
    x: int
    y: float
    tags: list = field(default_factory=list)


Point(1, 2.5, ["a"])
