"""Gathers the facts `doctor` judges (checks.py) and prints the verdicts.

Order matters: later checks use what earlier ones found (the settings, the server), and one
that cannot run because an earlier one failed is reported as SKIP, not as a second failure.
TLS is always verified: a wrong CA is a finding, never something to step around.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .. import __version__
from ..errors import CredHelperError, os_reason, server_text
from ..paths import default_config_file
from . import checks as c
from .checks import FAIL, OK, SKIP, WARN, Check

SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


@dataclass(frozen=True)
class Options:
    cluster: str | None = None
    config: str | None = None
    kubeconfig: str | None = None
    cache_dir: str | None = None
    use_pin: bool = False
    output: str = "text"
    chosen_because: str = ""  # why this profile, when no flag named it


def _guard(name: str, fn: Callable[[], list[Check]]) -> list[Check]:
    """One check's findings; an error becomes its FAIL line, never a traceback."""
    try:
        return fn()
    except CredHelperError as exc:
        return [Check(name, FAIL, exc.message, exc.hint or "")]
    except Exception as exc:  # doctor must report every check, whatever one of them meets
        return [Check(name, FAIL, f"unexpected {type(exc).__name__}",
                      "report it, with `cred-helper doctor -o json`")]


class Doctor:
    def __init__(self, opts: Options, env: dict[str, str], ask_pin: Callable[[str], str]) -> None:
        self.opts = opts
        self.env = env
        self.ask_pin = ask_pin
        self.settings: Any = None
        self.entries: list[Any] = []
        self.endpoint: Any = None
        self.reachable = False
        self.profile_table: dict[str, Any] = {}

    # ---- 1. profile ------------------------------------------------------------------------
    def profile(self) -> list[Check]:
        from .. import config

        flags = {"cluster": self.opts.cluster, "config": self.opts.config,
                 "cache_dir": self.opts.cache_dir}
        self.settings = config.resolve(flags, self.env)
        s = self.settings
        doc = config.load_config_file(s.config_file, named=False)
        profile = (doc.get("clusters") or {}).get(s.cluster, {}) if s.cluster else {}
        self.profile_table = profile if isinstance(profile, dict) else {}
        sources = c.setting_sources(flags, self.env, profile if isinstance(profile, dict)
                                    else {}, config.PROFILE_KEYS, config.ENV_VARS)
        return [c.profile_check(s.config_file, os.path.exists(s.config_file), s.cluster,
                                sources, self.opts.chosen_because)]

    # ---- 2. kubectl ------------------------------------------------------------------------
    def kubectl(self) -> list[Check]:
        from .. import execentry

        found: list[Check] = []
        kubectl = self.env.get("KUBECTL") or shutil.which("kubectl", path=self.env.get("PATH"))
        minor = None
        if not kubectl:
            found.append(Check("kubectl", WARN, "no kubectl on PATH",
                               "install kubectl; cred-helper is its credential plugin"))
        else:
            said = ""
            try:
                ran = subprocess.run([kubectl, "version", "--client", "-o", "json"],
                                     capture_output=True, text=True, timeout=30, env=self.env)
                said = " ".join(ran.stderr.split())[:200]
                doc = json.loads(ran.stdout)
            except (OSError, subprocess.SubprocessError, ValueError):
                doc = None
            minor = c.kubectl_minor(doc)
            version = (doc or {}).get("clientVersion", {}).get("gitVersion", "?") \
                if isinstance(doc, dict) else "?"
            if minor:
                found.append(Check("kubectl", OK, f"{kubectl}: {version}"))
            elif "kuberc" in said:
                # kubectl 1.35+ stops before any command when its kuberc cannot be used.
                found.append(Check("kubectl", FAIL, f"{kubectl} fails: {said}",
                                   "fix or create the kuberc file, or unset KUBERC"))
            else:
                found.append(Check("kubectl", WARN, f"{kubectl} did not say its version"))
        s = self.settings
        docs = execentry.load_all(execentry.kubeconfig_paths(self.env, self.opts.kubeconfig))
        self.entries = execentry.find(docs, s.cluster) if s and s.cluster else []
        try:  # kubectl's own entry first: the checks below judge the first
            chosen = execentry.kubectls_entry(self.entries, execentry.current_context(docs),
                                              s.cluster)
        except CredHelperError as exc:
            chosen = None
            found.append(Check("exec entry", WARN, exc.message, exc.hint or ""))
        if chosen is not None:
            self.entries.remove(chosen)
            self.entries.insert(0, chosen)
        found += c.exec_entry_checks(self.entries, s.cluster if s else "",
                                     bool(s and s.server), s.issuer if s else "")
        kuberc_path = self.env.get("KUBERC") or os.path.join(
            self.env.get("HOME") or os.path.expanduser("~"), ".kube", "kuberc")
        kuberc = None
        if minor and minor >= c.KUBERC_POLICY_MINOR and self.env.get("KUBERC") \
                and not os.path.exists(kuberc_path):
            kuberc = "missing"  # kubectl 1.37 refuses to run anything when $KUBERC is gone
        elif minor and minor >= c.KUBERC_POLICY_MINOR and os.path.exists(kuberc_path):
            import yaml

            try:
                with open(kuberc_path, "rb") as fh:
                    kuberc = yaml.safe_load(fh.read(1 << 20)) or {}
            except (OSError, yaml.YAMLError, UnicodeDecodeError, RecursionError):
                kuberc = "unreadable"
        command = self.entries[0].exec.get("command", "cred-helper") if self.entries \
            else "cred-helper"
        lookup = execentry.look_up(command, self.entries[0].path, self.env.get("PATH", ""),
                                   _unusable) if self.entries else None
        if lookup is not None:
            found.append(c.exec_command_check(lookup, self._says_version(lookup.path),
                                              __version__))
        found.append(c.kuberc_check(minor, kuberc, kuberc_path, command,
                                    lookup.path if lookup else ""))
        return found

    def _says_version(self, path: str) -> str:
        """The first line `PATH --version` prints, or why it could not run."""
        if not path:
            return ""
        try:
            ran = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 timeout=30, env=self.env, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"it cannot start ({os_reason(exc)})"
        text = (ran.stdout or ran.stderr).strip()
        line = server_text(text.splitlines()[0], 200) if text else ""
        return line if ran.returncode == 0 else f"exit {ran.returncode}: {line}"

    # ---- 3. the API server -----------------------------------------------------------------
    def _cluster(self):
        from .. import execentry

        for entry in self.entries:
            if entry.context:
                return execentry.cluster_info(entry)
        return None

    def api_server(self) -> list[Check]:
        from ..kube import Endpoint, KubeClient

        s = self.settings
        cluster = self._cluster()
        if s.issuer == "csr":
            from .. import bootstrap

            self.endpoint, _ = bootstrap.resolve(s, cluster, lambda: None)
        elif cluster and cluster.server:
            self.endpoint = Endpoint(cluster.server, cluster.ca_data, cluster.tls_server_name,
                                     cluster.proxy_url)
        else:
            return [Check("API server", SKIP, "no API server known for an OIDC profile "
                          "without provideClusterInfo")]
        before = time.time()
        resp = KubeClient(self.endpoint, None, timeout=15).request("GET", "/version")
        now = (before + time.time()) / 2
        self.reachable = True
        trust = "its CA" if self.endpoint.ca_pem else "the OS trust store"
        return [Check("API server", OK, f"{self.endpoint.server} answered over TLS verified "
                      f"with {trust}"),
                c.clock_skew(resp.headers.get("Date"), now)]

    # ---- 4. the bootstrap identity ---------------------------------------------------------
    def bootstrap_identity(self) -> list[Check]:
        s = self.settings
        if s.issuer != "csr":
            return [Check("bootstrap identity", SKIP, "the OIDC issuer makes no CSRs")]
        if s.bootstrap == "oidc":
            return [Check("bootstrap identity", SKIP, "an OIDC login creates the CSRs: "
                          "`cred-helper login` checks it with the person present")]
        if not self.reachable:
            return [Check("bootstrap identity", SKIP, "the API server was not reached")]
        from .. import bootstrap
        from ..kube import KubeClient

        endpoint, auth = bootstrap.resolve(s, self._cluster(), lambda: None)
        client = KubeClient(endpoint, auth, timeout=15)
        review = client.post(SSR, {"apiVersion": "authentication.k8s.io/v1",
                                   "kind": "SelfSubjectReview"})
        info = (review.get("status") or {}).get("userInfo") or {}
        name = info.get("username") if isinstance(info.get("username"), str) else "?"
        groups = [g for g in info.get("groups") or [] if isinstance(g, str)]
        found = [Check("bootstrap identity", OK, f"{getattr(auth, 'source', '')} is "
                       f"{name} ({', '.join(groups) or 'no groups'})")]
        access = client.post(SSAR, {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"group": "certificates.k8s.io",
                                            "resource": "certificatesigningrequests",
                                            "verb": "create"}}})
        found.append(c.access_review_check(access))
        return found

    # ---- 5. OIDC ---------------------------------------------------------------------------
    def oidc(self) -> list[Check]:
        s = self.settings
        if not s.oidc_issuer_url:
            return [Check("OIDC provider", SKIP, "no OpenID provider in this profile")]
        from ..issuers import oidc

        provider = oidc.OIDCProvider(s.oidc_issuer_url, s.oidc_client_id, oidc.NoClientAuth(),
                                     oidc.http_client(s.oidc_certificate_authority))
        meta = provider.metadata
        keys = provider.jwks().get("keys") or []
        return [Check("OIDC provider", OK, f"{s.oidc_issuer_url}: discovery read, token "
                      f"endpoint {meta.token_endpoint}"),
                Check("OIDC JWKS", OK if keys else FAIL, f"{len(keys)} signing key(s)",
                      "" if keys else "the provider publishes no keys: ID tokens cannot be "
                      "checked")]

    # ---- 6. PKCS#11 ------------------------------------------------------------------------
    def pkcs11(self) -> list[Check]:
        s = self.settings
        uris = [u for u in (s.attest_with, s.oidc_client_key) if u.startswith("pkcs11:")]
        if not uris:
            return [Check("PKCS#11", SKIP, "no token key in this profile")]
        from ..keys import pkcs11
        from ..keys import uri as urimod

        uri = urimod.parse(uris[0])
        module = pkcs11.choose_module(uri.module_path, s.pkcs11_module)
        if not os.path.exists(module):
            return [Check("PKCS#11 module", FAIL, f"{module} does not exist",
                          "install the module (ykcs11: yubico-piv-tool; OpenSC) or fix "
                          "pkcs11-module / --pkcs11-module")]
        lib = pkcs11.load(module)
        found = [Check("PKCS#11 module", OK, module)]
        token, info = pkcs11.find_token(lib, uri, module)
        found.append(Check("token", OK, info.describe()))
        pin = c.token_pin_check(info.describe(), info.flags)
        found.append(pin)
        if pin.status == FAIL:
            found.append(Check("key", SKIP, "the token is locked"))
            return found
        from ..keys.manage import find_public

        if self.opts.use_pin:
            with pkcs11.open_session(uris[0], s.pkcs11_module, s.pin_source, True,
                                     sys.stdin.isatty(), self.env, self.ask_pin,
                                     lambda m: None) as (parsed, tinfo, _, session):
                key = pkcs11.find_private_key(session, parsed, tinfo.describe())
                found.append(Check("key", OK, f"{pkcs11.describe_key(key)}, logged in"))
            return found
        try:
            with token.open() as session:
                find_public(session, uri, info.describe())
            found.append(Check("key", OK, f"{uri.describe_object()}: its public key is on "
                               "the token (private half not checked: no PIN used)"))
        except CredHelperError as exc:
            found.append(Check("key", WARN, exc.message,
                               "some tokens show keys only after login: doctor --login"))
        return found

    # ---- 7. keyring ------------------------------------------------------------------------
    def keyring(self) -> list[Check]:
        s = self.settings
        use, what = c.keyring_use(s.cache, s.issuer, s.bootstrap, s.oidc_client_auth,
                                  s.oidc_client_secret_file)
        if not use:
            return [Check("keyring", SKIP, "this profile keeps nothing in the OS keyring")]
        needed = use == "needs"
        try:
            import keyring
            from keyring.backends import fail
        except ImportError:
            return [Check("keyring", FAIL if needed else WARN,
                          f"the keyring package is not installed, and this profile keeps {what} "
                          "there")]
        backend = keyring.get_keyring()
        if not isinstance(backend, fail.Keyring):
            return [Check("keyring", OK, f"{type(backend).__module__}.{type(backend).__name__}"
                          f" keeps {what}")]
        reasons = []
        try:
            from keyring.backends import SecretService

            SecretService.Keyring.priority  # noqa: B018 -- raises with the reason
        except Exception as exc:
            reasons.append(f"Secret Service: {str(exc)[:160]}")
        why = "; ".join(reasons) or "no backend is usable"
        status = FAIL if needed else WARN
        return [Check("keyring", status, f"no OS keyring for {what} ({why})",
                      "start a Secret Service (gnome-keyring in a D-Bus session)"
                      + ("; meanwhile refresh tokens go to a 0600 file in the cache directory"
                         if not needed else
                         "; or use --cache file" if s.cache == "keyring" else
                         "; or pass --oidc-client-secret-file"))]

    # ---- 8. the cache directory ------------------------------------------------------------
    def cache_dir(self) -> list[Check]:
        s = self.settings
        if s.cache == "none":
            return [Check("cache directory", SKIP, "cache none: nothing is kept")]
        path = s.cache_dir
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            info = None
        parent = os.path.dirname(path)
        while parent and not os.path.exists(parent):
            parent = os.path.dirname(parent)
        return [c.cache_dir_check(path, info, os.getuid(),
                                  os.access(parent or "/", os.W_OK | os.X_OK))]

    # ---- 9. the SSH gateway ----------------------------------------------------------------
    def ssh_gateway(self) -> list[Check]:
        from ..errors import UsageError
        from ..sshaccess import settings as sshsettings

        profile = self.profile_table
        keys_set = [k for k in sshsettings.PROFILE_KEYS if k in profile]
        problem, gateway, pinned = None, "", ""
        if keys_set:
            # As ssh-config reads them; the namespace may come from its flag instead.
            flags = {} if "namespace" in profile else {"namespace": "default"}
            try:
                ssh = sshsettings.resolve(flags, profile, self.settings.cluster)
            except UsageError as exc:
                problem = (exc.message, exc.hint or "")
            else:
                if ssh.gateway is not None:
                    gateway = f"{ssh.gateway.host}:{ssh.gateway.port}"
                    pinned = f"{len(ssh.host_keys)} key(s)" if ssh.host_keys else "a host CA"
        ssh_path = shutil.which("ssh", path=self.env.get("PATH", os.defpath)) \
            if keys_set else None
        return c.ssh_gateway_check(keys_set, problem, gateway, pinned, ssh_path)

    def run(self) -> list[Check]:
        found = _guard("profile", self.profile)
        if self.settings is None:
            return found + [Check(n, SKIP, "the profile did not resolve") for n in
                            ("kubectl", "API server", "bootstrap identity", "OIDC provider",
                             "PKCS#11", "keyring", "cache directory", "SSH gateway")]
        for name, step in (("kubectl", self.kubectl), ("API server", self.api_server),
                           ("bootstrap identity", self.bootstrap_identity),
                           ("OIDC provider", self.oidc), ("PKCS#11", self.pkcs11),
                           ("keyring", self.keyring), ("cache directory", self.cache_dir),
                           ("SSH gateway", self.ssh_gateway)):
            found += _guard(name, step)
        return found


