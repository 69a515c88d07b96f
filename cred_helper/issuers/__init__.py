"""Issuers turn settings into a fresh credential: csr.py (Kubernetes CSR API)."""
