"""`cred-helper janitor`: evict pods whose debug (ephemeral) containers are stale, one pass per
run, through the Eviction API so that PodDisruptionBudgets hold."""