def _unusable(path: str) -> str:
    """Why kubectl (Go's os/exec) cannot run `path`, or "" when it can."""
    try:
        info = os.stat(path)
    except OSError as exc:
        return f"cannot be used ({os_reason(exc)})"
    except ValueError:  # a NUL in the kubeconfig's command
        return "cannot be used (not a file name)"
    if stat.S_ISDIR(info.st_mode):
        return "is a directory"
    if not os.access(path, os.X_OK, effective_ids=os.access in os.supports_effective_ids):
        return "is not executable"
    return ""


def choose_profile(opts: Options, env: dict[str, str]) -> Options:
    """The profile to check (see checks.pick_profile); a name nobody knows is refused as every
    command refuses it, before any check runs."""
    from .. import config, execentry

    given = opts.cluster or env.get("CRED_HELPER_CLUSTER") or ""
    given_by = "" if opts.cluster or not given else "from CRED_HELPER_CLUSTER"
    named = opts.config or env.get("CRED_HELPER_CONFIG")
    path = os.path.expanduser(named or default_config_file(env))
    names = config.profile_names(config.load_config_file(path, named=bool(named)))
    current = ("", "") if given else execentry.current_profile(execentry.load_all(
        execentry.kubeconfig_paths(env, opts.kubeconfig)))
    chosen, why = c.pick_profile(given, given_by, current, names, path, os.path.exists(path))
    return replace(opts, cluster=chosen, chosen_because=why)


def run_doctor(opts: Options, ask_pin: Callable[[str], str]) -> int:
    opts = choose_profile(opts, dict(os.environ))
    found = Doctor(opts, dict(os.environ), ask_pin).run()
    if opts.output == "json":
        sys.stdout.write(json.dumps({"ok": not c.failed(found),
                                     "checks": [x.as_dict() for x in found]}, indent=2) + "\n")
    else:
        sys.stdout.write(c.render_text(found))
    return 1 if c.failed(found) else 0
