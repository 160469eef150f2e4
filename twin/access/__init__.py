"""Who sees what: users and tokens, roles, area scope, field masking and the audit trail."""

from twin.access.areas import AreaResolver
from twin.access.audit import AuditEvent, AuditLog
from twin.access.gate import AccessSettings, Gate
from twin.access.oidc import OidcSettings
from twin.access.policy import Policy, Role, load_policy
from twin.access.principal import Principal, anonymous, local
from twin.model.area import Area

__all__ = ["AccessSettings", "Area", "AreaResolver", "AuditEvent", "AuditLog", "Gate", "OidcSettings", "Policy",
           "Principal", "Role", "anonymous", "load_policy", "local"]
