"""The access broker: a policy approver for `kubernetes.io/kube-apiserver-client` CSRs
(`cred-helper approver run`), and the hardware attestation it checks."""
