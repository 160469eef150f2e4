"""The Shanghai demo twin (``twin demo``): real districts, roads and heritage, plausible synthetic the rest.

See the demo section of README.md for what is real and what is synthesised. Entry point: :func:`build_demo`.
"""

from twin.demo.build import LayerResult, build_demo
from twin.demo.scale import PUBLIC_SCALES, SCALES, Scale

__all__ = ["PUBLIC_SCALES", "SCALES", "LayerResult", "Scale", "build_demo"]
