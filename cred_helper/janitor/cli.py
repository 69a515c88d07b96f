"""The `cred-helper janitor` command's flags (click); the work is in main.py and run.py."""

from __future__ import annotations

import click


@click.command("janitor")
@click.option("--kubeconfig", metavar="FILE",
              help="Run outside the cluster with this kubeconfig.  [default: in cluster when "
                   "KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG or ~/.kube/config]")
@click.option("--context", "context_name", metavar="NAME",
              help="The kubeconfig context.  [default: its current-context]")
@click.option("--after-exit", default="15m", show_default=True, metavar="DURATION",
              help="A debug container that exited this long ago is stale.")
@click.option("--max-age", default="8h", show_default=True, metavar="DURATION",
              help="A debug container running or waiting this long is stale (the session is "
                   "cut off).")
@click.option("--owner-kinds", default="ReplicaSet,StatefulSet", show_default=True,
              metavar="KINDS",
              help="Evict only pods whose controller is one of these (also DaemonSet, Job, "
                   "ReplicationController).")
@click.option("--bare-pods", type=click.Choice(["skip", "evict"]), default="skip",
              show_default=True, help="Pods with no owner at all.")
@click.option("--without-pdb", type=click.Choice(["skip", "evict"]), default="skip",
              show_default=True, help="Pods no PodDisruptionBudget covers.")
@click.option("--max-evictions", type=int, default=10, show_default=True, metavar="N",
              help="Evictions in one run, over all workloads (one per workload anyway).")
@click.option("--namespace", "namespaces", multiple=True, metavar="NS",
              help="Only these namespaces (repeat, or separate with commas).  [default: all]")
@click.option("--exclude-namespace", "exclude_namespaces", multiple=True, metavar="NS",
              help="Leave these namespaces (kube-system is left unless named in --namespace).")
@click.option("--exclude-selector", metavar="SELECTOR",
              help="Leave pods whose labels match (kubectl's syntax: app=db,tier in (a,b)).")
@click.option("--dry-run", is_flag=True,
              help="Ask the server's dry run (dryRun=All): report, change nothing.")
@click.option("--force", is_flag=True,
              help="Accept --after-exit below 5m and --max-age below 30m.")
def janitor(kubeconfig: str | None, context_name: str | None, after_exit: str, max_age: str,
            owner_kinds: str, bare_pods: str, without_pdb: str, max_evictions: int,
            namespaces: tuple[str, ...], exclude_namespaces: tuple[str, ...],
            exclude_selector: str | None, dry_run: bool, force: bool) -> int:
    """One pass: evict pods whose debug (ephemeral) containers are stale, through the Eviction
    API so that PodDisruptionBudgets hold. One JSON line per decision on stdout, one Event on
    each pod. Exits 0 when the pass completes, 1 on an API failure or an unknown outcome.

    \b
    Example:
      cred-helper janitor --kubeconfig janitor.kubeconfig --dry-run
    """
    from .main import options_from_flags, run_janitor

    options = options_from_flags(
        after_exit=after_exit, max_age=max_age, owner_kinds=owner_kinds, bare_pods=bare_pods,
        without_pdb=without_pdb, max_evictions=max_evictions, namespaces=namespaces,
        exclude_namespaces=exclude_namespaces, exclude_selector=exclude_selector,
        dry_run=dry_run, force=force)
    return run_janitor(options, kubeconfig, context_name)
