"""How big a demo twin is: the real city's numbers, or a window on them for trying twin out and for tests."""

from __future__ import annotations

from dataclasses import dataclass

from twin.demo.tiles import Focus


@dataclass(frozen=True)
class Scale:
    """City-wide targets, and an optional focus disc around People's Square.

    Densities are always calibrated on the whole city's targets, so a focused build is an exact
    window on the full twin (the same components with the same attributes; the same keys too, except
    in the few geohash cells cut by the window's edge) rather than a thinned-out city. Districts,
    sub-districts and real heritage always cover the whole city; committees do too unless
    ``admin_in_focus``.
    """

    name: str
    points: int = 14_950_000  # street lights and hydrants of the whole city
    pipeline_km: float = 26_800.0
    subdistricts: int = 215
    committees: int = 6_000
    sites: int = 5_000
    compounds: int = 14_000
    heritage: int = 3_000  # real plus synthetic, when ``synthetic_heritage``
    synthetic_heritage: bool = False
    focus_km: float | None = None
    admin_in_focus: bool = False

    @property
    def focus(self) -> Focus | None:
        return None if self.focus_km is None else Focus(0.0, 0.0, self.focus_km * 1000.0)


SCALES: dict[str, Scale] = {
    "full": Scale("full", synthetic_heritage=True),
    "small": Scale("small", focus_km=2.5),
    "tiny": Scale("tiny", focus_km=0.6, admin_in_focus=True),
}
#: Scales offered on the command line; ``tiny`` is for the test suite.
PUBLIC_SCALES = ("small", "full")
