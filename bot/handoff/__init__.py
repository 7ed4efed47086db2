"""Human handoff: the tenant's support policy (who gets a person, when, how fast)."""
