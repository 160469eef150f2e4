"""Rule files the rules tests write, as a user would."""

from __future__ import annotations


def gas_rule(within_m: float) -> str:
    """``site_near_gas``: an active construction site within ``within_m`` metres of a gas main."""
    return f"""\
id: site_near_gas
title_zh: 在施工地邻近燃气管线
title_en: Active site near a gas main
severity: high
kind: proximity
subject: {{layer: construction_site, filter: "status = 'active'"}}
object: {{layer: pipeline, filter: "kind = 'gas'"}}
within_m: {within_m:g}
message: "工地 {{subject}} 距燃气管线 {{object}} {{distance}} 米"
"""
