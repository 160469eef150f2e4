"""What the demo's personal data must look like: visibly synthetic people and phone numbers that reach no one.

The oracle for "reaches no one" is MIIT's own allocation table of mobile network codes
(我国公众移动通信网网号及H0分配情况, as of March 2023), copied here independently of the generator.
"""

from __future__ import annotations

import re

from twin.demo.names import SURNAMES
from twin.store import Store

#: Every mobile network code (three digits) or code plus H0 digit (four digits) MIIT has allocated, to any operator
#: or for satellite service, per its table as of March 2023, and 140-144, kept for 13-digit IoT numbers.
ALLOCATED_MOBILE_PREFIXES = (
    *(f"13{d}" for d in range(10)), "140", "141", "142", "143", "144", "145", "146", "147", "148", "149",
    "150", "151", "152", "153", "155", "156", "157", "158", "159",
    "162", "165", "166", "167", "1619", "170", "171", "172", "173", "1740", "1741", "1749", "175", "176", "177", "178",
    *(f"18{d}" for d in range(10)), "190", "191", "192", "193", "195", "196", "197", "198", "199",
)
FICTITIOUS_MOBILE = re.compile(r"154\d{8}")
FICTITIOUS_LANDLINE = re.compile(r"021-0\d{7}")  # a Shanghai local number never starts with 0, the trunk prefix
SYNTHETIC_PERSON = re.compile(f"[{''.join(SURNAMES)}]某某\\d{{2}}")

#: The personal fields of the demo, by layer: (name field, phone field, phone pattern).
PERSONAL = {
    "residential_compound": ("property_manager", "contact_phone", FICTITIOUS_MOBILE),
    "construction_site": ("site_manager", "manager_phone", FICTITIOUS_MOBILE),
    "committee": ("secretary", "office_phone", FICTITIOUS_LANDLINE),
}


def assert_personal_data_is_fictitious(store: Store) -> None:
    """Every person in ``store`` is named 王某某07-style and every phone lies in a range no one is assigned."""
    for layer, (person, phone, pattern) in PERSONAL.items():
        frame = store.features(layer)
        assert len(frame) > 0, layer
        bad_names = frame.loc[~frame[person].str.fullmatch(SYNTHETIC_PERSON.pattern), person]
        assert bad_names.empty, (layer, bad_names.head().tolist())
        bad_phones = frame.loc[~frame[phone].str.fullmatch(pattern.pattern), phone]
        assert bad_phones.empty, (layer, bad_phones.head().tolist())
        if pattern is FICTITIOUS_MOBILE:
            assert not frame[phone].str.startswith(ALLOCATED_MOBILE_PREFIXES).any(), layer
