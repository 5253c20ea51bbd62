"""Who may do what: identity (JupyterHub), sharing, quotas, the audit log, the hub service."""
