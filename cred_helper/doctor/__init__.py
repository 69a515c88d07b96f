"""`cred-helper doctor`: checks a set-up in order and says, for each, OK, WARN or FAIL with a hint.

checks.py holds the pure judgements (facts in, a Check out); run.py gathers the facts (files,
kubectl, the API server, the OpenID provider, the token, the keyring) and prints.
"""
