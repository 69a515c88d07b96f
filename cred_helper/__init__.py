"""cred-helper: a kubectl exec credential plugin for short-lived, identity-bound credentials.

Kept free of imports: it is loaded on every cache hit.
"""

__version__ = "0.1.0"
