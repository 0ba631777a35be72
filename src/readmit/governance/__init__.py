"""Governance: which registered model serves, decided by written rules and recorded.

See :mod:`readmit.governance.promote` (``readmit promote``, ``--force --reason``, ``--rollback``).
"""
