"""The `setup` command's options; the work is in setupcmd.py (imported when it runs)."""

from __future__ import annotations

import os
import sys
from typing import Any

import click


def _say(message: str) -> None:
    sys.stderr.write(f"cred-helper: {message}\n")
    sys.stderr.flush()


def _out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


@click.command()
@click.option("--cluster", metavar="NAME", help="The profile's name; also the kubeconfig "
              "cluster's (with --server) and the context's.")
@click.option("--config", metavar="FILE", help="Profile file.  [env: CRED_HELPER_CONFIG; "
              "default: $XDG_CONFIG_HOME/cred-helper/config.toml]")
@click.option("--server", metavar="URL", help="The API server (with --certificate-authority).")
@click.option("--certificate-authority", metavar="FILE", help="The API server's CA bundle.")
@click.option("--from-context", metavar="NAME",
              help="Use the cluster of this existing kubeconfig context instead.")
@click.option("--kubeconfig", metavar="FILE",
              help="Write into this file.  [default: as kubectl: $KUBECONFIG, ~/.kube/config]")
@click.option("--context-name", metavar="NAME", help="The context to add.  [default: --cluster]")
@click.option("--command", "command", metavar="PATH",
              help="The exec entry's command, instead of the fast launcher.  [default: the "
                   "fast launcher; kubectl-cred_helper when run as `kubectl cred-helper`]")
@click.option("--fast-launcher/--no-fast-launcher", default=None,
              help="Write a launcher that starts this Python with -IS (a quicker cache hit on "
                   "every kubectl command) and make it the exec entry's command.  [default: "
                   "on, unless --command is given or setup runs from the single file]")
@click.option("--issuer", metavar="csr|oidc", help="Where credentials come from.")
@click.option("--ttl", metavar="DURATION", help="Credential lifetime.  [default: 30m]")
@click.option("--bootstrap", metavar="token|kubeconfig|oidc",
              help="What creates CSRs.  [default: whichever is set]")
@click.option("--bootstrap-token-file", metavar="FILE", help="Bearer token that may create CSRs.")
@click.option("--bootstrap-kubeconfig", metavar="FILE",
              help="Create CSRs as a user of this kubeconfig.")
@click.option("--bootstrap-context", metavar="NAME", help="Context of --bootstrap-kubeconfig.")
@click.option("--subject-cn", metavar="NAME", help="Certificate CN.")
@click.option("--subject-o", metavar="GROUP", multiple=True,
              help="Certificate O (a group), repeatable.")
@click.option("--oidc-issuer-url", metavar="URL", help="OpenID provider (issuer) URL.")
@click.option("--oidc-client-id", metavar="ID", help="OIDC client id.")
@click.option("--oidc-client-secret-file", metavar="FILE", help="File holding the client secret.")
@click.option("--oidc-scope", metavar="SCOPE", multiple=True, help="Scope, repeatable.")
@click.option("--oidc-grant", metavar="auto|authcode|device|client-credentials",
              help="How to log in.")
@click.option("--oidc-client-auth",
              metavar="none|client-secret|client-secret-post|private-key-jwt",
              help="Client authentication.")
@click.option("--oidc-client-key", metavar="FILE|pkcs11:URI",
              help="Key for private_key_jwt.")
@click.option("--oidc-certificate-authority", metavar="FILE",
              help="CA bundle for the OpenID provider.")
@click.option("--oidc-use-access-token", is_flag=True, default=None,
              help="Give kubectl the access token.")
@click.option("--overwrite", is_flag=True,
              help="Replace kubeconfig entries of the same names that setup did not write.")
@click.option("--print", "print_only", is_flag=True,
              help="Show what would be written; write nothing.")
@click.option("--no-verify", is_flag=True,
              help="Skip the check with the bootstrap identity afterwards.")
@click.option("--print-rbac", is_flag=True,
              help="Instead: print the RBAC an on-call team needs, and write the audit policy.")
@click.option("--group", default="oncall", show_default=True, metavar="GROUP",
              help="--print-rbac: the group that may debug pods.")
@click.option("--namespace", "namespaces", multiple=True, metavar="NS",
              help="--print-rbac: a namespace to debug in, repeatable.  [default: debug]")
@click.option("--bootstrap-group", metavar="GROUP",
              help="--print-rbac: the group that may ask for certificates.  [default: --group]")
@click.option("--approver-group", metavar="GROUP",
              help="--print-rbac: the group that may decide others' access requests (never "
                   "their own).  [default: --group]")
@click.option("--audit-policy", metavar="FILE", default="cred-helper-audit-policy.yaml",
              show_default=True, help="--print-rbac: where to write the audit policy.")
@click.option("--apply", is_flag=True,
              help="--print-rbac: kubectl apply the objects (a server-side dry run first).")
@click.option("--kubectl", "kubectl_path", default="kubectl", show_default=True, metavar="PATH",
              help="--apply: the kubectl to run (with your admin kubeconfig).")
@click.option("--kubectl-context", metavar="NAME", help="--apply: kubectl's --context.")
def setup(**flags: Any) -> None:
    """Write a profile and the kubeconfig user and context that run cred-helper, then check
    them with the bootstrap identity.

    \b
    Example:
      cred-helper setup --cluster prod --server https://prod.example.com:6443 \\
          --certificate-authority ca.crt --issuer csr --bootstrap-token-file prod.token
      cred-helper setup --print-rbac --group oncall --namespace shop > rbac.yaml
    """
    from . import setupcmd
    from .errors import UsageError

    if flags["print_rbac"]:
        setupcmd.print_rbac(setupcmd.RbacOptions(
            group=flags["group"], namespaces=flags["namespaces"] or ("debug",),
            bootstrap_group=flags["bootstrap_group"] or "", audit_policy=flags["audit_policy"],
            approver_group=flags["approver_group"] or "",
            apply=flags["apply"], kubectl=flags["kubectl_path"],
            kubectl_context=flags["kubectl_context"]), _say, _out)
        return
    if flags["apply"]:
        raise UsageError("--apply goes with --print-rbac")
    if not flags["cluster"]:
        raise UsageError("setup needs --cluster NAME (the profile's name)",
                         "e.g. cred-helper setup --cluster prod --from-context prod "
                         "--issuer csr --bootstrap-token-file prod.token")
    profile = {key: flags.get(key.replace("-", "_")) for key in setupcmd.PROFILE_OPTIONS}
    setupcmd.run_setup(setupcmd.SetupOptions(
        cluster=flags["cluster"], profile=profile, config=flags["config"],
        server=flags["server"], certificate_authority=flags["certificate_authority"],
        from_context=flags["from_context"], kubeconfig=flags["kubeconfig"],
        context_name=flags["context_name"],
        command=flags["command"], fast_launcher=flags["fast_launcher"], run_as=sys.argv[0],
        overwrite=flags["overwrite"], print_only=flags["print_only"],
        verify=not flags["no_verify"]), os.environ, _say, _out)
